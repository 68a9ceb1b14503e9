"""What an import yields, whichever format the file was in: the conversations and
messages to store, or ``InvalidImport`` naming the path of every bad field."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from domain.conversation import (
    ConversationStatus,
    MessageRole,
    MessageStatus,
    NewConversation,
    NewMessage,
)
from domain.errors import InvalidInput


class InvalidImport(InvalidInput):
    code = "invalid_import"


@dataclass(frozen=True, kw_only=True)
class ImportedMessage:
    """A message to store; ``parent`` is the index of its parent among its
    conversation's messages (always an earlier one), None for a first message."""

    parent: int | None
    role: MessageRole
    content: str
    created_at: datetime
    status: MessageStatus = MessageStatus.COMPLETED
    model: str | None = None
    provider: str | None = None
    image_url: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    reasoning: str | None = None
    finish_reason: str | None = None
    error_code: str | None = None
    on_branch: bool = False

    def to_store(self, conversation_id: int) -> NewMessage:
        """Imported history is billed nothing here: it was paid for where it was made."""
        return NewMessage(
            conversation_id=conversation_id,
            role=self.role,
            content=self.content,
            created_at=self.created_at,
            status=self.status,
            model=self.model,
            provider=self.provider,
            image_url=self.image_url,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            reasoning_tokens=self.reasoning_tokens,
            reasoning=self.reasoning,
            finish_reason=self.finish_reason,
            error_code=self.error_code,
            on_branch=self.on_branch,
        )


@dataclass(frozen=True, kw_only=True)
class ImportedConversation:
    title: str
    model: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    pinned_at: datetime | None
    messages: tuple[ImportedMessage, ...]

    def to_store(self, owner_id: int, *, model: str | None) -> NewConversation:
        """An imported conversation arrives closed, so it never counts against the
        active limit; its owner reopens it within the limit."""
        return NewConversation(
            owner_id=owner_id,
            title=self.title,
            model=model,
            status=ConversationStatus.CLOSED,
            created_at=self.created_at,
            updated_at=self.updated_at,
            archived_at=self.archived_at,
            pinned_at=self.pinned_at,
        )


def placed(message: ImportedMessage, *, parent: int | None, on_branch: bool) -> ImportedMessage:
    return replace(message, parent=parent, on_branch=on_branch)
