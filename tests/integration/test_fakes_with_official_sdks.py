"""The fake provider driven by the providers' OFFICIAL SDKs (openai, anthropic, google-genai).

``test_fake_llm_server.py`` checks the fake's bytes with plain httpx; this file checks that
what it sends is what the real clients expect: they parse its bodies into their types, map its
errors to their exception classes and read its stream events. When an SDK rejects or
misparses something here, the fake (or its fixture) is wrong, not the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import anthropic
import httpx
import openai
import pydantic
import pytest
from anthropic.types import MessageParam
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from openai.types.chat import (
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from tests.fakes import (
    FakeLLMServer,
    error,
    no_done,
    overloaded,
    prompt_block,
    quota_exhausted,
    refusal,
    reply,
    safety_block,
    stream_error,
    tool_call,
)

KEY = "test-key"
OPENAI_MODEL = "gpt-6-luna"  # a current (reasoning) model
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
GEMINI_MODEL = "gemini-3.5-flash-lite"
# The same question, typed as each SDK's own message parameter (a TypedDict union apiece).
OPENAI_QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "capital of France"}
]
ANTHROPIC_QUESTION: list[MessageParam] = [{"role": "user", "content": "capital of France"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _clean(server: FakeLLMServer) -> Iterator[None]:
    server.reset_state()
    yield
    assert server.errors == []


@pytest.fixture
def oai(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=server.openai_base_url, api_key=KEY, max_retries=0, timeout=5
    ) as client:
        yield client


@pytest.fixture
def claude(server: FakeLLMServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key=KEY, max_retries=0, timeout=5
    ) as client:
        yield client


def gemini_client(server: FakeLLMServer, key: str = KEY) -> genai.Client:
    # google-genai 1.20 never retries a call (it has no retry_options yet): one attempt each.
    options = genai_types.HttpOptions(
        base_url=server.gemini_base_url, api_version="v1beta", timeout=5000
    )
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
def gem(server: FakeLLMServer) -> genai.Client:
    return gemini_client(server)


# ---- openai ----------------------------------------------------------------------------------


def test_openai_completion_parses_with_reasoning_usage(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    server.script(reply("Paris.", reasoning="the user wants a capital", prompt_tokens=12))
    completion = oai.chat.completions.create(
        model=OPENAI_MODEL, messages=OPENAI_QUESTION, max_completion_tokens=512
    )

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == OPENAI_MODEL
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "Paris."
    assert choice.message.refusal is None
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 6, 18)
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 5  # hidden, but counted
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    # What the SDK sent is what the fake validated.
    sent = server.last_request.json
    assert sent["max_completion_tokens"] == 512
    assert "max_tokens" not in sent


def test_openai_stream_with_include_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=OPENAI_MODEL,
        messages=OPENAI_QUESTION,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "fake reply to: capital of France"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "stop"
    assert all(f is None for f in finish[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 6)
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_stream_helper_accumulates_a_final_completion(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model=OPENAI_MODEL, messages=OPENAI_QUESTION, stream_options={"include_usage": True}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()

    assert "".join(deltas) == "fake reply to: capital of France"
    assert final.choices[0].message.content == "fake reply to: capital of France"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None
    assert final.usage.total_tokens == 9


def test_openai_refusal_plain_and_streamed(server: FakeLLMServer, oai: openai.OpenAI) -> None:
    server.script(refusal(), refusal("No, I won't."))
    message = (
        oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION).choices[0].message
    )
    assert message.content is None
    assert message.refusal == "I'm sorry, I can't help with that."

    with oai.chat.completions.stream(model=OPENAI_MODEL, messages=OPENAI_QUESTION) as stream:
        kinds = {e.type for e in stream}
        final = stream.get_final_completion()
    assert "refusal.done" in kinds
    assert "content.delta" not in kinds
    assert final.choices[0].message.refusal == "No, I won't."
    assert final.choices[0].message.content is None


def test_openai_safety_block_is_a_content_filter_finish(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    server.script(safety_block())
    choice = oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION).choices[0]
    assert (choice.finish_reason, choice.message.content) == ("content_filter", None)


def test_openai_rate_limit_and_quota_are_rate_limit_errors(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    server.script(error(429, retry_after=1, retry_after_ms=250), quota_exhausted())
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION)
    assert limited.value.status_code == 429
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.type == "requests"
    assert limited.value.response.headers["retry-after-ms"] == "250"
    assert "Rate limit reached for gpt-6-luna" in limited.value.message

    with pytest.raises(openai.RateLimitError) as quota:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION)
    assert quota.value.code == "insufficient_quota"
    assert quota.value.type == "insufficient_quota"
    assert "retry-after" not in quota.value.response.headers


def test_openai_sdk_retries_honour_retry_after_ms(server: FakeLLMServer) -> None:
    server.script(
        error(429, retry_after_ms=20), error(503, retry_after_ms=10), reply("third time lucky")
    )
    started = time.perf_counter()
    with openai.OpenAI(
        base_url=server.openai_base_url, api_key=KEY, max_retries=2, timeout=5
    ) as client:
        completion = client.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION)
    assert completion.choices[0].message.content == "third time lucky"
    assert server.hits == 3
    assert [r.headers.get("x-stainless-retry-count") for r in server.requests] == ["0", "1", "2"]
    assert time.perf_counter() - started < 0.5  # slept the 30 ms asked for, not its backoff


@pytest.mark.parametrize(
    ("kwargs", "exception", "code", "param"),
    [
        ({"model": "gpt-3.5-turbo"}, openai.NotFoundError, "model_not_found", None),
        ({"max_tokens": 100}, openai.BadRequestError, "unsupported_parameter", "max_tokens"),
        ({"temperature": 0.2}, openai.BadRequestError, "unsupported_value", "temperature"),
        ({"api_key": "sk-wrong"}, openai.AuthenticationError, "invalid_api_key", None),
    ],
    ids=["retired-model", "max-tokens-on-reasoning-model", "temperature", "bad-key"],
)
def test_openai_rejections_map_to_sdk_exceptions(
    server: FakeLLMServer,
    kwargs: dict[str, Any],
    exception: type[openai.APIStatusError],
    code: str,
    param: str | None,
) -> None:
    key = kwargs.pop("api_key", KEY)
    body: dict[str, Any] = {"model": OPENAI_MODEL, "messages": OPENAI_QUESTION, **kwargs}
    with (
        openai.OpenAI(base_url=server.openai_base_url, api_key=key, max_retries=0) as client,
        pytest.raises(exception) as caught,
    ):
        client.chat.completions.create(**body)
    assert caught.value.code == code
    assert caught.value.param == param
    assert isinstance(caught.value.body, dict)  # the SDK unwraps {"error": {...}}
    assert caught.value.body["message"] in caught.value.message
    assert server.pending == 0


def test_openai_server_errors(server: FakeLLMServer, oai: openai.OpenAI) -> None:
    server.script(error(500), overloaded())
    with pytest.raises(openai.InternalServerError) as broken:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION)
    assert (broken.value.status_code, broken.value.type) == (500, "server_error")
    with pytest.raises(openai.InternalServerError) as busy:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION)
    assert busy.value.status_code == 503


def test_openai_mid_stream_error_raises_api_error(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    server.script(stream_error(after_chunks=2, message="upstream fell over"))
    received: list[str] = []
    stream = oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION, stream=True)
    with pytest.raises(openai.APIError) as caught:
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    # The SDK raises the base APIError (not an APIStatusError: the HTTP status was 200).
    assert type(caught.value) is openai.APIError
    assert caught.value.message == "upstream fell over"
    assert caught.value.type == "server_error"
    assert "".join(received) == "fake reply"  # the two content chunks before the error


def test_openai_stream_without_done_still_ends_cleanly(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    server.script(no_done("ok then"))
    chunks = list(
        oai.chat.completions.create(model=OPENAI_MODEL, messages=OPENAI_QUESTION, stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "ok then"
    assert chunks[-1].choices[0].finish_reason == "stop"


class GetWeather(pydantic.BaseModel):
    city: str


class Echo(pydantic.BaseModel):
    echo: str


WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_openai_tool_calls_parse_plain_and_streamed(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    completion = oai.chat.completions.create(
        model=OPENAI_MODEL,
        messages=OPENAI_QUESTION,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.refusal is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.id.startswith("call_")
    assert (call.function.name, call.function.arguments) == ("get_weather", "{}")

    arguments = '{"city": "San Francisco"}'
    server.script(tool_call("get_weather", arguments), tool_call("get_weather", arguments))
    stream = oai.chat.completions.create(
        model=OPENAI_MODEL,
        messages=OPENAI_QUESTION,
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        d.function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for d in c.choices[0].delta.tool_calls
        if d.function is not None
    ]
    assert "".join(pieces) == arguments
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None

    with oai.chat.completions.stream(
        model=OPENAI_MODEL, messages=OPENAI_QUESTION, tools=[WEATHER_TOOL]
    ) as helper:
        kinds = [e.type for e in helper]
        final = helper.get_final_completion()
    assert "tool_calls.function.arguments.delta" in kinds
    assert "tool_calls.function.arguments.done" in kinds
    assert "content.delta" not in kinds
    message = final.choices[0].message
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "get_weather"
    assert message.tool_calls[0].function.arguments == arguments
    assert final.choices[0].finish_reason == "tool_calls"


def test_openai_parse_helpers_read_strict_tools_and_json_schema(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    server.script(tool_call("GetWeather", '{"city":"Paris"}'))
    parsed = oai.chat.completions.parse(
        model=OPENAI_MODEL,
        messages=OPENAI_QUESTION,
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    tool_calls = parsed.choices[0].message.tool_calls
    assert tool_calls is not None
    assert tool_calls[0].function.parsed_arguments == GetWeather(city="Paris")
    sent = server.last_request.json
    assert sent["tools"][0]["function"]["strict"] is True

    answer = oai.chat.completions.parse(
        model=OPENAI_MODEL, messages=OPENAI_QUESTION, response_format=Echo
    )
    assert answer.choices[0].message.parsed == Echo(echo="capital of France")
    assert server.last_request.json["response_format"]["type"] == "json_schema"


def test_openai_tool_rejections_are_bad_request_errors(
    server: FakeLLMServer, oai: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model=OPENAI_MODEL, messages=OPENAI_QUESTION, tool_choice="auto"
        )
    assert caught.value.param == "tool_choice"
    assert caught.value.code is None
    assert "'tool_choice' is only allowed when 'tools' are specified" in caught.value.message

    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model=OPENAI_MODEL, messages=OPENAI_QUESTION, response_format={"type": "json_object"}
        )
    assert caught.value.param == "messages"

    orphan: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=OPENAI_MODEL, messages=orphan)
    assert caught.value.param == "messages.[1].role"

    # the round trip the SDK itself builds from a tool-call answer is accepted
    first = oai.chat.completions.create(
        model=OPENAI_MODEL, messages=OPENAI_QUESTION, tools=[WEATHER_TOOL], tool_choice="required"
    )
    assistant = first.choices[0].message
    assert assistant.tool_calls is not None
    follow_up: list[ChatCompletionMessageParam] = [
        *OPENAI_QUESTION,
        cast("ChatCompletionMessageParam", assistant.model_dump(exclude_none=True)),
        {"role": "tool", "tool_call_id": assistant.tool_calls[0].id, "content": "sunny"},
    ]
    second = oai.chat.completions.create(
        model=OPENAI_MODEL, messages=follow_up, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == "fake reply to: capital of France"


def test_openai_models_list(oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert OPENAI_MODEL in ids


# ---- anthropic -------------------------------------------------------------------------------


def test_anthropic_message(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=256, system="be brief", messages=ANTHROPIC_QUESTION
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == ANTHROPIC_MODEL
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    block = message.content[0]
    assert isinstance(block, anthropic.types.TextBlock)
    assert block.text == "fake reply to: capital of France"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 6)
    # This SDK sends the key as a bearer token, not x-api-key (the fake used to answer 401).
    sent = server.last_request.headers
    assert sent["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in sent
    assert sent["anthropic-version"]


def test_anthropic_stream_events_and_final_message(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION, stream=True
        )
    )
    # The SDK swallows ping events; the rest arrive parsed in the documented order.
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 6,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]

    with claude.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "fake reply to: capital of France"
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 6)


def test_anthropic_thinking_blocks(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    server.script(*[reply("Paris.", reasoning="they ask for a capital")] * 2)
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    message = claude.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=2048, messages=ANTHROPIC_QUESTION, thinking=thinking
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    block = message.content[0]
    assert isinstance(block, anthropic.types.ThinkingBlock)
    assert block.thinking == "they ask for a capital"
    assert block.signature
    assert message.usage.output_tokens == 1 + 5

    with claude.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=2048, messages=ANTHROPIC_QUESTION, thinking=thinking
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds
    assert "signature" in kinds
    first = final.content[0]
    assert isinstance(first, anthropic.types.ThinkingBlock)
    assert (first.thinking, first.signature) == ("they ask for a capital", block.signature)
    assert final.content[1].type == "text"
    assert final.content[1].text == "Paris."


def test_anthropic_refusal(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    server.script(refusal(), refusal())
    message = claude.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION
    )
    assert (message.stop_reason, message.content) == ("refusal", [])
    with claude.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION
    ) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.content) == ("refusal", [])


def test_anthropic_rate_limit_overloaded_and_credit(
    server: FakeLLMServer, claude: anthropic.Anthropic
) -> None:
    server.script(error(429, retry_after=15), overloaded(), error(500), quota_exhausted())
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["retry-after"] == "15"
    assert limited.value.request_id == "req_fake"
    assert isinstance(limited.value.body, dict)
    assert limited.value.body["error"]["type"] == "rate_limit_error"

    with pytest.raises(anthropic.InternalServerError) as busy:
        claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION)
    assert isinstance(busy.value, anthropic.OverloadedError)
    assert busy.value.status_code == 529

    with pytest.raises(anthropic.InternalServerError) as broken:
        claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION)
    assert broken.value.status_code == 500

    with pytest.raises(anthropic.BadRequestError) as credit:
        claude.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION)
    assert "credit balance is too low" in credit.value.message


def test_anthropic_rejections(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as retired:
        claude.messages.create(
            model="claude-3-5-sonnet-20240620", max_tokens=256, messages=ANTHROPIC_QUESTION
        )
    assert isinstance(retired.value.body, dict)
    assert retired.value.body["error"] == {
        "type": "not_found_error",
        "message": "model: claude-3-5-sonnet-20240620",
    }

    # The SDK insists on max_tokens; a raw post is how a caller could leave it out.
    with pytest.raises(anthropic.BadRequestError) as no_max:
        claude.post(
            "/v1/messages",
            cast_to=anthropic.types.Message,
            body={"model": ANTHROPIC_MODEL, "messages": ANTHROPIC_QUESTION},
        )
    assert "max_tokens: Field required" in no_max.value.message

    with (
        anthropic.Anthropic(
            base_url=server.anthropic_base_url, api_key="sk-ant-wrong", max_retries=0
        ) as wrong,
        pytest.raises(anthropic.AuthenticationError),
    ):
        wrong.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION)
    assert server.hits == 3


def test_anthropic_mid_stream_error_event(
    server: FakeLLMServer, claude: anthropic.Anthropic
) -> None:
    server.script(stream_error(after_chunks=1, message="Overloaded", kind="overloaded"))
    seen: list[str] = []
    with (
        claude.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION
        ) as s,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        seen.extend(s.text_stream)
    assert seen == ["fake"]
    # The response was a 200, so the SDK raises a plain APIStatusError (not OverloadedError):
    # what went wrong is only in the event's body.
    assert type(caught.value) is anthropic.APIStatusError
    assert caught.value.status_code == 200
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


# ---- google-genai ----------------------------------------------------------------------------


def test_gemini_generate_content(server: FakeLLMServer, gem: genai.Client) -> None:
    server.script(reply("Paris.", reasoning="they want a capital", reasoning_tokens=30))
    response = gem.models.generate_content(
        model=GEMINI_MODEL,
        contents="capital of France",
        config=genai_types.GenerateContentConfig(
            system_instruction="be brief", temperature=0.2, max_output_tokens=64
        ),
    )
    assert response.text == "Paris."
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == genai_types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count) == (5, 1)
    assert usage.thoughts_token_count == 30
    assert usage.total_token_count == 5 + 1 + 30
    assert response.model_version == GEMINI_MODEL  # (this SDK version drops responseId)
    sent = server.last_request
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.json["generationConfig"]["maxOutputTokens"] == 64


def test_gemini_thought_parts(server: FakeLLMServer, gem: genai.Client) -> None:
    server.script(reply("Paris.", reasoning="they want a capital"))
    config = genai_types.GenerateContentConfig(
        thinking_config=genai_types.ThinkingConfig(include_thoughts=True)
    )
    response = gem.models.generate_content(
        model=GEMINI_MODEL, contents="capital of France", config=config
    )
    assert response.candidates is not None
    content = response.candidates[0].content
    assert content is not None
    assert content.parts is not None
    assert [(p.thought, p.text) for p in content.parts] == [
        (True, "they want a capital"),
        (None, "Paris."),
    ]
    assert response.text == "Paris."  # thoughts are not the answer


def test_gemini_safety_and_prompt_blocks(server: FakeLLMServer, gem: genai.Client) -> None:
    server.script(safety_block(), prompt_block("PROHIBITED_CONTENT"))
    blocked = gem.models.generate_content(model=GEMINI_MODEL, contents="something bad")
    assert blocked.candidates is not None
    candidate = blocked.candidates[0]
    assert candidate.finish_reason == genai_types.FinishReason.SAFETY
    assert candidate.content is None
    assert candidate.safety_ratings is not None
    assert any(r.blocked for r in candidate.safety_ratings)
    assert blocked.text is None

    refused = gem.models.generate_content(model=GEMINI_MODEL, contents="something worse")
    assert refused.candidates is None
    assert refused.prompt_feedback is not None
    assert refused.prompt_feedback.block_reason == genai_types.BlockedReason.PROHIBITED_CONTENT
    assert refused.text is None


def test_gemini_stream(gem: genai.Client) -> None:
    chunks = list(
        gem.models.generate_content_stream(model=GEMINI_MODEL, contents="capital of France")
    )
    assert len(chunks) == 6
    assert "".join(c.text or "" for c in chunks) == "fake reply to: capital of France"
    last = chunks[-1]
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert last.usage_metadata is not None
    assert last.usage_metadata.candidates_token_count == 6


def test_gemini_rate_limit_carries_retry_info(server: FakeLLMServer, gem: genai.Client) -> None:
    server.script(error(429, retry_delay="37s"), quota_exhausted())
    with pytest.raises(genai_errors.ClientError) as limited:
        gem.models.generate_content(model=GEMINI_MODEL, contents="hi")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    details = limited.value.details["error"]["details"]
    retry = next(d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
    assert retry["retryDelay"] == "37s"
    quota = next(d for d in details if d["@type"].endswith("QuotaFailure"))
    assert quota["violations"][0]["quotaDimensions"]["model"] == GEMINI_MODEL

    with pytest.raises(genai_errors.ClientError) as daily:
        gem.models.generate_content(model=GEMINI_MODEL, contents="hi")
    assert daily.value.code == 429
    assert not any(
        d["@type"].endswith("RetryInfo") for d in daily.value.details["error"]["details"]
    )


def test_gemini_client_errors(server: FakeLLMServer, gem: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as retired:
        gem.models.generate_content(model="gemini-1.5-pro", contents="hi")
    assert (retired.value.code, retired.value.status) == (404, "NOT_FOUND")
    assert retired.value.message is not None
    assert retired.value.message.startswith("models/gemini-1.5-pro is not found")

    config = genai_types.GenerateContentConfig(temperature=2.5)
    with pytest.raises(genai_errors.ClientError) as invalid:
        gem.models.generate_content(model=GEMINI_MODEL, contents="hi", config=config)
    assert (invalid.value.code, invalid.value.status) == (400, "INVALID_ARGUMENT")

    with pytest.raises(genai_errors.ClientError) as bad_key:
        gemini_client(server, "AIza-wrong").models.generate_content(
            model=GEMINI_MODEL, contents="hi"
        )
    assert bad_key.value.code == 400
    assert bad_key.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert server.hits == 3


def test_gemini_server_errors(server: FakeLLMServer, gem: genai.Client) -> None:
    server.script(overloaded(), error(500))
    with pytest.raises(genai_errors.ServerError) as busy:
        gem.models.generate_content(model=GEMINI_MODEL, contents="hi")
    assert (busy.value.code, busy.value.status) == (503, "UNAVAILABLE")
    with pytest.raises(genai_errors.ServerError) as broken:
        next(gem.models.generate_content_stream(model=GEMINI_MODEL, contents="hi"))
    assert (broken.value.code, broken.value.status) == (500, "INTERNAL")


def test_gemini_mid_stream_error_is_an_empty_chunk_to_this_sdk(
    server: FakeLLMServer, gem: genai.Client
) -> None:
    # Google sends `data: {"error": {...}}` and ends the stream. google-genai 1.20 does not
    # raise on it: it parses the event as a response with nothing set, so a client has to
    # treat "no candidates and no prompt_feedback" as a failed stream.
    server.script(stream_error(after_chunks=1))
    chunks = list(gem.models.generate_content_stream(model=GEMINI_MODEL, contents="hi"))
    assert [c.text for c in chunks[:-1]] == ["fake"]
    last = chunks[-1]
    assert (last.candidates, last.prompt_feedback, last.usage_metadata) == (None, None, None)


# ---- model lists and async clients -----------------------------------------------------------


def test_model_lists_parse(claude: anthropic.Anthropic, gem: genai.Client) -> None:
    assert ANTHROPIC_MODEL in [m.id for m in claude.models.list()]
    assert f"models/{GEMINI_MODEL}" in [m.name for m in gem.models.list()]


async def test_async_clients_stream(server: FakeLLMServer) -> None:
    expected = "fake reply to: capital of France"
    async with openai.AsyncOpenAI(
        base_url=server.openai_base_url, api_key=KEY, max_retries=0
    ) as oai:
        stream = await oai.chat.completions.create(
            model=OPENAI_MODEL, messages=OPENAI_QUESTION, stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == expected

    async with (
        anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key=KEY, max_retries=0
        ) as claude,
        claude.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_QUESTION
        ) as s,
    ):
        assert "".join([t async for t in s.text_stream]) == expected
        assert (await s.get_final_message()).stop_reason == "end_turn"

    # google-genai 1.20 has no way to close its aio httpx client: keep no idle connection in
    # it, or one would outlive this test's event loop.
    options = genai_types.HttpOptions(
        base_url=server.gemini_base_url,
        api_version="v1beta",
        async_client_args={"limits": httpx.Limits(max_keepalive_connections=0)},
    )
    gem = genai.Client(api_key=KEY, http_options=options)
    chunks = [
        c
        async for c in await gem.aio.models.generate_content_stream(
            model=GEMINI_MODEL, contents="capital of France"
        )
    ]
    assert "".join(c.text or "" for c in chunks) == expected
    with pytest.raises(genai_errors.ClientError) as retired:
        await gem.aio.models.generate_content(model="gemini-1.5-pro", contents="hi")
    assert retired.value.code == 404
