"""The database's metrics: connections in use (the pool's checkout and checkin events),
units of work waiting for one, SQLite busy retries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.events import DATABASE_EVENTS
from adapters.telemetry import metrics


def _waiting(delta: int) -> None:
    metrics.DB_CONNECTIONS_WAITING.inc(delta)


def _busy_retry() -> None:
    metrics.SQLITE_BUSY_RETRIES.inc()


def measure_database(engine: AsyncEngine) -> None:
    DATABASE_EVENTS.waiting = _waiting
    DATABASE_EVENTS.busy_retry = _busy_retry

    def checked_out(*_: Any) -> None:
        metrics.DB_CONNECTIONS_IN_USE.inc()

    def checked_in(*_: Any) -> None:
        metrics.DB_CONNECTIONS_IN_USE.dec()

    event.listen(engine.sync_engine, "checkout", checked_out)
    event.listen(engine.sync_engine, "checkin", checked_in)
