"""Conversations and their messages, and the lifecycle rules between them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.errors import ConversationArchived, ConversationClosed, TitleTooLong
from domain.quota import QuotaPolicy

TITLE_MAX_CHARS = 200


def title_errors(title: str) -> dict[str, list[str]]:
    """What is wrong with a title, by field (empty when nothing is): at most
    ``TITLE_MAX_CHARS`` characters. A title is kept as given or refused, never cut short
    behind the user's back; a title made from a message is made to fit."""
    if len(title) > TITLE_MAX_CHARS:
        return TitleTooLong(TITLE_MAX_CHARS).field_errors
    return {}


TITLE_FROM_MESSAGE_CHARS = 50


def title_from_message(text: str) -> str:
    """A new conversation's title: its first message on one line, cut to fit."""
    line = " ".join(text.split())
    if len(line) <= TITLE_FROM_MESSAGE_CHARS:
        return line
    return line[: TITLE_FROM_MESSAGE_CHARS - 1].rstrip() + "…"


def _checked_title(title: str) -> str:
    if len(title) > TITLE_MAX_CHARS:
        raise TitleTooLong(TITLE_MAX_CHARS)
    return title


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
    # The provider's safety system withheld the answer (or refused the prompt): what the
    # user sees is the stable code ``content_filtered``, never an empty success.
    BLOCKED = "blocked"
    # A reply the server is writing now; it ends in one of the others.
    STREAMING = "streaming"
    # The server stopped (or died) while writing the reply: it has what was written.
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        """A reply that ended never changes again; only ``streaming`` may."""
        return self is not MessageStatus.STREAMING


@dataclass(kw_only=True)
class NewConversation:
    """A conversation as it is before it is stored; storing it gives it its id
    (``Conversation``)."""

    owner_id: int
    title: str
    model: str | None
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    # When the owner archived it (out of their default list, not counting as active) or
    # pinned it (first in their list); None: it is not.
    archived_at: datetime | None = None
    pinned_at: datetime | None = None

    @staticmethod
    def start(
        *,
        owner_id: int,
        now: datetime,
        active_conversations: int,
        policy: QuotaPolicy,
        title: str = "",
        model: str | None = None,
    ) -> NewConversation:
        """A new conversation is active, so it needs room under the active limit; its
        title is at most ``TITLE_MAX_CHARS`` characters (longer is refused)."""
        title = _checked_title(title)
        policy.check_can_activate(active_conversations)
        return NewConversation(
            owner_id=owner_id,
            title=title,
            model=model,
            status=ConversationStatus.ACTIVE,
            created_at=now,
            updated_at=now,
        )

    @property
    def is_active(self) -> bool:
        return self.status is ConversationStatus.ACTIVE

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def is_pinned(self) -> bool:
        return self.pinned_at is not None

    @property
    def counts_as_active(self) -> bool:
        """What the active limit counts: active and not archived."""
        return self.is_active and not self.is_archived

    def close(self, now: datetime) -> None:
        """Idempotent: closing a closed conversation changes nothing."""
        if self.is_active:
            self.status = ConversationStatus.CLOSED
            self.updated_at = now

    def reopen(self, now: datetime, *, active_conversations: int, policy: QuotaPolicy) -> None:
        """Idempotent; reopening needs room under the active limit like starting does
        (an archived conversation does not count, so it needs none until unarchived)."""
        if self.is_active:
            return
        if not self.is_archived:
            policy.check_can_activate(active_conversations)
        self.status = ConversationStatus.ACTIVE
        self.updated_at = now

    def archive(self, now: datetime) -> None:
        """Out of the owner's default list and of the active count. Idempotent: archiving
        an archived conversation keeps the time it was first archived."""
        if not self.is_archived:
            self.archived_at = now
            self.updated_at = now

    def unarchive(self, now: datetime, *, active_conversations: int, policy: QuotaPolicy) -> None:
        """Back in the default list. An active one counts as active again, so it needs
        room under the limit like reopening (a closed one needs none). Idempotent."""
        if not self.is_archived:
            return
        if self.is_active:
            policy.check_can_activate(active_conversations)
        self.archived_at = None
        self.updated_at = now

    def pin(self, now: datetime) -> None:
        """First in the owner's lists, the most recently pinned first. Idempotent:
        pinning a pinned conversation keeps its place."""
        if not self.is_pinned:
            self.pinned_at = now
            self.updated_at = now

    def unpin(self, now: datetime) -> None:
        """Back among the others, by id. Idempotent."""
        if self.is_pinned:
            self.pinned_at = None
            self.updated_at = now

    def rename(self, title: str, now: datetime) -> None:
        """At most ``TITLE_MAX_CHARS`` characters; a longer title changes nothing."""
        self.title = _checked_title(title)
        self.updated_at = now

    def ensure_accepts_messages(self) -> None:
        """Only a conversation that counts as active takes messages: an archived one
        would otherwise be an active conversation outside the limit."""
        if not self.is_active:
            raise ConversationClosed()
        if self.is_archived:
            raise ConversationArchived()

    def touch(self, now: datetime) -> None:
        self.updated_at = now

    def stored_as(self, conversation_id: int) -> Conversation:
        return Conversation(id=conversation_id, **_values(self, NewConversation))


