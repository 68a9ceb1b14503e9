"""Server-Sent Events for streamed replies (both dialects).

Events, each with an ``id:`` -- the number of characters of the answer sent so far:
``reply`` first, with the stored user message, the reply (``streaming``) and its
``stream_url`` and ``cancel_url``; ``delta`` ``{"text": ...}`` as the model writes; if
the reply did not complete, ``error`` with the dialect's error body; last, ``done`` with
the stored messages, usage and the reply's status. A client that reconnects to the
stream URL with ``Last-Event-ID`` (or ``?after=``) gets the text after that many
characters, then the rest live, then ``error``/``done``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, cast

import msgspec
from litestar import Request, Response
from litestar.openapi import ResponseSpec
from litestar.response import Stream
from litestar.response.sse import ServerSentEventMessage

from application.chat import (
    FollowReply,
    FollowReplyRequest,
    ReplyEnded,
    ReplyFollow,
    SendMessageRequest,
    StreamMessage,
)
from application.idempotency import IdempotentRequests
from domain.conversation import Message
from domain.users import User
from entrypoints.http.dialects import V1, dialect_of
from entrypoints.http.idempotency import idempotent_stream
from entrypoints.http.reply_links import reply_links

_encode = msgspec.json.Encoder().encode

DoneBody = Callable[[Message, Message], dict[str, Any]]


def wants_stream(request: Request[Any, Any, Any], asked_in_body: bool) -> bool:
    return asked_in_body or "text/event-stream" in request.headers.get("accept", "")


def resume_offset(request: Request[Any, Any, Any]) -> int | None:
    """How many characters the client has: ``Last-Event-ID`` (this stream's event ids
    are character counts), else ``?after=``; None for a fresh follower."""
    given = request.headers.get("last-event-id") or request.query_params.get("after")
    if given is None:
        return None
    digits = given.strip()
    return int(digits) if digits.isdigit() and len(digits) < 12 else 0


def _message(event: str, data: dict[str, Any], count: int) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=_encode(data).decode(), id=str(count))


def _done_body(done_body: DoneBody, ended: ReplyEnded) -> dict[str, Any]:
    reply = ended.ai_message
    body = done_body(ended.user_message, reply)
    body["status"] = reply.status.value
    body["usage"] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    return body


def sse_reply(
    request: Request[Any, Any, Any],
    follow: ReplyFollow,
    done_body: DoneBody,
    *,
    announce: bool = True,
) -> Stream:
    dialect = dialect_of(request)
    # Litestar hands each route a copy of its opt: the dialect is equal, not identical.
    links = reply_links("/api/v1" if dialect == V1 else "/api", follow.reply.id)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        if announce:
            started = done_body(follow.user_message, follow.reply) | links
            started["status"] = follow.reply.status.value
            yield _message("reply", started, 0)
        async for event in follow.events:
            if not isinstance(event, ReplyEnded):
                yield _message("delta", {"text": event.text}, event.end)
                continue
            reply, count = event.ai_message, len(event.ai_message.content)
            if reply.error_code is not None:
                message = reply.error_message or "The reply did not complete."
                yield _message("error", dialect.error_body(message, reply.error_code), count)
            yield _message("done", _done_body(done_body, event), count)

    return server_sent_events(events())


async def _encoded(events: AsyncIterator[ServerSentEventMessage]) -> AsyncIterator[bytes]:
    async for event in events:
        yield event.encode()


def server_sent_events(events: AsyncIterator[ServerSentEventMessage]) -> Stream:
    """What Litestar's ``ServerSentEvent`` sends, without its preamble step: it reads its
    (here empty) list of leading lines through ``sync_to_thread``, a thread hop (~0.3 ms
    on these machines) before every stream's first event."""
    return Stream(
        _encoded(events),
        media_type="text/event-stream",
        status_code=200,
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Accel-Buffering": "no",
        },
    )


async def stream_turn(
    request: Request[Any, Any, Any],
    owner_id: int,
    command: SendMessageRequest,
    stream_message: StreamMessage,
    follow_reply: FollowReply,
    keys: IdempotentRequests,
    done_body: DoneBody,
) -> Response[Any]:
    """A streamed send, in either dialect: start the reply and follow it."""

    async def start() -> ReplyFollow:
        started = await stream_message(command)
        return follow_reply.following(owner_id, started.user_message, started.reply)

    async def resume(reply_id: int) -> ReplyFollow:
        return await follow_reply(FollowReplyRequest(owner_id=owner_id, reply_id=reply_id))

    def respond(follow: ReplyFollow) -> Response[Any]:
        return stream_response(sse_reply(request, follow, done_body))

    return await idempotent_stream(request, owner_id, keys, start, resume, respond)


