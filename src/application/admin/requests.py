"""What admins ask for: the admin use cases' requests."""

from __future__ import annotations

from dataclasses import dataclass

from application.admin_ports import (
    OwnedConversation,
)
from domain.conversation import Message
from domain.users import User

SEARCH_COUNT_LIMIT = 200


@dataclass(frozen=True, kw_only=True)
class ListAllConversationsRequest:
    actor: User
    username: str | None = None
    status: str | None = None
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
    start: str | None = None
    end: str | None = None
    username: str | None = None
    model: str | None = None
    group_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class ListAuditLogRequest:
    actor: User
    actor_username: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: int | None = None


# Ids are 32-bit integers on every database Parley runs on; any other number names nothing.
