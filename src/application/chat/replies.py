"""Following, stopping and recovering streamed replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.chat.generations import Generations
from application.chat.stream import CANCELLED, INTERRUPTED, ServerStopped
from application.ports import Clock, ReplyChannel, ReplyDelta, UnitOfWork
from domain.conversation import Message, MessageStatus
from domain.errors import NotFound


@dataclass(frozen=True)
class TextChunk:
    """Text of the answer, which then has ``end`` characters."""

    text: str
    end: int


@dataclass(frozen=True)
class ReplyEnded:
    """The last event: the turn as stored."""

    user_message: Message
    ai_message: Message


StreamEvent = TextChunk | ReplyEnded


@dataclass(frozen=True, kw_only=True)
class ReplyRef:
    owner_id: int
    reply_id: int


@dataclass(frozen=True, kw_only=True)
class FollowReplyRequest(ReplyRef):
    """``after``: how many characters of the answer the client has already."""

    after: int = 0


@dataclass(frozen=True, kw_only=True)
class ReplyWait:
    """How long to wait for a reply being written by a worker this process cannot
    follow (no shared channel), polling the database, and how often."""

    seconds: float = 330.0
    poll_seconds: float = 0.5


@dataclass(frozen=True)
class ReplyFollow:
    user_message: Message
    reply: Message
    events: AsyncIterator[StreamEvent]


async def _owned_reply(uow: UnitOfWork, ref: ReplyRef) -> tuple[Message, Message]:
    async with uow:
        found = await uow.messages.owned_reply(ref.reply_id, ref.owner_id)
    if found is None:
        raise NotFound("Message not found.")
    return found


async def _until_final(uow: UnitOfWork, ref: ReplyRef, wait: ReplyWait) -> tuple[Message, Message]:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait.seconds
    while True:
        question, reply = await _owned_reply(uow, ref)
        if reply.status is not MessageStatus.STREAMING or loop.time() >= give_up:
            return question, reply
        await asyncio.sleep(wait.poll_seconds)


class FollowReply:
    """A reply's text from where the client is, live while it is written, then the
    stored turn. Rules: only the owner's reply (404 otherwise); a client that has ``n``
    characters gets the rest exactly once; a finished reply is replayed from the
    database; a reply written by a worker this one cannot follow (no Redis) is waited
    for and then sent whole."""

    def __init__(
        self, uow: UnitOfWork, channel: ReplyChannel, generations: Generations, wait: ReplyWait
    ) -> None:
        self._uow = uow
        self._channel = channel
        self._generations = generations
        self._wait = wait

    async def __call__(self, request: FollowReplyRequest) -> ReplyFollow:
        question, reply = await _owned_reply(self._uow, request)
        return self.following(request.owner_id, question, reply, request.after)

    def following(
        self, owner_id: int, question: Message, reply: Message, after: int = 0
    ) -> ReplyFollow:
        """Follow a reply already read (the one a send just started)."""
        ref = ReplyRef(owner_id=owner_id, reply_id=reply.id)
        return ReplyFollow(
            user_message=question, reply=reply, events=self._events(ref, question, reply, after)
        )

    async def _events(
        self, ref: ReplyRef, question: Message, reply: Message, after: int
    ) -> AsyncIterator[StreamEvent]:
        sent = max(after, 0)
        if reply.status is MessageStatus.STREAMING:
            async for event in self._channel.follow(reply.id, sent):
                if isinstance(event, ReplyDelta):
                    sent = event.end
                    yield TextChunk(event.text, event.end)
            finished_here = self._generations.finished(reply.id)
            question, reply = finished_here or await _until_final(self._uow, ref, self._wait)
        if len(reply.content) > sent:
            yield TextChunk(reply.content[sent:], len(reply.content))
        yield ReplyEnded(question, reply)


class CancelReply:
    """Stop a reply being written: the upstream request is closed and what was written
    is stored ``partial`` with ``cancelled``. Idempotent: a reply that has ended is
    returned as it is. Only the owner's (404 otherwise). If the reply has not ended
    within the wait, it is returned as it stands."""

    def __init__(
        self,
        uow: UnitOfWork,
        channel: ReplyChannel,
        generations: Generations,
        wait: ReplyWait,
    ) -> None:
        self._uow = uow
        self._channel = channel
        self._generations = generations
        self._wait = wait

    async def __call__(self, ref: ReplyRef) -> Message:
        _, reply = await _owned_reply(self._uow, ref)
        if reply.status is not MessageStatus.STREAMING:
            return reply
        if not self._generations.stop(reply.id, CANCELLED):
            await self._channel.request_cancel(reply.id)  # written by another worker
        _, reply = await _until_final(self._uow, ref, self._wait)
        return reply


class MarkInterruptedReplies:
    """Replies left ``streaming`` by a process that died: their lease ran out (a live
    worker renews its replies' leases), so they are stored ``interrupted`` with the text
    they had. A live reply of another worker is never marked: its lease is current."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self) -> int:
        async with self._uow as uow:
            marked = await uow.messages.interrupt_abandoned(
                self._clock.now(), INTERRUPTED, ServerStopped.default_message
            )
            await uow.commit()
        return marked
