"""Parley's OpenAI-compatible endpoint (/v1) driven by the official ``openai`` SDK.

A real Parley server (real HTTP, real database) whose models are served by the fake
provider (``tests/fakes/llm_server.py``) on OpenAI's and Gemini's wire formats. Each test
asserts what a client of the SDK sees: answers, streams, models, the SDK's exception
classes, its retries on 429, tools, usage records, conversations bound to a call, and
``Idempotency-Key`` retries; one test reads the raw wire shapes with httpx."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.admin_support import make_staff
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query, running_server

KEY = "sk-test-openai-endpoint-0123456789"
MODEL = "gpt-6.1-sol"  # OpenAI wire, no fallback chain
WITH_FALLBACK = "gpt-6-luna"  # falls back to FALLBACK
FALLBACK = "gemini-3.8-flash"  # Gemini wire: takes no tools through Parley
CLASSIC = "classic"  # OpenAI wire, not a reasoning model upstream: takes top_p, stop, images
NO_TOOLS = "no-tools"  # OpenAI wire, but the operator says its server takes no tools
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
ECHO = "fake reply to: "

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


# ---- servers and users ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


def _providers(upstream: FakeLLMServer) -> dict[str, dict[str, Any]]:
    return {
        "openai": {"api_key": KEY, "base_url": upstream.openai_base_url},
        "gemini": {"api_key": KEY, "base_url": upstream.base_url},
    }


@pytest.fixture(scope="module")
def parley(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("openai-endpoint"),
        providers=_providers(upstream),
        models={
            CLASSIC: {"provider": "openai", "upstream": "gpt-4o-mini", "images": True},
            NO_TOOLS: {"provider": "openai", "upstream": "gpt-4o-mini", "tools": False},
        },
        fallbacks={WITH_FALLBACK: [FALLBACK]},
        default_model=WITH_FALLBACK,
        provider_backoff_initial=0.01,
        provider_backoff_max=0.05,
        provider_read_timeout=2.0,
        provider_deadline=5.0,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def limited(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    """A server with a small per-user rate limit."""
    with running_server(
        database_url,
        tmp_path_factory.mktemp("openai-limited"),
        providers=_providers(upstream),
        rate_limit="3/second",
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer, upstream: FakeLLMServer) -> Iterator[httpx.Client]:
    upstream.reset_state()
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client
    assert upstream.errors == []  # the fake found no bug in what Parley sent it


@dataclass
class Caller:
    account: Account
    token: str  # a Parley API token (POST /api/auth/token/)

    @property
    def token_auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def _caller(http: httpx.Client, prefix: str = "sdk") -> Caller:
    account = register(http, prefix)
    issued = http.post(
        "/api/auth/token/", json={"username": account.username, "password": account.password}
    )
    assert issued.status_code == 200, issued.text
    return Caller(account, issued.json()["token"])


@pytest.fixture
def me(http: httpx.Client) -> Caller:
    return _caller(http, "me")


@pytest.fixture
def other(http: httpx.Client) -> Caller:
    return _caller(http, "other")


def _sdk(server: RunningServer, api_key: str, **options: Any) -> openai.OpenAI:
    options.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=api_key, **options)


@pytest.fixture
def sdk(parley: RunningServer, me: Caller) -> Iterator[openai.OpenAI]:
    with _sdk(parley, me.token) as client:
        yield client


def _conversation(http: httpx.Client, who: Caller) -> int:
    created = http.post("/api/conversations/", headers=who.account.bearer)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _finish(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


# ---- answers -------------------------------------------------------------------------------


def test_a_plain_completion_with_an_api_token(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    upstream.script(fake.reply("Paris is the capital.", prompt_tokens=9, completion_tokens=4))
    completion = sdk.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Paris is the capital."
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (9, 4, 13)
    assert abs(completion.created - time.time()) < 60

    sent = upstream.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == MODEL
    assert [(m["role"], m["content"]) for m in sent.json["messages"]] == [
        ("system", "Answer in one sentence."),
        ("user", "What is the capital of France?"),
    ]


def test_a_jwt_access_token_is_an_api_key_too(
    parley: RunningServer, me: Caller, upstream: FakeLLMServer
) -> None:
    with _sdk(parley, me.account.access) as client:
        completion = client.chat.completions.create(model=MODEL, messages=_user("hi by jwt"))
        assert completion.choices[0].message.content == f"{ECHO}hi by jwt"
        assert MODEL in {m.id for m in client.models.list()}


def test_finish_reason_length_when_the_model_ran_out_of_tokens(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(fake.reply("It all began", finish_reason="length"))
    completion = sdk.chat.completions.create(
        model=MODEL, messages=_user("tell me a long story"), max_completion_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "It all began"
    assert upstream.last_request.json["max_completion_tokens"] == 3


def test_the_answer_names_the_fallback_that_answered(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(fake.error(500), fake.error(500), fake.error(500))
    completion = sdk.chat.completions.create(model=WITH_FALLBACK, messages=_user("anyone?"))
    assert completion.model == FALLBACK
    assert completion.choices[0].message.content == f"{ECHO}anyone?"
    assert [r.provider for r in upstream.requests] == ["openai"] * 3 + ["gemini"]

    upstream.script(fake.error(500), fake.error(500), fake.error(500))
    chunks = list(
        sdk.chat.completions.create(
            model=WITH_FALLBACK, messages=_user("anyone streaming?"), stream=True
        )
    )
    assert {c.model for c in chunks} == {FALLBACK}
    assert _text(chunks) == f"{ECHO}anyone streaming?"


def test_a_stream_with_usage(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    answer = "one two three four five six"
    upstream.script(fake.reply(answer, prompt_tokens=5, completion_tokens=6))
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL,
            messages=_user("count to six"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len(chunks) >= 4
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert {c.model for c in chunks} == {MODEL}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert _text(chunks) == answer
    assert _finish(chunks) == ["stop"]
    *content, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 6)
    assert last.usage.total_tokens == 11
    assert all(c.usage is None for c in content)


def test_a_stream_without_include_usage_has_no_usage_chunk(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(fake.reply("short and sweet", finish_reason="length"))
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=_user("go"), stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert _text(chunks) == "short and sweet"
    assert _finish(chunks) == ["length"]
    assert chunks[-1].choices[0].finish_reason == "length"


def test_the_async_client(parley: RunningServer, me: Caller, upstream: FakeLLMServer) -> None:
    async def run() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(
            base_url=f"{parley.base_url}/v1", api_key=me.token, max_retries=0
        ) as client:
            plain, stream = await asyncio.gather(
                client.chat.completions.create(model=MODEL, messages=_user("async plain")),
                client.chat.completions.create(
                    model=MODEL,
                    messages=_user("async stream"),
                    stream=True,
                    stream_options={"include_usage": True},
                ),
            )
            chunks = [chunk async for chunk in stream]
            assert chunks[-1].choices == []
            assert chunks[-1].usage is not None
            assert chunks[-1].usage.completion_tokens > 0
            models = [m.id async for m in client.models.list()]
            assert MODEL in models
            return plain.choices[0].message.content, _text(chunks)

    plain, streamed = asyncio.run(run())
    assert plain == f"{ECHO}async plain"
    assert streamed == f"{ECHO}async stream"


def test_a_failure_after_the_first_token_raises_in_the_stream(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(fake.stream_error(after_chunks=2))
    stream = sdk.chat.completions.create(model=MODEL, messages=_user("and then?"), stream=True)
    received: list[ChatCompletionChunk] = []

    def read() -> None:
        received.extend(stream)

    with pytest.raises(openai.APIError) as raised:
        read()
    assert received  # the first tokens came through before the error
    assert _text(received)
    assert isinstance(raised.value.body, dict)
    assert raised.value.code  # Parley's stable code
    assert not isinstance(raised.value, openai.APIStatusError)  # it came inside a 200 stream


# ---- models --------------------------------------------------------------------------------


def test_models_list_and_retrieve(sdk: openai.OpenAI, http: httpx.Client) -> None:
    models = {m.id: m for m in sdk.models.list()}
    assert {MODEL, WITH_FALLBACK, FALLBACK} <= set(models)
    assert {m.object for m in models.values()} == {"model"}
    native = {m["id"]: m for m in http.get("/api/v1/models/").json()}
    assert set(models) == set(native)
    assert models[MODEL].owned_by == native[MODEL]["provider"] == "OpenAI"
    assert models[FALLBACK].owned_by == "Google"

    one = sdk.models.retrieve(FALLBACK)
    assert (one.id, one.object, one.owned_by) == (FALLBACK, "model", "Google")
    assert isinstance(one.created, int)

    with pytest.raises(openai.NotFoundError) as raised:
        sdk.models.retrieve("no-such-model")
    assert raised.value.status_code == 404
    assert raised.value.code == "model_not_found"
    assert raised.value.type == "invalid_request_error"


# ---- errors as the SDK's exceptions --------------------------------------------------------


def test_a_bad_key_is_an_authentication_error(
    parley: RunningServer, upstream: FakeLLMServer
) -> None:
    for key in ("not-a-parley-token", "0" * 40, "a.b.c"):
        with _sdk(parley, key) as client:
            with pytest.raises(openai.AuthenticationError) as raised:
                client.chat.completions.create(model=MODEL, messages=_user("hi"))
            assert raised.value.status_code == 401
            assert raised.value.type == "authentication_error"
            assert raised.value.response.headers["WWW-Authenticate"].startswith("Bearer")
            with pytest.raises(openai.AuthenticationError):
                client.models.list()
    assert upstream.hits == 0


def test_a_revoked_token_is_an_authentication_error(
    parley: RunningServer, http: httpx.Client, me: Caller
) -> None:
    with _sdk(parley, me.token) as client:
        assert client.models.list().data
        assert http.delete("/api/auth/token/", headers=me.token_auth).status_code == 204
        with pytest.raises(openai.AuthenticationError):
            client.models.list()


def test_an_unknown_model_is_not_found(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    for stream in (False, True):
        with pytest.raises(openai.NotFoundError) as raised:
            sdk.chat.completions.create(
                model="gpt-unknown-9", messages=_user("hello?"), stream=stream
            )
        assert raised.value.status_code == 404
        assert raised.value.code == "model_not_found"
        assert "gpt-unknown-9" in raised.value.message
    assert upstream.hits == 0


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "abracadabra"}]}, "messages[0].role"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_invalid_requests_are_bad_request_errors_naming_the_field(
    sdk: openai.OpenAI, upstream: FakeLLMServer, options: dict[str, Any], param: str
) -> None:
    arguments: dict[str, Any] = {"model": MODEL, "messages": _user("hi")} | options
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(**arguments)
    error = raised.value
    assert error.status_code == 400
    assert error.type == "invalid_request_error"
    assert error.param == param
    assert error.code == "invalid"
    assert isinstance(error.body, dict)
    assert error.body["param"] == param
    assert param.split("[")[0] in error.message
    assert upstream.hits == 0


def test_a_too_long_message_is_a_bad_request(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model=MODEL, messages=_user("x" * 4001))
    assert raised.value.code == "message_too_long"
    assert upstream.hits == 0


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [
        (fake.error(503), 503, "provider_unavailable"),
        (fake.error(500), 502, "provider_error"),
        (fake.error(401), 502, "provider_auth"),
        (fake.malformed(), 502, "provider_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_provider_failures_are_internal_server_errors(
    sdk: openai.OpenAI,
    upstream: FakeLLMServer,
    behaviour: fake.Behaviour,
    status: int,
    code: str,
    stream: bool,
) -> None:
    upstream.default = behaviour
    with pytest.raises(openai.InternalServerError) as raised:
        sdk.chat.completions.create(model=MODEL, messages=_user("are you there?"), stream=stream)
    error = raised.value
    assert error.status_code == status
    assert error.code == code
    assert error.type == "api_error"
    assert KEY not in error.message
    assert KEY not in error.response.text


def test_the_sdk_retries_a_provider_failure_by_itself(
    parley: RunningServer, me: Caller, upstream: FakeLLMServer
) -> None:
    statuses: list[int] = []
    hooks = {"response": [lambda response: statuses.append(response.status_code)]}
    with (
        httpx2.Client(event_hooks=hooks) as transport,
        _sdk(parley, me.token, max_retries=1, http_client=transport) as client,
    ):
        upstream.script(fake.error(503), fake.error(503), fake.error(503))
        completion = client.chat.completions.create(model=MODEL, messages=_user("retry me"))
    assert completion.choices[0].message.content == f"{ECHO}retry me"
    assert statuses == [503, 200]


# ---- rate limit: the SDK's retry on 429 ----------------------------------------------------


def test_the_sdk_retries_after_a_429_and_raises_rate_limit_error_without_retries(
    limited: RunningServer, upstream: FakeLLMServer
) -> None:
    upstream.reset_state()
    with httpx.Client(base_url=limited.base_url, timeout=30) as http:
        caller = _caller(http, "limited")
    statuses: list[int] = []
    hooks = {"response": [lambda response: statuses.append(response.status_code)]}
    with (
        httpx2.Client(event_hooks=hooks) as transport,
        _sdk(limited, caller.token, max_retries=0, http_client=transport) as once,
        _sdk(limited, caller.token, max_retries=3, http_client=transport) as patient,
    ):
        time.sleep(1.05)  # a fresh window for this user
        for _ in range(3):
            assert once.chat.completions.create(model=MODEL, messages=_user("fast")).choices
        with pytest.raises(openai.RateLimitError) as raised:
            once.chat.completions.create(model=MODEL, messages=_user("too fast"))
        refused = raised.value
        assert refused.status_code == 429
        assert refused.type == "rate_limit_error"
        assert refused.code == "throttled"
        assert refused.response.headers["retry-after"] == "1"
        assert upstream.hits == 3
        assert statuses == [200, 200, 200, 429]

        statuses.clear()
        started = time.monotonic()
        completion = patient.chat.completions.create(model=MODEL, messages=_user("patient"))
        assert completion.choices[0].message.content == f"{ECHO}patient"
        assert time.monotonic() - started >= 0.5  # it waited as retry-after said
        assert len(statuses) >= 2
        assert statuses[0] == 429
        assert statuses[-1] == 200
        assert set(statuses[:-1]) == {429}
        assert upstream.hits == 4  # the refused attempts never reached the model


# ---- tools ---------------------------------------------------------------------------------


def _called(completion: ChatCompletion) -> list[str]:
    """The names of the functions the answer calls."""
    calls = completion.choices[0].message.tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageFunctionToolCall) for call in calls)
    return [
        call.function.name
        for call in calls
        if isinstance(call, ChatCompletionMessageFunctionToolCall)
    ]


def test_a_required_tool_call(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    upstream.script(fake.tool_call("get_weather", '{"city": "Paris"}'))
    completion = sdk.chat.completions.create(
        model=MODEL,
        messages=_user("What's the weather in Paris?"),
        tools=[WEATHER],
        tool_choice="required",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    assert len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = upstream.last_request.json
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == "required"

    # The tool's result goes back, and the model answers.
    upstream.script(fake.reply("It is sunny in Paris."))
    answer = sdk.chat.completions.create(
        model=MODEL,
        messages=[
            *_user("What's the weather in Paris?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'},
        ],
        tools=[WEATHER],
    )
    assert answer.choices[0].message.content == "It is sunny in Paris."
    assert answer.choices[0].finish_reason == "stop"
    turns = upstream.last_request.json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "tool"]
    assert turns[1]["tool_calls"][0]["id"] == call.id
    assert turns[2]["tool_call_id"] == call.id


def test_the_default_required_tool_call_and_a_named_tool_choice(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    completion = sdk.chat.completions.create(
        model=MODEL, messages=_user("weather?"), tools=[WEATHER], tool_choice="required"
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    assert _called(completion) == ["get_weather"]

    named = sdk.chat.completions.create(
        model=MODEL,
        messages=_user("weather?"),
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert _called(named) == ["get_weather"]


def test_a_streamed_tool_call(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    arguments = '{"city": "Reykjavik", "unit": "celsius"}'
    upstream.script(fake.tool_call("get_weather", arguments, call_id="call_abc"))
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL,
            messages=_user("weather in Reykjavik?"),
            tools=[WEATHER],
            tool_choice="required",
            stream=True,
        )
    )
    assert len({c.id for c in chunks}) == 1
    pieces = [piece for c in chunks if c.choices for piece in c.choices[0].delta.tool_calls or []]
    assert pieces
    assert {p.index for p in pieces} == {0}
    assert [p.id for p in pieces if p.id] == ["call_abc"]
    names = [p.function.name for p in pieces if p.function and p.function.name]
    assert names == ["get_weather"]
    assembled = "".join(p.function.arguments or "" for p in pieces if p.function)
    assert json.loads(assembled) == json.loads(arguments)
    assert _finish(chunks) == ["tool_calls"]
    assert _text(chunks) == ""


def test_tools_to_a_model_off_the_openai_wire_are_a_bad_request(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as raised:
            sdk.chat.completions.create(
                model=FALLBACK,
                messages=_user("weather?"),
                tools=[WEATHER],
                tool_choice="auto",
                stream=stream,
            )
        assert raised.value.param == "tools"
        assert FALLBACK in raised.value.message
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=FALLBACK, messages=_user("json?"), response_format={"type": "json_object"}
        )
    assert raised.value.param == "response_format"
    assert upstream.hits == 0


def test_request_options_reach_the_model(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    completion = sdk.chat.completions.create(
        model=CLASSIC,
        messages=[
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
        ],
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
        max_tokens=50,
        user="end-user-42",
        seed=7,
        extra_body={"an_unknown_field": {"is": "ignored"}},
    )
    assert completion.choices[0].message.content == f"{ECHO}say hi"
    assert completion.model == CLASSIC
    sent = upstream.last_request.json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["temperature"] == 0.3
    assert sent["top_p"] == 0.9
    assert sent["stop"] == ["END"]
    assert 50 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "Be terse."),
        ("user", "say hi"),
    ]


def test_a_response_format_reaches_an_openai_wire_model(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    completion = sdk.chat.completions.create(
        model=MODEL, messages=_user("as json"), response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {"echo": "as json"}
    assert upstream.last_request.json["response_format"] == {"type": "json_object"}


def test_an_image_part_reaches_the_model_and_two_are_refused(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    completion = sdk.chat.completions.create(
        model=CLASSIC,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content
    parts = upstream.last_request.json["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": PNG}} in [
        {"type": p["type"], "image_url": {"url": p["image_url"]["url"]}}
        for p in parts
        if p["type"] == "image_url"
    ]
    hits = upstream.hits
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=CLASSIC,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": PNG}},
                        {"type": "image_url", "image_url": {"url": PNG}},
                    ],
                }
            ],
        )
    assert raised.value.param == "messages[0].content"
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=NO_TOOLS,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": PNG}}],
                }
            ],
        )
    assert raised.value.param == "messages[0].content"  # the model takes no images
    assert upstream.hits == hits


def test_a_refusal_and_a_filtered_answer(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    upstream.script(fake.refusal("I can't help with that."), fake.safety_block())
    refused = sdk.chat.completions.create(model=MODEL, messages=_user("something bad"))
    assert refused.choices[0].message.content is None
    assert refused.choices[0].message.refusal == "I can't help with that."
    filtered = sdk.chat.completions.create(model=MODEL, messages=_user("something worse"))
    assert filtered.choices[0].finish_reason == "content_filter"
    assert not filtered.choices[0].message.content


def test_a_tool_result_must_answer_a_call(sdk: openai.OpenAI, upstream: FakeLLMServer) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=MODEL,
            messages=[*_user("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "42"}],
        )
    assert raised.value.param == "messages[1].tool_call_id"
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=NO_TOOLS, messages=_user("weather?"), tools=[WEATHER], tool_choice="auto"
        )
    assert raised.value.param == "tools"
    assert upstream.hits == 0


# ---- usage records -------------------------------------------------------------------------


def _own_usage(http: httpx.Client, who: Caller) -> list[dict[str, Any]]:
    response = http.get("/api/usage/", headers=who.token_auth)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_stateless_calls_are_counted_in_usage(
    parley: RunningServer,
    http: httpx.Client,
    sdk: openai.OpenAI,
    me: Caller,
    other: Caller,
    upstream: FakeLLMServer,
) -> None:
    assert _own_usage(http, me) == []
    upstream.script(
        fake.reply("a b c", prompt_tokens=10, completion_tokens=3),
        fake.reply("d e", prompt_tokens=20, completion_tokens=2),
    )
    sdk.chat.completions.create(model=MODEL, messages=_user("first"))
    list(
        sdk.chat.completions.create(
            model=MODEL,
            messages=_user("second"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    upstream.script(fake.error(401))
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model=MODEL, messages=_user("third fails"))
    upstream.script(fake.reply("f", prompt_tokens=4, completion_tokens=1))
    with _sdk(parley, other.token) as theirs:
        theirs.chat.completions.create(model=MODEL, messages=_user("someone else's"))

    mine = _own_usage(http, me)
    assert mine == [
        {
            "model": MODEL,
            "requests": 3,  # the failed call is a request with no tokens
            "prompt_tokens": 30,
            "completion_tokens": 5,
            "total_tokens": 35,
            "cost": 0.0,  # the model has no price
            "currency": "USD",
        }
    ]
    assert _own_usage(http, other) == [
        {
            "model": MODEL,
            "requests": 1,
            "prompt_tokens": 4,
            "completion_tokens": 1,
            "total_tokens": 5,
            "cost": 0.0,
            "currency": "USD",
        }
    ]
    assert http.get("/api/usage/").status_code == 401

    staff = make_staff(parley, http)
    admin = http.get(
        "/api/admin/usage/", params={"user": me.account.username}, headers=staff.bearer
    )
    assert admin.status_code == 200, admin.text
    assert [
        (r["username"], r["model"], r["requests"], r["prompt_tokens"], r["completion_tokens"])
        for r in admin.json()
    ] == [(me.account.username, MODEL, 3, 30, 5)]
    assert http.get("/api/admin/usage/", headers=me.account.bearer).status_code == 403  # not staff

    recorded = query(
        parley.settings.database_url,
        "SELECT model, provider, status, prompt_tokens, completion_tokens, error_code "
        "FROM model_calls WHERE user_id = :id ORDER BY id",
        id=me.account.id,
    )
    assert [row[:1] + row[2:] for row in recorded] == [  # a row per call, never the text
        (MODEL, "completed", 10, 3, None),
        (MODEL, "completed", 20, 2, None),
        (MODEL, "failed", 0, 0, "provider_auth"),
    ]
    assert recorded[0][1] == recorded[1][1] == "OpenAI"


def test_a_failed_call_is_recorded_with_its_provider(
    parley: RunningServer, sdk: openai.OpenAI, me: Caller, upstream: FakeLLMServer
) -> None:
    """Spec: 'each stateless call writes a usage row (user, model, provider, tokens,
    latency, status)'; the provider that failed is known (the model has one)."""
    upstream.script(fake.error(401))
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model=MODEL, messages=_user("fails"))
    recorded = query(
        parley.settings.database_url,
        "SELECT model, provider, status, error_code FROM model_calls WHERE user_id = :id",
        id=me.account.id,
    )
    assert recorded == [(MODEL, "OpenAI", "failed", "provider_auth")]


