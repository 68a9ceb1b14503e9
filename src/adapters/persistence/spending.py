"""Spending in SQL: the sums a budget is checked against, the reservations of calls in
flight, and the limits admins set per user."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.persistence import tables as t
from application.ports import SpendWindow
from domain.budgets import Budget, Limit, PeriodSpend, Spend, UserLimits
from domain.conversation import MessageRole

_reservations = t.budget_reservations
_limits = t.user_limits
# What a user's limits row says, as joined into other reads (``SqlConversations.for_turn``).
LIMIT_COLUMNS = (
    _limits.c.has_budget,
    _limits.c.daily_tokens,
    _limits.c.daily_cost_nanos,
    _limits.c.monthly_tokens,
    _limits.c.monthly_cost_nanos,
    _limits.c.allowed_models,
)


def limits_of_row(row: Any) -> UserLimits | None:
    """The limits in a row holding ``LIMIT_COLUMNS``; None when the user has no row."""
    if row.has_budget is None:
        return None
    budget = None
    if row.has_budget:
        budget = Budget(
            daily=Limit(tokens=row.daily_tokens, cost_nanos=row.daily_cost_nanos),
            monthly=Limit(tokens=row.monthly_tokens, cost_nanos=row.monthly_cost_nanos),
        )
    allowed = None
    if row.allowed_models is not None:
        allowed = frozenset(str(model) for model in json.loads(row.allowed_models))
    return UserLimits(budget=budget, allowed_models=allowed)


class SqlSpending:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def limits_of(self, user_id: int) -> UserLimits | None:
        row = (
            await self._db.execute(select(*LIMIT_COLUMNS).where(_limits.c.user_id == user_id))
        ).first()
        return None if row is None else limits_of_row(row)

    async def save_limits(self, user_id: int, limits: UserLimits, when: datetime) -> None:
        budget = limits.budget or Budget()
        values: dict[str, Any] = {
            "has_budget": limits.budget is not None,
            "daily_tokens": budget.daily.tokens,
            "daily_cost_nanos": budget.daily.cost_nanos,
            "monthly_tokens": budget.monthly.tokens,
            "monthly_cost_nanos": budget.monthly.cost_nanos,
            "allowed_models": None
            if limits.allowed_models is None
            else json.dumps(sorted(limits.allowed_models)),
            "updated_at": when,
        }
        changed = await self._db.execute(
            update(_limits).where(_limits.c.user_id == user_id).values(**values)
        )
        if changed.rowcount == 0:
            await self._db.execute(_limits.insert().values(user_id=user_id, **values))

    async def spent(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        return (await self.spent_by_user([user_id], window)).get(user_id, PeriodSpend())

    async def spent_by_user(
        self, user_ids: Sequence[int], window: SpendWindow
    ) -> dict[int, PeriodSpend]:
        rows = await self._db.execute(_spend_query(user_ids, window))
        return {
            row.user_id: PeriodSpend(
                day=Spend(int(row.day_tokens or 0), int(row.day_cost or 0)),
                month=Spend(int(row.month_tokens or 0), int(row.month_cost or 0)),
            )
            for row in rows
        }

    async def spent_locked(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        if self._db.dialect.name != "sqlite":
            # SQLite transactions here begin IMMEDIATE and are serialised already; other
            # databases serialise on the user's row for the rest of the transaction.
            await self._db.execute(
                select(t.users.c.id).where(t.users.c.id == user_id).with_for_update()
            )
        return await self.spent(user_id, window)

    async def hold(self, user_id: int, amount: Spend, now: datetime, lease_until: datetime) -> int:
        result = await self._db.execute(
            _reservations.insert()
            .values(
                user_id=user_id,
                tokens=amount.tokens,
                cost_nanos=amount.cost_nanos,
                created_at=now,
                lease_until=lease_until,
            )
            .returning(_reservations.c.id)
        )
        return int(result.scalar_one())

    async def release(self, reservation_id: int) -> None:
        await self._db.execute(delete(_reservations).where(_reservations.c.id == reservation_id))

    async def renew(self, reservation_ids: Sequence[int], lease_until: datetime) -> None:
        await self._db.execute(
            update(_reservations)
            .where(_reservations.c.id.in_(list(reservation_ids)))
            .values(lease_until=lease_until)
        )

    async def release_expired(self, now: datetime) -> int:
        result = await self._db.execute(
            delete(_reservations).where(_reservations.c.lease_until <= now)
        )
        return int(result.rowcount or 0)


def _spend_query(user_ids: Sequence[int], window: SpendWindow) -> Any:
    """A row per user: tokens and cost billed since the month's and the day's start,
    plus the reservations still leased (counted in both)."""
    m, c, calls = t.messages, t.conversations, t.model_calls
    ids = list(user_ids)

    def today(created_at: Any) -> Any:
        return case((created_at >= window.day_start, 1), else_=0).label("today")

    replies = (
        select(
            c.c.owner_id.label("user_id"),
            m.c.billed_tokens.label("tokens"),
            m.c.cost_nanos.label("cost"),
            today(m.c.created_at),
        )
        .select_from(m.join(c, c.c.id == m.c.conversation_id))
        .where(
            c.c.owner_id.in_(ids),
            m.c.role == MessageRole.ASSISTANT.value,
            m.c.created_at >= window.month_start,
        )
    )
    stateless = select(
        calls.c.user_id, calls.c.billed_tokens, calls.c.cost_nanos, today(calls.c.created_at)
    ).where(calls.c.user_id.in_(ids), calls.c.created_at >= window.month_start)
    held = select(
        _reservations.c.user_id,
        _reservations.c.tokens,
        _reservations.c.cost_nanos,
        literal(1).label("today"),
    ).where(_reservations.c.user_id.in_(ids), _reservations.c.lease_until > window.now)
    every = union_all(replies, stateless, held).subquery()
    return select(
        every.c.user_id,
        func.sum(every.c.tokens).label("month_tokens"),
        func.sum(every.c.cost).label("month_cost"),
        func.sum(every.c.tokens * every.c.today).label("day_tokens"),
        func.sum(every.c.cost * every.c.today).label("day_cost"),
    ).group_by(every.c.user_id)
