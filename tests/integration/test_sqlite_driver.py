"""Parley's SQLite driver runs statements on the event loop's thread; waiting for a lock
must still never freeze the loop, lose a write or fail before the busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.persistence.database import create_engine
from adapters.persistence.inline_sqlite import inline_connector


async def _ticks_while(work: asyncio.Future[object] | asyncio.Task[object]) -> int:
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.005)
        ticks += 1
    return ticks


def _make_table(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")


async def test_a_transaction_waits_for_another_paused_one_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "parley.db"
    _make_table(path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    holder_inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with engine.begin() as connection:  # BEGIN IMMEDIATE: holds the write lock
            await connection.execute(text("INSERT INTO notes (body) VALUES ('first')"))
            holder_inside.set()
            await release.wait()  # paused mid-transaction, as a request awaiting I/O

    async def waiter() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('second')"))

    try:
        first = asyncio.create_task(holder())
        await holder_inside.wait()
        second = asyncio.create_task(waiter())
        await asyncio.sleep(0.1)
        assert not second.done()  # it is waiting for the lock...
        release.set()
        await asyncio.gather(first, second)
        async with engine.connect() as connection:
            bodies = (await connection.execute(text("SELECT body FROM notes ORDER BY id"))).all()
        assert [b for (b,) in bodies] == ["first", "second"]
    finally:
        await engine.dispose()


async def test_a_lock_held_by_another_process_is_waited_for_while_the_loop_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "parley.db"
    _make_table(path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    locked = threading.Event()

    def other_process_writer() -> None:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO notes (body) VALUES ('theirs')")
        locked.set()
        time.sleep(0.3)
        connection.execute("COMMIT")
        connection.close()

    async def ours() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('ours')"))

    try:
        writer = threading.Thread(target=other_process_writer)
        writer.start()
        locked.wait(5)
        started = time.monotonic()
        work = asyncio.ensure_future(ours())
        ticks = await _ticks_while(work)
        await work
        waited = time.monotonic() - started
        writer.join()
        # It waited for the other writer's commit, and the loop kept running meanwhile:
        # ~0.3 s at 5 ms a tick would be ~60 ticks; a blocked loop would manage ~1.
        assert waited >= 0.2
        assert ticks >= 10
        async with engine.connect() as connection:
            bodies = (await connection.execute(text("SELECT body FROM notes ORDER BY id"))).all()
        assert [b for (b,) in bodies] == ["theirs", "ours"]
    finally:
        await engine.dispose()


async def test_a_lock_held_past_the_busy_timeout_fails_the_statement(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    _make_table(path)
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", async_creator=inline_connector(str(path), 0.2)
    )
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with engine.connect() as connection:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
        blocker.execute("ROLLBACK")
        async with engine.connect() as connection:  # and works again once it is free
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            await connection.execute(text("INSERT INTO notes (body) VALUES ('after')"))
            await connection.commit()
    finally:
        blocker.close()
        await engine.dispose()
