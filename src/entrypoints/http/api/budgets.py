"""Budgets and model access on ``/api/...``: a user's own budget
(``/api/usage/budget/``), and admins' per-user budgets and model lists
(``/api/admin/users/{id}/budget/``, ``/api/admin/users/{id}/models/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from application.admin import (
    AdminUserRef,
    GetUserBudget,
    GetUserModels,
    SetUserBudget,
    SetUserBudgetRequest,
    SetUserModels,
    SetUserModelsRequest,
    UserModels,
)
from application.budgets import BudgetStatus, GetOwnBudget, OwnBudgetRequest, PeriodStatus
from domain.budgets import Budget, Limit, parse_amount
from domain.users import User
from entrypoints.http.api.admin import STAFF
from entrypoints.http.api.admin_schemas import money
from entrypoints.http.bodies import CheckedBody
from entrypoints.http.schema_docs import NO_NUL, documented

# Litestar drops a minimum of 0 and documents a union member's constraints on the union:
# these say them again, once.
Tokens = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
AMOUNT_TEXT = r"^[0-9]{1,9}(\.[0-9]{1,9})?$"
# An amount of money as a number or a decimal string ("0.25"; strings are exact), under a
# billion units of the currency.
Amount = Annotated[
    Annotated[float, msgspec.Meta(ge=0, lt=1e9)]
    | Annotated[str, msgspec.Meta(pattern=AMOUNT_TEXT)]
    | None,
    documented(minimum=0, exclusive_maximum=1e9, pattern=AMOUNT_TEXT),
]
ModelIds = Annotated[
    list[Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]] | None,
    documented(items={"type": "string", "minLength": 1, "maxLength": 100, "pattern": NO_NUL}),
]


class PeriodOut(msgspec.Struct):
    """A period's limit (null: none), what was spent in it (calls in flight included, at
    their reserved estimate), what is left and when it resets."""

    limit_tokens: int | None
    limit_cost: float | None
    spent_tokens: int
    spent_cost: float
    remaining_tokens: int | None
    remaining_cost: float | None
    resets_at: datetime


class BudgetOut(msgspec.Struct):
    """``own``: the user's own budget, else the default for everyone."""

    own: bool
    currency: str
    day: PeriodOut
    month: PeriodOut


class BudgetPut(msgspec.Struct, forbid_unknown_fields=True):
    """A limit left out (or null) is no limit; costs in the operator's currency."""

    daily_tokens: Annotated[Tokens | None, documented(minimum=0, maximum=2**53)] = None
    daily_cost: Amount = None
    monthly_tokens: Annotated[Tokens | None, documented(minimum=0, maximum=2**53)] = None
    monthly_cost: Amount = None


class ModelsOut(msgspec.Struct):
    """``allowed_models`` null: every model; ``own``: the user's own list, else the
    default."""

    user: int
    own: bool
    allowed_models: list[str] | None


class ModelsPut(msgspec.Struct, forbid_unknown_fields=True):
    """The ids of configured models; null puts the user back on the default list."""

    allowed_models: ModelIds


def _period_out(status: PeriodStatus) -> PeriodOut:
    def maybe_money(nanos: int | None) -> float | None:
        return None if nanos is None else money(nanos)

    return PeriodOut(
        limit_tokens=status.limit_tokens,
        limit_cost=maybe_money(status.limit_cost_nanos),
        spent_tokens=status.spent.tokens,
        spent_cost=money(status.spent.cost_nanos),
        remaining_tokens=status.remaining_tokens,
        remaining_cost=maybe_money(status.remaining_cost_nanos),
        resets_at=status.resets_at,
    )


def budget_out(status: BudgetStatus) -> BudgetOut:
    day, month = status.periods
    return BudgetOut(
        own=status.own, currency=status.currency, day=_period_out(day), month=_period_out(month)
    )


