"""``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /v1/models/{id}``:
OpenAI's API over Parley's accounts, models and records."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from adapters.llm.catalog import StaticModelCatalog
from application.budgets import ListModels, ListModelsRequest
from application.chat import (
    CompleteChat,
    FollowReply,
    FollowReplyRequest,
    ReplyFollow,
    SendMessage,
    StreamChat,
    StreamMessage,
)
from application.idempotency import IdempotentRequests
from application.ports import ModelInfo
from domain.errors import ModelNotFound
from domain.users import User
from entrypoints.http.bodies import NestedCheckedBody
from entrypoints.http.idempotency import idempotent, idempotent_stream
from entrypoints.http.openai_v1.schemas import (
    ChatCompletionIn,
    ChatCompletionOut,
    ModelList,
    ModelOut,
)
from entrypoints.http.openai_v1.streams import (
    completion_chunks,
    event_stream,
    idempotent_chunks,
    reply_chunks,
)
from entrypoints.http.openai_v1.translation import (
    CONVERSATION_HEADER,
    completion_out,
    completion_request,
    conversation_of,
    message_to_store,
    stored_reply_out,
)

_STREAM_RESPONSE = {
    200: ResponseSpec(
        data_container=ChatCompletionOut,
        description='The completion; with `"stream": true`, `text/event-stream` of '
        "`data: <chat.completion.chunk>` lines ending with `data: [DONE]`.",
    )
}


def _model_out(model: ModelInfo) -> ModelOut:
    return ModelOut(id=model.id, owned_by=model.provider)


class OpenAIController(Controller):
    path = "/"
    tags = ["OpenAI-compatible (/v1)"]

    @post(
        "/chat/completions",
        operation_id="openai_chat_completions",
        status_code=200,
        responses=_STREAM_RESPONSE,
        dto=NestedCheckedBody[ChatCompletionIn],
        return_dto=None,
    )
    async def chat_completions(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ChatCompletionIn],
        user: NamedDependency[User],
        catalog: NamedDependency[StaticModelCatalog],
        complete_chat: NamedDependency[CompleteChat],
        stream_chat: NamedDependency[StreamChat],
        send_message: NamedDependency[SendMessage],
        stream_message: NamedDependency[StreamMessage],
        follow_reply: NamedDependency[FollowReply],
        idempotent_requests: NamedDependency[IdempotentRequests],
    ) -> Response[ChatCompletionOut]:
        """OpenAI's Chat Completions, with `model` one of `GET /v1/models`. Stateless
        by default, as OpenAI's, and recorded for usage (tokens, latency, outcome; no
        text). Bound to one of your conversations by an `X-Parley-Conversation: <id>`
        header (or `metadata.conversation_id`): the last message, which must be the
        user's, is stored there with the reply, and the conversation Parley keeps is
        the history. `tools`, `tool_choice` and `response_format` reach models on the
        OpenAI wire format (others: 400); `n` other than 1 is a 400. An
        `Idempotency-Key` header makes a retry return the first answer."""
        conversation_id = conversation_of(request.headers.get(CONVERSATION_HEADER), data)
        if catalog.get(data.model) is None:
            raise ModelNotFound(
                f"The model `{data.model}` does not exist or you do not have access to it."
            )
        include_usage = data.stream_options is not None and data.stream_options.include_usage
        if conversation_id is not None:
            command = message_to_store(user.id, conversation_id, data)
            bound = {"X-Parley-Conversation": str(conversation_id)}
            if data.stream:

                async def start() -> ReplyFollow:
                    started = await stream_message(command)
                    return follow_reply.following(user.id, started.user_message, started.reply)

                async def resume(reply_id: int) -> ReplyFollow:
                    return await follow_reply(
                        FollowReplyRequest(owner_id=user.id, reply_id=reply_id)
                    )

                def respond(follow: ReplyFollow) -> Response[Any]:
                    return event_stream(reply_chunks(follow, data.model, include_usage), bound)

                return await idempotent_stream(
                    request, user.id, idempotent_requests, start, resume, respond
                )

            async def send() -> Response[Any]:
                exchange = await send_message(command)
                body = stored_reply_out(exchange.ai_message, data.model)
                return Response(body, headers=bound)

            return await idempotent(request, user.id, idempotent_requests, send)

        call = completion_request(user.id, data)
        if data.stream:

            async def lines() -> Any:
                return completion_chunks(await stream_chat(call), data.model, include_usage)

            return await idempotent_chunks(request, user, idempotent_requests, lines)

        async def answer() -> Response[Any]:
            return Response(completion_out(await complete_chat(call)))

        return await idempotent(request, user.id, idempotent_requests, answer)

    @get("/models", operation_id="openai_models")
    async def models(
        self, user: NamedDependency[User], list_models: NamedDependency[ListModels]
    ) -> ModelList:
        """The models this user may use now, in OpenAI's shape (`owned_by`: the provider)."""
        usable = await list_models(ListModelsRequest(owner_id=user.id))
        return ModelList(data=[_model_out(model) for model in usable])

    @get("/models/{model_id:str}", operation_id="openai_model")
    async def model(
        self,
        user: NamedDependency[User],
        list_models: NamedDependency[ListModels],
        model_id: FromPath[str],
    ) -> ModelOut:
        """One model this user may use, or 404 `model_not_found`."""
        usable = await list_models(ListModelsRequest(owner_id=user.id))
        model = next((model for model in usable if model.id == model_id), None)
        if model is None:
            raise ModelNotFound(
                f"The model `{model_id}` does not exist or you do not have access to it."
            )
        return _model_out(model)
