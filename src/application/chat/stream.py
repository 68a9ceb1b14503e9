"""Streaming a reply: the turn is stored before the first token, and the reply is written
by the server whoever follows it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.chat.generations import Generation, Generations
from application.chat.preparation import TurnPreparation
from application.chat.recording import TurnRecorder
from application.chat.turns import (
    PreparedTurn,
    ReplyDraft,
    SendMessageRequest,
    status_after,
    unusable_answer,
)
from application.errors import ModelFailure, ProviderError
from application.ports import ChatDelta, ChatModel, ReplyChannel, ReplyDelta, ReplyFinished
from domain.conversation import Conversation, Message, MessageStatus

log = logging.getLogger("parley.chat")

CANCELLED = "cancelled"
INTERRUPTED = "interrupted"
# How often a reply being written looks for a cancel asked on another worker.
CANCEL_POLL_SECONDS = 0.5


class ReplyCancelled(ModelFailure):
    code = CANCELLED
    default_message = "The reply was stopped before it was complete."


class ServerStopped(ModelFailure):
    code = INTERRUPTED
    default_message = "The server stopped before this answer was complete; send it again."


@dataclass(frozen=True, kw_only=True)
class StartedReply:
    """The stored turn: the user's message, and the reply while it is ``streaming``."""

    conversation: Conversation
    user_message: Message
    reply: Message


class StreamMessage:
    """Send a message and have the model's answer written as a reply that streams.

    The rules of ``TurnPreparation`` are checked first (ordinary errors), and in the same
    transaction the user's message and the reply (status ``streaming``) are committed
    before the upstream request opens: a crash after this point never loses the message,
    and the first token waits for one transaction only. The reply is written by the
    server: text goes to the reply channel as it comes (clients follow it with
    ``FollowReply``), the whole answer is stored when the model ends -- complete;
    partial with the error if the provider fails mid-answer; blocked if its safety
    system stops it; partial with ``cancelled`` if a user stops it; ``interrupted`` if
    this server stops first. A client that goes away changes nothing."""

    def __init__(
        self,
        prepare: TurnPreparation,
        record: TurnRecorder,
        model: ChatModel,
        channel: ReplyChannel,
        generations: Generations,
    ) -> None:
        self._prepare = prepare
        self._record = record
        self._model = model
        self._channel = channel
        self._generations = generations

    async def __call__(self, command: SendMessageRequest) -> StartedReply:
        turn = await self._prepare.starting_the_reply(command, self._generations.lease_until())
        reply, question = turn.started_reply, turn.stored_user_message
        if reply is None or question is None:
            raise RuntimeError("a streamed turn was prepared without storing its reply")
        upstream = aiter(self._model.stream(turn.request))
        first = asyncio.ensure_future(anext(upstream, None))
        writer = _ReplyWriter(
            self._record, self._channel, self._generations, turn, reply, upstream, first
        )
        self._generations.start(Generation(reply.id), writer.write)
        try:
            # An empty first delta opens the reply on the channel: a client that follows
            # it before the model's first text then waits for that text.
            await self._channel.publish(reply.id, ReplyDelta(0, ""))
        except Exception:  # followers then wait for the stored reply instead
            log.warning("could not open reply %d on the reply channel", reply.id)
        return StartedReply(conversation=turn.conversation, user_message=question, reply=reply)


class _ReplyWriter:
    def __init__(
        self,
        record: TurnRecorder,
        channel: ReplyChannel,
        generations: Generations,
        turn: PreparedTurn,
        reply: Message,
        upstream: AsyncIterator[ChatDelta],
        first: asyncio.Future[ChatDelta | None],
    ) -> None:
        self._record = record
        self._channel = channel
        self._generations = generations
        self._turn = turn
        self._reply = reply
        self._upstream = upstream
        self._first = first

    async def write(self, generation: Generation) -> None:
        watching = asyncio.ensure_future(self._watch_for_cancel(generation))
        try:
            draft = await self._generate(generation)
        finally:
            watching.cancel()
        generation.ended()
        try:
            final = await self._record.finish_reply(self._turn, self._reply, draft)
            if final is not None and self._turn.stored_user_message is not None:
                self._generations.keep_finished(self._turn.stored_user_message, final)
        finally:  # followers then read the reply; unfinished, its lease runs out
            with contextlib.suppress(Exception):
                await self._channel.publish(self._reply.id, ReplyFinished())

    async def _generate(self, generation: Generation) -> ReplyDraft:
        started = time.perf_counter()
        thoughts: list[str] = []
        last = ChatDelta()
        offset = 0
        try:
            delta = await self._first
            while delta is not None:
                if delta.text:
                    generation.parts.append(delta.text)  # before publishing: never lost
                    await self._channel.publish(self._reply.id, ReplyDelta(offset, delta.text))
                    offset += len(delta.text)
                if delta.reasoning:
                    thoughts.append(delta.reasoning)
                last = _merged(last, delta)
                delta = await anext(self._upstream, None)
        except ModelFailure as failure:
            return _ended(generation.text, started, failure, "".join(thoughts))
        except asyncio.CancelledError:
            _stop_being_cancelled()  # this task was stopped on purpose; the reply is stored
            stopped: ModelFailure = (
                ReplyCancelled() if generation.stopped_because == CANCELLED else ServerStopped()
            )
            return _ended(generation.text, started, stopped, "".join(thoughts))
        finally:
            # A stop that lands while the upstream closes comes after the answer: ignored.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await _close(self._upstream)
        text = generation.text
        unfinished = (
            ProviderError("The model's stream ended without finishing.")
            if last.finish_reason is None
            else unusable_answer(text, last.finish_reason)
        )
        return ReplyDraft(
            text=text,
            started=started,
            status=MessageStatus.COMPLETED
            if unfinished is None
            else status_after(unfinished, text),
            model=last.model,
            provider=last.provider,
            usage=last.usage,
            finish_reason=last.finish_reason,
            failure=unfinished,
            reasoning="".join(thoughts),
        )

    async def _watch_for_cancel(self, generation: Generation) -> None:
        """A cancel asked on another worker reaches this one through the channel."""
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            with contextlib.suppress(Exception):  # the next look may work
                if await self._channel.cancel_requested(self._reply.id):
                    generation.stop(CANCELLED)
                    return


def _merged(last: ChatDelta, delta: ChatDelta) -> ChatDelta:
    return ChatDelta(
        usage=delta.usage or last.usage,
        finish_reason=delta.finish_reason or last.finish_reason,
        model=delta.model or last.model,
        provider=delta.provider or last.provider,
    )


def _ended(text: str, started: float, failure: ModelFailure, reasoning: str) -> ReplyDraft:
    status = status_after(failure, text)
    if isinstance(failure, ServerStopped):
        status = MessageStatus.INTERRUPTED
    elif isinstance(failure, ReplyCancelled):
        status = MessageStatus.PARTIAL
    return ReplyDraft(
        text=text, started=started, status=status, failure=failure, reasoning=reasoning
    )


def _stop_being_cancelled() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def _close(upstream: AsyncIterator[ChatDelta]) -> None:
    close = getattr(upstream, "aclose", None)
    if close is not None:
        await close()
