"""The providers' HTTP client over a real socket: what it sends on a provider's answer."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from adapters.llm.endpoint import Endpoint
from adapters.llm.transport import provider_http_client, through_httpx_only
from adapters.llm.upstream import FailureKind, UpstreamFailure
from tests.integration.servers import stdlib_http_server


class _CookieSettingProvider(BaseHTTPRequestHandler):
    """Answers every POST with JSON and a ``Set-Cookie`` (as Cloudflare in front of a
    provider does), recording the ``Cookie`` header each request came with."""

    cookies_seen: list[str | None] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.cookies_seen.append(self.headers.get("cookie"))
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "__cf_bm=user-one-session; Path=/; HttpOnly")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    _CookieSettingProvider.cookies_seen = []
    with stdlib_http_server(_CookieSettingProvider) as url:
        # By name: aiohttp's cookie jar keeps no cookie from a bare IP address, so an
        # address here would hide a jar that keeps them from a provider's host name.
        yield f"{url.replace('127.0.0.1', 'localhost')}/v1/chat/completions"


def test_a_cookie_one_answer_sets_never_rides_on_the_next_call(provider: str) -> None:
    async def two_calls() -> list[object]:
        client = provider_http_client(httpx.Timeout(5.0))
        endpoint = Endpoint("Test", client, {"Content-Type": "application/json"}, "sk-x")
        try:
            return [await endpoint.post_json(provider, {"n": n}) for n in range(2)]
        finally:
            await client.aclose()

    answers = asyncio.run(two_calls())

    assert answers == [{"ok": True}, {"ok": True}]
    assert _CookieSettingProvider.cookies_seen == [None, None]


class _RateLimitingProvider(BaseHTTPRequestHandler):
    """Refuses every POST as OpenAI does when rate limited: 429, a Retry-After, a JSON error."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.dumps({"error": {"message": "Rate limit reached", "type": "requests"}})
        self.send_response(429)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: object) -> None:
        pass


def _failure_of(url: str, *, traced: bool) -> UpstreamFailure:
    async def call() -> UpstreamFailure:
        client = provider_http_client(httpx.Timeout(5.0, connect=1.0))
        if traced:
            through_httpx_only(client)
        endpoint = Endpoint("Test", client, {"Content-Type": "application/json"}, "sk-x")
        try:
            with pytest.raises(UpstreamFailure) as failed:
                await endpoint.post_json(url, {"n": 1})
            return failed.value
        finally:
            await client.aclose()

    return asyncio.run(call())


@pytest.mark.parametrize("traced", [False, True], ids=["straight-on-aiohttp", "through-httpx"])
def test_a_refusal_and_a_dead_port_read_the_same_on_both_paths(traced: bool) -> None:
    """The JSON POST skips httpx's client unless the client is traced: a provider's
    refusal and an unreachable provider must be classified alike either way."""
    with stdlib_http_server(_RateLimitingProvider) as url:
        limited = _failure_of(f"{url}/v1/chat/completions", traced=traced)
    assert (limited.kind, limited.status, limited.retry_after) == (
        FailureKind.RATE_LIMITED,
        429,
        7.0,
    )
    assert "Rate limit reached" in limited.detail

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = _failure_of(f"http://127.0.0.1:{port}/v1/chat/completions", traced=traced)
    assert unreachable.kind == FailureKind.CONNECT
