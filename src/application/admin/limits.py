"""Admins and a user's limits: their budget and the models they may use."""

from __future__ import annotations

from dataclasses import dataclass

from application.admin.requests import AdminUserRef
from application.admin.steps import audit, existing_id
from application.admin_ports import AdminUnitOfWork
from application.budgets import BudgetRules, BudgetStatus, budget_status
from application.ports import Clock, ModelCatalog
from domain.budgets import Budget, Limits, UserLimits
from domain.errors import InvalidInput, NotFound
from domain.monitoring import AuditAction, require_staff


@dataclass(frozen=True, kw_only=True)
class UserModels:
    """``allowed``: the model ids the user may use (None: every model); ``own``: whether
    that is the user's own list, else the default."""

    user_id: int
    own: bool
    allowed: frozenset[str] | None


async def _existing_user(uow: AdminUnitOfWork, user_id: int) -> str:
    user = await uow.users.get(existing_id(user_id, "User"))
    if user is None:
        raise NotFound("User not found.")
    return user.username


class GetUserBudget:
    """A user's budget (their own, else the default), their spend this day and month
    and what is left."""

    def __init__(self, uow: AdminUnitOfWork, rules: BudgetRules, clock: Clock) -> None:
        self._uow = uow
        self._rules = rules
        self._clock = clock

    async def __call__(self, ref: AdminUserRef) -> BudgetStatus:
        require_staff(ref.actor)
        now = self._clock.now()
        async with self._uow as uow:
            await _existing_user(uow, ref.user_id)
            own = await uow.spending.limits_of(ref.user_id)
            spent = await uow.spending.spent(ref.user_id, self._rules.window(now))
        budget = Limits.of(own, self._rules.default).budget
        has_own = own is not None and own.budget is not None
        return budget_status(self._rules, budget, has_own, spent, now)


@dataclass(frozen=True, kw_only=True)
class SetUserBudgetRequest(AdminUserRef):
    """``budget`` None: the user goes back to the default budget."""

    budget: Budget | None


class SetUserBudget:
    """Set a user's own budget (tokens and/or cost, per day and per month; a limit left
    out is no limit), or put them back on the default. It applies to the next call;
    calls in flight keep their reservations. Audited as ``user.budget``."""

    def __init__(self, uow: AdminUnitOfWork, rules: BudgetRules, clock: Clock) -> None:
        self._uow = uow
        self._rules = rules
        self._clock = clock

    async def __call__(self, command: SetUserBudgetRequest) -> BudgetStatus:
        require_staff(command.actor)
        now = self._clock.now()
        async with self._uow as uow:
            username = await _existing_user(uow, command.user_id)
            own = await uow.spending.limits_of(command.user_id) or UserLimits()
            limits = UserLimits(budget=command.budget, allowed_models=own.allowed_models)
            await uow.spending.save_limits(command.user_id, limits, now)
            budget = command.budget or self._rules.default.budget
            await audit(
                uow,
                self._clock,
                command.actor,
                AuditAction.USER_BUDGET,
                "user",
                command.user_id,
                username=username,
                own=command.budget is not None,
                daily_tokens=budget.daily.tokens,
                daily_cost_nanos=budget.daily.cost_nanos,
                monthly_tokens=budget.monthly.tokens,
                monthly_cost_nanos=budget.monthly.cost_nanos,
            )
            spent = await uow.spending.spent(command.user_id, self._rules.window(now))
            await uow.commit()
        return budget_status(self._rules, budget, command.budget is not None, spent, now)


class GetUserModels:
    """The models a user may use: their own list, else the default."""

    def __init__(self, uow: AdminUnitOfWork, rules: BudgetRules) -> None:
        self._uow = uow
        self._rules = rules

    async def __call__(self, ref: AdminUserRef) -> UserModels:
        require_staff(ref.actor)
        async with self._uow as uow:
            await _existing_user(uow, ref.user_id)
            own = await uow.spending.limits_of(ref.user_id)
        has_own = own is not None and own.allowed_models is not None
        access = Limits.of(own, self._rules.default).access
        return UserModels(user_id=ref.user_id, own=has_own, allowed=access.allowed)


@dataclass(frozen=True, kw_only=True)
class SetUserModelsRequest(AdminUserRef):
    """``allowed`` None: the user goes back to the default list."""

    allowed: frozenset[str] | None


class SetUserModels:
    """Set the models a user may use (ids of configured models; an empty list allows
    none), or put them back on the default. Audited as ``user.models``."""

    def __init__(
        self, uow: AdminUnitOfWork, rules: BudgetRules, catalog: ModelCatalog, clock: Clock
    ) -> None:
        self._uow = uow
        self._rules = rules
        self._catalog = catalog
        self._clock = clock

    async def __call__(self, command: SetUserModelsRequest) -> UserModels:
        require_staff(command.actor)
        unknown = sorted(m for m in command.allowed or () if self._catalog.get(m) is None)
        if unknown:
            raise InvalidInput(
                {"allowed_models": [f'"{m}" is not an available model.' for m in unknown]}
            )
        async with self._uow as uow:
            username = await _existing_user(uow, command.user_id)
            own = await uow.spending.limits_of(command.user_id) or UserLimits()
            limits = UserLimits(budget=own.budget, allowed_models=command.allowed)
            await uow.spending.save_limits(command.user_id, limits, self._clock.now())
            await audit(
                uow,
                self._clock,
                command.actor,
                AuditAction.USER_MODELS,
                "user",
                command.user_id,
                username=username,
                own=command.allowed is not None,
                allowed_models=None
                if command.allowed is None
                else ",".join(sorted(command.allowed)),
            )
            await uow.commit()
        access = Limits.of(limits, self._rules.default).access
        return UserModels(
            user_id=command.user_id, own=command.allowed is not None, allowed=access.allowed
        )
