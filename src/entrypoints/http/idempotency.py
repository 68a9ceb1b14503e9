"""``Idempotency-Key`` for the send-message and chat endpoints.

The answer to the first request is replayed byte for byte, with
``Idempotent-Replayed: true``; a streamed send's answer is its reply, so a retry follows
that same reply (from its start) and the model is never asked twice. A provider failure
is an answer too (the message was stored); errors raised before any work was done
release the key. The key's lease is renewed while the answer is worked out, so a key
outlives its request only if the process dies (then a retry takes it over once the
lease ends)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import MediaType

from application.chat import ReplyFollow
from application.errors import ModelFailure
from application.idempotency import IdempotentRequests
from entrypoints.http.errors import domain_error

HEADER = "idempotency-key"


async def fingerprint(request: Request[Any, Any, Any]) -> str:
    body = await request.body()
    return hashlib.sha256(
        b"\0".join([request.method.encode(), request.url.path.encode(), body])
    ).hexdigest()


class RecordedResponse(msgspec.Struct, frozen=True):
    """What a retry is answered with. The core keeps it as an opaque string; only this
    edge knows it is an HTTP status and the JSON body, kept verbatim (``Raw``), or the
    reply a streamed send started (``reply_id``)."""

    status_code: int = 200
    body: msgspec.Raw = msgspec.Raw(b"null")
    reply_id: int | None = None

    @classmethod
    def of_stream(cls, reply_id: int) -> str:
        return msgspec.json.encode(cls(reply_id=reply_id)).decode()

    @classmethod
    def of(cls, response: Response[Any]) -> str:
        recorded = cls(
            status_code=response.status_code or 200,
            body=msgspec.Raw(msgspec.json.encode(response.content)),
        )
        return msgspec.json.encode(recorded).decode()

    @classmethod
    def replayed(cls, answer: str) -> Response[Any]:
        return msgspec.json.decode(answer, type=cls).response()

    def response(self) -> Response[Any]:
        return Response(
            content=bytes(self.body),
            status_code=self.status_code,
            media_type=MediaType.JSON,
            headers={"Idempotent-Replayed": "true"},
        )


async def idempotent(
    request: Request[Any, Any, Any],
    owner_id: int,
    keys: IdempotentRequests,
    answer: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    key = request.headers.get(HEADER)
    if key is None:
        return await answer()
    reserved = await keys.reserve(owner_id, key, await fingerprint(request))
    if isinstance(reserved, str):
        return RecordedResponse.replayed(reserved)
    async with keys.holding(reserved):
        try:
            response = await answer()
        except ModelFailure as failure:
            response = domain_error(request, failure)
        except BaseException:
            await keys.release(reserved)
            raise
        await keys.complete(reserved, RecordedResponse.of(response))
    return response


async def idempotent_stream(
    request: Request[Any, Any, Any],
    owner_id: int,
    keys: IdempotentRequests,
    start: Callable[[], Awaitable[ReplyFollow]],
    resume: Callable[[int], Awaitable[ReplyFollow]],
    respond: Callable[[ReplyFollow], Response[Any]],
) -> Response[Any]:
    """A streamed send: the key's answer is the reply it started, kept as soon as the
    turn is stored; a retry follows that reply instead of starting another."""
    key = request.headers.get(HEADER)
    if key is None:
        return respond(await start())
    reserved = await keys.reserve(owner_id, key, await fingerprint(request))
    if isinstance(reserved, str):
        recorded = msgspec.json.decode(reserved, type=RecordedResponse)
        if recorded.reply_id is None:
            return recorded.response()
        replayed = respond(await resume(recorded.reply_id))
        replayed.headers["Idempotent-Replayed"] = "true"
        return replayed
    async with keys.holding(reserved):
        try:
            follow = await start()
        except BaseException:
            await keys.release(reserved)
            raise
        await keys.complete(reserved, RecordedResponse.of_stream(follow.reply.id))
    return respond(follow)
