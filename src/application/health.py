"""Is the service able to do its job?"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from application.ports import DatabaseProbe

PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class HealthReport:
    database_ok: bool
    redis_ok: bool | None  # None: Redis is not configured

    @property
    def healthy(self) -> bool:
        """Able to serve requests at all: the database answers."""
        return self.database_ok

    @property
    def ready(self) -> bool:
        """Every configured dependency answers."""
        return self.database_ok and self.redis_ok is not False


class CheckHealth:
    """Ask each dependency a trivial question, within a short timeout."""

    def __init__(self, database: DatabaseProbe, redis: DatabaseProbe | None = None) -> None:
        self._database = database
        self._redis = redis

    async def __call__(self) -> HealthReport:
        database_ok, redis_ok = await asyncio.gather(
            _answers(self._database),
            _answers(self._redis) if self._redis is not None else _none(),
        )
        return HealthReport(database_ok=bool(database_ok), redis_ok=redis_ok)


async def _answers(probe: DatabaseProbe) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await probe.ping()
    except Exception:
        return False
    return True


async def _none() -> None:
    return None