# ---- binding to a conversation -------------------------------------------------------------


def _messages(http: httpx.Client, who: Caller, conversation: int) -> list[tuple[str, str, str]]:
    drf = http.get(f"/api/conversations/{conversation}/messages/", headers=who.account.bearer)
    assert drf.status_code == 200, drf.text
    v1 = http.get(f"/api/v1/conversations/{conversation}/messages/", headers=who.account.bearer)
    assert v1.status_code == 200, v1.text
    roles = {"user": "user", "ai": "assistant"}
    seen = [(roles[m["sender"]], m["content"], m["status"]) for m in drf.json()]
    assert [(m["role"], m["content"], m["status"]) for m in v1.json()] == seen
    return seen


def test_a_call_bound_by_header_and_by_metadata_is_kept_in_the_conversation(
    http: httpx.Client, sdk: openai.OpenAI, me: Caller, upstream: FakeLLMServer
) -> None:
    conversation = _conversation(http, me)
    raw = sdk.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=_user("remember the number 7"),
        extra_headers={"X-Parley-Conversation": str(conversation)},
    )
    assert raw.headers["X-Parley-Conversation"] == str(conversation)
    first = raw.parse()
    assert first.choices[0].message.content == f"{ECHO}remember the number 7"
    assert first.model == MODEL
    assert first.usage is not None
    assert first.usage.completion_tokens > 0
    assert _messages(http, me, conversation) == [
        ("user", "remember the number 7", "completed"),
        ("assistant", f"{ECHO}remember the number 7", "completed"),
    ]

    # By metadata; the request's earlier messages are not used: the conversation is.
    second = sdk.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "an earlier message Parley ignores"},
            {"role": "assistant", "content": "an answer Parley ignores"},
            {"role": "user", "content": "which number?"},
        ],
        metadata={"conversation_id": str(conversation)},
    )
    assert second.choices[0].message.content == f"{ECHO}which number?"
    assert second.id != first.id
    sent = upstream.last_request.json["messages"]
    assert [(m["role"], m["content"]) for m in sent if m["role"] != "system"] == [
        ("user", "remember the number 7"),
        ("assistant", f"{ECHO}remember the number 7"),
        ("user", "which number?"),
    ]
    assert _messages(http, me, conversation)[2:] == [
        ("user", "which number?", "completed"),
        ("assistant", f"{ECHO}which number?", "completed"),
    ]
    listed = http.get("/api/v1/conversations/", headers=me.account.bearer).json()
    assert conversation in [c["id"] for c in listed]


