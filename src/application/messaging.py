"""Sending a message and getting the model's answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from application.chat_settings import SettingsDefaults, settings_of
from application.errors import ModelFailure, ProviderUnavailable
from application.ports import (
    ChatModel,
    ChatRequest,
    ChatRole,
    ChatTurn,
    Clock,
    ModelCatalog,
    UnitOfWork,
)
from domain.conversation import Conversation, Message, MessageRole, MessageStatus
from domain.errors import InvalidInput, NotFound
from domain.history import fit_history
from domain.quota import QuotaPolicy

_CHAT_ROLES: dict[MessageRole, ChatRole] = {
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.SYSTEM: "system",
}


@dataclass(frozen=True, kw_only=True)
class HistoryBudget:
    """How much of the conversation the model sees: at most ``max_messages`` of the
    newest messages, trimmed further to ``max_chars`` characters (newest kept)."""

    max_messages: int = 50
    max_chars: int = 16_000
    system_prompt: str = ""


@dataclass(frozen=True, kw_only=True)
class UserMessage:
    owner_id: int
    conversation_id: int
    text: str
    model: str | None = None
    image_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Exchange:
    conversation: Conversation
    user_message: Message
    ai_message: Message


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    conversation: Conversation
    user_message: Message
    request: ChatRequest


class SendMessage:
    """Send a message in one of the user's conversations and store the model's answer.

    Rules: the message is 1..max_message_chars characters (400 otherwise, nothing
    stored); a closed conversation takes no messages (409); the model is the one named
    for this turn, else the conversation's, else the user's chat setting, and must be
    available. The user's message is committed before the model is called, so a
    provider failure never loses it: the failure is stored as a failed reply and
    reported as 502/503/504. The model sees the conversation's newest messages within
    the history budget and the user's temperature and max_tokens."""

    def __init__(
        self,
        uow: UnitOfWork,
        model: ChatModel,
        catalog: ModelCatalog,
        policy: QuotaPolicy,
        clock: Clock,
        budget: HistoryBudget,
        defaults: SettingsDefaults,
    ) -> None:
        self._uow = uow
        self._model = model
        self._catalog = catalog
        self._policy = policy
        self._clock = clock
        self._budget = budget
        self._defaults = defaults

    async def __call__(self, command: UserMessage) -> Exchange:
        self._policy.check_message(command.text)
        if command.model is not None and self._catalog.get(command.model) is None:
            raise InvalidInput({"model": [f'"{command.model}" is not an available model.']})
        prepared = await self._store_user_message(command)
        started = time.perf_counter()
        try:
            completion = await self._model.complete(prepared.request)
        except ModelFailure as failure:
            await self._store_reply(
                prepared,
                Message(
                    id=None,
                    conversation_id=prepared.user_message.conversation_id,
                    role=MessageRole.ASSISTANT,
                    content="",
                    created_at=self._clock.now(),
                    status=MessageStatus.FAILED,
                    model=prepared.request.model,
                    latency_ms=_elapsed_ms(started),
                    error_code=failure.code,
                ),
            )
            raise
        reply = await self._store_reply(
            prepared,
            Message(
                id=None,
                conversation_id=prepared.user_message.conversation_id,
                role=MessageRole.ASSISTANT,
                content=completion.text,
                created_at=self._clock.now(),
                model=completion.model,
                provider=completion.provider,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
                finish_reason=completion.finish_reason,
                latency_ms=_elapsed_ms(started),
            ),
        )
        return Exchange(
            conversation=prepared.conversation,
            user_message=prepared.user_message,
            ai_message=reply,
        )

    async def _store_user_message(self, command: UserMessage) -> _Prepared:
        async with self._uow as uow:
            conversation = await uow.conversations.get_owned(
                command.conversation_id, command.owner_id
            )
            if conversation is None:
                raise NotFound("Conversation not found.")
            conversation.ensure_accepts_messages()
            assert conversation.id is not None
            user_settings = await settings_of(uow, command.owner_id, self._catalog, self._defaults)
            model_id = command.model or conversation.model or user_settings.settings.ai_model
            if self._catalog.get(model_id) is None:
                raise ProviderUnavailable(
                    f'The model "{model_id}" is not available now; choose another in your '
                    "chat settings."
                )
            earlier = await uow.messages.latest(conversation.id, self._budget.max_messages - 1)
            now = self._clock.now()
            user_message = await uow.messages.add(
                Message(
                    id=None,
                    conversation_id=conversation.id,
                    role=MessageRole.USER,
                    content=command.text,
                    created_at=now,
                    image_url=command.image_url,
                )
            )
            conversation.touch(now)
            await uow.conversations.touch(conversation.id, now)
            await uow.commit()
        history = fit_history([*earlier, user_message], self._budget.max_chars)
        turns = [ChatTurn(role="system", content=self._budget.system_prompt)] * bool(
            self._budget.system_prompt
        )
        turns += [
            ChatTurn(role=_CHAT_ROLES[m.role], content=m.content, image_url=m.image_url)
            for m in history
        ]
        request = ChatRequest(
            model=model_id,
            messages=turns,
            temperature=user_settings.settings.temperature,
            max_tokens=user_settings.settings.max_tokens,
        )
        return _Prepared(conversation=conversation, user_message=user_message, request=request)

    async def _store_reply(self, prepared: _Prepared, reply: Message) -> Message:
        async with self._uow as uow:
            stored = await uow.messages.add(reply)
            prepared.conversation.touch(reply.created_at)
            await uow.conversations.touch(reply.conversation_id, reply.created_at)
            await uow.commit()
        return stored


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
