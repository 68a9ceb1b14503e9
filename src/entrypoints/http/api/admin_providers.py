"""``GET /api/admin/providers/`` (the DRF-style dialect, admin side): how each provider
and model has been doing. Staff only: 401 anonymous, 403 other users."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from application.admin import GetProviderHealth, GetProviderHealthRequest
from domain.users import User
from entrypoints.http.api.admin import STAFF
from entrypoints.http.api.admin_provider_schemas import (
    ProviderHealthReportOut,
    provider_health_out,
)


class AdminProvidersController(Controller):
    path = "/admin/providers"
    tags = ["admin (/api)"]
    dependencies = STAFF

    @get("/", operation_id="api_admin_provider_health")
    async def provider_health(
        self, staff: NamedDependency[User], get_provider_health: NamedDependency[GetProviderHealth]
    ) -> ProviderHealthReportOut:
        """Per provider and model, every configured one (with no calls: `calls` 0 and
        nulls): the calls of the last hour (at most the newest 500 per model), their
        success rate (completed and blocked replies count as answered; failed, partial
        and interrupted ones as failures; replies the user stopped not at all), latency
        percentiles of the answered ones, the last error (its code and message, at most
        200 characters, credentials masked), and whether the model is cooling down after
        consecutive provider failures (`PARLEY_PROVIDER_COOLDOWN_FAILURES`).

        The cool-down state is the answering worker process's own: with several workers
        each keeps its own."""
        return provider_health_out(await get_provider_health(GetProviderHealthRequest(actor=staff)))
