"""Real provider wire formats, over real sockets, through Parley's HTTP API.

The fake servers (tests/fakes/llm_server.py) speak OpenAI chat completions and Gemini
REST, and fail on request. Parley is configured for them by settings alone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query, running_server

KEY = "sk-test-never-leak-0123456789"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def local_upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=None, models=("llama3:8b",)) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeLLMServer,
    local_upstream: FakeLLMServer,
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("providers"),
        providers={
            "openai": {"api_key": KEY, "base_url": upstream.openai_base_url},
            "gemini": {"api_key": KEY, "base_url": upstream.base_url},
            "local": {"base_url": local_upstream.openai_base_url},
        },
        models={"llama3": {"provider": "local", "upstream": "llama3:8b", "name": "Llama 3"}},
        fallbacks={"gpt-6-luna": ["gemini-3.8-flash"]},
        default_model="gpt-6-luna",
        system_prompt="Be brief.",
        provider_backoff_initial=0.01,
        provider_backoff_max=0.05,
        provider_read_timeout=0.5,
        provider_deadline=5.0,
        allow_private_image_urls=True,
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer, upstream: FakeLLMServer) -> Iterator[httpx.Client]:
    upstream.reset_state()
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


def _use_model(http: httpx.Client, who: Account, model: str) -> None:
    settings = http.get("/api/chat-setting/", headers=who.bearer).json()
    response = http.patch(
        f"/api/chat-setting/{settings['id']}/", json={"ai_model": model}, headers=who.bearer
    )
    assert response.status_code == 200, response.text


def _conversation(http: httpx.Client, who: Account) -> int:
    return int(http.post("/api/conversations/", headers=who.bearer).json()["id"])


def _send(http: httpx.Client, who: Account, conversation: int, text: str) -> httpx.Response:
    return http.post(
        f"/api/conversations/{conversation}/send_message/",
        json={"message": text},
        headers=who.bearer,
    )


def _assistant_rows(parley: RunningServer, conversation: int) -> list[tuple[Any, ...]]:
    return query(
        parley.settings.database_url,
        "SELECT content, status, model, provider, prompt_tokens, completion_tokens, "
        "finish_reason, error_code FROM messages "
        "WHERE conversation_id = :id AND role = 'assistant' ORDER BY id",
        id=conversation,
    )


def test_models_list_shows_what_the_configuration_enables(http: httpx.Client) -> None:
    models = {m["id"]: m for m in http.get("/api/v1/models/").json()}
    assert {
        "gpt-6-luna",
        "gpt-6.1-sol",
        "gemini-3.8-flash",
        "gemini-3.5-flash-lite",
        "llama3",
    } <= set(models)
    assert "echo" not in models  # a real provider is configured
    assert "qwen3.7-plus" not in models  # DashScope has no key here
    assert models["gpt-6-luna"]["provider"] == "OpenAI"
    assert models["gemini-3.5-flash-lite"]["provider"] == "Google"
    assert models["gpt-6-luna"]["default"] is True
    assert {"id", "name", "provider"} <= set(models["llama3"])


def test_openai_wire_format_end_to_end(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    conversation = _conversation(http, user)
    _send(http, user, conversation, "first question")
    response = _send(http, user, conversation, "second question")
    assert response.status_code == 201
    assert response.json()["ai_message"]["content"] == "fake reply to: second question"

    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json["model"] == "gpt-6-luna"
    assert "temperature" not in sent.json  # a reasoning model: only its default
    assert sent.json["max_completion_tokens"] == 1024
    assert [(m["role"], m["content"]) for m in sent.json["messages"]] == [
        ("system", "Be brief."),
        ("user", "first question"),
        ("assistant", "fake reply to: first question"),
        ("user", "second question"),
    ]
    row = _assistant_rows(parley, conversation)[-1]
    assert row[1:4] == ("completed", "gpt-6-luna", "OpenAI")
    assert row[4] > 0
    assert row[5] > 0
    assert row[6] == "stop"


def test_gemini_wire_format_end_to_end(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    _use_model(http, user, "gemini-3.5-flash-lite")
    conversation = _conversation(http, user)
    _send(http, user, conversation, "hello")
    response = _send(http, user, conversation, "again")
    assert response.status_code == 201
    assert response.json()["ai_message"]["content"] == "fake reply to: again"

    sent = upstream.requests[-1]
    assert sent.path == "/v1beta/models/gemini-3.5-flash-lite:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.json["generationConfig"] == {"temperature": 0.7, "maxOutputTokens": 1024}
    assert [c["role"] for c in sent.json["contents"]] == ["user", "model", "user"]
    row = _assistant_rows(parley, conversation)[-1]
    assert row[1:4] == ("completed", "gemini-3.5-flash-lite", "Google")


def test_a_gemini_safety_block_is_recorded_as_blocked(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    _use_model(http, user, "gemini-3.8-flash")
    conversation = _conversation(http, user)
    upstream.script(fake.reply("", finish_reason="SAFETY"))
    response = _send(http, user, conversation, "something risky")
    assert (response.status_code, response.json()["code"]) == (422, "content_filtered")
    row = _assistant_rows(parley, conversation)[-1]
    assert (row[1], row[6], row[7]) == ("blocked", "content_filter", "content_filtered")


def test_a_keyless_local_server_is_used_by_base_url(
    http: httpx.Client, local_upstream: FakeLLMServer
) -> None:
    user = register(http)
    _use_model(http, user, "llama3")
    local_upstream.reset_state()
    response = _send(http, user, _conversation(http, user), "local please")
    assert response.status_code == 201
    assert local_upstream.requests[-1].json["model"] == "llama3:8b"
    assert "authorization" not in local_upstream.requests[-1].headers


def test_429_is_retried_after_the_retry_after_pause(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    _use_model(http, user, "gpt-6.1-sol")
    conversation = _conversation(http, user)
    upstream.script(fake.error(429, retry_after=0.3))
    started = time.monotonic()
    response = _send(http, user, conversation, "busy?")
    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3
    assert len(upstream.requests) == 2


def test_server_errors_fall_back_to_the_next_model(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    conversation = _conversation(http, user)  # default model gpt-6-luna -> gemini-3.8-flash
    upstream.script(fake.error(500), fake.error(500), fake.error(500))
    response = _send(http, user, conversation, "anyone?")
    assert response.status_code == 201
    assert [r.provider for r in upstream.requests] == ["openai"] * 3 + ["gemini"]
    assert _assistant_rows(parley, conversation)[-1][2:4] == ("gemini-3.8-flash", "Google")


@pytest.mark.parametrize(
    ("behaviour", "status", "code", "attempts"),
    [
        (fake.error(401), 502, "provider_auth", 1),
        (fake.error(400, message="bad request"), 502, "provider_error", 1),
        (fake.malformed(), 502, "provider_error", 1),
        (fake.error(503), 503, "provider_unavailable", 3),
        (fake.reset(), 502, "provider_error", 3),
        (fake.delay(2.0), 504, "provider_timeout", 3),
    ],
)
def test_final_failures_map_to_port_errors_and_keep_the_message(
    parley: RunningServer,
    http: httpx.Client,
    upstream: FakeLLMServer,
    behaviour: Any,
    status: int,
    code: str,
    attempts: int,
) -> None:
    user = register(http)
    _use_model(http, user, "gpt-6.1-sol")  # no fallback chain
    conversation = _conversation(http, user)
    upstream.reset_state()
    upstream.script(*[behaviour] * 3)
    response = _send(http, user, conversation, "will this work?")
    upstream.reset_state()
    assert response.status_code == status
    assert response.json()["code"] == code
    assert KEY not in response.text
    assert len([r for r in upstream.requests if r.provider]) <= attempts
    stored = query(
        parley.settings.database_url,
        "SELECT role, status, error_code FROM messages WHERE conversation_id = :id ORDER BY id",
        id=conversation,
    )
    assert stored == [("user", "completed", None), ("assistant", "failed", code)]


def test_an_unknown_model_is_a_field_error_without_a_provider_call(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    settings = http.get("/api/chat-setting/", headers=user.bearer).json()
    refused = http.patch(
        f"/api/chat-setting/{settings['id']}/",
        json={"ai_model": "qwen3.7-plus"},
        headers=user.bearer,
    )
    assert refused.status_code == 400
    assert "ai_model" in refused.json()
    chat = http.post(
        "/api/v1/messages/chat/",
        json={"message": "hi", "model": "gpt-9"},
        headers=user.bearer,
    )
    assert chat.status_code == 400
    assert "model" in chat.json()["fields"]
    assert upstream.requests == []


def _events(response: httpx.Response) -> list[tuple[str, Any]]:
    events, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line[5:].strip())))
    return events


@pytest.mark.parametrize("model", ["gpt-6-luna", "gemini-3.8-flash"])
def test_streaming_forwards_deltas_then_the_stored_exchange(
    parley: RunningServer, http: httpx.Client, model: str
) -> None:
    user = register(http)
    _use_model(http, user, model)
    conversation = _conversation(http, user)
    with http.stream(
        "POST",
        f"/api/conversations/{conversation}/send_message/",
        json={"message": "stream this please", "stream": True},
        headers=user.bearer,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == "fake reply to: stream this please"
    name, done = events[-1]
    assert name == "done"
    assert done["status"] == "completed"
    assert done["ai_message"]["content"] == "".join(deltas)
    assert done["usage"]["completion_tokens"] > 0
    rows = _assistant_rows(parley, conversation)
    assert rows[-1][:2] == ("".join(deltas), "completed")


def test_a_stream_cut_half_way_keeps_the_partial_answer(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    _use_model(http, user, "gpt-6.1-sol")
    conversation = _conversation(http, user)
    upstream.script(fake.cut_stream(after_chunks=3))
    with http.stream(
        "POST",
        "/api/v1/messages/chat/",
        json={"conversation_id": conversation, "message": "a long answer please", "stream": True},
        headers=user.bearer,
    ) as response:
        events = _events(response)
    names = [name for name, _ in events]
    assert names[-2:] == ["error", "done"]
    assert events[-2][1]["code"] == "provider_error"
    assert "error" in events[-2][1]
    partial = "".join(data["text"] for name, data in events if name == "delta")
    assert partial
    assert events[-1][1]["status"] == "partial"
    content, status, *_, error_code = _assistant_rows(parley, conversation)[-1]
    assert (content, status, error_code) == (partial, "partial", "provider_error")


def test_a_client_that_leaves_mid_stream_still_gets_the_whole_answer_stored(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    _use_model(http, user, "gpt-6.1-sol")
    conversation = _conversation(http, user)
    upstream.script(fake.slow_stream(0.2, text="one two three four five six seven eight"))
    with http.stream(
        "POST",
        f"/api/conversations/{conversation}/send_message/",
        json={"message": "tell me slowly"},
        headers={**user.bearer, "Accept": "text/event-stream"},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break  # first delta seen: hang up
    deadline = time.monotonic() + 10
    while (rows := _assistant_rows(parley, conversation))[-1][1] == "streaming":
        assert time.monotonic() < deadline, "the reply was never finished"
        time.sleep(0.1)
    content, status, *_, error_code = rows[-1]
    # The server writes the reply, whoever listens: the answer is whole.
    assert (content, status, error_code) == (
        "one two three four five six seven eight",
        "completed",
        None,
    )


def test_images_reach_openai_as_content_parts_and_gemini_inline(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    png = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    first = http.post(
        "/api/v1/messages/chat/",
        json={"message": "what is this?", "model": "gpt-6-luna", "image_url": png},
        headers=user.bearer,
    )
    assert first.status_code == 201, first.text
    parts = upstream.requests[-1].json["messages"][-1]["content"]
    assert parts == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": png}},
    ]
    second = http.post(
        "/api/v1/messages/chat/",
        json={"message": "and now?", "model": "gemini-3.8-flash", "image_url": png},
        headers=user.bearer,
    )
    assert second.status_code == 201, second.text
    last = upstream.requests[-1].json["contents"][-1]["parts"]
    assert last[1]["inline_data"]["mime_type"] == "image/png"


def test_images_are_refused_for_text_only_models_and_bad_urls(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    user = register(http)
    for model, url in [
        ("gpt-6.1-sol", "https://example.com/cat.png"),
        ("gpt-6-luna", "ftp://example.com/cat.png"),
        ("gpt-6-luna", "data:text/plain;base64,aGVsbG8="),
    ]:
        response = http.post(
            "/api/v1/messages/chat/",
            json={"message": "look", "model": model, "image_url": url},
            headers=user.bearer,
        )
        assert response.status_code == 400, (model, url)
        assert "image_url" in response.json()["fields"]
    assert upstream.requests == []
    assert query(
        parley.settings.database_url,
        "SELECT count(*) FROM conversations WHERE owner_id = :id",
        id=user.id,
    ) == [(0,)]


def test_the_api_key_never_appears_in_logs(
    http: httpx.Client, upstream: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    user = register(http)
    _use_model(http, user, "gpt-6.1-sol")
    conversation = _conversation(http, user)
    upstream.script(*[fake.error(401, message=f"Incorrect API key provided: {KEY}")] * 3)
    with caplog.at_level("DEBUG"):
        response = _send(http, user, conversation, "leak?")
    assert response.status_code == 502
    assert KEY not in caplog.text
    assert KEY not in response.text
