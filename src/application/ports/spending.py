"""Persistence ports for what use of the models costs: calls outside conversations,
spend per period, reservations for calls in flight, and per-user limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.budgets import PeriodSpend, Spend, UserLimits
from domain.model_calls import ModelCall


class ModelCalls(Protocol):
    async def add(self, call: ModelCall) -> None:
        """Record a call no conversation keeps; it counts in usage reports."""
        ...


@dataclass(frozen=True, kw_only=True)
class SpendWindow:
    """The periods a spend is counted in: since ``month_start``, and of that since
    ``day_start``; reservations held at ``now`` count in both."""

    month_start: datetime
    day_start: datetime
    now: datetime


class Spending(Protocol):
    """What users spend (the replies' and calls' billed tokens and cost), what is reserved
    for calls in flight, and the limits admins set per user."""

    async def limits_of(self, user_id: int) -> UserLimits | None: ...

    async def save_limits(self, user_id: int, limits: UserLimits, when: datetime) -> None: ...

    async def spent(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        """Billed spend in the window plus the reservations still held."""
        ...

    async def spent_by_user(
        self, user_ids: Sequence[int], window: SpendWindow
    ) -> dict[int, PeriodSpend]:
        """``spent`` of each user, in one query (users who spent nothing are absent)."""
        ...

    async def spent_locked(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        """``spent``, serialising concurrent callers for the same user until the
        transaction ends (a reservation depends on it)."""
        ...

    async def hold(self, user_id: int, amount: Spend, now: datetime, lease_until: datetime) -> int:
        """Reserve ``amount`` until ``lease_until`` (renewable); the reservation's id."""
        ...

    async def release(self, reservation_id: int) -> None: ...

    async def renew(self, reservation_ids: Sequence[int], lease_until: datetime) -> None: ...

    async def release_expired(self, now: datetime) -> int:
        """Drop the reservations whose lease ended (their process died); how many."""
        ...
