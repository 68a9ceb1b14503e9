"""``/api/v1/health/`` (seed 000)."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from application.health import CheckHealth
from entrypoints.http.api_v1.schemas import HealthOut


@get("/health/", operation_id="v1_health", tags=["health (/api/v1)"])
async def health(check_health: NamedDependency[CheckHealth]) -> Response[HealthOut]:
    """``ok`` (200) when the service and its database answer, ``unavailable`` (503) if not."""
    report = await check_health()
    if report.healthy:
        body = HealthOut(status="ok", message="Parley is running.", database="ok")
        return Response(body, status_code=200)
    body = HealthOut(
        status="unavailable", message="The database is not answering.", database="unavailable"
    )
    return Response(body, status_code=503)
