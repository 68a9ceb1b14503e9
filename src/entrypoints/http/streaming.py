"""Server-Sent Events for streamed replies (both dialects).

Events: ``delta`` ``{"text": ...}`` as the model writes; if the model fails, ``error``
with the dialect's error body; last, ``done`` with the stored messages, usage and the
reply's status (completed, partial, failed or blocked)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, cast

import msgspec
from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.openapi import ResponseSpec
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from application.chat import ReplyEnded, ReplyStream
from domain.conversation import Message
from entrypoints.http.dialects import dialect_of

_encode = msgspec.json.Encoder().encode


def wants_stream(request: Request[Any, Any, Any], asked_in_body: bool) -> bool:
    return asked_in_body or "text/event-stream" in request.headers.get("accept", "")


def sse_reply(
    request: Request[Any, Any, Any],
    stream: ReplyStream,
    done_body: Callable[[Message, Message], dict[str, Any]],
) -> ServerSentEvent:
    dialect = dialect_of(request)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        async for event in stream.events:
            if isinstance(event, ReplyEnded):
                if event.failure is not None:
                    yield ServerSentEventMessage(
                        event="error",
                        data=_encode(
                            dialect.error_body(event.failure.message, event.failure.code)
                        ).decode(),
                    )
                body = done_body(event.user_message, event.ai_message)
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


def _event_data(content_schema: dict[str, Any]) -> Any:
    return Annotated[
        str,
        msgspec.Meta(
            extra_json_schema={
                "extra": {
                    "contentMediaType": "application/json",
                    "contentSchema": content_schema,
                }
            }
        ),
    ]


def _ref(component: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{component}"}


def _done(reply: str) -> dict[str, Any]:
    """The ``done`` body: the non-streamed reply's body, with the reply's usage and status."""
    return {
        "allOf": [
            _ref(reply),
            {
                "type": "object",
                "required": ["status", "usage"],
                "properties": {
                    "status": {"enum": ["completed", "partial", "failed", "blocked"]},
                    "usage": {
                        "type": "object",
                        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                        "properties": {
                            name: {"type": "integer", "minimum": 0}
                            for name in ("prompt_tokens", "completion_tokens", "total_tokens")
                        },
                    },
                },
            },
        ]
    }


_DELTA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}


class DeltaEvent(msgspec.Struct):
    """`event: delta`: text as the model writes it, `{"text": ...}`."""

    event: Literal["delta"]
    data: _event_data(_DELTA)  # type: ignore[valid-type]


class ApiErrorEvent(msgspec.Struct):
    """`event: error` (only if the model fails, just before `done`): the error body."""

    event: Literal["error"]
    data: _event_data(_ref("ApiError"))  # type: ignore[valid-type]


class ApiDoneEvent(msgspec.Struct):
    """`event: done`, always last: the stored messages, the reply's status and usage."""

    event: Literal["done"]
    data: _event_data(_done("SendMessageOut"))  # type: ignore[valid-type]


class V1ErrorEvent(msgspec.Struct):
    """`event: error` (only if the model fails, just before `done`): the error body."""

    event: Literal["error"]
    data: _event_data(_ref("V1Error"))  # type: ignore[valid-type]


class V1DoneEvent(msgspec.Struct):
    """`event: done`, always last: the conversation, the stored messages, the reply's
    status and usage."""

    event: Literal["done"]
    data: _event_data(_done("ChatOut"))  # type: ignore[valid-type]


_STREAM_DESCRIPTION = (
    "With stream=true or Accept: text/event-stream: Server-Sent Events, each one of "
    "`delta` {text} as the model writes, `error` (only if the model fails) with the "
    "error body, and last `done` with the stored messages, `usage` and `status` "
    "(completed, partial, failed or blocked). Each event's `data` is JSON."
)


def _stream_response(events: Any) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            data_container=events,
            media_type="text/event-stream",
            description=_STREAM_DESCRIPTION,
            generate_examples=False,
        )
    }


# The schema of a text/event-stream response describes one event (OpenAPI 3.1).
STREAM_RESPONSE = _stream_response(DeltaEvent | ApiErrorEvent | ApiDoneEvent)
V1_STREAM_RESPONSE = _stream_response(DeltaEvent | V1ErrorEvent | V1DoneEvent)


def stream_response(events: ServerSentEvent) -> Response[Any]:
    """The streamed alternative of a route whose documented body is JSON: Litestar sends
    any Response instance as it is, so only the static type needs this adjustment."""
    return cast("Response[Any]", events)
