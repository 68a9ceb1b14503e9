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
