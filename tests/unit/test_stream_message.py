"""StreamMessage, FollowReply, CancelReply: the turn is stored before the first token,
the server writes the reply whoever follows it, and a follower gets each character
once. The model is gated by the test (no sleeps): each delta comes when released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from adapters.streams.replies import MemoryReplyChannel
from application.chat import (
    CancelReply,
    FollowReply,
    FollowReplyRequest,
    Generations,
    MarkInterruptedReplies,
    ReplyEnded,
    ReplyRef,
    ReplyWait,
    SendMessageRequest,
    StreamEvent,
    StreamMessage,
    TextChunk,
    TurnRecorder,
)
from application.chat.stream import INTERRUPTED
from application.errors import ProviderError, ProviderUnavailable
from application.ports import ChatDelta, ChatRequest, TokenUsage
from domain.conversation import MessageRole, MessageStatus
from domain.errors import NotFound
from tests.unit.conftest import metering_for, turn_preparation
from tests.unit.in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakeUnitOfWork,
)

ALICE, BOB = 1, 2
WAIT = ReplyWait(seconds=2, poll_seconds=0.01)


class GatedModel(FakeChatModel):
    """Streams ``words`` one at a time, each when the test releases it; ``fail_after``
    words it fails instead of finishing."""

    def __init__(self, words: list[str], fail_after: int | None = None) -> None:
        super().__init__()
        self.words = words
        self.fail_after = fail_after
        self.gate: asyncio.Queue[None] = asyncio.Queue()
        self.closed = False

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self.gate.put_nowait(None)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        self.requests.append(request)
        try:
            for index, word in enumerate(self.words):
                await self.gate.get()
                if index == self.fail_after:
                    raise ProviderError("The provider dropped the stream.")
                yield ChatDelta(text=word)
            await self.gate.get()
            yield ChatDelta(
                usage=TokenUsage(prompt_tokens=3, completion_tokens=len(self.words)),
                finish_reason="stop",
                model=request.model,
                provider="fake-provider",
            )
        finally:
            self.closed = True


class Chat:
    """The streaming use cases wired together, as the container wires them."""

    def __init__(
        self,
        uow: FakeUnitOfWork,
        model: FakeChatModel,
        catalog: FakeModelCatalog,
        clock: FakeClock,
        images: FakeImageInspector,
        generations: Generations,
        channel: MemoryReplyChannel,
    ) -> None:
        self.uow = uow
        self.generations = generations
        self.clock = clock
        recorder = TurnRecorder(uow, clock, metering_for(catalog, clock))
        self.send = StreamMessage(
            turn_preparation(uow, catalog, clock, images), recorder, model, channel, generations
        )
        self.follow = FollowReply(uow, channel, generations, WAIT)
        self.cancel = CancelReply(uow, channel, generations, WAIT)
        self.mark = MarkInterruptedReplies(uow, clock)

    def stored(self, conversation_id: int) -> list[tuple[MessageRole, str, MessageStatus]]:
        return [
            (m.role, m.content, m.status) for m in self.uow.committed.messages_of(conversation_id)
        ]


@pytest.fixture
def gated() -> GatedModel:
    return GatedModel(["one", " two", " three", " four"])


@pytest.fixture
def chat(
    uow: FakeUnitOfWork,
    gated: GatedModel,
    catalog: FakeModelCatalog,
    clock: FakeClock,
    images: FakeImageInspector,
    generations: Generations,
    channel: MemoryReplyChannel,
) -> Chat:
    return Chat(uow, gated, catalog, clock, images, generations, channel)


@pytest.fixture
def conversation_id(uow: FakeUnitOfWork) -> int:
    return uow.seed_conversation(ALICE).id


def _says(text: str, conversation_id: int | None) -> SendMessageRequest:
    return SendMessageRequest(owner_id=ALICE, conversation_id=conversation_id, text=text)


async def _text_of(events: AsyncIterator[StreamEvent]) -> tuple[str, ReplyEnded]:
    text = ""
    async for event in events:
        if isinstance(event, ReplyEnded):
            return text, event
        text += event.text
    raise AssertionError("the stream ended without ReplyEnded")


async def test_the_turn_is_stored_before_the_first_token_with_the_reply_streaming(
    chat: Chat, gated: GatedModel, conversation_id: int
) -> None:
    started = await chat.send(_says("hello there", conversation_id))
    # Not one token released yet: the message and the reply are already committed.
    assert chat.stored(conversation_id) == [
        (MessageRole.USER, "hello there", MessageStatus.COMPLETED),
        (MessageRole.ASSISTANT, "", MessageStatus.STREAMING),
    ]
    assert started.reply.status is MessageStatus.STREAMING
    follow = chat.follow.following(ALICE, started.user_message, started.reply)
    gated.release(5)
    text, ended = await _text_of(follow.events)
    assert text == "one two three four"
    assert ended.ai_message.status is MessageStatus.COMPLETED
    assert chat.stored(conversation_id)[-1] == (
        MessageRole.ASSISTANT,
        "one two three four",
        MessageStatus.COMPLETED,
    )


async def test_a_follower_that_leaves_changes_nothing_and_a_resume_gets_the_rest_once(
    chat: Chat, gated: GatedModel, conversation_id: int
) -> None:
    started = await chat.send(_says("hello", conversation_id))
    first = chat.follow.following(ALICE, started.user_message, started.reply).events
    gated.release(2)
    received = ""
    async for event in first:
        assert isinstance(event, TextChunk)
        received += event.text
        if event.end == len("one two"):
            break
    await first.aclose()  # type: ignore[attr-defined]  # the client hangs up
    gated.release(3)
    resumed = await chat.follow(
        FollowReplyRequest(owner_id=ALICE, reply_id=started.reply.id, after=len(received))
    )
    rest, ended = await _text_of(resumed.events)
    assert received + rest == "one two three four"
    assert ended.ai_message.content == received + rest


async def test_a_finished_reply_is_replayed_from_any_offset(
    chat: Chat, gated: GatedModel, generations: Generations, conversation_id: int
) -> None:
    started = await chat.send(_says("hello", conversation_id))
    gated.release(5)
    await generations.drain()
    for after in (0, 3, 7, 18, 99):
        replay = await chat.follow(
            FollowReplyRequest(owner_id=ALICE, reply_id=started.reply.id, after=after)
        )
        text, _ = await _text_of(replay.events)
        assert text == "one two three four"[after:]


async def test_another_users_reply_is_not_found(chat: Chat, conversation_id: int) -> None:
    started = await chat.send(_says("mine", conversation_id))
    with pytest.raises(NotFound):
        await chat.follow(FollowReplyRequest(owner_id=BOB, reply_id=started.reply.id))
    with pytest.raises(NotFound):
        await chat.cancel(ReplyRef(owner_id=BOB, reply_id=started.reply.id))
    with pytest.raises(NotFound):  # a user message is no reply
        await chat.follow(FollowReplyRequest(owner_id=ALICE, reply_id=started.user_message.id))


async def test_cancel_stops_the_upstream_and_keeps_the_partial_answer(
    chat: Chat, gated: GatedModel, conversation_id: int
) -> None:
    started = await chat.send(_says("hello", conversation_id))
    follow = chat.follow.following(ALICE, started.user_message, started.reply)
    gated.release(2)
    events = follow.events
    seen = ""
    while seen != "one two":
        event = await anext(events)
        assert isinstance(event, TextChunk)
        seen += event.text
    cancelled = await chat.cancel(ReplyRef(owner_id=ALICE, reply_id=started.reply.id))
    assert (cancelled.status, cancelled.content, cancelled.error_code) == (
        MessageStatus.PARTIAL,
        "one two",
        "cancelled",
    )
    assert gated.closed, "the upstream request was closed"
    rest, ended = await _text_of(events)
    assert (rest, ended.ai_message.error_code) == ("", "cancelled")
    again = await chat.cancel(ReplyRef(owner_id=ALICE, reply_id=started.reply.id))
    assert again == cancelled  # idempotent


async def test_a_failure_before_any_text_is_a_failed_reply_after_the_stored_message(
    uow: FakeUnitOfWork,
    catalog: FakeModelCatalog,
    clock: FakeClock,
    images: FakeImageInspector,
    generations: Generations,
    channel: MemoryReplyChannel,
    conversation_id: int,
) -> None:
    chat = Chat(
        uow,
        FakeChatModel(error=ProviderUnavailable()),
        catalog,
        clock,
        images,
        generations,
        channel,
    )
    started = await chat.send(_says("anyone?", conversation_id))
    _, ended = await _text_of(
        chat.follow.following(ALICE, started.user_message, started.reply).events
    )
    assert (ended.ai_message.status, ended.ai_message.error_code) == (
        MessageStatus.FAILED,
        "provider_unavailable",
    )
    assert chat.stored(conversation_id) == [
        (MessageRole.USER, "anyone?", MessageStatus.COMPLETED),
        (MessageRole.ASSISTANT, "", MessageStatus.FAILED),
    ]


async def test_a_failure_mid_answer_keeps_what_was_said_as_partial(
    uow: FakeUnitOfWork,
    catalog: FakeModelCatalog,
    clock: FakeClock,
    images: FakeImageInspector,
    generations: Generations,
    channel: MemoryReplyChannel,
    conversation_id: int,
) -> None:
    model = GatedModel(["one", " two", " three"], fail_after=2)
    chat = Chat(uow, model, catalog, clock, images, generations, channel)
    started = await chat.send(_says("hello", conversation_id))
    model.release(3)
    text, ended = await _text_of(
        chat.follow.following(ALICE, started.user_message, started.reply).events
    )
    assert text == ended.ai_message.content == "one two"
    assert (ended.ai_message.status, ended.ai_message.error_code) == (
        MessageStatus.PARTIAL,
        "provider_error",
    )


async def test_a_new_conversation_and_its_turn_are_stored_before_the_stream(
    chat: Chat, gated: GatedModel, generations: Generations
) -> None:
    started = await chat.send(_says("start something", None))
    assert [role for role, _, _ in chat.stored(started.conversation.id)] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
    ]
    gated.release(5)
    await generations.drain()
    assert chat.stored(started.conversation.id)[-1][2] is MessageStatus.COMPLETED


async def test_stopping_the_server_stores_running_replies_interrupted(
    chat: Chat, gated: GatedModel, generations: Generations, conversation_id: int
) -> None:
    await chat.send(_says("hello", conversation_id))
    gated.release(1)
    for _ in range(20):  # let the first word through (no timing: a bounded yield loop)
        await asyncio.sleep(0)
    await generations.stop_all(INTERRUPTED)
    assert chat.stored(conversation_id)[-1] == (
        MessageRole.ASSISTANT,
        "one",
        MessageStatus.INTERRUPTED,
    )


async def test_a_reply_whose_lease_ended_is_marked_interrupted_and_a_live_one_is_not(
    chat: Chat, gated: GatedModel, generations: Generations, conversation_id: int
) -> None:
    await chat.send(_says("hello", conversation_id))
    gated.release(2)
    for _ in range(20):
        await asyncio.sleep(0)
    chat.clock.advance(timedelta(seconds=10))
    await generations.renew_leases()  # a live worker renews, with the text so far
    chat.clock.advance(timedelta(seconds=10))
    assert await chat.mark() == 0, "a renewed lease has not ended"
    # The worker dies: nothing renews any more (its task is gone with it).
    chat.clock.advance(timedelta(seconds=16))
    assert await chat.mark() == 1
    assert chat.stored(conversation_id)[-1] == (
        MessageRole.ASSISTANT,
        "one two",
        MessageStatus.INTERRUPTED,
    )
    gated.release(3)
    await generations.drain()  # the late writer finds the reply marked, and leaves it
    assert chat.stored(conversation_id)[-1][2] is MessageStatus.INTERRUPTED
