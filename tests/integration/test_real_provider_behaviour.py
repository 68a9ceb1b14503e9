"""What a user with a real key meets, through Parley's HTTP API, against fakes as strict as
the real APIs (tests/fakes/: they refuse what the providers refuse and answer in the
shapes of tests/fixtures/providers/). Each test names the defect it guards against."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query, running_server, stdlib_http_server

KEY = "sk-real-provider-test-0123456789abcdef"
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACw="


class _Images(BaseHTTPRequestHandler):
    """A host for user images whose URLs can start failing (a signed URL that expired)."""

    expired: set[str] = set()
    fetches: list[str] = []

    def do_GET(self) -> None:
        type(self).fetches.append(self.path)
        if self.path in type(self).expired:
            self.send_response(403)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG_BYTES)))
        self.end_headers()
        self.wfile.write(PNG_BYTES)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def images() -> Iterator[str]:
    with stdlib_http_server(_Images) as url:
        yield url


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    upstream.allow_models("llava:7b")
    with running_server(
        database_url,
        tmp_path_factory.mktemp("real-providers"),
        providers={
            "openai": {"api_key": KEY, "base_url": upstream.openai_base_url},
            "gemini": {"api_key": KEY, "base_url": upstream.gemini_base_url},
            "anthropic": {"api_key": KEY, "base_url": upstream.anthropic_base_url},
            "moonshot": {"api_key": KEY, "base_url": upstream.flavour_base_url("moonshot")},
            "dashscope": {"api_key": KEY, "base_url": upstream.flavour_base_url("dashscope")},
            "deepseek": {"api_key": KEY, "base_url": upstream.flavour_base_url("deepseek")},
            "local": {"api_key": KEY, "base_url": upstream.flavour_base_url("ollama")},
        },
        models={
            "llava": {"provider": "local", "upstream": "llava:7b", "images": True},
            # A Kimi model that takes a temperature (0-1 there; Parley's setting is 0-2).
            "kimi-tuned": {"provider": "moonshot", "upstream": "kimi-k2.6", "temperature": True},
        },
        fallbacks={"gpt-6-luna": ["claude-haiku-5-5"]},
        default_model="gpt-6-luna",
        system_prompt="Be brief.",
        provider_backoff_initial=0.01,
        provider_backoff_max=0.05,
        provider_retry_after_max=2.0,
        provider_deadline=10.0,
        allow_private_image_urls=True,
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer, upstream: FakeLLMServer) -> Iterator[httpx.Client]:
    upstream.reset_state()
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


def _settings(http: httpx.Client, who: Account, **changes: Any) -> None:
    settings = http.get("/api/chat-setting/", headers=who.bearer).json()
    response = http.patch(f"/api/chat-setting/{settings['id']}/", json=changes, headers=who.bearer)
    assert response.status_code == 200, response.text


def _user(http: httpx.Client, model: str, **changes: Any) -> tuple[Account, int]:
    who = register(http)
    _settings(http, who, ai_model=model, **changes)
    conversation = int(http.post("/api/conversations/", headers=who.bearer).json()["id"])
    return who, conversation


def _send(
    http: httpx.Client, who: Account, conversation: int, text: str, **extra: Any
) -> httpx.Response:
    return http.post(
        f"/api/conversations/{conversation}/send_message/",
        json={"message": text, **extra},
        headers=who.bearer,
    )


def _chat_v1(
    http: httpx.Client, who: Account, conversation: int, text: str, **extra: Any
) -> httpx.Response:
    return http.post(
        "/api/v1/messages/chat/",
        json={"conversation_id": conversation, "message": text, **extra},
        headers=who.bearer,
    )


def _stream(
    http: httpx.Client, who: Account, conversation: int, text: str
) -> list[tuple[str, Any]]:
    events, name = [], "message"
    with http.stream(
        "POST",
        f"/api/conversations/{conversation}/send_message/",
        json={"message": text, "stream": True},
        headers=who.bearer,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:].strip())))
    return events


def _replies(parley: RunningServer, conversation: int) -> list[dict[str, Any]]:
    rows = query(
        parley.settings.database_url,
        "SELECT content, status, error_code, error_message, prompt_tokens, completion_tokens, "
        "reasoning_tokens, reasoning, finish_reason FROM messages "
        "WHERE conversation_id = :id AND role = 'assistant' ORDER BY id",
        id=conversation,
    )
    names = [
        "content",
        "status",
        "error_code",
        "error_message",
        "prompt_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "reasoning",
        "finish_reason",
    ]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _chats(upstream: FakeLLMServer) -> list[fake.RecordedRequest]:
    return [r for r in upstream.requests if r.method == "POST"]


# ---- 1. an empty reply never ruins a conversation ------------------------------------------


@pytest.mark.parametrize("dialect", ["api", "v1"])
def test_an_empty_gemini_reply_does_not_break_the_next_turn(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer, dialect: str
) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    send = _send if dialect == "api" else _chat_v1
    upstream.script(fake.reply("", finish_reason="MAX_TOKENS"))

    empty = send(http, who, conversation, "think very hard")
    assert empty.status_code == 502
    assert empty.json()["code"] == "empty_reply"

    # Real Gemini answers 400 to a history with an empty part; the fake does the same.
    again = send(http, who, conversation, "try again")
    assert again.status_code == 201, again.text
    contents = _chats(upstream)[-1].json["contents"]
    assert all(part.get("text") != "" for content in contents for part in content["parts"])
    assert [r["status"] for r in _replies(parley, conversation)] == ["failed", "completed"]


def test_a_stream_left_before_its_first_token_leaves_nothing_empty_in_history(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    upstream.script(fake.delay(1.0))
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.Client(base_url=str(http.base_url), timeout=0.3) as impatient,
    ):
        _stream(impatient, who, conversation, "hello?")
    time.sleep(1.2)
    assert _send(http, who, conversation, "still there?").status_code == 201


# ---- 3. reasoning models -------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-6-luna", "gpt-6.1-sol"])
def test_openai_reasoning_models_get_max_completion_tokens_and_no_temperature(
    http: httpx.Client, upstream: FakeLLMServer, model: str
) -> None:
    who, conversation = _user(http, model, temperature=0.3)
    response = _send(http, who, conversation, "hello")
    assert response.status_code == 201, response.text
    sent = _chats(upstream)[-1].json
    assert sent["max_completion_tokens"] == 1024
    assert "max_tokens" not in sent
    assert "temperature" not in sent


# ---- 4. refusals and safety blocks ---------------------------------------------------------


def test_an_openai_refusal_is_the_answer_not_a_blank(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gpt-6.1-sol")
    upstream.script(fake.refusal("I can't help with that."), fake.refusal("No."))
    response = _send(http, who, conversation, "something bad")
    assert response.status_code == 201
    assert response.json()["ai_message"]["content"] == "I can't help with that."
    events = _stream(http, who, conversation, "again")
    assert "".join(data["text"] for name, data in events if name == "delta") == "No."
    assert [r["finish_reason"] for r in _replies(parley, conversation)] == ["refusal"] * 2


@pytest.mark.parametrize("block", [fake.safety_block(), fake.prompt_block()])
@pytest.mark.parametrize("dialect", ["api", "v1"])
def test_a_gemini_safety_block_is_reported_as_blocked(
    parley: RunningServer,
    http: httpx.Client,
    upstream: FakeLLMServer,
    block: fake.Behaviour,
    dialect: str,
) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    upstream.script(block)
    response = (_send if dialect == "api" else _chat_v1)(http, who, conversation, "risky")
    assert response.status_code == 422
    assert response.json()["code"] == "content_filtered"
    assert ("error" if dialect == "v1" else "detail") in response.json()
    reply = _replies(parley, conversation)[-1]
    assert (reply["status"], reply["error_code"]) == ("blocked", "content_filtered")

    # The blocked exchange is not sent again: the next turn is answered.
    assert _send(http, who, conversation, "something else").status_code == 201
    texts = [p["text"] for c in _chats(upstream)[-1].json["contents"] for p in c["parts"]]
    assert "risky" not in texts


def test_a_streamed_safety_block_ends_with_content_filtered(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    upstream.script(fake.safety_block())
    events = _stream(http, who, conversation, "risky")
    errors = [data for name, data in events if name == "error"]
    assert [error["code"] for error in errors] == ["content_filtered"]
    assert _replies(parley, conversation)[-1]["status"] == "blocked"


# ---- 5. tokens billed are tokens counted ---------------------------------------------------


def test_gemini_thinking_tokens_are_counted_as_billed(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    upstream.script(
        fake.reply("Six words of answer right here.", reasoning="...", reasoning_tokens=800)
    )
    assert _send(http, who, conversation, "think").status_code == 201
    reply = _replies(parley, conversation)[-1]
    assert (reply["completion_tokens"], reply["reasoning_tokens"]) == (806, 800)


def test_moonshot_stream_usage_inside_the_choice_is_counted(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "kimi-k2.6")
    upstream.script(fake.reply("four words of answer", prompt_tokens=12, completion_tokens=4))
    _stream(http, who, conversation, "hi")
    reply = _replies(parley, conversation)[-1]
    assert (reply["prompt_tokens"], reply["completion_tokens"]) == (12, 4)


# ---- 6. per-provider parameter ranges ------------------------------------------------------


def test_a_temperature_above_kimis_range_is_sent_as_its_maximum(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "kimi-tuned", temperature=1.5)
    response = _send(http, who, conversation, "hello")
    assert response.status_code == 201, response.text
    assert _chats(upstream)[-1].json["temperature"] == 1.0


# ---- 7. waits and billing ------------------------------------------------------------------


def test_openai_retry_after_ms_is_honoured(http: httpx.Client, upstream: FakeLLMServer) -> None:
    who, conversation = _user(http, "gpt-6.1-sol")
    upstream.script(fake.error(429, retry_after_ms=400), fake.reply("fine"))
    started = time.monotonic()
    assert _send(http, who, conversation, "busy?").status_code == 201
    assert time.monotonic() - started >= 0.4
    assert len(_chats(upstream)) == 2


def test_insufficient_quota_is_not_retried_and_has_its_own_code(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gpt-6.1-sol")
    upstream.script(fake.quota_exhausted(), fake.reply("never asked"))
    response = _send(http, who, conversation, "hello")
    assert (response.status_code, response.json()["code"]) == (502, "provider_quota")
    assert "quota" in response.json()["detail"].lower()
    assert len(_chats(upstream)) == 1


def test_geminis_retry_info_wait_is_honoured(http: httpx.Client, upstream: FakeLLMServer) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    upstream.script(fake.error(429, retry_delay="0.4s"), fake.reply("fine"))
    started = time.monotonic()
    assert _send(http, who, conversation, "busy?").status_code == 201
    assert time.monotonic() - started >= 0.4


def test_a_wait_too_long_to_honour_is_not_retried_early_and_is_passed_on(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    upstream.script(fake.error(429, retry_delay="37s"), fake.reply("too early"))
    response = _send(http, who, conversation, "busy?")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "37"
    assert len(_chats(upstream)) == 1


# ---- 8. the provider's own words -----------------------------------------------------------


def test_the_providers_message_reaches_the_user_and_the_stored_reply(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gpt-6.1-sol")
    upstream.script(*[fake.error(503, message="The engine is currently overloaded.")] * 3)
    response = _send(http, who, conversation, "hello")
    assert response.status_code == 503
    assert "The engine is currently overloaded." in response.json()["detail"]
    assert (
        "The engine is currently overloaded." in _replies(parley, conversation)[-1]["error_message"]
    )


def test_a_mid_stream_error_event_keeps_the_partial_answer_and_the_providers_words(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "gpt-6.1-sol")
    upstream.script(fake.stream_error(after_chunks=2, message="Upstream model crashed."))
    events = _stream(http, who, conversation, "tell me a story")
    errors = [data for name, data in events if name == "error"]
    assert len(errors) == 1
    assert "Upstream model crashed." in errors[0]["detail"]
    reply = _replies(parley, conversation)[-1]
    assert reply["status"] == "partial"
    assert reply["content"]
    assert "Upstream model crashed." in reply["error_message"]


# ---- 9. images -----------------------------------------------------------------------------


def test_an_image_is_fetched_once_and_an_expired_url_never_breaks_a_later_turn(
    http: httpx.Client, upstream: FakeLLMServer, images: str
) -> None:
    who, conversation = _user(http, "gemini-3.8-flash")
    url = f"{images}/signed/cat-{time.monotonic_ns()}.png"
    first = _chat_v1(http, who, conversation, "What is this?", image_url=url)
    assert first.status_code == 201, first.text
    _Images.expired.add(url[len(images) :])

    later = _send(http, who, conversation, "And what colour is it?")
    assert later.status_code == 201, later.text
    assert _Images.fetches.count(url[len(images) :]) == 1
    inline = _chats(upstream)[-1].json["contents"][0]["parts"][-1]["inline_data"]
    assert inline["mime_type"] == "image/png"


@pytest.mark.parametrize("model", ["gemini-3.8-flash", "llava"])
def test_an_image_type_the_model_does_not_take_is_refused_before_any_call(
    http: httpx.Client, upstream: FakeLLMServer, model: str
) -> None:
    who, conversation = _user(http, model)
    response = _chat_v1(http, who, conversation, "Look", image_url=GIF)
    assert response.status_code == 400
    assert "GIF" in response.json()["fields"]["image_url"][0]
    assert _chats(upstream) == []


def test_ollama_gets_images_as_data_uris(
    http: httpx.Client, upstream: FakeLLMServer, images: str
) -> None:
    who, conversation = _user(http, "llava")
    response = _chat_v1(http, who, conversation, "What is this?", image_url=f"{images}/a.png")
    assert response.status_code == 201, response.text
    part = _chats(upstream)[-1].json["messages"][-1]["content"][1]
    assert part["image_url"]["url"].startswith("data:image/png;base64,")


# ---- 10. reasoning apart, DashScope's thinking switch ---------------------------------------


def test_reasoning_never_mixes_into_the_answer(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "deepseek-v4-flash")
    upstream.script(
        fake.reply("The answer is 4.", reasoning="2 plus 2, carry nothing."),
        fake.reply("Still 4.", reasoning="Same as before."),
    )
    response = _send(http, who, conversation, "2+2?")
    assert response.json()["ai_message"]["content"] == "The answer is 4."
    events = _stream(http, who, conversation, "sure?")
    assert "".join(data["text"] for name, data in events if name == "delta") == "Still 4."
    reasoning = [r["reasoning"] for r in _replies(parley, conversation)]
    assert reasoning == ["2 plus 2, carry nothing.", "Same as before."]


def test_dashscope_non_streaming_calls_turn_thinking_off(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "qwen3.7-plus")
    response = _send(http, who, conversation, "hello")
    assert response.status_code == 201, response.text
    assert _chats(upstream)[-1].json["enable_thinking"] is False


# ---- 11. a finished stream without [DONE] --------------------------------------------------


def test_a_stream_that_finishes_without_done_is_a_finished_answer(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer
) -> None:
    who, conversation = _user(http, "llava")
    upstream.script(fake.no_done("all here"))
    events = _stream(http, who, conversation, "hi")
    assert not [data for name, data in events if name == "error"]
    assert _replies(parley, conversation)[-1]["status"] == "completed"


# ---- Anthropic -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_claude_answers_through_the_messages_api(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer, stream: bool
) -> None:
    who, conversation = _user(http, "claude-haiku-5-5", temperature=1.5)
    upstream.script(fake.reply("Hello from Claude.", prompt_tokens=9, completion_tokens=4))
    if stream:
        events = _stream(http, who, conversation, "hi")
        text = "".join(data["text"] for name, data in events if name == "delta")
    else:
        response = _send(http, who, conversation, "hi")
        assert response.status_code == 201, response.text
        text = response.json()["ai_message"]["content"]
    assert text == "Hello from Claude."
    sent = _chats(upstream)[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json["system"] == "Be brief."
    assert sent.json["max_tokens"] == 1024
    assert "temperature" not in sent.json  # Claude 5.5 takes only its default
    assert [m["role"] for m in sent.json["messages"]] == ["user"]
    reply = _replies(parley, conversation)[-1]
    assert (reply["prompt_tokens"], reply["completion_tokens"]) == (9, 4)


def test_claude_overloaded_is_retried(http: httpx.Client, upstream: FakeLLMServer) -> None:
    who, conversation = _user(http, "claude-haiku-5-5")
    upstream.script(fake.overloaded(), fake.reply("after the storm"))
    response = _send(http, who, conversation, "hi")
    assert response.status_code == 201
    assert response.json()["ai_message"]["content"] == "after the storm"


def test_a_fallback_crosses_wire_formats(http: httpx.Client, upstream: FakeLLMServer) -> None:
    who, conversation = _user(http, "gpt-6-luna")
    upstream.script(*[fake.error(500)] * 3, fake.reply("Claude stepped in."))
    response = _send(http, who, conversation, "hi")
    assert response.status_code == 201, response.text
    assert response.json()["ai_message"]["content"] == "Claude stepped in."
    assert [r.provider for r in _chats(upstream)] == ["openai"] * 3 + ["anthropic"]
