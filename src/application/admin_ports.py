"""The ports the admin use cases need: a read side over every user's data, switching
accounts on and off, and the audit log. Adapters compute every count in the database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, TypeVar

from application.pagination import Page, PageRequest
from application.ports import UnitOfWork
from domain.budgets import PeriodSpend
from domain.conversation import Conversation, ConversationStatus
from domain.monitoring import ConversationStats, TimeRange

T = TypeVar("T")

AuditValue = str | int | bool | None


@dataclass(frozen=True)
class CountedPage(Page[T]):
    """A page whose ``total`` may be a lower bound: searches stop counting at a limit,
    so that a common word costs no more than a rare one."""

    total_is_exact: bool = True


@dataclass(frozen=True, kw_only=True)
class OwnedConversation:
    conversation: Conversation
    owner_username: str


@dataclass(frozen=True, kw_only=True)
class ConversationCriteria:
    """Every given filter applies. ``terms``: each must be in the title or in one
    message of the conversation (case-insensitive substring)."""

    owner_id: int | None = None
    status: ConversationStatus | None = None
    terms: tuple[str, ...] = ()
    # None: either; True: only archived (pinned) ones; False: only the others.
    archived: bool | None = None
    pinned: bool | None = None


@dataclass(frozen=True, kw_only=True)
class UserSummary:
    id: int
    username: str
    email: str
    is_staff: bool
    is_active: bool
    date_joined: datetime
    conversation_count: int
    total_messages: int
    # This day's and this month's spend (reservations of calls in flight included), when
    # it was asked for (the user list).
    spent: PeriodSpend | None = None


@dataclass(frozen=True, kw_only=True)
class UsageCriteria:
    period: TimeRange
    owner_id: int | None = None
    model: str | None = None
    by_user: bool = True
    by_model: bool = True
    by_day: bool = False  # the UTC calendar date of each model call


@dataclass(frozen=True, kw_only=True)
class UsageRow:
    """Replies the models gave (failed ones included) and the tokens they used.
    ``user_id``/``username`` are None when not grouped by user, ``model`` when not
    grouped by model (or for replies with no model recorded), ``day`` (UTC) when not
    grouped by day."""

    user_id: int | None
    username: str | None
    model: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_nanos: int = 0  # at the models' prices when the calls were made
    day: date | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    actor_id: int | None
    actor_username: str
    action: str
    target_type: str
    target_id: int | None
    created_at: datetime
    details: Mapping[str, AuditValue] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AuditEntry(AuditRecord):
    id: int


@dataclass(frozen=True, kw_only=True)
class AuditCriteria:
    actor_username: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: int | None = None


class AdminQueries(Protocol):
    async def conversations(
        self, criteria: ConversationCriteria, page: PageRequest, *, count_limit: int | None
    ) -> Page[OwnedConversation]:
        """Newest first. ``total`` counts at most ``count_limit`` (None: all)."""
        ...

    async def conversation(self, conversation_id: int) -> OwnedConversation | None: ...

    async def stats(self, conversation_id: int) -> ConversationStats | None:
        """None when the conversation does not exist."""
        ...

    async def users(self, username: str | None, page: PageRequest) -> Page[UserSummary]:
        """Newest first; ``username`` matches exactly."""
        ...

    async def user(self, user_id: int) -> UserSummary | None: ...

    async def usage(self, criteria: UsageCriteria, page: PageRequest) -> Page[UsageRow]:
        """One row per group, most tokens first; by day, oldest day first and most tokens
        first within a day."""
        ...


class UserActivation(Protocol):
    async def set_active(self, user_id: int, active: bool) -> None: ...


class AuditLog(Protocol):
    async def record(self, entry: AuditRecord) -> None: ...

    async def entries(self, criteria: AuditCriteria, page: PageRequest) -> Page[AuditEntry]:
        """Newest first."""
        ...


class AdminUnitOfWork(UnitOfWork, Protocol):
    """The unit of work with the admin ports on the same transaction."""

    @property
    def admin(self) -> AdminQueries: ...

    @property
    def activation(self) -> UserActivation: ...

    @property
    def audit(self) -> AuditLog: ...
