"""Chat completions no conversation keeps: the rules checked before the model is called,
the request the model gets, and the usage record every call leaves, however it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.chat import (
    CallRecorder,
    CompleteChat,
    CompletionPreparation,
    CompletionRequest,
    Sampling,
    StreamChat,
)
from application.chat_settings import SettingsDefaults
from application.errors import ProviderUnavailable
from application.ports import ChatDelta, ChatRequest, ChatTurn, TokenUsage, ToolCall, ToolUse
from domain.conversation import MessageStatus
from domain.errors import InvalidInput, MessageTooLong, ModelNotFound
from domain.quota import QuotaPolicy
from tests.unit.conftest import metering_for
from tests.unit.in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakeUnitOfWork,
)

TOOL = {"type": "function", "function": {"name": "get_weather"}}


class World:
    def __init__(self, model: FakeChatModel | None = None) -> None:
        self.uow = FakeUnitOfWork()
        self.model = model or FakeChatModel("It is sunny.")
        self.images = FakeImageInspector()
        self.catalog = FakeModelCatalog(
            ("plain", "tooled"), with_images=("tooled",), with_tools=("tooled",)
        )
        prepare = CompletionPreparation(
            self.uow,
            self.catalog,
            QuotaPolicy(max_message_chars=100),
            SettingsDefaults(temperature=0.5, max_tokens=300),
            self.images,
            metering_for(self.catalog, FakeClock()),
        )
        record = CallRecorder(
            self.uow, FakeClock(), self.catalog, metering_for(self.catalog, FakeClock())
        )
        self.complete = CompleteChat(prepare, record, self.model)
        self.stream = StreamChat(prepare, record, self.model)

    @property
    def calls(self) -> list[object]:
        return list(self.uow.committed.model_calls)


def ask(text: str = "Weather?", model: str = "plain", **options: Any) -> CompletionRequest:
    turns = [ChatTurn(role="system", content="Be brief."), ChatTurn(role="user", content=text)]
    return CompletionRequest(owner_id=1, model=model, messages=turns, **options)


async def test_the_model_gets_the_callers_history_and_the_call_is_recorded() -> None:
    world = World()
    answer = await world.complete(ask())
    assert answer.text == "It is sunny."
    sent = world.model.requests[0]
    assert [(t.role, t.content) for t in sent.messages] == [
        ("system", "Be brief."),
        ("user", "Weather?"),
    ]
    (call,) = world.uow.committed.model_calls
    assert (call.user_id, call.model, call.status) == (1, "plain", MessageStatus.COMPLETED)
    assert (call.prompt_tokens, call.completion_tokens) == (11, 7)


async def test_sampling_not_given_comes_from_the_users_settings() -> None:
    world = World()
    await world.complete(ask())
    await world.complete(ask(sampling=Sampling(temperature=1.5, top_p=0.2, stop=("x",))))
    defaults, asked = world.model.requests
    assert (defaults.temperature, defaults.max_tokens, defaults.top_p) == (0.5, 300, None)
    assert (asked.temperature, asked.max_tokens, asked.top_p, asked.stop) == (1.5, 300, 0.2, ("x",))


async def test_an_unknown_model_is_not_found_and_nothing_is_recorded() -> None:
    world = World()
    with pytest.raises(ModelNotFound):
        await world.complete(ask(model="gpt-9"))
    assert world.model.requests == []
    assert world.uow.committed.model_calls == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"tools": ToolUse(tools=(TOOL,))}, "tools"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
async def test_tools_reach_only_a_model_that_takes_them(
    options: dict[str, Any], field: str
) -> None:
    world = World()
    with pytest.raises(InvalidInput) as refused:
        await world.complete(ask(model="plain", **options))
    assert set(refused.value.field_errors) == {field}
    assert world.model.requests == []
    await world.complete(ask(model="tooled", **options))
    sent = world.model.requests[0]
    assert (sent.tools, sent.response_format) == (
        options.get("tools"),
        options.get("response_format"),
    )


async def test_a_tool_turn_needs_a_model_that_takes_tools() -> None:
    world = World()
    turns = [
        ChatTurn(role="user", content="Weather?"),
        ChatTurn(
            role="assistant", content="", tool_calls=(ToolCall(id="c1", name="w", arguments="{}"),)
        ),
        ChatTurn(role="tool", content="sunny", tool_call_id="c1"),
    ]
    with pytest.raises(InvalidInput) as refused:
        await world.complete(CompletionRequest(owner_id=1, model="plain", messages=turns))
    assert set(refused.value.field_errors) == {"messages"}


async def test_the_newest_user_message_is_within_the_length_quota() -> None:
    world = World()
    with pytest.raises(MessageTooLong):
        await world.complete(ask("x" * 101))
    await world.complete(ask("x" * 100))


async def test_an_image_is_fetched_once_and_sent_as_data_to_a_model_that_takes_it() -> None:
    world = World()
    turns = [
        ChatTurn(role="user", content="What is this?", image_url="https://img.example/cat.png")
    ]
    await world.complete(CompletionRequest(owner_id=1, model="tooled", messages=turns))
    assert world.images.fetched == ["https://img.example/cat.png"]
    assert (world.model.requests[0].messages[0].image_url or "").startswith("data:image/png")
    with pytest.raises(InvalidInput) as refused:
        await world.complete(CompletionRequest(owner_id=1, model="plain", messages=turns))
    assert set(refused.value.field_errors) == {"messages[0].content"}


async def test_an_image_the_inspector_refuses_is_named_where_it_is() -> None:
    world = World()
    world.images.refused.add("https://img.example/x.png")
    turns = [
        ChatTurn(role="user", content="hi"),
        ChatTurn(role="user", content="this", image_url="https://img.example/x.png"),
    ]
    with pytest.raises(InvalidInput) as refused:
        await world.complete(CompletionRequest(owner_id=1, model="tooled", messages=turns))
    assert refused.value.field_errors == {"messages[1].content": ["This image cannot be used."]}


async def test_a_provider_failure_is_raised_after_it_is_recorded() -> None:
    world = World(FakeChatModel(error=ProviderUnavailable()))
    with pytest.raises(ProviderUnavailable):
        await world.complete(ask())
    (call,) = world.uow.committed.model_calls
    assert (call.status, call.error_code) == (MessageStatus.FAILED, "provider_unavailable")
    assert call.provider == "fake-provider"  # the requested model's, as none answered


async def test_a_filtered_answer_is_returned_as_the_provider_gave_it_and_recorded_blocked() -> None:
    world = World(FakeChatModel("", finish_reason="content_filter"))
    answer = await world.complete(ask())
    assert answer.finish_reason == "content_filter"
    assert world.uow.committed.model_calls[0].status is MessageStatus.BLOCKED


async def test_a_stream_relays_the_deltas_and_records_the_usage_at_the_end() -> None:
    world = World(
        FakeChatModel("one two three", usage=TokenUsage(prompt_tokens=3, completion_tokens=5))
    )
    deltas = await world.stream(ask())
    assert world.uow.committed.model_calls == []  # not before the end
    text = "".join([delta.text async for delta in deltas])
    assert text == "one two three"
    (call,) = world.uow.committed.model_calls
    assert (call.status, call.prompt_tokens, call.completion_tokens) == (
        MessageStatus.COMPLETED,
        3,
        5,
    )


async def test_a_stream_that_fails_before_its_first_token_fails_as_a_whole() -> None:
    world = World(FakeChatModel(error=ProviderUnavailable()))
    with pytest.raises(ProviderUnavailable):
        await world.stream(ask())
    assert world.uow.committed.model_calls[0].status is MessageStatus.FAILED


class _Endless:
    """A model that writes until it is stopped, and says whether it was."""

    def __init__(self) -> None:
        self.closed = False

    async def complete(self, request: ChatRequest) -> object:
        raise NotImplementedError

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        try:
            while True:
                yield ChatDelta(text="more ")
                await asyncio.sleep(0)
        finally:
            self.closed = True


async def test_a_caller_who_leaves_stops_the_provider_and_the_record_keeps_what_was_written() -> (
    None
):
    world = World()
    endless = _Endless()
    world.stream._model = endless  # type: ignore[assignment]  # noqa: SLF001
    deltas = await world.stream(ask())
    got = [await anext(deltas) for _ in range(3)]
    assert [d.text for d in got] == ["more "] * 3
    await deltas.aclose()  # type: ignore[attr-defined]
    assert endless.closed
    (call,) = world.uow.committed.model_calls
    assert call.status is MessageStatus.PARTIAL


@given(
    temperature=st.none() | st.floats(0, 2),
    top_p=st.none() | st.floats(0, 1),
    max_tokens=st.none() | st.integers(1, 100_000),
)
def test_what_the_caller_gives_wins_and_the_rest_is_the_settings(
    temperature: float | None, top_p: float | None, max_tokens: int | None
) -> None:
    world = World()
    sampling = Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    asyncio.run(world.complete(ask(sampling=sampling)))
    sent = world.model.requests[0]
    assert sent.temperature == (0.5 if temperature is None else temperature)
    assert sent.max_tokens == (300 if max_tokens is None else max_tokens)
    assert sent.top_p == top_p