def test_a_streamed_bound_call(
    http: httpx.Client, sdk: openai.OpenAI, me: Caller, upstream: FakeLLMServer
) -> None:
    conversation = _conversation(http, me)
    upstream.script(fake.reply("streamed and kept", prompt_tokens=3, completion_tokens=3))
    with sdk.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=_user("stream it"),
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Parley-Conversation": str(conversation)},
    ) as response:
        assert response.headers["X-Parley-Conversation"] == str(conversation)
        chunks = list(response.parse())
    assert _text(chunks) == "streamed and kept"
    assert len({c.id for c in chunks}) == 1
    assert _finish(chunks) == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 3)
    assert _messages(http, me, conversation) == [
        ("user", "stream it", "completed"),
        ("assistant", "streamed and kept", "completed"),
    ]


def test_binding_to_someone_elses_conversation_is_not_found(
    http: httpx.Client, sdk: openai.OpenAI, me: Caller, other: Caller, upstream: FakeLLMServer
) -> None:
    theirs = _conversation(http, other)
    for options in (
        {"extra_headers": {"X-Parley-Conversation": str(theirs)}},
        {"metadata": {"conversation_id": str(theirs)}},
        {"extra_headers": {"X-Parley-Conversation": str(theirs)}, "stream": True},
        {"extra_headers": {"X-Parley-Conversation": "999999999"}},
    ):
        with pytest.raises(openai.NotFoundError) as raised:
            sdk.chat.completions.create(model=MODEL, messages=_user("let me in"), **options)
        assert raised.value.code == "not_found"
    assert upstream.hits == 0
    assert _messages(http, other, theirs) == []


