"""Sending a message and streaming the model's answer as it is produced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from application.chat.background import BackgroundWrites
from application.chat.preparation import TurnPreparation
from application.chat.recording import TurnRecorder
from application.chat.turns import (
    ClientDisconnected,
    PreparedTurn,
    ReplyDraft,
    SendMessageRequest,
    StoredTurn,
    status_after,
    unusable_answer,
)
from application.errors import ModelFailure, ProviderError
from application.ports import ChatModel, TokenUsage
from domain.conversation import Conversation, Message, MessageStatus


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ReplyEnded:
    """The last event: the stored messages, and the failure if the model did not finish."""

    user_message: Message
    ai_message: Message
    failure: ModelFailure | None = None


StreamEvent = TextChunk | ReplyEnded


@dataclass(frozen=True)
class ReplyStream:
    conversation: Conversation
    events: AsyncIterator[StreamEvent]
    # Run after the response, whatever happened to it: stores a reply if the stream never
    # did (the client left before it started).
    settle: Callable[[], Awaitable[None]]


class StreamMessage:
    """Send a message and stream the model's answer as it is produced.

    The rules of ``TurnPreparation`` are checked before the stream starts (so those are
    ordinary HTTP errors). Text is forwarded as it arrives; reasoning is kept apart. The
    user's message is written once the first text has gone out, beside the stream --
    nothing slow comes before the first token, and no token waits for the database -- or
    with the reply if no text came (a new conversation and its first message are
    written before the stream, together). The reply is stored when the stream ends:
    complete; partial with the error if the provider drops mid-answer; blocked if the
    provider's safety system stops it; partial if the client goes away."""

    def __init__(
        self,
        prepare: TurnPreparation,
        record: TurnRecorder,
        model: ChatModel,
        background: BackgroundWrites,
    ) -> None:
        self._prepare = prepare
        self._record = record
        self._model = model
        self._background = background

    async def __call__(self, command: SendMessageRequest) -> ReplyStream:
        turn = await self._prepare.writing_nothing_yet(command)
        reply = _ReplyOnce(self._record, self._background, turn)
        return ReplyStream(
            conversation=turn.conversation,
            events=self._events(turn, reply),
            settle=reply.settle,
        )

    async def _events(self, turn: PreparedTurn, reply: _ReplyOnce) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        parts: list[str] = []
        thoughts: list[str] = []
        usage: TokenUsage | None = None
        finish: str | None = None
        model = provider = None
        try:
            async for delta in self._model.stream(turn.request):
                if delta.text:
                    parts.append(delta.text)
                    yield TextChunk(delta.text)
                    if len(parts) == 1:
                        reply.start_storing_the_user_message()  # the first text is out
                if delta.reasoning:
                    thoughts.append(delta.reasoning)
                usage = delta.usage or usage
                finish = delta.finish_reason or finish
                model = delta.model or model
                provider = delta.provider or provider
        except ModelFailure as failure:
            text = "".join(parts)
            stored = await reply.write(
                ReplyDraft(
                    text=text,
                    started=started,
                    status=status_after(failure, text),
                    failure=failure,
                    reasoning="".join(thoughts),
                )
            )
            yield ReplyEnded(stored.user_message, stored.reply, failure)
            return
        except (asyncio.CancelledError, GeneratorExit):
            await reply.write(
                ReplyDraft(
                    text="".join(parts),
                    started=started,
                    status=MessageStatus.PARTIAL,
                    failure=ClientDisconnected(),
                    reasoning="".join(thoughts),
                )
            )
            raise
        text = "".join(parts)
        unfinished = (
            ProviderError("The model's stream ended without finishing.")
            if finish is None
            else unusable_answer(text, finish)
        )
        stored = await reply.write(
            ReplyDraft(
                text=text,
                started=started,
                status=(
                    MessageStatus.COMPLETED
                    if unfinished is None
                    else status_after(unfinished, text)
                ),
                model=model,
                provider=provider,
                usage=usage,
                finish_reason=finish,
                failure=unfinished,
                reasoning="".join(thoughts),
            )
        )
        yield ReplyEnded(stored.user_message, stored.reply, unfinished)


class _ReplyOnce:
    """Writes a streamed turn's reply exactly once, whatever ends the stream; the writes
    run as background writes, which a client's disconnect cannot cancel."""

    def __init__(
        self, record: TurnRecorder, background: BackgroundWrites, turn: PreparedTurn
    ) -> None:
        self._record = record
        self._background = background
        self._turn = turn
        self._user_message_write: asyncio.Task[None] | None = None
        self._written = False

    def start_storing_the_user_message(self) -> None:
        if self._user_message_write is None:
            self._user_message_write = self._background.start(
                self._record.store_user_message(self._turn)
            )

    async def write(self, draft: ReplyDraft) -> StoredTurn:
        self._written = True  # before awaiting: settle() must not write a second one

        async def after_the_user_message() -> StoredTurn:
            if self._user_message_write is not None:
                # If that write failed, the message is still unstored and goes with this.
                await asyncio.gather(self._user_message_write, return_exceptions=True)
            return await self._record.store_reply(self._turn, draft)

        return await asyncio.shield(self._background.start(after_the_user_message()))

    async def settle(self) -> None:
        if not self._written:
            await self.write(
                ReplyDraft(
                    text="",
                    started=time.perf_counter(),
                    status=MessageStatus.FAILED,
                    failure=ClientDisconnected(),
                )
            )
