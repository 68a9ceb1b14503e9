"""``Idempotency-Key`` for the send-message and chat endpoints (non-streaming).

The answer to the first request is replayed byte for byte, with
``Idempotent-Replayed: true``. A provider failure is an answer too (the message was
stored); errors raised before any work was done release the key. The key's lease is
renewed while the answer is worked out, so a key outlives its request only if the
process dies (then a retry takes it over once the lease ends)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import MediaType

from application.errors import ModelFailure
from application.idempotency import IdempotentRequests
from domain.users import User
from entrypoints.http.errors import domain_error

HEADER = "idempotency-key"


class RecordedResponse(msgspec.Struct, frozen=True):
    """What a retry is answered with. The core keeps it as an opaque string; only this
    edge knows it is an HTTP status and the JSON body, kept verbatim (``Raw``)."""

    status_code: int
    body: msgspec.Raw

    @classmethod
    def of(cls, response: Response[Any]) -> str:
        recorded = cls(
            status_code=response.status_code or 200,
            body=msgspec.Raw(msgspec.json.encode(response.content)),
        )
        return msgspec.json.encode(recorded).decode()

    @classmethod
    def replayed(cls, answer: str) -> Response[Any]:
        recorded = msgspec.json.decode(answer, type=cls)
        return Response(
            content=bytes(recorded.body),
            status_code=recorded.status_code,
            media_type=MediaType.JSON,
            headers={"Idempotent-Replayed": "true"},
        )


async def idempotent(
    request: Request[Any, Any, Any],
    user: User,
    keys: IdempotentRequests,
    answer: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    key = request.headers.get(HEADER)
    if key is None:
        return await answer()
    body = await request.body()
    fingerprint = hashlib.sha256(
        b"\0".join([request.method.encode(), request.url.path.encode(), body])
    ).hexdigest()
    reserved = await keys.reserve(user.id, key, fingerprint)
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
