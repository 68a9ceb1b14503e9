"""Self-test of ``tests.fakes.llm_server``: real httpx clients against the fake provider."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import (
    FakeLLMServer,
    cut_stream,
    delay,
    error,
    malformed,
    reply,
    reset,
    slow_stream,
)

KEY = "test-key"
MODEL = "gpt-fake"
GEMINI_MODEL = "gemini-fake"
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
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    # Words: "be brief" + "first question" + "first answer" + "hello there" = 8 in, 5 out.
    assert body["usage"] == {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}

    (recorded,) = llm.requests
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/v1/chat/completions", {})
    assert recorded.headers["authorization"] == f"Bearer {KEY}"
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.json == chat("hello there")
    assert recorded.provider == "openai"
    assert llm.hits == 1


def test_openai_content_parts_and_models_list(openai: httpx.Client) -> None:
    parts = [{"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": "x"}}]
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
    assert usage_chunk["usage"] == {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}
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
    }
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
    assert blocked == {"finishReason": "SAFETY", "index": 0}
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
            "message": "Rate limit reached for requests. Please try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }

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
    assert scripted["usage"] == {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}

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
