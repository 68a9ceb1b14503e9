"""The edge as ``parley serve`` runs it (a real subprocess, so uvicorn's own settings are
the ones an operator gets): forwarded addresses, malformed requests, clients that leave
mid-body, media-type spelling."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from entrypoints.settings import SettingsError, load_settings
from tests.integration.servers import TEST_SECRET_KEY, free_port

PARLEY = str(Path(sys.executable).with_name("parley"))
ANONYMOUS_LIMIT = 3


@dataclass
class Served:
    base_url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Served]]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> Served:
        cwd = tmp_path_factory.mktemp("serve")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        environment.pop("FORWARDED_ALLOW_IPS", None)
        environment.update(
            PARLEY_DATABASE_URL=f"sqlite+aiosqlite:///{cwd / 'parley.db'}",
            PARLEY_SECRET_KEY=TEST_SECRET_KEY,
            PARLEY_LOG_LEVEL="INFO",
            **env,
        )
        port = free_port()
        log = cwd / "serve.log"
        process = subprocess.Popen(
            [PARLEY, "serve", "--port", str(port)],
            env=environment,
            cwd=cwd,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base_url}/api/v1/health/", timeout=2).status_code == 200:
                    return Served(base_url, log)
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "parley serve did not become healthy"
            time.sleep(0.1)

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def direct(serve: Callable[..., Served]) -> Served:
    """No proxy configured: clients connect straight to Parley."""
    return serve(PARLEY_RATE_LIMIT=f"{ANONYMOUS_LIMIT}/minute")


@pytest.fixture(scope="module")
def behind_proxy(serve: Callable[..., Served]) -> Served:
    """Parley behind a reverse proxy on 127.0.0.1."""
    return serve(PARLEY_RATE_LIMIT=f"{ANONYMOUS_LIMIT}/minute", PARLEY_TRUSTED_PROXIES="127.0.0.1")


@pytest.fixture(scope="module")
def roomy(serve: Callable[..., Served]) -> Served:
    return serve()


def _models(base_url: str, **headers: str) -> int:
    return httpx.get(f"{base_url}/api/v1/models/", headers=headers, timeout=10).status_code


def test_forged_forwarded_addresses_do_not_multiply_the_anonymous_allowance(
    direct: Served,
) -> None:
    statuses = [_models(direct.base_url, **{"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(5)]
    assert statuses == [200] * ANONYMOUS_LIMIT + [429] * (5 - ANONYMOUS_LIMIT)


def test_a_made_up_session_cookie_does_not_escape_the_anonymous_limit(
    serve: Callable[..., Served],
) -> None:
    served = serve(PARLEY_RATE_LIMIT=f"{ANONYMOUS_LIMIT}/minute")
    statuses = [
        _models(served.base_url, Cookie=f"parley_session={uuid.uuid4().hex}") for _ in range(5)
    ]
    assert statuses == [200] * ANONYMOUS_LIMIT + [429] * (5 - ANONYMOUS_LIMIT)


def test_forwarded_addresses_are_honoured_from_a_configured_proxy(behind_proxy: Served) -> None:
    distinct = [
        _models(behind_proxy.base_url, **{"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(5)
    ]
    assert distinct == [200] * 5
    same = [_models(behind_proxy.base_url, **{"X-Forwarded-For": "192.0.2.7"}) for _ in range(5)]
    assert same == [200] * ANONYMOUS_LIMIT + [429] * (5 - ANONYMOUS_LIMIT)

    # A client's own entries before the proxy's are not believed.
    chained = [
        _models(behind_proxy.base_url, **{"X-Forwarded-For": f"203.0.113.{n}, 192.0.2.8"})
        for n in range(5)
    ]
    assert chained == [200] * ANONYMOUS_LIMIT + [429] * (5 - ANONYMOUS_LIMIT)


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    settings = load_settings({"PARLEY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1, ::1"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.1.1", "::1")
    assert load_settings({}).trusted_proxies == ()
    for wrong in ("proxy.internal", "10.0.0.1/8"):
        with pytest.raises(SettingsError, match="trusted_proxies"):
            load_settings({"PARLEY_TRUSTED_PROXIES": wrong})


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        b"NOT A REQUEST LINE\r\n\r\n",
        b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    ],
)
def test_a_malformed_request_is_answered_in_the_json_error_shape(
    roomy: Served, request_bytes: bytes
) -> None:
    answer = _raw(roomy.port, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"content-type: application/json" in head.lower()
    parsed = httpx.Response(400, content=body).json()
    assert parsed["code"] == "bad_request"
    assert parsed["detail"] == parsed["error"]


def test_upper_case_media_types_are_json(roomy: Served) -> None:
    name = f"u_{uuid.uuid4().hex[:10]}"
    for content_type in ("APPLICATION/JSON", "Application/Json; Charset=UTF-8"):
        response = httpx.post(
            f"{roomy.base_url}/api/v1/register/",
            content=(
                f'{{"username": "{name}", "email": "{name}@example.com", '
                '"password": "long-enough-pw"}'
            ),
            headers={"Content-Type": content_type},
            timeout=10,
        )
        assert response.status_code in (201, 400), response.text
    refused = httpx.post(
        f"{roomy.base_url}/api/v1/login/",
        content='{"username": "u", "password": "p"}',
        headers={"Content-Type": "TEXT/PLAIN"},
        timeout=10,
    )
    assert refused.status_code == 415


def _wait_for_line(log: Path, needle: str) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        lines = log.read_text(errors="replace").splitlines()
        if any(needle in line for line in lines):
            return lines
        assert time.monotonic() < deadline, "\n".join(lines[-40:])
        time.sleep(0.05)


def test_a_client_leaving_mid_body_is_one_info_line(roomy: Served) -> None:
    before = len(roomy.log.read_text(errors="replace").splitlines())
    with socket.create_connection(("127.0.0.1", roomy.port), timeout=10) as connection:
        connection.sendall(
            b"POST /api/v1/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"username": "u", "pass'
        )
    # The next request on a new connection proves the server lived on; the log line of
    # the one that left is waited for, not timed.
    assert httpx.get(f"{roomy.base_url}/api/v1/health/", timeout=10).status_code == 200
    lines = _wait_for_line(roomy.log, "client disconnected")[before:]
    about_it = [line for line in lines if "/api/v1/login" in line or "Traceback" in line]
    assert len(about_it) == 1, lines
    assert re.search(r"\bINFO\b", about_it[0]), about_it
    assert not [line for line in lines if re.search(r"\b(ERROR|CRITICAL)\b", line)], lines
