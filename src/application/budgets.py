"""Metering model calls against budgets: reserve before a call, settle after.

A call's estimate (its prompt's estimated tokens + the request's max tokens, at the
model's price) is reserved in the same transaction that checks it fits, serialised per
user, and committed before the provider is asked: concurrent calls, in this process or
any other, see each other's reservations. The reply's record then carries what the call
is billed and releases the reservation in the same commit, so nothing is counted twice
or lost. A reservation is leased; this process renews the leases of the calls it is
making, so one whose process died stops counting when its lease ends."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from application.ports import (
    ChatRequest,
    Clock,
    ModelCatalog,
    ModelInfo,
    SpendWindow,
    TokenUsage,
    UnitOfWork,
)
from domain.budgets import (
    Budget,
    Limits,
    ModelAccess,
    Period,
    PeriodSpend,
    Price,
    Spend,
    UserLimits,
    billed,
    charge,
    check_fits,
    estimated_prompt_tokens,
)


@dataclass(frozen=True, kw_only=True)
class BudgetRules:
    """The operator's settings: the limits for users with none of their own, the zone
    whose midnights start days and months, the currency prices are in, and how long a
    reservation's lease lasts (renewed every third of it)."""

    default: Limits = field(default_factory=lambda: Limits(budget=Budget(), access=ModelAccess()))
    zone: tzinfo
    currency: str = "USD"
    lease_seconds: float = 15.0
    # A reservation older than this is no longer renewed, even if a bug forgot to settle
    # it: its lease then runs out.
    longest_call_seconds: float = 600.0

    def window(self, now: datetime) -> SpendWindow:
        return SpendWindow(
            month_start=Period.MONTH.start(now, self.zone),
            day_start=Period.DAY.start(now, self.zone),
            now=now,
        )


@dataclass(frozen=True, kw_only=True)
class Reservation:
    id: int
    amount: Spend


def prompt_estimate(request: ChatRequest) -> int:
    texts = [turn.content for turn in request.messages]
    texts += [call.arguments for turn in request.messages for call in turn.tool_calls]
    return estimated_prompt_tokens(
        texts, images=sum(1 for turn in request.messages if turn.image_url)
    )


