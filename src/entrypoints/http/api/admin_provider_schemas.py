"""Response body of ``GET /api/admin/providers/`` and its mapping."""

from __future__ import annotations

from datetime import datetime

import msgspec

from application.admin import ProviderHealthReport
from application.admin.providers import ModelHealth


class LatencyOut(msgspec.Struct):
    """Nearest-rank percentiles of the answered calls' latency, in milliseconds."""

    p50: int
    p95: int
    p99: int


class LastErrorOut(msgspec.Struct):
    """The newest failure's stored code and message (at most 200 characters, anything
    like a credential masked)."""

    code: str | None
    message: str | None
    at: datetime


class ModelHealthOut(msgspec.Struct):
    model: str
    calls: int
    # Answered (completed or blocked) / calls; null with no calls.
    success_rate: float | None
    latency_ms: LatencyOut | None
    last_error: LastErrorOut | None
    # This worker process's cool-down; when it ends (UTC), or null.
    cooling_down: bool
    cooldown_until: datetime | None


class ProviderHealthOut(msgspec.Struct):
    provider: str
    models: list[ModelHealthOut]


class ProviderHealthReportOut(msgspec.Struct):
    window_seconds: int
    providers: list[ProviderHealthOut]


def _model_out(model: ModelHealth) -> ModelHealthOut:
    health = model.health
    latency = health.latency_ms
    error = health.last_error
    return ModelHealthOut(
        model=model.model,
        calls=health.calls,
        success_rate=None if health.success_rate is None else round(health.success_rate, 4),
        latency_ms=None if latency is None else LatencyOut(latency.p50, latency.p95, latency.p99),
        last_error=None if error is None else LastErrorOut(error.code, error.message, error.at),
        cooling_down=model.cooling_down,
        cooldown_until=model.cooldown_until,
    )


def provider_health_out(report: ProviderHealthReport) -> ProviderHealthReportOut:
    return ProviderHealthReportOut(
        window_seconds=int(report.window.total_seconds()),
        providers=[
            ProviderHealthOut(
                provider=provider.provider, models=[_model_out(m) for m in provider.models]
            )
            for provider in report.providers
        ],
    )
