"""Images a user sends: fetched once and checked before anything is stored; a refusal is
an ordinary 400 (streamed or not) that leaves no conversation or message behind, and its
wording does not tell a probe which internal host names exist."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query, running_server, stdlib_http_server

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class _Host(BaseHTTPRequestHandler):
    """/png answers an image; /redirect a 302; /html a web page; /fake-png HTML called PNG."""

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/png")
            self.end_headers()
            return
        body, kind = {
            "/png": (PNG, "image/png"),
            "/html": (b"<html>hello</html>", "text/html"),
            "/fake-png": (b"<html>not an image</html>", "image/png"),
        }.get(self.path, (b"", "text/plain"))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    with stdlib_http_server(_Host) as url:
        yield url


@pytest.fixture(scope="module", params=[True, False], ids=["private-allowed", "public-only"])
def parley(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("images"),
        allow_private_image_urls=request.param,
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


def _stored(parley: RunningServer, who: Account) -> tuple[int, int]:
    rows = query(
        parley.settings.database_url,
        "SELECT (SELECT count(*) FROM conversations c JOIN users u ON u.id = c.owner_id "
        "WHERE u.username = :name), (SELECT count(*) FROM messages m JOIN conversations c "
        "ON c.id = m.conversation_id JOIN users u ON u.id = c.owner_id WHERE u.username = :name)",
        name=who.username,
    )
    return int(rows[0][0]), int(rows[0][1])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/redirect", "/html", "/fake-png"])
def test_a_refused_image_stores_nothing_and_is_a_plain_400(
    parley: RunningServer, http: httpx.Client, host: str, path: str, stream: bool
) -> None:
    who = register(http)
    response = http.post(
        "/api/v1/messages/chat/",
        json={"message": "look at this", "image_url": host + path, "stream": stream},
        headers=who.bearer,
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "image_url" in response.json()["fields"]
    assert _stored(parley, who) == (0, 0)


def test_a_data_uri_whose_bytes_are_not_the_image_it_claims_is_refused(
    parley: RunningServer, http: httpx.Client
) -> None:
    who = register(http)
    not_png = "data:image/png;base64," + base64.b64encode(b"<script>x</script>").decode()
    response = http.post(
        "/api/v1/messages/chat/",
        json={"message": "look", "image_url": not_png},
        headers=who.bearer,
    )
    assert response.status_code == 400
    assert _stored(parley, who) == (0, 0)


def test_a_real_image_is_accepted(parley: RunningServer, http: httpx.Client, host: str) -> None:
    if not parley.settings.allow_private_image_urls:
        pytest.skip("the image host is on loopback")
    who = register(http)
    response = http.post(
        "/api/v1/messages/chat/",
        json={"message": "look", "image_url": f"{host}/png"},
        headers=who.bearer,
    )
    assert response.status_code == 201, response.text
    assert _stored(parley, who) == (1, 2)


def test_unresolvable_and_private_hosts_get_the_same_answer(
    parley: RunningServer, http: httpx.Client
) -> None:
    if parley.settings.allow_private_image_urls:
        pytest.skip("private hosts are allowed here")
    who = register(http)

    def refusal(url: str) -> Any:
        response = http.post(
            "/api/v1/messages/chat/",
            json={"message": "look", "image_url": url},
            headers=who.bearer,
        )
        assert response.status_code == 400
        return response.json()

    assert refusal("http://no-such-host.invalid/a.png") == refusal("http://10.0.0.1/a.png")
