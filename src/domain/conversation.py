"""Conversations and their messages, and the lifecycle rules between them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import ConversationClosed
from domain.quota import QuotaPolicy

TITLE_MAX_CHARS = 200


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"


@dataclass
class Conversation:
    id: int | None
    owner_id: int
    title: str
    model: str | None
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime

    @classmethod
    def start(
        cls,
        *,
        owner_id: int,
        now: datetime,
        active_conversations: int,
        policy: QuotaPolicy,
        title: str = "",
        model: str | None = None,
    ) -> Conversation:
        """A new conversation is active, so it needs room under the active limit."""
        policy.check_can_activate(active_conversations)
        return cls(
            id=None,
            owner_id=owner_id,
            title=title[:TITLE_MAX_CHARS],
            model=model,
            status=ConversationStatus.ACTIVE,
            created_at=now,
            updated_at=now,
        )

    @property
    def is_active(self) -> bool:
        return self.status is ConversationStatus.ACTIVE

    def close(self, now: datetime) -> None:
        """Idempotent: closing a closed conversation changes nothing."""
        if self.is_active:
            self.status = ConversationStatus.CLOSED
            self.updated_at = now

    def reopen(self, now: datetime, *, active_conversations: int, policy: QuotaPolicy) -> None:
        """Idempotent; reopening needs room under the active limit like starting does."""
        if self.is_active:
            return
        policy.check_can_activate(active_conversations)
        self.status = ConversationStatus.ACTIVE
        self.updated_at = now

    def rename(self, title: str, now: datetime) -> None:
        self.title = title[:TITLE_MAX_CHARS]
        self.updated_at = now

    def ensure_accepts_messages(self) -> None:
        if not self.is_active:
            raise ConversationClosed()

    def touch(self, now: datetime) -> None:
        self.updated_at = now


@dataclass
class Message:
    id: int | None
    conversation_id: int
    role: MessageRole
    content: str
    created_at: datetime
    status: MessageStatus = MessageStatus.COMPLETED
    model: str | None = None
    provider: str | None = None
    image_url: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency_ms: int | None = None
    error_code: str | None = None

    @property
    def counts_as_history(self) -> bool:
        """A failed reply carries nothing the model said, so the model never sees it."""
        return self.status is not MessageStatus.FAILED
