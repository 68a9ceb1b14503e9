"""Message translation to and from each wire format, without a network: httpx's
MockTransport stands in for the provider's socket, the adapters are the real ones."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from adapters.llm.gemini import GeminiClient
from adapters.llm.openai_compatible import OpenAICompatibleClient
from adapters.llm.upstream import FailureKind, UpstreamFailure, UpstreamModel
from application.ports import ChatRequest, ChatTurn

PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

REQUEST = ChatRequest(
    model="public-id",
    messages=[
        ChatTurn(role="system", content="Be brief."),
        ChatTurn(role="user", content="hi"),
        ChatTurn(role="assistant", content="hello"),
        ChatTurn(role="user", content="what is this?", image_url=PNG),
    ],
    temperature=0.3,
    max_tokens=64,
)


def _client(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_openai_request_and_response_translation() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "choices": [
                    {
                        "message": {"role": "assistant", "content": "a pixel"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
            },
        )

    client = OpenAICompatibleClient(
        name="OpenAI", base_url="http://x/v1/", api_key="k", http=_client(handler)
    )
    completion = await client.complete(UpstreamModel(name="gpt-4o-mini"), REQUEST)
    body = json.loads(seen[0].content)
    assert str(seen[0].url) == "http://x/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer k"
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 64  # a generic OpenAI-compatible server
    assert body["messages"][:3] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    assert body["messages"][3]["content"][1] == {"type": "image_url", "image_url": {"url": PNG}}
    assert (completion.text, completion.finish_reason) == ("a pixel", "stop")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 2)


async def test_openai_stream_collects_deltas_and_final_usage() -> None:
    chunks = [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "a "}}]},
        {"choices": [{"delta": {"content": "pixel"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    ]
    stream = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream_options"] == {"include_usage": True}
        return httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})

    client = OpenAICompatibleClient(
        name="OpenAI", base_url="http://x/v1", api_key="k", http=_client(handler)
    )
    deltas = [d async for d in client.stream(UpstreamModel(name="m"), REQUEST)]
    assert "".join(d.text for d in deltas) == "a pixel"
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is not None
    assert deltas[-1].usage.completion_tokens == 2


async def test_an_openai_stream_without_done_is_a_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text='data: {"choices":[{"delta":{"content":"a"}}]}\n\n')

    client = OpenAICompatibleClient(
        name="OpenAI", base_url="http://x", api_key="", http=_client(handler)
    )
    with pytest.raises(UpstreamFailure) as failure:
        _ = [d async for d in client.stream(UpstreamModel(name="m"), REQUEST)]
    assert failure.value.kind is FailureKind.TRANSPORT


async def test_gemini_request_and_response_translation() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": "a pixel"}]},
                        "finishReason": "MAX_TOKENS",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3},
            },
        )

    http = _client(handler)
    client = GeminiClient(
        name="Google",
        base_url="http://g",
        api_key="gk",
        http=http,
    )
    completion = await client.complete(UpstreamModel(name="gemini-2.0-flash"), REQUEST)
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert seen[0].headers["x-goog-api-key"] == "gk"
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 64}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    image = body["contents"][2]["parts"][1]["inline_data"]
    assert image["mime_type"] == "image/png"
    assert (completion.text, completion.finish_reason) == ("a pixel", "length")
    assert completion.usage.prompt_tokens == 9


async def test_gemini_merges_consecutive_turns_of_one_role() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]},
        )

    http = _client(handler)
    client = GeminiClient(
        name="Google",
        base_url="http://g",
        api_key="gk",
        http=http,
    )
    request = ChatRequest(
        model="m",
        temperature=1,
        max_tokens=5,
        messages=[ChatTurn(role="user", content="one"), ChatTurn(role="user", content="two")],
    )
    await client.complete(UpstreamModel(name="m"), request)
    assert seen[0]["contents"] == [{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}]


async def test_gemini_stream_reads_usage_from_the_last_chunk() -> None:
    chunks = [
        {
            "candidates": [{"content": {"parts": [{"text": "a "}]}}],
            "usageMetadata": {"promptTokenCount": 4},
        },
        {
            "candidates": [{"content": {"parts": [{"text": "pixel"}]}, "finishReason": "SAFETY"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
        },
    ]
    stream = "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["alt"] == "sse"
        return httpx.Response(200, text=stream)

    http = _client(handler)
    client = GeminiClient(
        name="Google",
        base_url="http://g",
        api_key="gk",
        http=http,
    )
    deltas = [
        d
        async for d in client.stream(
            UpstreamModel(name="m"),
            REQUEST.__class__(
                model="m",
                messages=[ChatTurn(role="user", content="x")],
                temperature=0,
                max_tokens=5,
            ),
        )
    ]
    assert "".join(d.text for d in deltas) == "a pixel"
    assert deltas[-1].finish_reason == "content_filter"
    assert deltas[-1].usage is not None
    assert deltas[-1].usage.completion_tokens == 2


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, FailureKind.RATE_LIMITED, True),
        (500, FailureKind.SERVER_ERROR, True),
        (503, FailureKind.UNAVAILABLE, True),
        (401, FailureKind.AUTH, False),
        (403, FailureKind.AUTH, False),
        (400, FailureKind.BAD_REQUEST, False),
        (404, FailureKind.BAD_REQUEST, False),
    ],
)
async def test_status_codes_are_classified(status: int, kind: FailureKind, retryable: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json={"error": {"message": "secret-key is wrong"}}, headers={"retry-after": "7"}
        )

    client = OpenAICompatibleClient(
        name="OpenAI", base_url="http://x", api_key="secret-key", http=_client(handler)
    )
    with pytest.raises(UpstreamFailure) as failure:
        await client.complete(UpstreamModel(name="m"), REQUEST)
    assert failure.value.kind is kind
    assert failure.value.retryable is retryable
    assert failure.value.retry_after == 7
    assert "secret-key" not in str(failure.value)
    assert "secret-key" not in str(failure.value.to_port_error())


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"choices": []}', b'{"choices": [{"message": {"content": 5}}]}', b"[]"],
)
async def test_malformed_bodies_are_provider_errors(body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    client = OpenAICompatibleClient(
        name="OpenAI", base_url="http://x", api_key="k", http=_client(handler)
    )
    with pytest.raises(UpstreamFailure) as failure:
        await client.complete(UpstreamModel(name="m"), REQUEST)
    assert failure.value.kind is FailureKind.MALFORMED
    assert failure.value.to_port_error().code == "provider_error"


# ---- the providers' own error bodies (shapes from tests/fixtures/providers/) -------------


def _failing(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers or {})

    return handler


async def _failure_of(client: Any) -> UpstreamFailure:
    with pytest.raises(UpstreamFailure) as failure:
        await client.complete(UpstreamModel(name="m"), REQUEST)
    return failure.value


async def test_the_providers_message_is_kept_and_retry_after_ms_wins() -> None:
    body = {
        "error": {
            "message": "Rate limit reached for gpt-6-luna on tokens per min (TPM).",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    handler = _failing(429, body, {"retry-after": "2", "retry-after-ms": "1500"})
    client = OpenAICompatibleClient(
        name="OpenAI", base_url="http://x", api_key="k", http=_client(handler)
    )
    failure = await _failure_of(client)
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == 1.5
    assert "Rate limit reached for gpt-6-luna" in str(failure.to_port_error())


async def test_insufficient_quota_is_billing_not_a_rate_limit() -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    client = OpenAICompatibleClient(
        name="OpenAI", base_url="http://x", api_key="k", http=_client(_failing(429, body))
    )
    failure = await _failure_of(client)
    assert (failure.kind, failure.retryable) == (FailureKind.QUOTA, False)
    assert failure.to_port_error().code == "provider_quota"


async def test_geminis_wait_is_read_from_retry_info_in_the_body() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            ],
        }
    }
    client = GeminiClient(
        name="Google", base_url="http://g", api_key="gk", http=_client(_failing(429, body))
    )
    failure = await _failure_of(client)
    assert (failure.kind, failure.retry_after) == (FailureKind.RATE_LIMITED, 37.0)


async def test_a_bad_gemini_key_is_an_auth_failure() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ],
        }
    }
    client = GeminiClient(
        name="Google", base_url="http://g", api_key="gk", http=_client(_failing(400, body))
    )
    failure = await _failure_of(client)
    assert failure.to_port_error().code == "provider_auth"
    assert "API key not valid" in failure.detail