def test_a_bound_call_refuses_what_a_conversation_cannot_keep(
    http: httpx.Client, sdk: openai.OpenAI, me: Caller, upstream: FakeLLMServer
) -> None:
    conversation = _conversation(http, me)
    bound = {"X-Parley-Conversation": str(conversation)}
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=MODEL, messages=_user("weather?"), tools=[WEATHER], extra_headers=bound
        )
    assert raised.value.param == "tools"
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=MODEL,
            messages=[*_user("hi"), {"role": "assistant", "content": "hello"}],
            extra_headers=bound,
        )
    assert raised.value.param == "messages[1].role"
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(
            model=MODEL, messages=_user("hi"), extra_headers={"X-Parley-Conversation": "abc"}
        )
    assert raised.value.param == "x-parley-conversation"
    closed = http.patch(
        f"/api/v1/conversations/{conversation}/",
        json={"status": "closed"},
        headers=me.account.bearer,
    )
    assert closed.status_code == 200, closed.text
    with pytest.raises(openai.ConflictError) as conflict:
        sdk.chat.completions.create(
            model=MODEL, messages=_user("still there?"), extra_headers=bound
        )
    assert conflict.value.code == "conversation_closed"
    assert upstream.hits == 0
    assert _messages(http, me, conversation) == []


