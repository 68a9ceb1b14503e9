"""``POST /api/v1/messages/chat/``, a streamed reply's ``stream/`` and ``cancel/``, and
``GET /api/v1/models/``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from adapters.llm.catalog import StaticModelCatalog
from application.budgets import ListModels, ListModelsRequest
from application.chat import (
    CancelReply,
    FollowReply,
    ReplyRef,
    SendMessage,
    SendMessageRequest,
    StreamMessage,
)
from application.idempotency import IdempotentRequests
from domain.conversation import Message
from domain.users import User
from entrypoints.http.api_v1.schemas import (
    ChatIn,
    ChatOut,
    ModelOut,
    V1MessageOut,
    v1_message_out,
)
from entrypoints.http.auth import Caller
from entrypoints.http.bodies import CheckedBody
from entrypoints.http.idempotency import idempotent
from entrypoints.http.streaming import (
    CANCEL_DESCRIPTION,
    FOLLOW_DESCRIPTION,
    V1_FOLLOW_RESPONSE,
    V1_STREAM_RESPONSE,
    follow_stored_reply,
    stream_turn,
    wants_stream,
)


def done_body(user_message: Message, ai_message: Message) -> dict[str, Any]:
    return {
        "conversation_id": user_message.conversation_id,
        "user_message": msgspec.to_builtins(v1_message_out(user_message)),
        "ai_message": msgspec.to_builtins(v1_message_out(ai_message)),
    }


async def answer_turn(
    request: Request[Any, Any, Any],
    owner_id: int,
    command: SendMessageRequest,
    stream: bool,
    send_message: SendMessage,
    stream_message: StreamMessage,
    follow_reply: FollowReply,
    idempotent_requests: IdempotentRequests,
) -> Response[Any]:
    """A turn answered as this dialect answers one: streamed when asked, else the
    exchange (201); idempotent with an ``Idempotency-Key``."""
    if wants_stream(request, stream):
        return await stream_turn(
            request, owner_id, command, stream_message, follow_reply, idempotent_requests, done_body
        )

    async def answer() -> Response[Any]:
        exchange = await send_message(command)
        body = ChatOut(
            conversation_id=exchange.conversation.id,
            user_message=v1_message_out(exchange.user_message),
            ai_message=v1_message_out(exchange.ai_message),
            status=exchange.ai_message.status.value,
        )
        return Response(body, status_code=201)

    return await idempotent(request, owner_id, idempotent_requests, answer)


class ChatController(Controller):
    path = "/"
    tags = ["chat (/api/v1)"]

    @post(
        "/messages/chat/",
        operation_id="v1_chat",
        status_code=201,
        responses=V1_STREAM_RESPONSE,
        dto=CheckedBody[ChatIn],
        return_dto=None,
    )
    async def chat(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ChatIn],
        caller: NamedDependency[Caller],
        send_message: NamedDependency[SendMessage],
        stream_message: NamedDependency[StreamMessage],
        follow_reply: NamedDependency[FollowReply],
        idempotent_requests: NamedDependency[IdempotentRequests],
    ) -> Response[ChatOut]:
        """Send a message and get the reply. Without `conversation_id` a new conversation
        is started, titled from the message. `model` overrides the conversation's model
        for this turn; `image_url` (http(s) or data: URI) needs a model that takes
        images. `"stream": true` or `Accept: text/event-stream` streams the reply as
        Server-Sent Events (`reply`, `delta`, optional `error`, `done`); the server
        finishes the reply even if the client leaves, and the stream URL in `reply`
        picks it up again. An `Idempotency-Key` header makes a retry return the first
        answer (a stream: the same reply), without asking the model again."""
        command = SendMessageRequest(
            owner_id=caller.id,
            unconfirmed_caller=caller.unconfirmed,
            conversation_id=data.conversation_id,
            text=data.message,
            model=data.model,
            image_url=data.image_url,
        )
        return await answer_turn(
            request,
            caller.id,
            command,
            data.stream,
            send_message,
            stream_message,
            follow_reply,
            idempotent_requests,
        )

    @get("/models/", operation_id="v1_models")
    async def models(
        self,
        optional_user: NamedDependency[User | None],
        catalog: NamedDependency[StaticModelCatalog],
        list_models: NamedDependency[ListModels],
    ) -> list[ModelOut]:
        """The models usable now that you may use (signed out: those everyone may);
        `default` marks the one new users start with."""
        owner_id = None if optional_user is None else optional_user.id
        usable = await list_models(ListModelsRequest(owner_id=owner_id))
        return [
            ModelOut(
                id=model.id,
                name=model.name,
                provider=model.provider,
                supports_images=model.supports_images,
                context_window=model.context_window,
                default=model.id == catalog.default_model,
            )
            for model in usable
        ]


class RepliesV1Controller(Controller):
    """A streamed reply, while the server writes it and after: follow it, stop it."""

    path = "/messages"
    tags = ["chat (/api/v1)"]

    @get(
        "/{message_id:int}/stream/",
        operation_id="v1_follow_reply",
        responses=V1_FOLLOW_RESPONSE,
        media_type="text/event-stream",
        description=FOLLOW_DESCRIPTION,
    )
    async def follow(
        self,
        request: Request[Any, Any, Any],
        message_id: FromPath[int],
        user: NamedDependency[User],
        follow_reply: NamedDependency[FollowReply],
    ) -> Response[Any]:
        return await follow_stored_reply(request, user, message_id, follow_reply, done_body)

    @post(
        "/{message_id:int}/cancel/",
        operation_id="v1_cancel_reply",
        status_code=200,
        description=CANCEL_DESCRIPTION,
    )
    async def cancel(
        self,
        message_id: FromPath[int],
        user: NamedDependency[User],
        cancel_reply: NamedDependency[CancelReply],
    ) -> V1MessageOut:
        reply = await cancel_reply(ReplyRef(owner_id=user.id, reply_id=message_id))
        return v1_message_out(reply)
