"""What admins ask for: the admin use cases' requests."""

from __future__ import annotations

from dataclasses import dataclass

from application.admin_ports import (
    OwnedConversation,
)
from domain.conversation import ConversationStatus, Message
from domain.monitoring import DEFAULT_USAGE_GROUPING, TimeRange, UsageGrouping
from domain.users import User

SEARCH_COUNT_LIMIT = 200
ALL_TIME = TimeRange()


@dataclass(frozen=True, kw_only=True)
class ListAllConversationsRequest:
    """``None`` filters nothing; ``search`` is the words the admin typed."""

    actor: User
    username: str | None = None
    status: ConversationStatus | None = None
    search: str | None = None


@dataclass(frozen=True, kw_only=True)
class AdminConversationRef:
    actor: User
    conversation_id: int


@dataclass(frozen=True, kw_only=True)
class AdminConversationDetail:
    conversation: OwnedConversation
    messages: list[Message]


@dataclass(frozen=True, kw_only=True)
class ListUsersRequest:
    actor: User
    username: str | None = None


@dataclass(frozen=True, kw_only=True)
class AdminUserRef:
    actor: User
    user_id: int


@dataclass(frozen=True, kw_only=True)
class ReportUsageRequest:
    actor: User
    period: TimeRange = ALL_TIME
    username: str | None = None
    model: str | None = None
    grouping: frozenset[UsageGrouping] = DEFAULT_USAGE_GROUPING


@dataclass(frozen=True, kw_only=True)
class ListAuditLogRequest:
    actor: User
    actor_username: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: int | None = None


# Ids are 32-bit integers on every database Parley runs on; any other number names nothing.
