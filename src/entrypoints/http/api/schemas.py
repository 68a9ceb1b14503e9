"""Request and response bodies of the ``/api/...`` dialect (DRF style), and their mapping
from domain objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from application.chat import Exchange
from domain.chat_settings import UserChatSettings
from domain.conversation import Conversation, Message, MessageRole, MessageStatus
from domain.users import User
from entrypoints.http.reply_links import reply_links
from entrypoints.http.schema_docs import MaxTokens, MessageText, ModelId, Secret, Temperature


class MessageOut(msgspec.Struct, omit_defaults=True):
    id: int
    sender: str
    content: str
    timestamp: datetime
    status: str
    # Only while the server writes the reply (status "streaming").
    stream_url: str | msgspec.UnsetType = msgspec.UNSET
    cancel_url: str | msgspec.UnsetType = msgspec.UNSET


class ConversationOut(msgspec.Struct):
    id: int
    user: int
    user_username: str
    status: str
    title: str
    model: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[MessageOut]
    # When the owner archived or pinned it; null when not.
    archived_at: datetime | None = None
    pinned_at: datetime | None = None


class SendMessageIn(msgspec.Struct):
    message: MessageText
    stream: bool = False


class SendMessageOut(msgspec.Struct):
    user_message: MessageOut
    ai_message: MessageOut


class ChatSettingOut(msgspec.Struct):
    id: int
    user: int
    ai_model: str
    temperature: float
    max_tokens: int


class ChatSettingPut(msgspec.Struct):
    ai_model: ModelId
    temperature: Temperature
    max_tokens: MaxTokens


class ChatSettingPatch(msgspec.Struct):
    ai_model: ModelId | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None


class TokenCredentialsIn(msgspec.Struct):
    username: Secret
    password: Secret


class TokenOut(msgspec.Struct):
    token: str


SENDER = {MessageRole.USER: "user", MessageRole.ASSISTANT: "ai", MessageRole.SYSTEM: "system"}


def message_out(message: Message) -> MessageOut:
    out = MessageOut(
        id=message.id,
        sender=SENDER[message.role],
        content=message.content,
        timestamp=message.created_at,
        status=message.status.value,
    )
    if message.status is MessageStatus.STREAMING:
        out.stream_url, out.cancel_url = reply_links("/api", message.id).values()
    return out


def conversation_out(
    conversation: Conversation, owner: User, messages: list[Message] | None = None
) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        user=owner.id,
        user_username=owner.username,
        status=conversation.status.value,
        title=conversation.title,
        model=conversation.model,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        messages=[message_out(m) for m in messages or []],
        archived_at=conversation.archived_at,
        pinned_at=conversation.pinned_at,
    )


def exchange_body(user_message: Message, ai_message: Message) -> dict[str, Any]:
    return {
        "user_message": msgspec.to_builtins(message_out(user_message)),
        "ai_message": msgspec.to_builtins(message_out(ai_message)),
    }


def exchange_out(exchange: Exchange) -> SendMessageOut:
    return SendMessageOut(
        user_message=message_out(exchange.user_message),
        ai_message=message_out(exchange.ai_message),
    )


def chat_setting_out(settings: UserChatSettings) -> ChatSettingOut:
    return ChatSettingOut(
        id=settings.id,
        user=settings.user_id,
        ai_model=settings.settings.ai_model,
        temperature=settings.settings.temperature,
        max_tokens=settings.settings.max_tokens,
    )
