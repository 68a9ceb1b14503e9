"""Request and response bodies of the ``/api/v1/...`` dialect."""

from __future__ import annotations

from datetime import datetime

import msgspec

from application.accounts import SignedIn
from domain.conversation import Conversation, Message, MessageStatus
from entrypoints.http.reply_links import reply_links
from entrypoints.http.schema_docs import (
    Email,
    Id,
    ImageUrl,
    MessageText,
    ModelId,
    NewPassword,
    Secret,
    Status,
    Title,
    Username,
)


class RegisterIn(msgspec.Struct):
    username: Username
    email: Email
    password: NewPassword


class LoginIn(msgspec.Struct):
    username: Secret
    password: Secret


class RefreshIn(msgspec.Struct):
    refresh: Secret


class SignedInOut(msgspec.Struct):
    refresh: str
    access: str
    username: str
    email: str


class TokenPairOut(msgspec.Struct):
    access: str
    refresh: str


class HealthOut(msgspec.Struct):
    status: str
    message: str
    database: str
    redis: str


class ChatIn(msgspec.Struct):
    message: MessageText
    conversation_id: Id | None = None
    model: ModelId | None = None
    image_url: ImageUrl | None = None
    stream: bool = False


class V1MessageOut(msgspec.Struct, omit_defaults=True):
    id: int
    conversation: int
    role: str
    content: str
    created_at: datetime
    status: str
    model: str | None
    image_url: str | None
    # Only while the server writes the reply (status "streaming").
    stream_url: str | msgspec.UnsetType = msgspec.UNSET
    cancel_url: str | msgspec.UnsetType = msgspec.UNSET


class ChatOut(msgspec.Struct):
    conversation_id: int
    user_message: V1MessageOut
    ai_message: V1MessageOut
    status: str


class ModelOut(msgspec.Struct):
    id: str
    name: str
    provider: str
    supports_images: bool
    context_window: int
    default: bool


def v1_message_out(message: Message) -> V1MessageOut:
    out = V1MessageOut(
        id=message.id,
        conversation=message.conversation_id,
        role=message.role.value,
        content=message.content,
        created_at=message.created_at,
        status=message.status.value,
        model=message.model,
        image_url=message.image_url,
    )
    if message.status is MessageStatus.STREAMING:
        out.stream_url, out.cancel_url = reply_links("/api/v1", message.id).values()
    return out


def signed_in_out(signed_in: SignedIn) -> SignedInOut:
    return SignedInOut(
        refresh=signed_in.refresh,
        access=signed_in.access,
        username=signed_in.user.username,
        email=signed_in.user.email,
    )


class ConversationV1Out(msgspec.Struct):
    id: int
    user: int
    title: str
    model: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    # When the owner archived or pinned it; null when not.
    archived_at: datetime | None = None
    pinned_at: datetime | None = None


class ConversationCreateIn(msgspec.Struct):
    title: Title = ""
    model: ModelId | None = None


class ConversationPutIn(msgspec.Struct):
    title: Title
    model: ModelId | None = None
    status: Status | None = None


class ConversationPatchIn(msgspec.Struct):
    title: Title | None = None
    model: ModelId | None = None
    status: Status | None = None


class WeChatUrlOut(msgspec.Struct):
    url: str
    state: str


def conversation_v1_out(conversation: Conversation) -> ConversationV1Out:
    return ConversationV1Out(
        id=conversation.id,
        user=conversation.owner_id,
        title=conversation.title,
        model=conversation.model,
        status=conversation.status.value,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        archived_at=conversation.archived_at,
        pinned_at=conversation.pinned_at,
    )
