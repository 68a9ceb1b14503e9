"""``POST /api/v1/messages/chat/`` and ``GET /api/v1/models/``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from adapters.llm.catalog import StaticModelCatalog
from application.chat import SendMessage, SendMessageRequest, StreamMessage
from application.idempotency import IdempotentRequests
from domain.conversation import Message
from domain.users import User
from entrypoints.http.api_v1.schemas import ChatIn, ChatOut, ModelOut, v1_message_out
from entrypoints.http.bodies import CheckedBody
from entrypoints.http.idempotency import idempotent
from entrypoints.http.streaming import (
    V1_STREAM_RESPONSE,
    sse_reply,
    stream_response,
    wants_stream,
)


def _done_body(user_message: Message, ai_message: Message) -> dict[str, Any]:
    return {
        "conversation_id": user_message.conversation_id,
        "user_message": msgspec.to_builtins(v1_message_out(user_message)),
        "ai_message": msgspec.to_builtins(v1_message_out(ai_message)),
    }


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
        user: NamedDependency[User],
        send_message: NamedDependency[SendMessage],
        stream_message: NamedDependency[StreamMessage],
        idempotent_requests: NamedDependency[IdempotentRequests],
    ) -> Response[ChatOut]:
        """Send a message and get the reply. Without `conversation_id` a new conversation
        is started, titled from the message. `model` overrides the conversation's model
        for this turn; `image_url` (http(s) or data: URI) needs a model that takes
        images. `"stream": true` or `Accept: text/event-stream` streams the reply as
        Server-Sent Events (`delta`, optional `error`, `done`). An `Idempotency-Key`
        header makes a non-streaming retry return the first answer, without asking the
        model again."""
        command = SendMessageRequest(
            owner_id=user.id,
            conversation_id=data.conversation_id,
            text=data.message,
            model=data.model,
            image_url=data.image_url,
        )
        if wants_stream(request, data.stream):
            return stream_response(sse_reply(request, await stream_message(command), _done_body))

        async def answer() -> Response[Any]:
            exchange = await send_message(command)
            body = ChatOut(
                conversation_id=exchange.conversation.id,
                user_message=v1_message_out(exchange.user_message),
                ai_message=v1_message_out(exchange.ai_message),
                status=exchange.ai_message.status.value,
            )
            return Response(body, status_code=201)

        return await idempotent(request, user, idempotent_requests, answer)

    @get("/models/", operation_id="v1_models")
    async def models(self, catalog: NamedDependency[StaticModelCatalog]) -> list[ModelOut]:
        """The models usable now with this configuration; `default` marks the one new
        users start with."""
        return [
            ModelOut(
                id=model.id,
                name=model.name,
                provider=model.provider,
                supports_images=model.supports_images,
                context_window=model.context_window,
                default=model.id == catalog.default_model,
            )
            for model in catalog.available()
        ]