# ---- Idempotency-Key -----------------------------------------------------------------------


def test_an_idempotent_retry_returns_the_first_completion(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    first = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=_user("only once"), extra_headers=key
    )
    again = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=_user("only once"), extra_headers=key
    )
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parse().id == first.parse().id
    assert again.parse().choices[0].message.content == f"{ECHO}only once"
    assert upstream.hits == 1

    with pytest.raises(openai.UnprocessableEntityError):
        sdk.chat.completions.create(
            model=MODEL, messages=_user("something else"), extra_headers=key
        )
    assert upstream.hits == 1


def _idempotent_stream(
    client: openai.OpenAI, headers: dict[str, str], text: str
) -> tuple[list[ChatCompletionChunk], str | None]:
    """A stream read as the SDK reads it (it closes the connection at ``[DONE]``)."""
    with client.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=_user(text),
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=headers,
    ) as response:
        return list(response.parse()), response.headers.get("Idempotent-Replayed")


def test_an_idempotent_retry_of_a_stream_replays_it(
    sdk: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    first, first_replayed = _idempotent_stream(sdk, key, "stream only once")
    # The first stream is over: its retry is answered at once, not after the key's lease.
    again, again_replayed = _idempotent_stream(sdk.with_options(timeout=5), key, "stream only once")
    assert (first_replayed, again_replayed) == (None, "true")
    assert _text(first) == _text(again) == f"{ECHO}stream only once"
    assert {c.id for c in again} == {c.id for c in first}
    assert len({c.id for c in first}) == 1
    assert [c.model_dump() for c in again] == [c.model_dump() for c in first]
    assert upstream.hits == 1


def test_an_idempotent_retry_of_a_bound_stream_follows_the_same_reply(
    http: httpx.Client, sdk: openai.OpenAI, me: Caller, upstream: FakeLLMServer
) -> None:
    conversation = _conversation(http, me)
    headers = {
        "Idempotency-Key": f"key-{uuid.uuid4().hex}",
        "X-Parley-Conversation": str(conversation),
    }
    first, _ = _idempotent_stream(sdk, headers, "bound stream once")
    again, _ = _idempotent_stream(sdk.with_options(timeout=5), headers, "bound stream once")
    assert _text(first) == _text(again) == f"{ECHO}bound stream once"
    assert {c.id for c in again} == {c.id for c in first}
    assert upstream.hits == 1
    assert len(_messages(http, me, conversation)) == 2


def test_an_idempotent_retry_of_a_bound_call(
    http: httpx.Client, sdk: openai.OpenAI, me: Caller, upstream: FakeLLMServer
) -> None:
    conversation = _conversation(http, me)
    headers = {
        "Idempotency-Key": f"key-{uuid.uuid4().hex}",
        "X-Parley-Conversation": str(conversation),
    }
    first = sdk.chat.completions.create(
        model=MODEL, messages=_user("bound once"), extra_headers=headers
    )
    again = sdk.chat.completions.create(
        model=MODEL, messages=_user("bound once"), extra_headers=headers
    )
    assert again.id == first.id
    assert upstream.hits == 1
    assert len(_messages(http, me, conversation)) == 2


# ---- the raw wire --------------------------------------------------------------------------


def _events(body: str) -> list[str]:
    assert body.endswith("\n\n")
    events = body.removesuffix("\n\n").split("\n\n")
    for event in events:
        assert event.startswith("data: "), event
        assert "\n" not in event
    return [event.removeprefix("data: ") for event in events]


ERROR_KEYS = {"message", "type", "param", "code"}
CHUNK_KEYS = {"id", "object", "created", "model", "choices", "usage"}


def test_the_wire_shapes(http: httpx.Client, me: Caller, upstream: FakeLLMServer) -> None:
    auth = {"Authorization": f"Bearer {me.token}"}
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "wire"}]}

    plain = http.post("/v1/chat/completions", json=ask, headers=auth)
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"].startswith("application/json")
    body = plain.json()
    assert set(body) == {
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
    }
    assert body["object"] == "chat.completion"
    assert body["system_fingerprint"] is None
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert set(choice) == {"index", "message", "finish_reason", "logprobs"}
    assert (choice["index"], choice["finish_reason"], choice["logprobs"]) == (0, "stop", None)
    assert choice["message"] == {"role": "assistant", "content": f"{ECHO}wire", "refusal": None}
    assert set(body["usage"]) == {
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "completion_tokens_details",
    }
    assert set(body["usage"]["completion_tokens_details"]) == {"reasoning_tokens"}
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    upstream.script(fake.reply("alpha beta gamma"))
    streamed = http.post(
        "/v1/chat/completions",
        json=ask | {"stream": True, "stream_options": {"include_usage": True}},
        headers=auth,
    )
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = _events(streamed.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    for chunk in chunks:
        assert set(chunk) - {"system_fingerprint"} == CHUNK_KEYS
        assert chunk["object"] == "chat.completion.chunk"
        for piece in chunk["choices"]:
            assert set(piece) == {"index", "delta", "finish_reason", "logprobs"}
    assert len({c["id"] for c in chunks}) == 1
    *with_choices, usage_chunk = chunks
    assert all(c["usage"] is None for c in with_choices)
    assert usage_chunk["choices"] == []
    assert set(usage_chunk["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert with_choices[0]["choices"][0]["delta"]["role"] == "assistant"
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in with_choices)
        == "alpha beta gamma"
    )
    assert with_choices[-1]["choices"][0]["delta"] == {}
    assert with_choices[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in with_choices[:-1])

    no_usage = http.post("/v1/chat/completions", json=ask | {"stream": True}, headers=auth)
    plain_chunks = [json.loads(e) for e in _events(no_usage.text)[:-1]]
    assert _events(no_usage.text)[-1] == "[DONE]"
    assert all(c["choices"] for c in plain_chunks)
    assert all("usage" not in c or c["usage"] is None for c in plain_chunks)

    upstream.script(fake.stream_error(after_chunks=1))
    broken = http.post("/v1/chat/completions", json=ask | {"stream": True}, headers=auth)
    assert broken.status_code == 200
    broken_events = _events(broken.text)
    assert "[DONE]" not in broken_events
    last = json.loads(broken_events[-1])
    assert set(last) == {"error"}
    assert set(last["error"]) == ERROR_KEYS

    invalid = http.post("/v1/chat/completions", json=ask | {"n": 2}, headers=auth)
    assert invalid.status_code == 400
    assert invalid.json() == {
        "error": {
            "message": invalid.json()["error"]["message"],
            "type": "invalid_request_error",
            "param": "n",
            "code": "invalid",
        }
    }

    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        refused = http.post("/v1/chat/completions", json=ask, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert set(refused.json()) == {"error"}
        assert set(refused.json()["error"]) == ERROR_KEYS
        assert refused.json()["error"]["type"] == "authentication_error"

    for method, path in (("GET", "/v1/no-such-thing"), ("POST", "/v1/embeddings")):
        missing = http.request(method, path, headers=auth)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/json")
        assert set(missing.json()) == {"error"}
        assert set(missing.json()["error"]) == ERROR_KEYS
        assert missing.json()["error"]["type"] == "invalid_request_error"
    unknown = http.get(f"/v1/models/{'x' * 12}", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"

    wrong_method = http.get("/v1/chat/completions", headers=auth)
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()["error"]) == ERROR_KEYS

    models = http.get("/v1/models", headers=auth).json()
    assert set(models) == {"object", "data"}
    assert models["object"] == "list"
    assert {tuple(sorted(m)) for m in models["data"]} == {("created", "id", "object", "owned_by")}


def test_a_stream_opens_with_the_role_and_empty_content_as_the_spec_says(
    http: httpx.Client, me: Caller, upstream: FakeLLMServer
) -> None:
    """Spec: 'first delta {"role":"assistant","content":""}, then {"content": piece}...',
    as OpenAI streams it."""
    upstream.script(fake.reply("alpha beta gamma"))
    streamed = http.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True},
        headers={"Authorization": f"Bearer {me.token}"},
    )
    chunks = [json.loads(event) for event in _events(streamed.text)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all("role" not in d for d in deltas[1:])
    assert "".join(d.get("content", "") for d in deltas) == "alpha beta gamma"
