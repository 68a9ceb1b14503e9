"""aiosqlite's connection API, executed on the event loop's own thread.

Why not plain aiosqlite: it runs every statement, BEGIN and COMMIT on a worker thread
and wakes the event loop when each one finishes. On these small virtual machines one
such hand-off costs ~270 µs of wall time and ~190 µs of CPU, while the statement itself
(an indexed read or a one-row insert into a local WAL database) takes 10-30 µs. A chat
exchange makes ~15 of them, so the hand-offs alone were most of what Parley added
between a user and the model (bench/results, "SQLite access paths").

Running them inline is safe because nothing in a statement waits on the network, and
waiting on a lock never blocks the loop: connections have no busy timeout, so a
statement that finds the database locked (by another process, or by a transaction of
this one that is paused at an ``await``) fails at once with SQLITE_BUSY, and we retry
it after an ``asyncio.sleep`` -- SQLite's own busy handler, but asynchronous. A
statement that failed with SQLITE_BUSY made no change, so retrying it is exactly what
SQLite's busy handler would do.

What remains blocking: the statement itself, and WAL checkpoints (fsync) on commit.
Long analytical queries (admin search over millions of rows) hold the loop for their
duration; PostgreSQL is the path for installations where that matters.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives this class unchanged: it is handed over
through ``create_async_engine(async_creator=...)``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from functools import partial
from typing import Any

import aiosqlite

from adapters.persistence.events import DATABASE_EVENTS

# A lock is normally held for well under a millisecond; start by yielding once, then
# back off to at most 20 ms between attempts.
_FIRST_DELAY_S = 0.0002
_MAX_DELAY_S = 0.02
# SQLITE_BUSY_SNAPSHOT (517) means a read transaction's snapshot is stale: retrying the
# same statement cannot succeed, so it is raised like any other error.
_RETRYABLE_BUSY = {sqlite3.SQLITE_BUSY, 261}  # SQLITE_BUSY, SQLITE_BUSY_RECOVERY


class _InlineQueue:
    """Stands in for aiosqlite's queue to its worker thread: runs the work at once.

    aiosqlite (connect, stop) and SQLAlchemy's adapter (the isolation-level setter) put
    ``(future, function)`` pairs on the connection's queue and await the future; here the
    future is already settled when they await it, so they never suspend."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to whoever awaits the future
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout_s: float):
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _InlineQueue()  # type: ignore[assignment]
        self._busy_timeout_s = busy_timeout_s

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        # aiosqlite starts its worker thread here; there is none to start.
        return self._connect().__await__()

    async def execute_now(
        self, sql: str, parameters: Sequence[Any]
    ) -> tuple[list[tuple[Any, ...]], int]:
        """One statement on the driver's own cursor (``adapters.persistence.direct``): its
        rows, and how many rows it changed."""
        return await self._execute(self._statement, sql, parameters)  # type: ignore[no-any-return]

    def _statement(self, sql: str, parameters: Sequence[Any]) -> tuple[list[tuple[Any, ...]], int]:
        cursor = self._conn.execute(sql, parameters)
        try:
            return cursor.fetchall(), cursor.rowcount
        finally:
            cursor.close()

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) not in _RETRYABLE_BUSY:
                raise
        return await self._retry_while_busy(partial(fn, *args, **kwargs))

    async def _retry_while_busy(self, work: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self._busy_timeout_s
        delay = _FIRST_DELAY_S
        while True:
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 (jitter)
            if DATABASE_EVENTS.busy_retry is not None:
                DATABASE_EVENTS.busy_retry()
            try:
                return work()
            except sqlite3.OperationalError as error:
                busy = getattr(error, "sqlite_errorcode", None) in _RETRYABLE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            delay = min(delay * 2, _MAX_DELAY_S)


def inline_connector(database: str, busy_timeout_s: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: a new inline connection."""

    async def create() -> InlineConnection:
        def connect() -> sqlite3.Connection:
            # timeout=0: no busy handler inside SQLite (it would sleep on the loop's
            # thread); InlineConnection retries asynchronously instead. isolation_level
            # None: SQLAlchemy's event hook issues BEGIN itself.
            return sqlite3.connect(
                database,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                uri=database.startswith("file:"),
            )

        connection = InlineConnection(connect, busy_timeout_s)
        await connection  # connects on this loop (InlineConnection.__await__)
        return connection

    return create