def _budget_of(data: BudgetPut) -> Budget:
    return Budget(
        daily=Limit(
            tokens=data.daily_tokens, cost_nanos=parse_amount("daily_cost", data.daily_cost)
        ),
        monthly=Limit(
            tokens=data.monthly_tokens,
            cost_nanos=parse_amount("monthly_cost", data.monthly_cost),
        ),
    )


def _models_out(models: UserModels) -> ModelsOut:
    allowed = None if models.allowed is None else sorted(models.allowed)
    return ModelsOut(user=models.user_id, own=models.own, allowed_models=allowed)


class OwnBudgetController(Controller):
    path = "/usage/budget"
    tags = ["usage (/api)"]

    @get("/", operation_id="api_own_budget")
    async def own_budget(
        self, user: NamedDependency[User], get_own_budget: NamedDependency[GetOwnBudget]
    ) -> BudgetOut:
        """Your budget this day and this month: the limits (your own, else the default),
        what you spent (calls in flight count at their estimate), what is left, and when
        each period resets. A call whose estimate does not fit is refused with 429
        `budget_exceeded`."""
        return budget_out(await get_own_budget(OwnBudgetRequest(owner_id=user.id)))


class AdminLimitsController(Controller):
    path = "/admin/users/{user_id:int}"
    tags = ["admin (/api)"]
    dependencies = STAFF

    @get("/budget/", operation_id="api_admin_user_budget")
    async def budget(
        self,
        user_id: FromPath[int],
        staff: NamedDependency[User],
        get_user_budget: NamedDependency[GetUserBudget],
    ) -> BudgetOut:
        """A user's budget (own, else the default), spend this day and month, what is left."""
        return budget_out(await get_user_budget(AdminUserRef(actor=staff, user_id=user_id)))

    @put("/budget/", operation_id="api_admin_set_user_budget", dto=CheckedBody[BudgetPut])
    async def set_budget(
        self,
        user_id: FromPath[int],
        data: JSONBody[BudgetPut],
        staff: NamedDependency[User],
        set_user_budget: NamedDependency[SetUserBudget],
    ) -> BudgetOut:
        """Give a user their own budget: tokens and/or cost per day and per month (a
        limit left out is none). Applies from the next call. Audited (`user.budget`)."""
        command = SetUserBudgetRequest(actor=staff, user_id=user_id, budget=_budget_of(data))
        return budget_out(await set_user_budget(command))

    @delete("/budget/", operation_id="api_admin_reset_user_budget", status_code=200)
    async def reset_budget(
        self,
        user_id: FromPath[int],
        staff: NamedDependency[User],
        set_user_budget: NamedDependency[SetUserBudget],
    ) -> BudgetOut:
        """Put a user back on the default budget. Audited (`user.budget`)."""
        command = SetUserBudgetRequest(actor=staff, user_id=user_id, budget=None)
        return budget_out(await set_user_budget(command))

    @get("/models/", operation_id="api_admin_user_models")
    async def models(
        self,
        user_id: FromPath[int],
        staff: NamedDependency[User],
        get_user_models: NamedDependency[GetUserModels],
    ) -> ModelsOut:
        """The models a user may use (their own list, else the default)."""
        return _models_out(await get_user_models(AdminUserRef(actor=staff, user_id=user_id)))

    @put("/models/", operation_id="api_admin_set_user_models", dto=CheckedBody[ModelsPut])
    async def set_models(
        self,
        user_id: FromPath[int],
        data: JSONBody[ModelsPut],
        staff: NamedDependency[User],
        set_user_models: NamedDependency[SetUserModels],
    ) -> ModelsOut:
        """Set the models a user may use (configured model ids; `[]` allows none), or
        `null` for the default list. Any other model is a 403 `model_not_allowed` for
        them, and absent from their model lists. Audited (`user.models`)."""
        allowed = None if data.allowed_models is None else frozenset(data.allowed_models)
        command = SetUserModelsRequest(actor=staff, user_id=user_id, allowed=allowed)
        return _models_out(await set_user_models(command))
