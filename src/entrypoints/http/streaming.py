"""Server-Sent Events for streamed replies (both dialects).

Events: ``delta`` ``{"text": ...}`` as the model writes; if the model fails, ``error``
with the dialect's error body; last, ``done`` with the stored messages, usage and the
reply's status (completed, partial, failed or blocked)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import msgspec
from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.openapi import ResponseSpec
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from application.errors import ModelFailure
from application.messaging import ReplyEnded, ReplyStream
from domain.conversation import Message
from entrypoints.http.errors import is_v1

_encode = msgspec.json.Encoder().encode


def wants_stream(request: Request[Any, Any, Any], asked_in_body: bool) -> bool:
    return asked_in_body or "text/event-stream" in request.headers.get("accept", "")


def sse_reply(
    request: Request[Any, Any, Any],
    stream: ReplyStream,
    done_body: Callable[[Message, Message], dict[str, Any]],
) -> ServerSentEvent:
    v1 = is_v1(request)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        async for event in stream.events:
            if isinstance(event, ReplyEnded):
                if event.failure is not None:
                    yield ServerSentEventMessage(
                        event="error", data=_encode(_error_body(event.failure, v1)).decode()
                    )
                body = done_body(stream.user_message, event.ai_message)
                body["status"] = event.ai_message.status.value
                body["usage"] = {
                    "prompt_tokens": event.ai_message.prompt_tokens,
                    "completion_tokens": event.ai_message.completion_tokens,
                    "total_tokens": event.ai_message.prompt_tokens
                    + event.ai_message.completion_tokens,
                }
                yield ServerSentEventMessage(event="done", data=_encode(body).decode())
            else:
                yield ServerSentEventMessage(
                    event="delta", data=_encode({"text": event.text}).decode()
                )

    return ServerSentEvent(
        events(),
        background=BackgroundTask(stream.settle),
        status_code=200,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


STREAM_RESPONSE = {
    200: ResponseSpec(
        data_container=str,
        media_type="text/event-stream",
        description=(
            "With stream=true or Accept: text/event-stream: Server-Sent Events "
            "`delta` {text}, optional `error`, then `done` {user_message, ai_message, "
            "usage, status}."
        ),
    )
}


def stream_response(events: ServerSentEvent) -> Response[Any]:
    """The streamed alternative of a route whose documented body is JSON: Litestar sends
    any Response instance as it is, so only the static type needs this adjustment."""
    return cast("Response[Any]", events)


def _error_body(failure: ModelFailure, v1: bool) -> dict[str, str]:
    if v1:
        return {"error": failure.message, "code": failure.code}
    return {"detail": failure.message, "code": failure.code}
