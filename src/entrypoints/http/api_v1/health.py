"""``/api/v1/health/`` and ``/api/v1/ready/``."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from application.health import CheckHealth, HealthReport
from entrypoints.http.api_v1.schemas import HealthOut
from entrypoints.http.auth import UNLIMITED


def _state(ok: bool | None) -> str:
    return "not_configured" if ok is None else "ok" if ok else "unavailable"


def _body(report: HealthReport, status: str, message: str) -> HealthOut:
    return HealthOut(
        status=status,
        message=message,
        database=_state(report.database_ok),
        redis=_state(report.redis_ok),
    )


@get("/health/", operation_id="v1_health", tags=["health (/api/v1)"], opt={UNLIMITED: True})
async def health(check_health: NamedDependency[CheckHealth]) -> Response[HealthOut]:
    """`ok` (200) when the service and its database answer, `unavailable` (503) if the
    database does not; Redis is reported too (`not_configured` without PARLEY_REDIS_URL)."""
    report = await check_health()
    if report.healthy:
        return Response(_body(report, "ok", "Parley is running."), status_code=200)
    return Response(_body(report, "unavailable", "The database is not answering."), status_code=503)


@get("/ready/", operation_id="v1_ready", tags=["health (/api/v1)"], opt={UNLIMITED: True})
async def ready(check_health: NamedDependency[CheckHealth]) -> Response[HealthOut]:
    """Readiness for a load balancer: 200 when every configured dependency (database,
    Redis) answers, 503 while any is down."""
    report = await check_health()
    if report.ready:
        return Response(_body(report, "ready", "Ready to serve."), status_code=200)
    return Response(_body(report, "unavailable", "A dependency is not answering."), status_code=503)
