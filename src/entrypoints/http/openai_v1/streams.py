"""Streamed chat completions in OpenAI's wire format: ``data: <chunk>`` lines, a last
chunk with the finish reason, the usage chunk when asked for, and ``data: [DONE]``. A
failure once the stream has begun is ``data: {"error": {...}}`` and the end of it (the
SDKs raise ``APIError`` on it).

Written as plain ``data:`` lines rather than with Litestar's ``ServerSentEvent``: these
streams have no event names or ids, and OpenAI's clients read exactly these bytes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from application.chat import ReplyEnded, ReplyFollow
from application.errors import ModelFailure
from application.idempotency import IdempotentRequests
from application.ports import ChatDelta, TokenUsage
from domain.users import User
from entrypoints.http.dialects import OPENAI
from entrypoints.http.errors import domain_error, status_of
from entrypoints.http.idempotency import HEADER, RecordedResponse, fingerprint
from entrypoints.http.openai_v1.schemas import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    ToolCallPieceOut,
)
from entrypoints.http.openai_v1.translation import (
    completion_id,
    finish_reason,
    reply_usage,
    usage_out,
)

_encode = msgspec.json.Encoder().encode
DONE = b"data: [DONE]\n\n"


def _line(document: Any) -> bytes:
    return b"data: " + _encode(document) + b"\n\n"


class _Chunks:
    """The chunks of one completion: the same id, creation time and model in each."""

    def __init__(self, reply_id: int | None, model: str, include_usage: bool) -> None:
        self.id = completion_id(reply_id)
        self.created = int(time.time())
        self.model = model
        self._usage: Any = None if include_usage else msgspec.UNSET

    def start(self) -> bytes:
        """OpenAI's first chunk: the role and no text yet."""
        return self.delta(Delta(role="assistant", content=""))

    def delta(self, delta: Delta, finish: str | None = None) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return _line(self._chunk([choice], self._usage))

    def end(self, finish: str | None, usage: TokenUsage | None) -> list[bytes]:
        lines = [self.delta(Delta(), finish_reason(finish))]
        if self._usage is None:
            lines.append(_line(self._chunk([], usage_out(usage or TokenUsage()))))
        return [*lines, DONE]

    def _chunk(self, choices: list[ChunkChoice], usage: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )


def _failure(failure: ModelFailure) -> bytes:
    return _line(
        OPENAI.error_body(failure.message, failure.code, status=status_of(failure, OPENAI))
    )


async def completion_chunks(
    deltas: AsyncIterator[ChatDelta], model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """A stateless call's stream, from the model's deltas."""
    chunks = _Chunks(None, model, include_usage)
    usage: TokenUsage | None = None
    finish: str | None = None
    started = False
    try:
        async for delta in deltas:
            if not started:  # the first delta names the model that answers
                chunks.model, started = delta.model or chunks.model, True
                yield chunks.start()
            chunks.model = delta.model or chunks.model
            usage, finish = delta.usage or usage, delta.finish_reason or finish
            if delta.text or delta.reasoning or delta.tool_calls:
                yield chunks.delta(_delta_out(delta))
    except ModelFailure as failure:
        yield _failure(failure)
        return
    for line in chunks.end(finish, usage):
        yield line


def _delta_out(delta: ChatDelta) -> Delta:
    pieces = [
        ToolCallPieceOut(
            index=piece.index,
            id=piece.id,
            type="function" if piece.id else None,
            function={
                key: value
                for key, value in (("name", piece.name), ("arguments", piece.arguments))
                if value is not None
            },
        )
        for piece in delta.tool_calls
    ]
    return Delta(
        content=delta.text or None,
        reasoning_content=delta.reasoning or None,
        tool_calls=pieces or None,
    )


async def reply_chunks(
    follow: ReplyFollow, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """A bound call's stream: the stored reply as Parley writes it."""
    chunks = _Chunks(follow.reply.id, follow.reply.model or model, include_usage)
    yield chunks.start()
    async for event in follow.events:
        if not isinstance(event, ReplyEnded):
            yield chunks.delta(Delta(content=event.text))
            continue
        reply = event.ai_message
        if reply.error_code is not None:
            message = reply.error_message or "The reply did not complete."
            yield _line(OPENAI.error_body(message, reply.error_code, status=502))
            return
        chunks.model = reply.model or chunks.model
        for line in chunks.end(reply.finish_reason, reply_usage(reply)):
            yield line


def event_stream(lines: AsyncIterator[bytes], headers: dict[str, str] | None = None) -> Stream:
    return Stream(
        lines,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


async def idempotent_chunks(
    request: Request[Any, Any, Any],
    user: User,
    keys: IdempotentRequests,
    start: Callable[[], Awaitable[AsyncIterator[bytes]]],
) -> Response[Any]:
    """A stateless streamed call with an ``Idempotency-Key``: the stream it sent is kept
    once it is complete, and a retry gets those same lines; a stream cut short (the
    client left) releases the key, so that the retry asks the model again."""
    key = request.headers.get(HEADER)
    if key is None:
        return event_stream(await start())
    reserved = await keys.reserve(user.id, key, await fingerprint(request))
    if isinstance(reserved, str):
        recorded = msgspec.json.decode(reserved, type=RecordedResponse)
        if recorded.status_code != 200:
            return recorded.response()
        sent = msgspec.json.decode(bytes(recorded.body), type=list[str])
        return event_stream(_replay(sent), {"Idempotent-Replayed": "true"})
    try:
        lines = await start()
    except ModelFailure as failure:
        response = domain_error(request, failure)
        await keys.complete(reserved, RecordedResponse.of(response))
        return response
    except BaseException:
        await keys.release(reserved)
        raise

    async def recorded_lines() -> AsyncIterator[bytes]:
        # The answer is kept before its last line is sent: clients close the connection
        # as soon as they read ``[DONE]``, and nothing after that last yield would run.
        sent: list[str] = []
        kept = False
        async with keys.holding(reserved):
            try:
                held = await anext(lines, None)
                while held is not None:
                    following = await anext(lines, None)
                    sent.append(held.decode())
                    if following is None:
                        body = RecordedResponse(body=msgspec.Raw(_encode(sent)))
                        answer = msgspec.json.encode(body).decode()
                        await asyncio.shield(keys.complete(reserved, answer))
                        kept = True
                    yield held
                    held = following
            except BaseException:
                if not kept:  # cut short: a retry asks the model again
                    await keys.release(reserved)
                raise

    return event_stream(recorded_lines())


async def _replay(sent: list[str]) -> AsyncIterator[bytes]:
    for line in sent:
        yield line.encode()
