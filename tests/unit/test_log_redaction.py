"""Credentials in query strings (WeChat's protocol) never reach the logs, even when an
operator turns httpx's per-request log line on."""

from __future__ import annotations

import logging

import httpx
import pytest

from entrypoints import log_redaction

APP_SECRET = "wx-app-secret-0123456789"


async def test_httpx_request_lines_are_logged_without_query_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_redaction.install()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    async with httpx.AsyncClient(transport=transport) as http:
        with caplog.at_level(logging.INFO, logger="httpx"):
            await http.get(
                "https://api.weixin.qq.com/sns/oauth2/access_token",
                params={"appid": "wx1", "secret": APP_SECRET, "code": "c0de-123"},
            )
    lines = [record.getMessage() for record in caplog.records if record.name == "httpx"]
    assert lines, "httpx logged no request line at INFO"
    assert all(APP_SECRET not in line and "c0de-123" not in line for line in lines)
    assert any("appid=wx1" in line and "secret=***" in line for line in lines)


def test_redact_leaves_other_text_alone() -> None:
    assert log_redaction.redact("GET /x?page=2&sort=asc") == "GET /x?page=2&sort=asc"
    assert log_redaction.redact("GET /x?Key=abc&page=2") == "GET /x?Key=***&page=2"