async def follow_stored_reply(
    request: Request[Any, Any, Any],
    user: User,
    reply_id: int,
    follow_reply: FollowReply,
    done_body: DoneBody,
) -> Response[Any]:
    """``GET`` a reply's stream URL: from ``Last-Event-ID`` (or ``?after=``), or whole."""
    after = resume_offset(request)
    follow = await follow_reply(
        FollowReplyRequest(owner_id=user.id, reply_id=reply_id, after=after or 0)
    )
    return stream_response(sse_reply(request, follow, done_body, announce=after is None))


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
                    "status": {
                        "enum": ["completed", "partial", "failed", "blocked", "interrupted"]
                    },
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


def _started(reply: str) -> dict[str, Any]:
    """The ``reply`` body: the turn as stored (the reply ``streaming``) and its URLs."""
    urls = {"type": "string", "format": "uri-reference"}
    return {
        "allOf": [
            _ref(reply),
            {
                "type": "object",
                "required": ["stream_url", "cancel_url"],
                "properties": {"stream_url": urls, "cancel_url": urls},
            },
        ]
    }


_EVENT_ID = Annotated[
    str,
    msgspec.Meta(
        description="Characters of the answer sent so far: send it back as Last-Event-ID."
    ),
]


class ApiReplyEvent(msgspec.Struct):
    """`event: reply`, first: the stored messages and where to follow or stop the reply."""

    event: Literal["reply"]
    id: _EVENT_ID
    data: _event_data(_started("SendMessageOut"))  # type: ignore[valid-type]


class V1ReplyEvent(msgspec.Struct):
    """`event: reply`, first: the stored messages and where to follow or stop the reply."""

    event: Literal["reply"]
    id: _EVENT_ID
    data: _event_data(_started("ChatOut"))  # type: ignore[valid-type]


class DeltaEvent(msgspec.Struct):
    """`event: delta`: text as the model writes it, `{"text": ...}`."""

    event: Literal["delta"]
    id: _EVENT_ID
    data: _event_data(_DELTA)  # type: ignore[valid-type]


class ApiErrorEvent(msgspec.Struct):
    """`event: error` (only if the model fails, just before `done`): the error body."""

    event: Literal["error"]
    id: _EVENT_ID
    data: _event_data(_ref("ApiError"))  # type: ignore[valid-type]


class ApiDoneEvent(msgspec.Struct):
    """`event: done`, always last: the stored messages, the reply's status and usage."""

    event: Literal["done"]
    id: _EVENT_ID
    data: _event_data(_done("SendMessageOut"))  # type: ignore[valid-type]


class V1ErrorEvent(msgspec.Struct):
    """`event: error` (only if the model fails, just before `done`): the error body."""

    event: Literal["error"]
    id: _EVENT_ID
    data: _event_data(_ref("V1Error"))  # type: ignore[valid-type]


class V1DoneEvent(msgspec.Struct):
    """`event: done`, always last: the conversation, the stored messages, the reply's
    status and usage."""

    event: Literal["done"]
    id: _EVENT_ID
    data: _event_data(_done("ChatOut"))  # type: ignore[valid-type]


_STREAM_DESCRIPTION = (
    "With stream=true or Accept: text/event-stream: Server-Sent Events: first `reply` "
    "with the stored messages (the reply `streaming`), its `stream_url` and `cancel_url`; "
    "then `delta` {text} as the model writes, `error` (only if the reply did not "
    "complete) with the error body, and last `done` with the stored messages, `usage` and "
    "`status` (completed, partial, failed, blocked or interrupted). Each event's `id` is "
    "the number of characters sent so far and its `data` is JSON. The server writes the "
    "reply whether or not the client stays: GET the stream_url (with Last-Event-ID) to "
    "pick it up again, POST the cancel_url to stop it."
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
STREAM_RESPONSE = _stream_response(ApiReplyEvent | DeltaEvent | ApiErrorEvent | ApiDoneEvent)
V1_STREAM_RESPONSE = _stream_response(V1ReplyEvent | DeltaEvent | V1ErrorEvent | V1DoneEvent)
FOLLOW_RESPONSE = STREAM_RESPONSE
FOLLOW_DESCRIPTION = (
    "Follow a reply (the `stream_url` of a streamed send): with `Last-Event-ID` (or "
    "`?after=N`), the text after the N characters you have, then the rest live, then "
    "`done`; without, the whole reply from `reply` on. A reply that has ended is "
    "replayed. Another user's reply is 404."
)
CANCEL_DESCRIPTION = (
    "Stop a reply being written: it is stored `partial` with what it had and "
    '`error_code: "cancelled"`. Idempotent: a reply that has ended is returned as it is.'
)
V1_FOLLOW_RESPONSE = V1_STREAM_RESPONSE


def stream_response(events: Stream) -> Response[Any]:
    """The streamed alternative of a route whose documented body is JSON: Litestar sends
    any Response instance as it is, so only the static type needs this adjustment."""
    return cast("Response[Any]", events)