class HeldReservations:
    """The reservations this process holds for calls in flight, whose leases it renews."""

    def __init__(self, rules: BudgetRules) -> None:
        self._rules = rules
        self._held: dict[int, float] = {}  # reservation id -> time.monotonic() when held

    def keep(self, reservation: Reservation) -> None:
        self._held[reservation.id] = time.monotonic()

    def forget(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            self._held.pop(reservation.id, None)

    def live(self) -> list[int]:
        oldest = time.monotonic() - self._rules.longest_call_seconds
        for stale in [rid for rid, since in self._held.items() if since < oldest]:
            del self._held[stale]
        return list(self._held)


class Metering:
    """The budget and access rules of every model call, whichever entry point makes it."""

    def __init__(
        self, rules: BudgetRules, catalog: ModelCatalog, clock: Clock, held: HeldReservations
    ) -> None:
        self._rules = rules
        self._catalog = catalog
        self._clock = clock
        self._held = held

    async def limits(self, uow: UnitOfWork, user_id: int) -> Limits:
        """What applies to the user: their own limits, else the defaults."""
        return self.limits_from(await uow.spending.limits_of(user_id))

    def limits_from(self, own: UserLimits | None) -> Limits:
        """``limits``, from the user's own as already read."""
        return Limits.of(own, self._rules.default)

    async def reserve(
        self, uow: UnitOfWork, user_id: int, budget: Budget, request: ChatRequest
    ) -> Reservation | None:
        """Reserve the call's estimate in ``uow``'s transaction (the caller commits it
        before calling the model), or raise ``BudgetExceeded``; None when no budget
        limits the user (nothing is reserved)."""
        if budget.unlimited:
            return None
        now = self._clock.now()
        estimate = self._estimate(request)
        spent = await uow.spending.spent_locked(user_id, self._rules.window(now))
        check_fits(budget, spent, estimate, now, self._rules.zone)
        lease_until = now + timedelta(seconds=self._rules.lease_seconds)
        reservation = Reservation(
            id=await uow.spending.hold(user_id, estimate, now, lease_until), amount=estimate
        )
        self._held.keep(reservation)
        return reservation

    def bill(
        self, request: ChatRequest, model_id: str | None, usage: TokenUsage | None, text: str
    ) -> Spend:
        """What a call that ended is billed (``domain.budgets.billed``), at the price of
        the model that answered."""
        price = self._price(model_id or request.model)
        reported = None
        if usage is not None and usage.total_tokens:
            reported = charge(usage.prompt_tokens, usage.completion_tokens, price)
        return billed(reported, prompt_estimate(request), text, price)

    async def settle(self, uow: UnitOfWork, reservation: Reservation | None) -> None:
        """Release the reservation in the transaction that stores what the call is billed."""
        if reservation is not None:
            await uow.spending.release(reservation.id)

    def settled(self, reservation: Reservation | None) -> None:
        """The settling transaction ended (committed or not): stop renewing the lease."""
        self._held.forget(reservation)

    async def renew_leases(self, uow: UnitOfWork) -> int:
        """Renew the leases of this process's reservations and drop the expired ones of
        processes that died; how many were dropped."""
        now = self._clock.now()
        async with uow:
            live = self._held.live()
            if live:
                until = now + timedelta(seconds=self._rules.lease_seconds)
                await uow.spending.renew(live, until)
            dropped = await uow.spending.release_expired(now)
            await uow.commit()
        return dropped

    def _estimate(self, request: ChatRequest) -> Spend:
        prompt = prompt_estimate(request)
        return charge(prompt, request.max_tokens, self._price(request.model))

    def _price(self, model_id: str) -> Price | None:
        model: ModelInfo | None = self._catalog.get(model_id)
        return None if model is None else model.price


@dataclass(frozen=True, kw_only=True)
class PeriodStatus:
    period: Period
    limit_tokens: int | None
    limit_cost_nanos: int | None
    spent: Spend
    resets_at: datetime

    @property
    def remaining_tokens(self) -> int | None:
        return None if self.limit_tokens is None else max(0, self.limit_tokens - self.spent.tokens)

    @property
    def remaining_cost_nanos(self) -> int | None:
        if self.limit_cost_nanos is None:
            return None
        return max(0, self.limit_cost_nanos - self.spent.cost_nanos)


@dataclass(frozen=True, kw_only=True)
class BudgetStatus:
    """A user's budget as it stands: ``own`` whether it is theirs (else the default)."""

    own: bool
    currency: str
    periods: Sequence[PeriodStatus]


def budget_status(
    rules: BudgetRules, budget: Budget, own: bool, spent: PeriodSpend, now: datetime
) -> BudgetStatus:
    return BudgetStatus(
        own=own,
        currency=rules.currency,
        periods=[
            PeriodStatus(
                period=period,
                limit_tokens=budget.limit(period).tokens,
                limit_cost_nanos=budget.limit(period).cost_nanos,
                spent=spent.of(period),
                resets_at=period.end(now, rules.zone),
            )
            for period in Period
        ],
    )


@dataclass(frozen=True, kw_only=True)
class OwnBudgetRequest:
    owner_id: int


class GetOwnBudget:
    """The user's budget (their own, else the default), what they have spent this day
    and this month (reservations of calls in flight included), what is left and when
    each period resets."""

    def __init__(self, uow: UnitOfWork, rules: BudgetRules, clock: Clock) -> None:
        self._uow = uow
        self._rules = rules
        self._clock = clock

    async def __call__(self, query: OwnBudgetRequest) -> BudgetStatus:
        now = self._clock.now()
        async with self._uow as uow:
            own = await uow.spending.limits_of(query.owner_id)
            spent = await uow.spending.spent(query.owner_id, self._rules.window(now))
        budget = Limits.of(own, self._rules.default).budget
        has_own = own is not None and own.budget is not None
        return budget_status(self._rules, budget, has_own, spent, now)


@dataclass(frozen=True, kw_only=True)
class ListModelsRequest:
    """``owner_id`` None: an anonymous caller, who sees what the default allows."""

    owner_id: int | None = None


class ListModels:
    """The models usable now that the user may use, as the catalogue lists them."""

    def __init__(self, uow: UnitOfWork, catalog: ModelCatalog, rules: BudgetRules) -> None:
        self._uow = uow
        self._catalog = catalog
        self._rules = rules

    async def __call__(self, query: ListModelsRequest) -> list[ModelInfo]:
        access = self._rules.default.access
        if query.owner_id is not None:
            async with self._uow as uow:
                own = await uow.spending.limits_of(query.owner_id)
            access = Limits.of(own, self._rules.default).access
        return [model for model in self._catalog.available() if access.permits(model.id)]
