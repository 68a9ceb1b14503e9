"""Is the service able to do its job?"""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import DatabaseProbe


@dataclass(frozen=True)
class HealthReport:
    database_ok: bool

    @property
    def healthy(self) -> bool:
        return self.database_ok


class CheckHealth:
    """Healthy when the database answers a trivial query."""

    def __init__(self, database: DatabaseProbe) -> None:
        self._database = database

    async def __call__(self) -> HealthReport:
        try:
            await self._database.ping()
        except Exception:
            return HealthReport(database_ok=False)
        return HealthReport(database_ok=True)
