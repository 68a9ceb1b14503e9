"""Idempotent retries, the body size limit, CORS and security headers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query, running_server


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=None, models=("house-model",)) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("hardening"),
        providers={"local": {"base_url": upstream.openai_base_url}},
        models={"house": {"provider": "local", "upstream": "house-model"}},
        provider_backoff_initial=0.01,
        provider_max_attempts=1,
        max_body_bytes=64 * 1024,
        cors_origins=("https://app.example.com",),
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer, upstream: FakeLLMServer) -> Iterator[httpx.Client]:
    upstream.reset_state()
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


def _messages(parley: RunningServer, user: Account) -> list[tuple[str, str]]:
    return [
        (role, status)
        for role, status in query(
            parley.settings.database_url,
            "SELECT m.role, m.status FROM messages m JOIN conversations c "
            "ON c.id = m.conversation_id WHERE c.owner_id = :id ORDER BY m.id",
            id=user.id,
        )
    ]


def test_a_retry_with_the_same_key_replays_the_first_answer(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    conversation = http.post("/api/conversations/", headers=user.bearer).json()["id"]
    headers = {**user.bearer, "Idempotency-Key": "retry-1"}
    url = f"/api/conversations/{conversation}/send_message/"
    first = http.post(url, json={"message": "only once"}, headers=headers)
    second = http.post(url, json={"message": "only once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(upstream.requests) == 1
    assert _messages(parley, user) == [("user", "completed"), ("assistant", "completed")]


def test_concurrent_duplicates_call_the_model_once(
    parley: RunningServer, upstream: FakeLLMServer, http: httpx.Client
) -> None:
    user = register(http)
    upstream.default = fake.delay(0.3)

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=parley.base_url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/messages/chat/",
                        json={"message": "flaky network", "model": "house"},
                        headers={**user.bearer, "Idempotency-Key": "mobile-42"},
                    )
                    for _ in range(5)
                )
            )

    try:
        responses = asyncio.run(fire())
    finally:
        upstream.default = None
    assert [r.status_code for r in responses] == [201] * 5
    assert len({r.text for r in responses}) == 1
    assert len(upstream.requests) == 1
    assert _messages(parley, user) == [("user", "completed"), ("assistant", "completed")]


def test_a_provider_failure_is_replayed_too(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    headers = {**user.bearer, "Idempotency-Key": "fails"}
    upstream.script(fake.error(500))
    first = http.post(
        "/api/v1/messages/chat/", json={"message": "hi", "model": "house"}, headers=headers
    )
    again = http.post(
        "/api/v1/messages/chat/", json={"message": "hi", "model": "house"}, headers=headers
    )
    assert first.status_code == again.status_code == 502
    assert again.json() == first.json()
    assert len(upstream.requests) == 1
    assert _messages(parley, user) == [("user", "completed"), ("assistant", "failed")]


def test_refused_requests_keep_no_answer_and_keys_are_per_request(
    parley: RunningServer, http: httpx.Client
) -> None:
    user = register(http)
    headers = {**user.bearer, "Idempotency-Key": "fix-and-retry"}
    refused = http.post("/api/v1/messages/chat/", json={"message": ""}, headers=headers)
    assert refused.status_code == 400
    fixed = http.post("/api/v1/messages/chat/", json={"message": "better"}, headers=headers)
    assert fixed.status_code == 201
    other = http.post("/api/v1/messages/chat/", json={"message": "different"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    # Keys belong to users: another user's same key is a different key.
    someone = register(http)
    theirs = http.post(
        "/api/v1/messages/chat/",
        json={"message": "better"},
        headers={**someone.bearer, "Idempotency-Key": "fix-and-retry"},
    )
    assert theirs.status_code == 201
    assert theirs.json()["conversation_id"] != fixed.json()["conversation_id"]


def test_bodies_over_the_limit_are_413_before_parsing(http: httpx.Client) -> None:
    user = register(http)
    big = b'{"message": "' + b"x" * (70 * 1024) + b'"}'
    response = http.post(
        "/api/v1/messages/chat/",
        content=big,
        headers={**user.bearer, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    api = http.post(
        "/api/conversations/1/send_message/",
        content=big,
        headers={**user.bearer, "content-type": "application/json"},
    )
    assert api.status_code == 413
    assert set(api.json()) == {"detail", "code"}


def test_cors_only_for_configured_origins(http: httpx.Client) -> None:
    allowed = http.options(
        "/api/v1/models/",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = http.get("/api/v1/models/", headers={"Origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_is_off_by_default(client: httpx.Client) -> None:
    response = client.get("/api/v1/models/", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers


def test_security_headers(client: httpx.Client) -> None:
    api = client.get("/api/v1/health/")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in api.headers["Content-Security-Policy"]
    docs = client.get("/schema/swagger")
    assert docs.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in docs.headers["Content-Security-Policy"]
    assert docs.headers["X-Frame-Options"] == "DENY"


def test_html_in_messages_is_returned_as_json_text(client: httpx.Client, alice: Account) -> None:
    script = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    sent = client.post("/api/v1/messages/chat/", json={"message": script}, headers=alice.bearer)
    assert sent.headers["content-type"].startswith("application/json")
    assert sent.json()["user_message"]["content"] == script
