"""What the database adapters tell whoever watches them (metrics): hooks, None unless
metrics are on, so that the default costs one attribute read. Process-wide, as the
metrics registry they feed is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class DatabaseEvents:
    # +1 when a unit of work starts waiting for a pooled connection, -1 when it has one.
    waiting: Callable[[int], None] | None = None
    # A SQLite statement tried again because another connection held the lock.
    busy_retry: Callable[[], None] | None = None


DATABASE_EVENTS = DatabaseEvents()
