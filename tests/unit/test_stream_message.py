"""StreamMessage: nothing slow before the first token, and nothing lost after it."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from application.chat import (
    BackgroundWrites,
    ReplyEnded,
    SendMessageRequest,
    StreamMessage,
    TextChunk,
    TurnRecorder,
)
from application.errors import ProviderUnavailable
from domain.conversation import MessageRole, MessageStatus
from tests.unit.conftest import turn_preparation
from tests.unit.in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakeUnitOfWork,
)

ALICE = 1


@pytest.fixture
def stream_message(
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    catalog: FakeModelCatalog,
    clock: FakeClock,
    images: FakeImageInspector,
    background: BackgroundWrites,
) -> StreamMessage:
    return StreamMessage(
        turn_preparation(uow, catalog, clock, images),
        TurnRecorder(uow, clock),
        chat_model,
        background,
    )


@pytest.fixture
def conversation_id(uow: FakeUnitOfWork) -> int:
    conversation = uow.seed_conversation(ALICE)
    return conversation.id


def _says(text: str, conversation_id: int | None) -> SendMessageRequest:
    return SendMessageRequest(owner_id=ALICE, conversation_id=conversation_id, text=text)


async def test_the_first_token_comes_before_any_write_and_the_message_right_after(
    stream_message: StreamMessage,
    uow: FakeUnitOfWork,
    background: BackgroundWrites,
    conversation_id: int,
) -> None:
    stream = await stream_message(_says("hello there", conversation_id))
    assert uow.committed.messages_of(conversation_id) == []  # nothing written yet
    first = await anext(stream.events)
    assert isinstance(first, TextChunk)
    assert uow.committed.messages_of(conversation_id) == []  # the token went out first
    await anext(stream.events)
    await background.drain()  # the write runs beside the stream
    stored = uow.committed.messages_of(conversation_id)
    assert [(m.role, m.content) for m in stored] == [(MessageRole.USER, "hello there")]
    events = [first] + [event async for event in stream.events]
    ended = events[-1]
    assert isinstance(ended, ReplyEnded)
    stored = uow.committed.messages_of(conversation_id)
    assert [m.role for m in stored] == [MessageRole.USER, MessageRole.ASSISTANT]
    assert ended.user_message == stored[0]
    assert stored[1].status is MessageStatus.COMPLETED


async def test_a_model_failing_before_any_text_keeps_the_message_with_a_failed_reply(
    stream_message: StreamMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    conversation_id: int,
) -> None:
    chat_model.error = ProviderUnavailable()
    stream = await stream_message(_says("anyone?", conversation_id))
    events = [event async for event in stream.events]
    ended = events[-1]
    assert isinstance(ended, ReplyEnded)
    stored = uow.committed.messages_of(conversation_id)
    assert [(m.role, m.content, m.status) for m in stored] == [
        (MessageRole.USER, "anyone?", MessageStatus.COMPLETED),
        (MessageRole.ASSISTANT, "", MessageStatus.FAILED),
    ]
    assert ended.user_message == stored[0]


async def test_a_client_gone_before_the_stream_started_still_leaves_both_messages(
    stream_message: StreamMessage, uow: FakeUnitOfWork, conversation_id: int
) -> None:
    stream = await stream_message(_says("are you there", conversation_id))
    await stream.settle()
    stored = uow.committed.messages_of(conversation_id)
    assert [(m.role, m.error_code) for m in stored] == [
        (MessageRole.USER, None),
        (MessageRole.ASSISTANT, "client_disconnected"),
    ]


async def test_a_client_leaving_after_the_first_token_stores_the_message_once(
    stream_message: StreamMessage,
    uow: FakeUnitOfWork,
    background: BackgroundWrites,
    conversation_id: int,
) -> None:
    stream = await stream_message(_says("one two", conversation_id))
    await anext(stream.events)
    assert isinstance(stream.events, AsyncGenerator)
    await stream.events.aclose()  # the client hangs up
    await stream.settle()
    await background.drain()
    stored = uow.committed.messages_of(conversation_id)
    assert [(m.role, m.status, m.error_code) for m in stored] == [
        (MessageRole.USER, MessageStatus.COMPLETED, None),
        (MessageRole.ASSISTANT, MessageStatus.PARTIAL, "client_disconnected"),
    ]


async def test_a_new_conversation_and_its_message_are_written_before_the_stream(
    stream_message: StreamMessage, uow: FakeUnitOfWork
) -> None:
    stream = await stream_message(_says("start something", None))
    conversation_id = stream.conversation.id
    assert conversation_id is not None
    stored = uow.committed.messages_of(conversation_id)
    assert [(m.role, m.content) for m in stored] == [(MessageRole.USER, "start something")]
    _ = [event async for event in stream.events]
    assert len(uow.committed.messages_of(conversation_id)) == 2


async def _drain(
    stream_message: StreamMessage, conversation_id: int
) -> list[TextChunk | ReplyEnded]:
    stream = await stream_message(_says("hello", conversation_id))
    events = [event async for event in stream.events]
    await stream.settle()
    return events


async def test_a_streamed_safety_block_is_stored_blocked_and_ends_with_its_code(
    stream_message: StreamMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    conversation_id: int,
) -> None:
    chat_model.reply, chat_model.finish_reason = "", "content_filter"

    events = await _drain(stream_message, conversation_id)

    ended = events[-1]
    assert isinstance(ended, ReplyEnded)
    assert ended.failure is not None
    assert ended.failure.code == "content_filtered"
    reply = uow.committed.messages_of(conversation_id)[-1]
    assert reply.status is MessageStatus.BLOCKED


async def test_streamed_reasoning_is_stored_apart_and_never_sent_as_text(
    stream_message: StreamMessage,
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    conversation_id: int,
) -> None:
    chat_model.reply, chat_model.reasoning = "Four.", "Two and two."

    events = await _drain(stream_message, conversation_id)

    assert "".join(e.text for e in events if isinstance(e, TextChunk)) == "Four."
    reply = uow.committed.messages_of(conversation_id)[-1]
    assert (reply.content, reply.reasoning) == ("Four.", "Two and two.")
