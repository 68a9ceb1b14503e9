"""``Idempotency-Key`` for the send-message and chat endpoints (non-streaming).

The answer to the first request is replayed byte for byte, with
``Idempotent-Replayed: true``. A provider failure is an answer too (the message was
stored); errors raised before any work was done release the key."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import MediaType

from application.errors import ModelFailure
from application.idempotency import IdempotentRequests
from application.ports import StoredResponse
from domain.users import User
from entrypoints.http.errors import domain_error

HEADER = "idempotency-key"


async def idempotent(
    request: Request[Any, Any, Any],
    user: User,
    keys: IdempotentRequests,
    answer: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    key = request.headers.get(HEADER)
    if key is None:
        return await answer()
    assert user.id is not None
    body = await request.body()
    fingerprint = hashlib.sha256(
        b"\0".join([request.method.encode(), request.url.path.encode(), body])
    ).hexdigest()
    replay = await keys.reserve(user.id, key, fingerprint)
    if replay is not None:
        return Response(
            content=replay.body,
            status_code=replay.status_code,
            media_type=MediaType.JSON,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = await answer()
    except ModelFailure as failure:
        response = domain_error(request, failure)
    except BaseException:
        await keys.release(user.id, key)
        raise
    await keys.complete(
        user.id,
        key,
        StoredResponse(
            status_code=response.status_code or 200, body=msgspec.json.encode(response.content)
        ),
    )
    return response
