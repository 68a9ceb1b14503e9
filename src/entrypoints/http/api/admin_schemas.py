"""Response bodies of ``/api/admin/...`` (the DRF-style dialect, admin side) and their mapping."""

from __future__ import annotations

from datetime import datetime

import msgspec

from application.admin_ports import AuditEntry, AuditValue, OwnedConversation, UsageRow, UserSummary
from domain.budgets import amount_of
from domain.conversation import Message
from domain.monitoring import ConversationStats
from entrypoints.http.api.schemas import ConversationOut, message_out


class ConversationStatsOut(msgspec.Struct):
    conversation_id: int
    message_count: int
    duration_minutes: int
    user_messages: int
    ai_messages: int
    first_message_time: datetime | None
    last_message_time: datetime | None


class AdminUserOut(msgspec.Struct):
    id: int
    username: str
    email: str
    is_staff: bool
    is_active: bool
    date_joined: datetime
    conversation_count: int
    total_messages: int
    spend: SpendOut | None


class SpendSoFar(msgspec.Struct):
    tokens: int
    cost: float


class SpendOut(msgspec.Struct):
    """This day's and this month's spend (calls in flight at their estimate); costs in
    the operator's currency. In the user list (null in other answers)."""

    day: SpendSoFar
    month: SpendSoFar


class UsageOut(msgspec.Struct):
    # ISO date (UTC) when grouped by day, null otherwise, as user and model are.
    day: str | None
    user: int | None
    username: str | None
    model: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # In the operator's currency, at the models' prices (0 for models without one).
    cost: float
    currency: str


class AuditEntryOut(msgspec.Struct):
    id: int
    actor: int | None
    actor_username: str
    action: str
    target_type: str
    target_id: int | None
    details: dict[str, AuditValue]
    created_at: datetime


def owned_conversation_out(
    item: OwnedConversation, messages: list[Message] | None = None
) -> ConversationOut:
    """The documented conversation shape; ``user_username`` is the owner's, not the admin's."""
    conversation = item.conversation
    return ConversationOut(
        id=conversation.id,
        user=conversation.owner_id,
        user_username=item.owner_username,
        status=conversation.status.value,
        title=conversation.title,
        model=conversation.model,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        archived_at=conversation.archived_at,
        pinned_at=conversation.pinned_at,
        messages=[message_out(m) for m in messages or []],
    )


def stats_out(stats: ConversationStats) -> ConversationStatsOut:
    return ConversationStatsOut(
        conversation_id=stats.conversation_id,
        message_count=stats.message_count,
        duration_minutes=stats.duration_minutes,
        user_messages=stats.user_messages,
        ai_messages=stats.ai_messages,
        first_message_time=stats.first_message_time,
        last_message_time=stats.last_message_time,
    )


def admin_user_out(user: UserSummary) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        username=user.username,
        email=user.email,
        is_staff=user.is_staff,
        is_active=user.is_active,
        date_joined=user.date_joined,
        conversation_count=user.conversation_count,
        total_messages=user.total_messages,
        spend=None
        if user.spent is None
        else SpendOut(
            day=SpendSoFar(user.spent.day.tokens, money(user.spent.day.cost_nanos)),
            month=SpendSoFar(user.spent.month.tokens, money(user.spent.month.cost_nanos)),
        ),
    )


def usage_out(row: UsageRow, currency: str) -> UsageOut:
    return UsageOut(
        day=None if row.day is None else row.day.isoformat(),
        user=row.user_id,
        username=row.username,
        model=row.model,
        requests=row.requests,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
        cost=money(row.cost_nanos),
        currency=currency,
    )


def money(nanos: int) -> float:
    """An amount for a JSON body: a number, as OpenAI's usage and cost APIs give one."""
    return float(amount_of(nanos))


def audit_entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        actor=entry.actor_id,
        actor_username=entry.actor_username,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        details=dict(entry.details),
        created_at=entry.created_at,
    )
