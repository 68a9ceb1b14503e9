"""``GET /api/usage/``: the caller's own token usage, per model."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

from application.admin import OwnUsageRequest, ReportOwnUsage
from application.budgets import BudgetRules
from application.pagination import PageRequest
from domain.users import User
from entrypoints.http.api.admin_filters import PeriodEnd, PeriodStart, period
from entrypoints.http.api.admin_schemas import money
from entrypoints.http.pagination import PAGINATION_HEADERS, paged


class OwnUsageOut(msgspec.Struct):
    model: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    currency: str


class UsageController(Controller):
    path = "/usage"
    tags = ["usage (/api)"]

    @get("/", operation_id="api_own_usage", response_headers=PAGINATION_HEADERS)
    async def own_usage(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        page: NamedDependency[PageRequest],
        report_own_usage: NamedDependency[ReportOwnUsage],
        budget_rules: NamedDependency[BudgetRules],
        start: PeriodStart = None,
        end: PeriodEnd = None,
    ) -> Response[list[OwnUsageOut]]:
        """Your token usage and its cost per model, most tokens first: the replies in
        your conversations and your calls to the OpenAI-compatible endpoint (`/v1`),
        failed ones included (with the tokens the provider billed, usually 0). Your
        budget and what is left of it: `/api/usage/budget/`."""
        result = await report_own_usage(
            OwnUsageRequest(owner_id=user.id, period=period(start, end)), page
        )
        items = [
            OwnUsageOut(
                model=row.model,
                requests=row.requests,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                total_tokens=row.total_tokens,
                cost=money(row.cost_nanos),
                currency=budget_rules.currency,
            )
            for row in result.items
        ]
        return paged(request, result, items)
