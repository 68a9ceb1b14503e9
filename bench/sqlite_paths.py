"""What one SQLite transaction costs through each access path Parley could use.

The transaction is the shape of the chat path's first one (``_Turns.prepare``): BEGIN
IMMEDIATE, three indexed SELECTs (conversation, chat settings, the newest 49 messages),
an INSERT ... RETURNING and an UPDATE, COMMIT -- on Parley's real schema and pragmas
(``adapters.persistence``), in a database holding a conversation of 1,000 messages.

Paths:

* ``async (aiosqlite)``: SQLAlchemy's async engine as Parley uses it: each statement,
  BEGIN, COMMIT and the pool's reset is a hop to aiosqlite's worker thread and back;
* ``async, no pool reset``: the same with ``pool_reset_on_return=None``;
* ``sync in one thread hop``: the whole transaction as one function on SQLAlchemy's sync
  engine (pysqlite), run with ``asyncio.to_thread`` -- one hop per transaction;
* ``sync inline``: the same function called on the event loop (no hop at all; blocks
  the loop for the duration of the transaction).

Reports microseconds of wall and CPU time per transaction, sequentially (c=1) and with
16 concurrent tasks. Usage: ``python bench/sqlite_paths.py [--json OUT]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine as create_sync_engine  # noqa: E402
from sqlalchemy import event, func, insert, select, update  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from adapters.persistence import tables as t  # noqa: E402
from adapters.persistence.database import create_engine  # noqa: E402
from adapters.persistence.migrate import upgrade  # noqa: E402


def _pragmas(engine: Any) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _statements(now: datetime) -> list[Any]:
    return [
        select(t.conversations).where(t.conversations.c.id == 1, t.conversations.c.owner_id == 1),
        select(t.chat_settings).where(t.chat_settings.c.user_id == 1),
        select(t.messages)
        .where(t.messages.c.conversation_id == 1)
        .order_by(t.messages.c.id.desc())
        .limit(49),
    ]


def _insert(now: datetime) -> Any:
    return (
        insert(t.messages)
        .values(
            conversation_id=1,
            role="user",
            content="What is machine learning?",
            status="completed",
            prompt_tokens=0,
            completion_tokens=0,
            created_at=now,
        )
        .returning(t.messages.c.id)
    )


def _touch(now: datetime) -> Any:
    return (
        update(t.conversations)
        .where(t.conversations.c.id == 1, t.conversations.c.updated_at < now)
        .values(updated_at=now)
    )


async def seed(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            insert(t.users).values(
                username="u", email="u@example.com", password_hash="x", date_joined=now
            )
        )
        await connection.execute(
            insert(t.conversations).values(
                owner_id=1, title="t", status="active", created_at=now, updated_at=now
            )
        )
        await connection.execute(
            insert(t.chat_settings).values(
                user_id=1, ai_model="fake-model", temperature=0.7, max_tokens=1024
            )
        )
        await connection.execute(
            insert(t.messages),
            [
                {
                    "conversation_id": 1,
                    "role": "user",
                    "content": f"message {i}",
                    "status": "completed",
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "created_at": now,
                }
                for i in range(1000)
            ],
        )
    await engine.dispose()


async def measure(
    run_once: Callable[[], Awaitable[None]], concurrency: int, count: int
) -> dict[str, float]:
    for _ in range(20):
        await run_once()
    per_task = count // concurrency

    async def worker() -> None:
        for _ in range(per_task):
            await run_once()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = per_task * concurrency
    return {
        "wall_us": 1e6 * (time.perf_counter() - wall) / done,
        "cpu_us": 1e6 * (time.process_time() - cpu) / done,
    }


async def main_async(count: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="parley-sqlite-paths-") as tmp:
        path = f"{tmp}/paths.db"
        await seed(f"sqlite+aiosqlite:///{path}")

        async_engine = create_engine(f"sqlite+aiosqlite:///{path}")
        no_reset = create_async_engine(
            f"sqlite+aiosqlite:///{path}",
            pool_reset_on_return=None,
            connect_args={"timeout": 15},
        )
        _pragmas(no_reset.sync_engine)
        sync_engine = create_sync_engine(f"sqlite:///{path}", connect_args={"timeout": 15})
        _pragmas(sync_engine)

        def with_async(engine: Any) -> Callable[[], Awaitable[None]]:
            async def run_once() -> None:
                now = datetime.now(UTC)
                async with engine.connect() as connection:
                    for statement in _statements(now):
                        (await connection.execute(statement)).all()
                    (await connection.execute(_insert(now))).scalar_one()
                    await connection.execute(_touch(now))
                    await connection.commit()

            return run_once

        def transaction() -> None:
            now = datetime.now(UTC)
            with sync_engine.connect() as connection:
                for statement in _statements(now):
                    connection.execute(statement).all()
                connection.execute(_insert(now)).scalar_one()
                connection.execute(_touch(now))
                connection.commit()

        async def one_hop() -> None:
            await asyncio.to_thread(transaction)

        async def inline() -> None:
            transaction()

        paths: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("async (aiosqlite), as Parley", with_async(async_engine)),
            ("async (aiosqlite), no pool reset", with_async(no_reset)),
            ("sync, whole transaction in one thread hop", one_hop),
            ("sync, inline on the event loop", inline),
        ]
        rows = []
        for concurrency in (1, 16):
            for name, run_once in paths:
                result = await measure(run_once, concurrency, count)
                rows.append({"path": name, "concurrency": concurrency, **result})
        async with async_engine.connect() as connection:
            total = await connection.scalar(select(func.count()).select_from(t.messages))
        for engine in (async_engine, no_reset):
            await engine.dispose()
        sync_engine.dispose()
        assert total is not None
        assert total > 1000
        return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| access path | c | wall µs / transaction | CPU µs / transaction |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['path']} | {r['concurrency']} | {r['wall_us']:,.0f} | {r['cpu_us']:,.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="SQLite access paths, one transaction each.")
    parser.add_argument("--count", type=int, default=800)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = asyncio.run(main_async(args.count))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(markdown(rows))


if __name__ == "__main__":
    main()
