"""Self-test of ``tests.fakes.llm_server``: real httpx clients against the fake provider."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import (
    FakeLLMServer,
    cut_stream,
    delay,
    error,
    load_fixture,
    malformed,
    no_done,
    overloaded,
    prompt_block,
    provider_models,
    quota_exhausted,
    refusal,
    reply,
    reset,
    safety_block,
    slow_stream,
    stream_error,
    tool_call,
    tool_calls,
)
from tests.fakes.fixtures import parse_sse

KEY = "test-key"
MODEL = "gpt-4o-mini"
GEMINI_MODEL = "gemini-3.5-flash-lite"
# Plain-HTTP clients: skip loading the CA bundle (slow) and ignore proxy settings.
LOCAL: dict[str, Any] = {"verify": False, "trust_env": False}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(llm: FakeLLMServer) -> Iterator[None]:
    llm.reset_state()
    yield
    assert llm.errors == []


@pytest.fixture
def openai(llm: FakeLLMServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=llm.openai_base_url, headers=headers, timeout=5, **LOCAL) as client:
        yield client


@pytest.fixture
def gemini(llm: FakeLLMServer) -> Iterator[httpx.Client]:
    headers = {"x-goog-api-key": KEY}
    with httpx.Client(base_url=llm.gemini_base_url, headers=headers, timeout=5, **LOCAL) as client:
        yield client


def chat(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": text},
        ],
        **extra,
    }


def contents(text: str = "hello there") -> dict[str, Any]:
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "earlier"}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {
                "role": "user",
                "parts": [
                    {"text": text},
                    {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64},
    }


GENERATE = f"/v1beta/models/{GEMINI_MODEL}:generateContent"
STREAM_SSE = f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"


def sse_data(lines: Iterator[str]) -> list[str]:
    """The ``data:`` payloads of an SSE body, asserting there is nothing else in it."""
    payloads = []
    for line in lines:
        if line:
            assert line.startswith("data: "), line
            payloads.append(line.removeprefix("data: "))
    return payloads


def collect_lines(response: httpx.Response, into: list[str]) -> None:
    into.extend(line for line in response.iter_lines() if line)


# ---- OpenAI format ---------------------------------------------------------------------------


def test_openai_completion_echoes_the_last_user_message(
    llm: FakeLLMServer, openai: httpx.Client
) -> None:
    response = openai.post("/chat/completions", json=chat("hello there"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == MODEL
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "fake reply to: hello there",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    # Words: "be brief" + "first question" + "first answer" + "hello there" = 8 in, 5 out.
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (8, 5, 13)
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    # The fixture's shape: every key of the recorded completion, nothing else.
    assert body.keys() == load_fixture("openai/completion.json").body.keys()
    assert usage.keys() == load_fixture("openai/completion.json").body["usage"].keys()

    (recorded,) = llm.requests
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/v1/chat/completions", {})
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.json == chat("hello there")
    assert recorded.provider == "openai"
    assert llm.hits == 1


def test_openai_content_parts_and_models_list(openai: httpx.Client) -> None:
    image = {"url": "https://example.com/cat.png"}
    parts = [{"type": "text", "text": "describe"}, {"type": "image_url", "image_url": image}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": parts}]}
    response = openai.post("/chat/completions", json=body)
    assert response.json()["choices"][0]["message"]["content"] == "fake reply to: describe"

    models = openai.get("/models")
    assert models.status_code == 200
    assert models.json()["data"][0]["object"] == "model"


def test_openai_stream_sends_role_deltas_finish_then_done(openai: httpx.Client) -> None:
    with openai.stream("POST", "/chat/completions", json=chat("stream me", stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["transfer-encoding"] == "chunked"
        payloads = sse_data(r.iter_lines())

    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = chunks[1:-1]
    assert len(content) == 5  # word by word
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == (
        "fake reply to: stream me"
    )
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all("usage" not in c for c in chunks)


async def test_openai_stream_with_include_usage_async(llm: FakeLLMServer) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = chat("count me", stream=True, stream_options={"include_usage": True})
    async with (
        httpx.AsyncClient(
            base_url=llm.openai_base_url, headers=headers, timeout=5, **LOCAL
        ) as client,
        client.stream("POST", "/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        payloads = sse_data(iter([line async for line in response.aiter_lines()]))

    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 8
    assert usage_chunk["usage"]["completion_tokens"] == 5
    assert usage_chunk["usage"]["total_tokens"] == 13
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])


# ---- Gemini format ---------------------------------------------------------------------------


def test_gemini_generate_content(llm: FakeLLMServer, gemini: httpx.Client) -> None:
    response = gemini.post(GENERATE, json=contents("hello there"))

    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.json()
    assert body["candidates"] == [
        {
            "content": {"role": "model", "parts": [{"text": "fake reply to: hello there"}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    # "be brief" + "earlier" + "ok" + "hello there" = 6 in, 5 out.
    assert body["usageMetadata"] == {
        "promptTokenCount": 6,
        "candidatesTokenCount": 5,
        "totalTokenCount": 11,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 6}],
    }
    assert "thoughtsTokenCount" not in body["usageMetadata"]  # no reasoning scripted
    assert body["modelVersion"] == GEMINI_MODEL

    recorded = llm.last_request
    assert recorded.path == f"/v1beta/models/{GEMINI_MODEL}:generateContent"
    assert recorded.headers["x-goog-api-key"] == KEY
    assert recorded.json["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 64}
    assert recorded.provider == "gemini"


async def test_gemini_stream_sse_async(llm: FakeLLMServer) -> None:
    headers = {"x-goog-api-key": KEY}
    async with httpx.AsyncClient(base_url=llm.gemini_base_url, headers=headers, **LOCAL) as client:
        response = await client.post(STREAM_SSE, json=contents("stream me"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content.endswith(b"\r\n\r\n")
    assert llm.last_request.query == {"alt": "sse"}
    payloads = sse_data(iter(response.text.splitlines()))
    assert "[DONE]" not in payloads
    chunks = [json.loads(p) for p in payloads]
    assert len(chunks) == 5
    pieces = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks]
    assert "".join(pieces) == "fake reply to: stream me"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 6,
        "candidatesTokenCount": 5,
        "totalTokenCount": 11,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 6}],
    }


def test_gemini_stream_without_sse_is_a_json_array(gemini: httpx.Client) -> None:
    response = gemini.post(
        f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent", json=contents("hi")
    )
    chunks = response.json()
    assert isinstance(chunks, list)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_finish_reasons_are_translated_per_format(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client
) -> None:
    llm.script(
        reply("", finish_reason="SAFETY"),
        reply("x", finish_reason="SAFETY"),
        reply("cut short", prompt_tokens=100, completion_tokens=2, finish_reason="length"),
    )
    blocked = gemini.post(GENERATE, json=contents()).json()["candidates"][0]
    assert blocked == {
        "finishReason": "SAFETY",
        "index": 0,
        "safetyRatings": load_fixture("gemini/safety_block.json").body["candidates"][0][
            "safetyRatings"
        ],
    }
    choice = openai.post("/chat/completions", json=chat()).json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    body = gemini.post(GENERATE, json=contents()).json()
    assert body["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert body["usageMetadata"]["totalTokenCount"] == 102


# ---- keep-alive ------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection_for_many_requests(
    llm: FakeLLMServer, openai: httpx.Client
) -> None:
    before = llm.connections_accepted
    for i in range(200):
        response = openai.post("/chat/completions", json=chat(f"n{i}"))
        assert response.json()["choices"][0]["message"]["content"] == f"fake reply to: n{i}"
        if i % 50 == 0:  # a chunked stream in between must leave the connection reusable
            with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
                assert sse_data(r.iter_lines())[-1] == "[DONE]"
    assert llm.connections_accepted == before + 1
    assert llm.hits == 204


async def test_keep_alive_async_and_concurrent(llm: FakeLLMServer) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    before = llm.connections_accepted
    async with httpx.AsyncClient(base_url=llm.openai_base_url, headers=headers, **LOCAL) as client:
        for i in range(50):
            response = await client.post("/chat/completions", json=chat(f"a{i}"))
            assert response.status_code == 200
        assert llm.connections_accepted == before + 1

        llm.script(*[reply(f"scripted {i}") for i in range(20)])
        results = await asyncio.gather(
            *(client.post("/chat/completions", json=chat()) for _ in range(30))
        )
    texts = [r.json()["choices"][0]["message"]["content"] for r in results]
    assert sorted(t for t in texts if t.startswith("scripted")) == sorted(
        f"scripted {i}" for i in range(20)
    )
    assert texts.count("fake reply to: hello there") == 10
    assert llm.pending == 0


# ---- scripted failures -----------------------------------------------------------------------


def test_script_is_consumed_in_order_then_default_applies(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client
) -> None:
    llm.script(
        error(429, retry_after=3),
        error(500),
        error(429, "slow down", retry_after=1.5),
        reply("scripted", prompt_tokens=10, completion_tokens=20),
    )
    assert llm.pending == 4

    limited = openai.post("/chat/completions", json=chat())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json() == {
        "error": {
            "message": load_fixture("openai/error_rate_limit.json").body["error"]["message"],
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert "retry-after-ms" not in limited.headers  # only when scripted

    broken = openai.post("/chat/completions", json=chat())
    assert broken.status_code == 500
    assert "retry-after" not in broken.headers
    assert broken.json()["error"]["type"] == "server_error"

    google = gemini.post(GENERATE, json=contents())
    assert google.status_code == 429
    assert google.headers["retry-after"] == "1.5"
    assert google.json() == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    }

    scripted = openai.post("/chat/completions", json=chat()).json()
    assert scripted["choices"][0]["message"]["content"] == "scripted"
    usage = scripted["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        10,
        20,
        30,
    )

    assert llm.pending == 0
    after = openai.post("/chat/completions", json=chat("again")).json()
    assert after["choices"][0]["message"]["content"] == "fake reply to: again"
    assert llm.hits == 5


def test_default_can_be_changed_and_reset(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client
) -> None:
    llm.default = error(503)
    assert openai.post("/chat/completions", json=chat()).status_code == 503
    unavailable = gemini.post(GENERATE, json=contents())
    assert unavailable.status_code == 503
    assert unavailable.json()["error"]["status"] == "UNAVAILABLE"
    llm.reset_state()
    assert llm.hits == 0
    assert openai.post("/chat/completions", json=chat()).status_code == 200


def test_delay_provokes_a_client_read_timeout(llm: FakeLLMServer, openai: httpx.Client) -> None:
    llm.script(delay(0.5), delay(0.05, then=reply("late but fine")))
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        openai.post("/chat/completions", json=chat(), timeout=0.1)
    assert time.perf_counter() - started < 0.4

    late = openai.post("/chat/completions", json=chat())
    assert late.json()["choices"][0]["message"]["content"] == "late but fine"
    assert openai.post("/chat/completions", json=chat()).status_code == 200


def test_reset_drops_the_connection_without_a_response(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client
) -> None:
    assert openai.post("/chat/completions", json=chat()).status_code == 200  # pooled connection
    llm.script(reset(), reset())
    with pytest.raises(httpx.TransportError):
        openai.post("/chat/completions", json=chat())
    with pytest.raises(httpx.TransportError):
        gemini.post(GENERATE, json=contents())
    assert llm.hits == 3
    assert openai.post("/chat/completions", json=chat()).status_code == 200  # recovers


async def test_reset_async(llm: FakeLLMServer) -> None:
    llm.script(reset())
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=llm.openai_base_url, headers=headers, **LOCAL) as client:
        with pytest.raises(httpx.TransportError):
            await client.post("/chat/completions", json=chat())
        assert (await client.post("/chat/completions", json=chat())).status_code == 200


def test_malformed_bodies(llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client) -> None:
    llm.script(malformed(), malformed("shape"), malformed(), malformed(body=b"<html>oops</html>"))

    not_json = openai.post("/chat/completions", json=chat())
    assert not_json.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        not_json.json()

    wrong_shape = openai.post("/chat/completions", json=chat())
    assert wrong_shape.status_code == 200
    assert not wrong_shape.json().get("choices")

    google = gemini.post(GENERATE, json=contents())
    assert google.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        google.json()

    assert openai.post("/chat/completions", json=chat()).content == b"<html>oops</html>"


def test_malformed_stream_event(llm: FakeLLMServer, openai: httpx.Client) -> None:
    llm.script(malformed())
    with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        payloads = sse_data(r.iter_lines())
    assert payloads[-1] == "[DONE]"
    with pytest.raises(json.JSONDecodeError):
        json.loads(payloads[0])


def test_cut_stream_ends_without_done(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client
) -> None:
    llm.script(cut_stream(after_chunks=2), cut_stream(after_chunks=3, abort=True), cut_stream(1))

    first: list[str] = []
    with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):  # incomplete chunked body
            collect_lines(r, first)
    assert len(first) == 2
    assert "data: [DONE]" not in first
    assert all(json.loads(line[6:])["choices"][0]["finish_reason"] is None for line in first)

    second: list[str] = []
    with (
        openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r,
        pytest.raises(httpx.TransportError),
    ):
        collect_lines(r, second)
    assert len(second) <= 3  # an RST may also discard data the client had not read yet

    google: list[str] = []
    with (
        gemini.stream("POST", STREAM_SSE, json=contents()) as r,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        collect_lines(r, google)
    assert len(google) == 1
    assert "finishReason" not in google[0]

    assert llm.pending == 0
    assert openai.post("/chat/completions", json=chat()).status_code == 200


def test_cut_stream_on_a_non_streaming_request_resets(
    llm: FakeLLMServer, openai: httpx.Client
) -> None:
    llm.script(cut_stream())
    with pytest.raises(httpx.TransportError):
        openai.post("/chat/completions", json=chat())


def test_slow_stream_spaces_chunks_out(llm: FakeLLMServer, openai: httpx.Client) -> None:
    llm.script(slow_stream(0.03, text="one two three"))
    started = time.perf_counter()
    arrivals = []
    with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        for line in r.iter_lines():
            if line:
                arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 6  # role, 3 words, finish, [DONE]
    assert arrivals[-1] >= 0.15
    assert arrivals[-1] - arrivals[0] >= 0.1


# ---- authentication and validation -----------------------------------------------------------


def test_bad_keys_get_provider_errors_and_do_not_consume_the_script(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client
) -> None:
    llm.script(error(500))

    wrong = openai.post("/chat/completions", json=chat(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert wrong.json()["error"]["type"] == "invalid_request_error"

    with httpx.Client(base_url=llm.base_url, **LOCAL) as anonymous:
        missing = anonymous.post("/v1/chat/completions", json=chat())
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] is None
        google_missing = anonymous.post(GENERATE, json=contents())
        assert google_missing.status_code == 403
        assert google_missing.json()["error"]["status"] == "PERMISSION_DENIED"

    google_wrong = gemini.post(GENERATE, json=contents(), headers={"x-goog-api-key": "nope"})
    assert google_wrong.status_code == 400
    google_error = google_wrong.json()["error"]
    assert google_error["status"] == "INVALID_ARGUMENT"
    assert google_error["details"][0]["reason"] == "API_KEY_INVALID"

    with httpx.Client(base_url=llm.gemini_base_url, **LOCAL) as query_key:
        assert query_key.post(GENERATE, params={"key": KEY}, json=contents()).status_code == 500

    assert llm.hits == 5
    assert llm.pending == 0


def test_invalid_requests_and_unknown_paths(openai: httpx.Client, gemini: httpx.Client) -> None:
    missing = openai.post("/chat/completions", json={"model": MODEL})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    garbage = openai.post("/chat/completions", content=b"{not json")
    assert garbage.status_code == 400
    assert gemini.post(GENERATE, json={"contents": []}).status_code == 400
    assert openai.post("/nope", json={}).status_code == 404
    assert gemini.get("/v1beta/nope").json()["error"]["status"] == "NOT_FOUND"


def test_accepts_any_key_when_api_key_is_none_and_stops_cleanly() -> None:
    server = FakeLLMServer(api_key=None).start()
    try:
        with httpx.Client(base_url=server.base_url, **LOCAL) as client:
            assert client.post("/v1/chat/completions", json=chat()).status_code == 200
            assert client.post(GENERATE, json=contents()).status_code == 200
            server.script(delay(30))  # a request still sleeping when the server stops
            started = time.perf_counter()
            stopper = threading.Timer(0.1, server.stop)
            stopper.start()
            with pytest.raises(httpx.TransportError):
                client.post("/v1/chat/completions", json=chat(), timeout=5)
            stopper.join()
            assert time.perf_counter() - started < 3
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{server.base_url}/v1/chat/completions", json=chat(), timeout=1, **LOCAL)


# ---- fixtures --------------------------------------------------------------------------------

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def test_every_fixture_loads_says_its_origin_and_is_in_the_readme() -> None:
    readme = (FIXTURE_DIR / "README.md").read_text()
    names = sorted(
        str(p.relative_to(FIXTURE_DIR))
        for p in FIXTURE_DIR.rglob("*")
        if p.suffix in {".json", ".sse"}
    )
    assert len(names) >= 30
    for name in names:
        fixture = load_fixture(name)
        assert fixture.origin, name
        assert f"`{name}`" in readme, name
        if name.endswith(".sse"):
            assert fixture.events, name
            assert (FIXTURE_DIR / name).read_bytes().startswith(b": origin: ")
        else:
            assert isinstance(fixture.body, dict), name
            assert 200 <= fixture.status < 600
    gemini = load_fixture("gemini/stream.sse")
    assert gemini.raw.count(b"\r\n\r\n") == len(gemini.events)
    assert [e.event for e in load_fixture("anthropic/stream.sse").events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


# ---- flavours --------------------------------------------------------------------------------


def flavour_client(llm: FakeLLMServer, name: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.Client(base_url=llm.flavour_base_url(name), headers=headers, timeout=5, **LOCAL)


def flavour_chat(model: str, text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def anthropic(llm: FakeLLMServer) -> Iterator[httpx.Client]:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(
        base_url=llm.anthropic_base_url, headers=headers, timeout=5, **LOCAL
    ) as client:
        yield client


def messages(content: str | list[dict[str, Any]] = "hello there", **extra: Any) -> dict[str, Any]:
    """An Anthropic Messages body whose last user turn is ``content`` (a string or blocks)."""
    return {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 256,
        "system": "be brief",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": content},
        ],
        **extra,
    }


FLAVOUR_MODELS = {
    "openai": "gpt-4o-mini",
    "moonshot": "kimi-k2.6",
    "dashscope": "qwen-plus",
    "deepseek": "deepseek-v4-flash",
    "ollama": "llama3.2",
    "vllm": "Qwen/Qwen2.5-7B-Instruct",
}


def test_flavours_are_served_by_path_prefix(llm: FakeLLMServer) -> None:
    assert llm.flavour_base_url("moonshot") == f"{llm.base_url}/moonshot/v1"
    assert llm.flavour_base_url("openai") == llm.openai_base_url
    assert llm.anthropic_base_url == llm.base_url
    with pytest.raises(ValueError, match="flavour"):
        llm.flavour_base_url("gemini")
    for name, model in FLAVOUR_MODELS.items():
        with flavour_client(llm, name) as client:
            response = client.post("/chat/completions", json=flavour_chat(model))
            assert response.status_code == 200, (name, response.text)
            assert response.json()["choices"][0]["message"]["content"] == (
                "fake reply to: hello there"
            )
            assert llm.last_request.provider == name
            assert client.get("/models").json()["data"]
    assert "refusal" not in response.json()["choices"][0]["message"]  # OpenAI's own field


def test_flavour_auth_errors(llm: FakeLLMServer) -> None:
    llm.script(error(500))
    bad = {"Authorization": "Bearer nope-nope-nope"}
    with flavour_client(llm, "moonshot") as client:
        r = client.post("/chat/completions", json=flavour_chat("kimi-k2.6"), headers=bad)
        assert (r.status_code, r.json()["error"]["type"]) == (401, "invalid_authentication_error")
    with flavour_client(llm, "dashscope") as client:
        r = client.post("/chat/completions", json=flavour_chat("qwen-plus"), headers=bad)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")
    with flavour_client(llm, "deepseek") as client:
        r = client.post("/chat/completions", json=flavour_chat("deepseek-v4-flash"), headers=bad)
        assert r.status_code == 401
        assert r.json()["error"]["message"].startswith("Authentication Fails")
    assert llm.pending == 1
    with flavour_client(llm, "ollama") as client:  # Ollama takes any key
        r = client.post("/chat/completions", json=flavour_chat("llama3.2"), headers=bad)
        assert r.status_code == 500
    assert llm.pending == 0


# ---- model strictness ------------------------------------------------------------------------


def test_retired_and_unknown_models_get_each_providers_404(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    llm.script(error(500))
    for model in ("gpt-4-turbo", "gpt-fake"):
        r = openai.post("/chat/completions", json=chat(model=model))
        assert r.status_code == 404
        assert r.json() == {
            "error": {
                "message": f"The model `{model}` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        }
    assert "gpt-4-turbo" in provider_models.RETIRED["openai"]

    r = gemini.post("/v1beta/models/gemini-1.5-pro:generateContent", json=contents())
    assert r.status_code == 404
    assert r.json() == load_fixture("gemini/error_model_not_found.json").body
    r = gemini.post("/v1beta/models/gemini-nope:streamGenerateContent", json=contents())
    assert r.json()["error"]["message"].startswith(
        "models/gemini-nope is not found for API version v1beta, or is not supported for "
        "streamGenerateContent."
    )

    r = anthropic.post("/v1/messages", json=messages(model="claude-3-5-sonnet-20240620"))
    assert r.status_code == 404
    assert r.json()["error"] == {
        "type": "not_found_error",
        "message": "model: claude-3-5-sonnet-20240620",
    }
    assert r.json()["type"] == "error"

    with flavour_client(llm, "ollama") as client:
        r = client.post("/chat/completions", json=flavour_chat("llama3:8b"))
        assert r.status_code == 404
        assert r.json()["error"]["message"] == 'model "llama3:8b" not found, try pulling it first'
    with flavour_client(llm, "moonshot") as client:
        r = client.post("/chat/completions", json=flavour_chat("gpt-4o-mini"))
        assert (r.status_code, r.json()["error"]["type"]) == (404, "resource_not_found_error")
    with flavour_client(llm, "deepseek") as client:
        r = client.post("/chat/completions", json=flavour_chat("deepseek-coder"))
        assert (r.status_code, r.json()["error"]["message"]) == (400, "Model Not Exist")
    assert llm.pending == 1  # none of them consumed the script


def test_allowed_models_are_served_everywhere(llm: FakeLLMServer) -> None:
    server = FakeLLMServer(api_key=None, models=("house", "m")).start()
    try:
        server.allow_models("fake-large")
        with httpx.Client(base_url=server.base_url, timeout=5, **LOCAL) as client:
            for model in ("house", "m", "fake-large"):
                r = client.post("/v1/chat/completions", json=chat(model=model))
                assert r.status_code == 200, r.text
            r = client.post("/ollama/v1/chat/completions", json=flavour_chat("house"))
            assert r.status_code == 200
            r = client.post("/v1beta/models/m:generateContent", json=contents())
            assert r.status_code == 200
            server.reset_state()  # keeps allowed models
            assert client.post("/v1/chat/completions", json=chat(model="m")).status_code == 200
            assert client.post("/v1/chat/completions", json=chat(model="x")).status_code == 404
            assert "fake-large" in [m["id"] for m in client.get("/v1/models").json()["data"]]
    finally:
        server.stop()


# ---- OpenAI-compatible strictness ------------------------------------------------------------


def test_openai_reasoning_models_reject_max_tokens_and_temperature(
    llm: FakeLLMServer, openai: httpx.Client
) -> None:
    llm.script(error(500))
    r = openai.post("/chat/completions", json=chat(model="gpt-5-mini", max_tokens=100))
    assert r.status_code == 400
    assert r.json() == load_fixture("openai/reasoning_max_tokens_error.json").body
    r = openai.post("/chat/completions", json=chat(model="gpt-5", temperature=0.2))
    assert r.status_code == 400
    assert r.json() == load_fixture("openai/reasoning_temperature_error.json").body
    r = openai.post("/chat/completions", json=chat(model="gpt-5-mini", temperature=0))
    assert r.json()["error"]["message"].startswith(
        "Unsupported value: 'temperature' does not support 0 "
    )
    r = openai.post("/chat/completions", json=chat(model="gpt-4o", max_completion_tokens=20000))
    assert (r.status_code, r.json()["error"]["param"]) == (400, "max_completion_tokens")
    assert llm.pending == 1
    ok = [
        chat(model="gpt-5-mini", max_completion_tokens=100, temperature=1),
        chat(model="gpt-4.1", max_tokens=100, temperature=0.2),
        chat(model="gpt-4o-mini", max_completion_tokens=100),
    ]
    llm.script(reply("a"), reply("b"), reply("c"))
    llm.reset_state()
    for body in ok:
        assert openai.post("/chat/completions", json=body).status_code == 200


@pytest.mark.parametrize(
    ("flavour", "model", "bad", "good"),
    [
        ("openai", "gpt-4o-mini", 2.1, 2),
        ("moonshot", "kimi-tuned", 1.5, 1),
        ("dashscope", "qwen-plus", 2.0, 1.99),
        ("deepseek", "deepseek-v4-flash", 2.5, 2),
    ],
)
def test_temperature_ranges(
    llm: FakeLLMServer, flavour: str, model: str, bad: float, good: float
) -> None:
    llm.allow_models("kimi-tuned")  # Kimi's current models take no temperature at all
    with flavour_client(llm, flavour) as client:
        r = client.post("/chat/completions", json=flavour_chat(model, temperature=bad))
        assert r.status_code == 400, r.text
        assert "temperature" in r.json()["error"]["message"]
        if flavour == "moonshot":
            assert r.json() == load_fixture("moonshot/error_temperature.json").body
        if flavour == "openai":
            assert r.json()["error"]["code"] == "decimal_above_max_value"
        r = client.post("/chat/completions", json=flavour_chat(model, temperature=good))
        assert r.status_code == 200
        assert (
            client.post("/chat/completions", json=flavour_chat(model, temperature=-0.1)).status_code
            == 400
        )


def test_openai_image_parts(llm: FakeLLMServer, openai: httpx.Client) -> None:
    def body(model: str, url: str) -> dict[str, Any]:
        parts = [
            {"type": "text", "text": "what is it"},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        return {"model": model, "messages": [{"role": "user", "content": parts}]}

    for url in (
        "https://example.com/a.png",
        f"data:image/png;base64,{PNG}",
        "data:image/gif;base64,R0lG",
    ):
        assert openai.post("/chat/completions", json=body("gpt-4o", url)).status_code == 200
    with flavour_client(llm, "deepseek") as deepseek:  # no current OpenAI model is text-only
        r = deepseek.post(
            "/chat/completions", json=body("deepseek-v4-flash", "https://example.com/a.png")
        )
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Invalid content type. image_url is only supported by certain models."
    )
    r = openai.post("/chat/completions", json=body("gpt-4o", "data:image/bmp;base64,Qk0="))
    assert r.json()["error"]["code"] == "invalid_image_format"
    r = openai.post("/chat/completions", json=body("gpt-4o", "x"))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_value")

    with flavour_client(llm, "ollama") as client:
        r = client.post("/chat/completions", json=body("gemma3:4b", "https://example.com/a.png"))
        assert (r.status_code, r.json()["error"]["message"]) == (400, "invalid image input")
        r = client.post("/chat/completions", json=body("gemma3:4b", "data:image/gif;base64,R0lG"))
        assert r.status_code == 400
        r = client.post("/chat/completions", json=body("gemma3:4b", f"data:image/png;base64,{PNG}"))
        assert r.status_code == 200


def test_openai_accepts_what_the_real_api_accepts(openai: httpx.Client) -> None:
    body = chat()
    body["messages"][2]["content"] = ""  # an empty assistant turn is accepted by OpenAI
    assert openai.post("/chat/completions", json=body).status_code == 200
    body["messages"][2]["role"] = "robot"
    r = openai.post("/chat/completions", json=body)
    assert (r.status_code, r.json()["error"]["param"]) == (400, "messages[2].role")


def test_dashscope_qwen3_needs_enable_thinking_false_when_not_streaming(
    llm: FakeLLMServer,
) -> None:
    llm.script(reply("ok", reasoning="hidden"))
    with flavour_client(llm, "dashscope") as client:
        r = client.post("/chat/completions", json=flavour_chat("qwen3.7-plus"))
        assert r.status_code == 400
        assert r.json() == load_fixture("dashscope/error_enable_thinking.json").body
        assert llm.pending == 1
        r = client.post(
            "/chat/completions", json=flavour_chat("qwen3.7-plus", enable_thinking=False)
        )
        message = r.json()["choices"][0]["message"]
        assert message["content"] == "ok"
        assert "reasoning_content" not in message  # thinking was switched off
        llm.script(reply("Paris.", reasoning="The user asks."))
        body = flavour_chat("qwen3.7-max", stream=True, stream_options={"include_usage": True})
        with client.stream("POST", "/chat/completions", json=body) as s:
            payloads = sse_data(s.iter_lines())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert (reasoning, content) == ("The user asks.", "Paris.")
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all(not d.get("reasoning_content") for d in deltas[first_content:])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    assert chunks[-1]["usage"]["completion_tokens"] == 4


# ---- Gemini strictness -----------------------------------------------------------------------


def test_gemini_rejects_empty_parts_bad_mime_file_uris_and_bad_config(
    llm: FakeLLMServer, gemini: httpx.Client
) -> None:
    llm.script(error(500))
    body = contents()
    body["contents"][1]["parts"] = [{"text": ""}]
    r = gemini.post(GENERATE, json=body)
    assert r.status_code == 400
    assert r.json() == load_fixture("gemini/error_empty_part.json").body
    body["contents"][1]["parts"] = []
    r = gemini.post(GENERATE, json=body)
    assert "contents[1].parts: contents.parts must not be empty" in r.json()["error"]["message"]
    body = contents()
    body["contents"][2]["parts"][1] = {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}}
    r = gemini.post(GENERATE, json=body)
    assert (r.status_code, r.json()["error"]["message"]) == (
        400,
        "Unsupported MIME type: image/gif",
    )
    body["contents"][2]["parts"][1] = {
        "fileData": {"mimeType": "image/png", "fileUri": "https://x/a.png"}
    }
    assert gemini.post(GENERATE, json=body).status_code == 400
    body = contents()
    body["contents"][0]["role"] = "assistant"
    assert gemini.post(GENERATE, json=body).json()["error"]["status"] == "INVALID_ARGUMENT"
    body = contents()
    body["generationConfig"]["temperature"] = 2.5
    r = gemini.post(GENERATE, json=body)
    assert r.status_code == 400
    assert "temperature value of 2.5" in r.json()["error"]["message"]
    assert llm.pending == 1
    body["generationConfig"]["temperature"] = 2
    assert gemini.post(GENERATE, json=body).status_code == 500  # valid: consumes the script


# ---- Anthropic -------------------------------------------------------------------------------


def test_anthropic_message(llm: FakeLLMServer, anthropic: httpx.Client) -> None:
    r = anthropic.post("/v1/messages", json=messages("hello there"))
    assert r.status_code == 200, r.text
    body = r.json()
    template = load_fixture("anthropic/message.json").body
    assert body.keys() == template.keys()
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["model"] == ANTHROPIC_MODEL
    assert body["id"].startswith("msg_")
    assert body["content"] == [{"type": "text", "text": "fake reply to: hello there"}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
    # "be brief" + "first question" + "first answer" + "hello there" = 8 in, 5 out.
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (8, 5)
    assert llm.last_request.provider == "anthropic"


def test_anthropic_stream_follows_the_event_sequence(anthropic: httpx.Client) -> None:
    with anthropic.stream("POST", "/v1/messages", json=messages("stream me", stream=True)) as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = parse_sse(r.read().decode())[0]
    names = [e.event for e in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(e.json()["type"] == e.event for e in events)
    text = "".join(e.json()["delta"]["text"] for e in events if e.event == "content_block_delta")
    assert text == "fake reply to: stream me"
    delta = events[-2].json()
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == 5
    assert events[0].json()["message"]["usage"]["input_tokens"] == 8


def test_anthropic_auth_and_validation(llm: FakeLLMServer, anthropic: httpx.Client) -> None:
    llm.script(error(500))
    r = anthropic.post("/v1/messages", json=messages(), headers={"x-api-key": "nope"})
    assert r.status_code == 401
    assert r.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    with httpx.Client(base_url=llm.base_url, headers={"x-api-key": KEY}, **LOCAL) as bare:
        r = bare.post("/v1/messages", json=messages())
        assert (r.status_code, r.json()["error"]["type"]) == (400, "invalid_request_error")
        assert "anthropic-version" in r.json()["error"]["message"]

    def bad(body: dict[str, Any], message: str) -> None:
        response = anthropic.post("/v1/messages", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert message in response.json()["error"]["message"]

    no_max = messages()
    del no_max["max_tokens"]
    r = anthropic.post("/v1/messages", json=no_max)
    assert r.json() == load_fixture("anthropic/error_max_tokens_required.json").body
    bad(messages(max_tokens=100000), "max_tokens: 100000 > 64000")
    bad(messages(max_tokens=0), "max_tokens")
    system = messages()
    system["messages"].insert(0, {"role": "system", "content": "be brief"})
    bad(system, 'Unexpected role "system"')
    bad(messages(""), "all messages must have non-empty content")
    bad(messages([{"type": "text", "text": ""}]), "messages: text content blocks must be non-empty")
    bad(messages(temperature=1.5), "temperature")
    bad({**messages(), "messages": []}, "at least one message")
    gif = {"type": "base64", "media_type": "image/bmp", "data": "Qk0="}
    bad(
        messages([{"type": "text", "text": "what"}, {"type": "image", "source": gif}]), "media_type"
    )
    assert llm.pending == 1
    png = {"type": "base64", "media_type": "image/png", "data": PNG}
    url = {"type": "url", "url": "https://example.com/a.jpg"}
    image_body = messages(
        [
            {"type": "image", "source": png},
            {"type": "image", "source": url},
            {"type": "text", "text": "hi"},
        ]
    )
    assert anthropic.post("/v1/messages", json=image_body).status_code == 500  # valid
    assert anthropic.post("/v1/messages", json=messages(temperature=1)).status_code == 200


# ---- reasoning -------------------------------------------------------------------------------


def test_reasoning_is_shown_each_flavours_way(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    thought = "let me think about it"  # 5 words
    llm.script(*[reply("Paris.", reasoning=thought)] * 6)

    with flavour_client(llm, "deepseek") as client:
        body = client.post("/chat/completions", json=flavour_chat("deepseek-v4-pro")).json()
    assert body.keys() == load_fixture("deepseek/reasoner_completion.json").body.keys()
    assert body["choices"][0]["message"]["reasoning_content"] == thought
    assert body["choices"][0]["message"]["content"] == "Paris."
    assert body["usage"]["completion_tokens"] == 6
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}

    body = openai.post("/chat/completions", json=chat(model="o3")).json()
    assert "reasoning_content" not in body["choices"][0]["message"]
    assert body["usage"]["completion_tokens"] == 6  # includes the hidden reasoning
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 5

    hidden = gemini.post(GENERATE, json=contents()).json()
    assert hidden["candidates"][0]["content"]["parts"] == [{"text": "Paris."}]
    assert hidden["usageMetadata"]["thoughtsTokenCount"] == 5
    assert hidden["usageMetadata"]["candidatesTokenCount"] == 1
    assert hidden["usageMetadata"]["totalTokenCount"] == 6 + 1 + 5
    with_thoughts = contents()
    with_thoughts["generationConfig"]["thinkingConfig"] = {"includeThoughts": True}
    shown = gemini.post(GENERATE, json=with_thoughts).json()
    assert shown["candidates"][0]["content"]["parts"] == [
        {"text": thought, "thought": True},
        {"text": "Paris."},
    ]
    assert shown.keys() == load_fixture("gemini/thoughts.json").body.keys()

    thinking = {"type": "enabled", "budget_tokens": 1024}
    body = anthropic.post("/v1/messages", json=messages(max_tokens=2048, thinking=thinking)).json()
    assert [b["type"] for b in body["content"]] == ["thinking", "text"]
    assert body["content"][0]["thinking"] == thought
    assert body["content"][0]["signature"]
    assert body["usage"]["output_tokens"] == 6

    with flavour_client(llm, "moonshot") as client:
        body = flavour_chat("kimi-k3", stream=True)
        with client.stream("POST", "/chat/completions", json=body) as s:
            payloads = sse_data(s.iter_lines())
    deltas = [json.loads(p)["choices"][0]["delta"] for p in payloads[:-1]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == thought
    assert "".join(d.get("content") or "" for d in deltas) == "Paris."


def test_reasoning_in_gemini_and_anthropic_streams(
    llm: FakeLLMServer, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    llm.script(
        reply("Paris.", reasoning="so it is", reasoning_tokens=40),
        reply("Paris.", reasoning="hmm ok"),
    )
    body = contents()
    body["generationConfig"]["thinkingConfig"] = {"includeThoughts": True}
    chunks = [
        json.loads(p) for p in sse_data(iter(gemini.post(STREAM_SSE, json=body).text.splitlines()))
    ]
    thought_parts = [c["candidates"][0]["content"]["parts"][0] for c in chunks[:-1]]
    assert all(p.get("thought") for p in thought_parts[:3])
    assert chunks[-1]["usageMetadata"]["thoughtsTokenCount"] == 40

    thinking = {"type": "enabled", "budget_tokens": 1024}
    with anthropic.stream(
        "POST", "/v1/messages", json=messages(stream=True, max_tokens=4096, thinking=thinking)
    ) as r:
        events = parse_sse(r.read().decode())[0]
    deltas = [e.json()["delta"] for e in events if e.event == "content_block_delta"]
    assert [d["type"] for d in deltas] == [
        "thinking_delta", "thinking_delta", "signature_delta", "text_delta",
    ]  # fmt: skip
    starts = [e.json()["content_block"]["type"] for e in events if e.event == "content_block_start"]
    assert starts == ["thinking", "text"]
    assert events[-2].json()["usage"]["output_tokens"] == 1 + 2


# ---- refusals and blocks ---------------------------------------------------------------------


def test_refusal_per_format(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    llm.script(refusal(), refusal("No."), refusal(), refusal(), refusal("Not that."))
    body = openai.post("/chat/completions", json=chat()).json()
    template = load_fixture("openai/refusal.json").body
    assert body["choices"][0]["message"] == template["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "stop"

    with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        payloads = sse_data(r.iter_lines())
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None, "refusal": ""}
    assert "".join(c["choices"][0]["delta"].get("refusal") or "" for c in chunks) == "No."

    blocked = gemini.post(GENERATE, json=contents()).json()
    assert blocked["candidates"][0]["finishReason"] == "SAFETY"
    assert "content" not in blocked["candidates"][0]

    body = anthropic.post("/v1/messages", json=messages()).json()
    assert (body["stop_reason"], body["content"]) == ("refusal", [])

    with flavour_client(llm, "moonshot") as client:  # no refusal field: the model just says so
        body = client.post("/chat/completions", json=flavour_chat("kimi-k2.6")).json()
    assert body["choices"][0]["message"]["content"] == "Not that."


def test_safety_and_prompt_blocks(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    llm.script(
        safety_block(), safety_block(), safety_block(), prompt_block("PROHIBITED_CONTENT"),
        prompt_block(), prompt_block(),
    )  # fmt: skip
    body = gemini.post(GENERATE, json=contents()).json()
    assert body["candidates"][0].keys() == {"finishReason", "index", "safetyRatings"}
    chunks = sse_data(iter(gemini.post(STREAM_SSE, json=contents()).text.splitlines()))
    assert len(chunks) == 1
    assert json.loads(chunks[0])["candidates"][0]["finishReason"] == "SAFETY"
    choice = openai.post("/chat/completions", json=chat()).json()["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("content_filter", None)

    r = gemini.post(GENERATE, json=contents())
    assert r.status_code == 200
    assert "candidates" not in r.json()
    assert r.json()["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as s:
        payloads = sse_data(s.iter_lines())
    assert json.loads(payloads[-2])["choices"][0]["finish_reason"] == "content_filter"
    assert anthropic.post("/v1/messages", json=messages()).json()["stop_reason"] == "refusal"


# ---- errors ----------------------------------------------------------------------------------


def test_stream_error_mid_stream_per_format(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    llm.script(
        stream_error(after_chunks=2),
        stream_error(1, "boom", kind="overloaded"),
        stream_error(1),
        stream_error(),
    )
    with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        assert r.status_code == 200
        payloads = sse_data(r.iter_lines())
    assert "[DONE]" not in payloads
    assert len(payloads) == 4  # role chunk, 2 content chunks, the error
    error_event = json.loads(payloads[-1])
    assert error_event == load_fixture("openai/stream_error.sse").payloads()[-1]

    with anthropic.stream("POST", "/v1/messages", json=messages(stream=True)) as r:
        events = parse_sse(r.read().decode())[0]
    assert events[-1].event == "error"
    assert events[-1].json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "boom"},
    }
    assert [e.event for e in events[:-1]] == [
        "message_start", "content_block_start", "ping", "content_block_delta",
    ]  # fmt: skip

    google = sse_data(iter(gemini.post(STREAM_SSE, json=contents()).text.splitlines()))
    assert json.loads(google[-1]) == {
        "error": {
            "code": 500,
            "message": "An internal error has occurred. Please retry or report the problem.",
            "status": "INTERNAL",
        }
    }
    assert len(google) == 2

    r = openai.post("/chat/completions", json=chat())  # not streaming: the HTTP error
    assert (r.status_code, r.json()["error"]["type"]) == (500, "server_error")


def test_retry_hints_per_provider(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    llm.script(
        error(429, retry_after=1, retry_after_ms=750),
        error(429, retry_delay="37s"),
        error(429, retry_after=15),
    )
    r = openai.post("/chat/completions", json=chat())
    assert (r.headers["retry-after"], r.headers["retry-after-ms"]) == ("1", "750")
    assert r.headers["x-ratelimit-remaining-requests"] == "0"

    r = gemini.post(GENERATE, json=contents())
    assert r.status_code == 429
    assert "retry-after" not in r.headers
    details = r.json()["error"]["details"]
    types = [d["@type"] for d in details]
    assert "type.googleapis.com/google.rpc.QuotaFailure" in types
    retry = next(d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
    assert retry["retryDelay"] == "37s"
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"

    r = anthropic.post("/v1/messages", json=messages())
    assert r.status_code == 429
    assert r.headers["retry-after"] == "15"
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_quota_exhausted_and_overloaded(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client, anthropic: httpx.Client
) -> None:
    llm.script(
        quota_exhausted(),
        quota_exhausted(),
        quota_exhausted(),
        overloaded(),
        overloaded(),
        overloaded(),
    )
    r = openai.post("/chat/completions", json=chat())
    assert r.status_code == 429
    assert r.json() == load_fixture("openai/error_insufficient_quota.json").body
    assert "retry-after" not in r.headers
    r = gemini.post(GENERATE, json=contents())
    assert r.status_code == 429
    details = r.json()["error"]["details"]
    assert not any(d["@type"].endswith("RetryInfo") for d in details)
    assert "PerDay" in details[0]["violations"][0]["quotaId"]
    r = anthropic.post("/v1/messages", json=messages())
    assert r.status_code == 400
    assert "credit balance is too low" in r.json()["error"]["message"]

    r = anthropic.post("/v1/messages", json=messages())
    assert r.status_code == 529
    assert r.json() == load_fixture("anthropic/error_overloaded.json").body
    r = gemini.post(GENERATE, json=contents())
    assert (r.status_code, r.json()["error"]["status"]) == (503, "UNAVAILABLE")
    assert openai.post("/chat/completions", json=chat()).status_code == 503


# ---- stream endings --------------------------------------------------------------------------


def test_no_done_closes_cleanly_after_the_finish_chunk(
    llm: FakeLLMServer, openai: httpx.Client, gemini: httpx.Client
) -> None:
    llm.script(no_done(), no_done())
    with openai.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        payloads = sse_data(r.iter_lines())  # no transport error: the body ends properly
    assert "[DONE]" not in payloads
    assert json.loads(payloads[-1])["choices"][0]["finish_reason"] == "stop"
    chunks = sse_data(iter(gemini.post(STREAM_SSE, json=contents()).text.splitlines()))
    assert json.loads(chunks[-1])["candidates"][0]["finishReason"] == "STOP"


def test_moonshot_stream_usage_is_inside_the_finishing_choice(llm: FakeLLMServer) -> None:
    body = flavour_chat(
        "kimi-k2.6", "count me", stream=True, stream_options={"include_usage": True}
    )
    with (
        flavour_client(llm, "moonshot") as client,
        client.stream("POST", "/chat/completions", json=body) as r,
    ):
        payloads = sse_data(r.iter_lines())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["choices"] and "usage" not in c for c in chunks)
    finishing = chunks[-1]["choices"][0]
    assert finishing["finish_reason"] == "stop"
    assert finishing["usage"]["prompt_tokens"] == 2
    assert finishing["usage"]["completion_tokens"] == 5
    template = load_fixture("moonshot/stream_choice_usage.sse").payloads()[-2]
    assert finishing.keys() == template["choices"][0].keys()


# ---- tools, response_format and the other pass-through parameters ----------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}


def tool_turns(*answers: tuple[str, str], ids: tuple[str, ...] = ("call_a",)) -> dict[str, Any]:
    """A body whose assistant turn called ``ids`` (content null) and whose tool turns are
    ``answers`` as (tool_call_id, content)."""
    calls = [
        {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        for i in ids
    ]
    return {
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            *({"role": "tool", "tool_call_id": i, "content": text} for i, text in answers),
        ],
        "tools": [WEATHER],
    }


def rejected(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/chat/completions", json=body)
    assert r.status_code == 400, r.text
    error: dict[str, Any] = r.json()["error"]
    return error


@pytest.mark.parametrize(
    ("extra", "param", "code", "message"),
    [
        ({"top_p": 1.5}, "top_p", "decimal_above_max_value",
         "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 "
         "instead."),
        ({"top_p": -0.1}, "top_p", "decimal_below_min_value",
         "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got -0.1 "
         "instead."),
        ({"top_p": "0.5"}, "top_p", "invalid_type",
         "Invalid type for 'top_p': expected a decimal, but got a string instead."),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length",
         "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an "
         "array with length 5 instead."),
        ({"stop": {"a": 1}}, "stop", "invalid_type",
         "Invalid type for 'stop': expected one of a string or array of strings, but got an "
         "object instead."),
        ({"stop": ["a", 1]}, "stop[1]", "invalid_type",
         "Invalid type for 'stop[1]': expected a string, but got an integer instead."),
        ({"n": 0}, "n", "integer_below_min_value",
         "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."),
        ({"n": 129}, "n", "integer_above_max_value",
         "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 "
         "instead."),
        ({"n": 1.5}, "n", "invalid_type",
         "Invalid type for 'n': expected an integer, but got a decimal number instead."),
    ],
)  # fmt: skip
def test_openai_rejects_bad_top_p_stop_and_n(
    llm: FakeLLMServer,
    openai: httpx.Client,
    extra: dict[str, Any],
    param: str,
    code: str,
    message: str,
) -> None:
    llm.script(reply("never sent"))
    error = rejected(openai, chat(**extra))
    assert error == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }
    assert llm.pending == 1  # a refused request leaves the script alone


def test_openai_accepts_valid_top_p_stop_and_n(openai: httpx.Client) -> None:
    extras: list[dict[str, Any]] = [
        {"top_p": 0},
        {"top_p": 1},
        {"top_p": 0.3},
        {"stop": "END"},
        {"stop": ["a", "b", "c", "d"]},
        {"stop": []},
        {"n": 1},
        {"top_p": None, "stop": None, "n": None},
    ]
    for extra in extras:
        r = openai.post("/chat/completions", json=chat(**extra))
        assert r.status_code == 200, (extra, r.text)


def test_openai_reasoning_models_refuse_top_p_and_stop(openai: httpx.Client) -> None:
    error = rejected(openai, chat(model="gpt-5-mini", top_p=0.9))
    assert error == {
        "message": "Unsupported parameter: 'top_p' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "top_p",
        "code": "unsupported_parameter",
    }
    error = rejected(openai, chat(model="o3", stop=["\n"]))
    assert (error["param"], error["code"]) == ("stop", "unsupported_parameter")
    assert error["message"] == "Unsupported parameter: 'stop' is not supported with this model."
    assert openai.post("/chat/completions", json=chat(model="gpt-5", top_p=1)).status_code == 200


@pytest.mark.parametrize(
    ("extra", "param", "code", "message"),
    [
        ({"tool_choice": "none"}, "tool_choice", None,
         "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
         "specified."),
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
         "tool_choice", None,
         "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
         "specified."),
        ({"tools": []}, "tools", "empty_array",
         "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an "
         "empty array instead."),
        ({"tools": WEATHER}, "tools", "invalid_type",
         "Invalid type for 'tools': expected an array, but got an object instead."),
        ({"tools": [{"type": "function", "function": {"name": "get weather"}}]},
         "tools[0].function.name", "invalid_value",
         "Invalid 'tools[0].function.name': string does not match pattern. Expected a string "
         "that matches the pattern '^[a-zA-Z0-9_-]+$'."),
        ({"tools": [WEATHER, {"type": "function", "function": {"name": "x" * 65}}]},
         "tools[1].function.name", "string_above_max_length",
         "Invalid 'tools[1].function.name': string too long. Expected a string with maximum "
         "length 64, but got a string with length 65 instead."),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]},
         "tools[0].function.name", "missing_required_parameter",
         "Missing required parameter: 'tools[0].function.name'."),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter",
         "Missing required parameter: 'tools[0].function'."),
        ({"tools": [{"type": "retrieval", "function": {"name": "a"}}]}, "tools[0].type",
         "invalid_value", "Invalid value: 'retrieval'. Supported values are: 'function' and "
         "'custom'."),
        ({"tools": [{"type": "function", "function": {"name": "a", "parameters": "{}"}}]},
         "tools[0].function.parameters", "invalid_type",
         "Invalid type for 'tools[0].function.parameters': expected an object, but got a "
         "string instead."),
        ({"tools": [{"type": "function", "function": {"name": "a", "description": 3}}]},
         "tools[0].function.description", "invalid_type",
         "Invalid type for 'tools[0].function.description': expected a string, but got an "
         "integer instead."),
        ({"tools": [WEATHER] * 129}, "tools", "array_above_max_length",
         "Invalid 'tools': array too long. Expected an array with maximum length 128, but got "
         "an array with length 129 instead."),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice", "invalid_value",
         "Invalid value: 'sometimes'. Supported values are: 'none', 'auto', and 'required'."),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "tool_choice.function",
         "missing_required_parameter", "Missing required parameter: 'tool_choice.function'."),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "tool_choice", "invalid_value",
         "Invalid value for 'tool_choice': function 'nope' is not one of the functions in "
         "'tools'."),
    ],
)  # fmt: skip
def test_openai_tools_and_tool_choice_are_validated(
    llm: FakeLLMServer,
    openai: httpx.Client,
    extra: dict[str, Any],
    param: str,
    code: str | None,
    message: str,
) -> None:
    error = rejected(openai, chat(**extra))
    assert error == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


@pytest.mark.parametrize(
    ("response_format", "param", "code", "message"),
    [
        ({"type": "json_object"}, "messages", None,
         "'messages' must contain the word 'json' in some form, to use 'response_format' of "
         "type 'json_object'."),
        ("json_object", "response_format", "invalid_type",
         "Invalid type for 'response_format': expected an object, but got a string instead."),
        ({"type": "xml"}, "response_format.type", "invalid_value",
         "Invalid value: 'xml'. Supported values are: 'json_object', 'json_schema', and "
         "'text'."),
        ({"type": "json_schema"}, "response_format.json_schema", "missing_required_parameter",
         "Missing required parameter: 'response_format.json_schema'."),
        ({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
         "response_format.json_schema.name", "missing_required_parameter",
         "Missing required parameter: 'response_format.json_schema.name'."),
        ({"type": "json_schema", "json_schema": {"name": "a b"}},
         "response_format.json_schema.name", "invalid_value",
         "Invalid 'response_format.json_schema.name': string does not match pattern. Expected "
         "a string that matches the pattern '^[a-zA-Z0-9_-]+$'."),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": []}},
         "response_format.json_schema.schema", "invalid_type",
         "Invalid type for 'response_format.json_schema.schema': expected an object, but got "
         "an array instead."),
    ],
)  # fmt: skip
def test_openai_response_format_is_validated(
    openai: httpx.Client,
    response_format: Any,
    param: str,
    code: str | None,
    message: str,
) -> None:
    error = rejected(openai, chat(response_format=response_format))
    assert error == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


def test_json_mode_echo_is_json_text(openai: httpx.Client) -> None:
    # the word may be anywhere in the messages, in any case, e.g. only in the system prompt
    body = chat("what is the capital of France?", response_format={"type": "json_object"})
    body["messages"][0]["content"] = "Answer in JSON."
    message = openai.post("/chat/completions", json=body).json()["choices"][0]["message"]
    assert json.loads(message["content"]) == {"echo": "what is the capital of France?"}

    schema = {"name": "answer", "schema": {"type": "object"}, "strict": True}
    body = chat("élan vital", response_format={"type": "json_schema", "json_schema": schema})
    body["stream"] = True  # json_schema needs no "json" in the messages
    with openai.stream("POST", "/chat/completions", json=body) as r:
        chunks = [json.loads(p) for p in sse_data(r.iter_lines())[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert json.loads(text) == {"echo": "élan vital"}

    plain = chat(response_format={"type": "text"})
    message = openai.post("/chat/completions", json=plain).json()["choices"][0]["message"]
    assert message["content"] == "fake reply to: hello there"


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"model": MODEL, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"}]},
         "messages.[1].role",
         "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
         "message with 'tool_calls'."),
        (tool_turns(("call_b", "sunny")), "messages.[2].tool_call_id",
         "Invalid parameter: 'tool_call_id' of 'call_b' not found in 'tool_calls' of previous "
         "message."),
        (tool_turns(ids=("call_a", "call_b")) | {"messages": [
            *tool_turns(("call_a", "sunny"), ids=("call_a", "call_b"))["messages"],
            {"role": "user", "content": "and?"}]},
         "messages.[1].role",
         "An assistant message with 'tool_calls' must be followed by tool messages responding "
         "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
         "call_b"),
        (tool_turns(ids=("call_a", "call_b")), "messages.[1].role",
         "An assistant message with 'tool_calls' must be followed by tool messages responding "
         "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
         "call_a, call_b"),
        ({"model": MODEL, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None}]},
         "messages.[1].content", "Invalid value for 'content': expected a string, got null."),
    ],
)  # fmt: skip
def test_openai_tool_turns_must_answer_the_preceding_tool_calls(
    openai: httpx.Client, body: dict[str, Any], param: str, message: str
) -> None:
    error = rejected(openai, body)
    assert error == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": None,
    }


def test_openai_tool_message_fields_are_checked(openai: httpx.Client) -> None:
    body = tool_turns(("call_a", "sunny"))
    del body["messages"][2]["tool_call_id"]
    error = rejected(openai, body)
    assert error["message"] == (
        "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'."
    )
    assert error["param"] == "messages.[2].tool_call_id"
    long_id = "call_" + "x" * 40
    error = rejected(openai, tool_turns((long_id, "sunny"), ids=(long_id,)))
    assert (error["param"], error["code"]) == (
        "messages[2].tool_call_id",
        "string_above_max_length",
    )
    body = tool_turns(("call_a", "sunny"))
    body["messages"][1]["tool_calls"][0]["function"]["name"] = "get weather"
    error = rejected(openai, body)
    assert error["param"] == "messages[1].tool_calls[0].function.name"
    body = tool_turns(("call_a", "sunny"))
    del body["messages"][1]["tool_calls"][0]["function"]["arguments"]
    error = rejected(openai, body)
    assert error["message"] == (
        "Missing required parameter: 'messages[1].tool_calls[0].function.arguments'."
    )
    body = tool_turns(("call_a", "sunny"))
    body["messages"][1]["tool_calls"] = []
    assert rejected(openai, body)["code"] == "empty_array"
    body = chat()
    body["messages"][1]["content"] = None
    error = rejected(openai, body)
    assert (error["param"], error["code"]) == ("messages[1].content", "invalid_type")


def test_openai_accepts_a_complete_tool_round_trip(openai: httpx.Client) -> None:
    for body in (
        tool_turns(("call_a", "sunny")),
        tool_turns(("call_b", "rain"), ("call_a", "sunny"), ids=("call_a", "call_b")),
        tool_turns(("call_a", "sunny")) | {"tool_choice": "auto"},
    ):
        body["messages"].append({"role": "assistant", "content": "It is sunny."})
        body["messages"].append({"role": "user", "content": "thanks"})
        r = openai.post("/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "fake reply to: thanks"
    # an assistant turn with tool calls may also carry text
    body = tool_turns(("call_a", "sunny"))
    body["messages"][1]["content"] = "Let me look."
    assert openai.post("/chat/completions", json=body).status_code == 200


def test_forced_tool_choice_answers_with_a_tool_call(
    llm: FakeLLMServer, openai: httpx.Client
) -> None:
    named = {"type": "function", "function": {"name": "get_time"}}
    cases = [
        ("required", "get_weather"),  # the first tool
        (named, "get_time"),
    ]
    for choice, name in cases:
        body = openai.post(
            "/chat/completions", json=chat(tools=[WEATHER, TIME], tool_choice=choice)
        ).json()
        choice_body = body["choices"][0]
        assert choice_body["finish_reason"] == "tool_calls"
        message = choice_body["message"]
        assert list(message)[:3] == ["role", "content", "tool_calls"]
        assert message["content"] is None
        assert message["refusal"] is None
        (call,) = message["tool_calls"]
        assert call["id"].startswith("call_")
        assert call == {
            "id": call["id"],
            "type": "function",
            "function": {"name": name, "arguments": "{}"},
        }
    # "auto", "none" and no tool_choice: the model answers in text (the echo)
    for extra in ({"tool_choice": "auto"}, {"tool_choice": "none"}, {}):
        body = openai.post("/chat/completions", json=chat(tools=[WEATHER], **extra)).json()
        assert body["choices"][0]["finish_reason"] == "stop"
        assert "tool_calls" not in body["choices"][0]["message"]
    # a scripted text reply still wins over the forced tool call
    llm.script(reply("no tools today"))
    body = openai.post("/chat/completions", json=chat(tools=[WEATHER], tool_choice="required"))
    assert body.json()["choices"][0]["message"]["content"] == "no tools today"


def test_scripted_tool_call_plain_and_streamed(llm: FakeLLMServer, openai: httpx.Client) -> None:
    arguments = '{"city":"San Francisco","state":"CA"}'
    llm.script(
        tool_call("get_weather", arguments, call_id="call_Weather1"),
        tool_call("get_weather", arguments),
    )
    body = openai.post("/chat/completions", json=chat(tools=[WEATHER])).json()
    (call,) = body["choices"][0]["message"]["tool_calls"]
    assert call == {
        "id": "call_Weather1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["completion_tokens"] > 0

    stream = chat(tools=[WEATHER], stream=True, stream_options={"include_usage": True})
    with openai.stream("POST", "/chat/completions", json=stream) as r:
        payloads = sse_data(r.iter_lines())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant"
    assert first["content"] is None
    (opening,) = first["tool_calls"]
    assert opening == {
        "index": 0,
        "id": opening["id"],
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert opening["id"].startswith("call_")
    middle = chunks[1:-2]
    assert len(middle) > 1  # the arguments come in pieces
    fragments = []
    for c in middle:
        delta = c["choices"][0]["delta"]
        (piece,) = delta["tool_calls"]
        fragment = piece["function"]["arguments"]
        assert delta == {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
        fragments.append(fragment)
        assert c["choices"][0]["finish_reason"] is None
        assert c["usage"] is None
    assert "".join(fragments) == arguments
    assert fragments[:3] == ['{"', "city", '":"']  # token-like, as OpenAI streams them
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_parallel_tool_calls_and_a_forced_stream(llm: FakeLLMServer, openai: httpx.Client) -> None:
    llm.script(tool_calls(tool_call("get_weather", '{"city": "Paris"}'), tool_call("get_time")))
    body = openai.post("/chat/completions", json=chat(tools=[WEATHER, TIME])).json()
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("get_weather", '{"city": "Paris"}'),
        ("get_time", "{}"),
    ]
    assert len({c["id"] for c in calls}) == 2

    llm.script(tool_calls(tool_call(arguments='{"a": 1}'), tool_call("get_time")))
    body = chat(tools=[WEATHER, TIME], stream=True)
    with openai.stream("POST", "/chat/completions", json=body) as r:
        chunks = [json.loads(p) for p in sse_data(r.iter_lines())[:-1]]
    assert "usage" not in chunks[0]
    deltas = [c["choices"][0]["delta"].get("tool_calls") for c in chunks[:-1]]
    assert all(d is not None and len(d) == 1 for d in deltas)
    by_index: dict[int, list[dict[str, Any]]] = {}
    for d in deltas:
        assert d is not None
        by_index.setdefault(d[0]["index"], []).append(d[0])
    assert sorted(by_index) == [0, 1]
    assert by_index[0][0]["function"]["name"] == "get_weather"  # unnamed: the first tool
    assert by_index[1][0]["function"]["name"] == "get_time"
    assert by_index[1][0]["id"].startswith("call_")
    assert "".join(p["function"]["arguments"] for p in by_index[0]) == '{"a": 1}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"

    # tool_choice "required" streams the forced call the same way, and a cut stream stops
    # inside it
    llm.script(cut_stream(after_chunks=1))
    body = chat(tools=[WEATHER], tool_choice="required", stream=True)
    lines: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        openai.stream("POST", "/chat/completions", json=body) as r,
    ):
        collect_lines(r, lines)
    (only,) = lines
    assert json.loads(only.removeprefix("data: "))["choices"][0]["delta"]["tool_calls"]


def test_tool_checks_in_every_openai_compatible_flavour(llm: FakeLLMServer) -> None:
    no_tools = {"tool_choice": "auto"}
    for name, model in FLAVOUR_MODELS.items():
        with flavour_client(llm, name) as client:
            r = client.post("/chat/completions", json=flavour_chat(model, **no_tools))
            assert r.status_code == 400, (name, r.text)
            assert "'tool_choice' is only allowed when 'tools'" in r.text, name
            body = flavour_chat(model, tools=[WEATHER], tool_choice="required")
            r = client.post("/chat/completions", json=body)
            assert r.status_code == 200, (name, r.text)
            message = r.json()["choices"][0]["message"]
            assert message["content"] is None, name
            assert message["tool_calls"][0]["function"]["name"] == "get_weather", name
            assert r.json()["choices"][0]["finish_reason"] == "tool_calls", name
            orphan = {
                "model": model,
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "tool", "tool_call_id": "call_a", "content": "x"},
                ],
            }
            r = client.post("/chat/completions", json=orphan)
            assert r.status_code == 400, name

    with flavour_client(llm, "deepseek") as client:
        r = client.post("/chat/completions", json=orphan | {"model": "deepseek-v4-flash"})
        assert r.json() == {
            "error": {
                "message": "Messages with role 'tool' must be a response to a preceding "
                "message with 'tool_calls'",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_request_error",
            }
        }
        schema = {"type": "json_schema", "json_schema": {"name": "a"}}
        body = flavour_chat("deepseek-v4-flash", "json please", response_format=schema)
        error = rejected(client, body)
        assert error["message"] == "This response_format type is unavailable now"
        body = flavour_chat("deepseek-v4-flash", stop=[str(i) for i in range(16)])
        assert client.post("/chat/completions", json=body).status_code == 200
    with flavour_client(llm, "dashscope") as client:
        r = client.post("/chat/completions", json=orphan | {"model": "qwen-plus"})
        error = r.json()["error"]
        assert error["message"].startswith("<400> InternalError.Algo.InvalidParameter: ")
        assert error["code"] == "invalid_parameter_error"
        assert r.json()["request_id"]
        body = flavour_chat("qwen-plus", response_format={"type": "json_object"})
        error = rejected(client, body)
        assert error["message"].startswith("'messages' must contain the word 'json'")
    with flavour_client(llm, "moonshot") as client:
        body = flavour_chat("kimi-k2.6", stop=list("abcdef"))
        error = rejected(client, body)
        assert set(error) == {"message", "type"}
        assert "maximum length 5" in error["message"]
    with flavour_client(llm, "ollama") as client:
        body = flavour_chat("llama3.2", stop=["a", 1])
        error = rejected(client, body)
        assert error["message"] == "invalid type for 'stop' field: float64"
        body = flavour_chat("llama3.2", stop=list("abcdefgh"))
        assert client.post("/chat/completions", json=body).status_code == 200


def test_a_tool_call_for_gemini_or_anthropic_is_a_test_bug(
    llm: FakeLLMServer, gemini: httpx.Client, anthropic: httpx.Client, openai: httpx.Client
) -> None:
    llm.script(tool_call("get_weather"), tool_call("get_weather"), tool_call())
    with pytest.raises(httpx.RemoteProtocolError):
        gemini.post(GENERATE, json=contents())
    with pytest.raises(httpx.RemoteProtocolError):
        anthropic.post("/v1/messages", json=messages())
    with pytest.raises(httpx.RemoteProtocolError):  # no name, and no tools to take one from
        openai.post("/chat/completions", json=chat())
    assert [type(e) for e in llm.errors] == [TypeError, TypeError, ValueError]
    assert "OpenAI-compatible wire only" in str(llm.errors[0])
    llm.errors.clear()
    with pytest.raises(ValueError, match="at least one"):
        tool_calls()