@dataclass(kw_only=True)
class Conversation(NewConversation):
    """A stored conversation."""

    id: int


class AsTheModelSeesIt:
    """What the model is sent of a message (``role``, ``content``, the image)."""

    status: MessageStatus
    content: str
    image_url: str | None
    image_data: str | None

    @property
    def counts_as_history(self) -> bool:
        """Only text the model actually said (or the user wrote) goes back to the model:
        a failed, blocked or empty turn is never sent upstream (Gemini, for one, refuses
        an empty part, and would then refuse every later turn)."""
        return self.status in _ANSWERED and bool(self.content.strip())

    @property
    def image_for_model(self) -> str | None:
        """The image as a data: URI, or None when there is none to send (an image given
        by URL before Parley kept a copy is not fetched again: it may be long gone)."""
        if self.image_data:
            return self.image_data
        if self.image_url and self.image_url.startswith("data:"):
            return self.image_url
        return None


@dataclass
class NewMessage(AsTheModelSeesIt):
    """A message as it is before it is stored; storing it gives it its id (``Message``)."""

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
    # The model's reasoning ("thinking"), kept apart from the answer; part of
    # completion_tokens, which is what the provider bills.
    reasoning: str | None = None
    reasoning_tokens: int = 0
    # The provider's own words when a reply failed (never a key).
    error_message: str | None = None
    # A user's image as the providers take it (a data: URI), fetched once when it was
    # sent; ``image_url`` stays what the user gave.
    image_data: str | None = None
    # What the reply counts against its owner's budget: the reported tokens, or an
    # estimate of what a stream produced when none were reported; its cost in nano-units
    # of the operator's currency (0 for a model without a price).
    billed_tokens: int = 0
    cost_nanos: int = 0
    # The message this one answers or follows; None for a conversation's first (or a
    # sibling of it). Whether it is on the conversation's current branch: the history the
    # model sees and the documented lists show.
    parent_id: int | None = None
    on_branch: bool = True

    def stored_as(self, message_id: int) -> Message:
        return Message(id=message_id, **_values(self, NewMessage))


@dataclass(kw_only=True)
class Message(NewMessage):
    """A stored message: ``id`` orders a conversation's messages."""

    id: int


# Not frozen: a frozen dataclass sets each field through object.__setattr__ (5x slower to
# build), and every turn builds the 50 messages of its history; nothing writes to one.
@dataclass(slots=True)
class EarlierMessage(AsTheModelSeesIt):
    """A stored message as a turn's history needs it: read with only these columns, the
    model's history costs a turn a fraction of reading whole messages (bench/)."""

    id: int
    role: MessageRole
    content: str
    status: MessageStatus
    image_url: str | None
    image_data: str | None


def _values(record: object, kind: type) -> dict[str, Any]:
    """The fields ``kind`` declares, read from ``record`` (to build its stored twin)."""
    return {field.name: getattr(record, field.name) for field in fields(kind)}


_ANSWERED = frozenset({MessageStatus.COMPLETED, MessageStatus.PARTIAL})
