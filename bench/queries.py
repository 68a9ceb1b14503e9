"""The SQL a request costs: statements, transactions, commits, rollbacks, pool check-outs.

In-process: the real application (``create_app(build_container(settings))``) over an ASGI
client, the fake upstream on 127.0.0.1, and SQLAlchemy's event listeners on
``container.engine().sync_engine`` (statements: SQLite's own trace on SQLite, where the
chat path runs them on the driver directly). Two sizes of each read (a 200- and a 20,000-message
history, a list of 12 and of 2,012 conversations) show whether it is bounded: the
statements stay the same and the time does not grow with the size.
"""

from __future__ import annotations

import contextlib
import logging
import re
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.fakes.llm_server import FakeLLMServer

from adapters.persistence import tables
from adapters.persistence.migrate import upgrade
from bench.harness import MESSAGE, PASSWORD, SECRET_KEY, fmt, scratch_database
from entrypoints.http.app import build_container, create_app
from entrypoints.settings import load_settings

EXCHANGES = 5
_QUOTED = re.compile(r"'(?:[^']|'')*'")
_OF_A_VIRTUAL_TABLE = re.compile(r"^PRAGMA 'main'|FROM 'main'\.")


@dataclass
class Tally:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0
    resets: int = 0  # rollbacks the pool issues itself when a connection comes back

    def per(self, n: int = 1) -> dict[str, Any]:
        counts = {k: v / n for k, v in vars(self).items() if isinstance(v, int)}
        first = self.statements[: len(self.statements) // n]
        flat = [re.sub(r"\s+", " ", s).strip() for s in first]  # whole, for checks on it
        return (
            counts
            | {"statements": len(self.statements) / n, "sql": [_short(s) for s in first]}
            | {"full_sql": flat}
        )


def _short(statement: str) -> str:
    flat = re.sub(r"\s+", " ", statement).strip()
    flat = re.sub(r"SELECT (?!count\()\S.*? FROM", "SELECT … FROM", flat, count=1)
    return re.sub(r"\((?:[^()]|\([^()]*\))*\) VALUES \(.*?\)", "(…) VALUES (…)", flat)[:110]


class Counter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.tally: Tally | None = None
        sync = engine.sync_engine

        def on(target: Any, name: str, count: Callable[[Tally], None]) -> None:
            def listener(*_: Any) -> None:
                if self.tally is not None:
                    count(self.tally)

            event.listen(target, name, listener)

        on(sync, "begin", lambda t: setattr(t, "transactions", t.transactions + 1))
        on(sync, "commit", lambda t: setattr(t, "commits", t.commits + 1))
        on(sync, "rollback", lambda t: setattr(t, "rollbacks", t.rollbacks + 1))
        on(sync.pool, "checkout", lambda t: setattr(t, "checkouts", t.checkouts + 1))

        self._count_statements(sync)

        @event.listens_for(sync.pool, "reset")
        def _reset(_dbapi: Any, _record: Any, state: Any) -> None:
            if self.tally is not None and not state.transaction_was_reset:
                self.tally.resets += 1

    def _count_statements(self, sync: Any) -> None:
        def statement(sql: str) -> None:
            if self.tally is not None and not sql.lstrip().upper().startswith("BEGIN"):
                self.tally.statements.append(sql)

        if sync.dialect.name != "sqlite":
            event.listen(sync, "before_cursor_execute", lambda _c, _k, sql, *_: statement(sql))
            return
        # On SQLite, SQLite's own trace of what the driver ran: the chat path's statements
        # skip SQLAlchemy's execution (adapters/persistence/direct.py), and a cursor-execute
        # listener would switch that off. A trigger's statements are traced as "-- TRIGGER"
        # comments, each followed by the statement that fired it again (counted once);
        # FTS5 reads its own configuration with statements naming 'main' (not counted).
        last: list[str] = [""]

        def traced(sql: str) -> None:
            if sql.startswith("--") or _OF_A_VIRTUAL_TABLE.search(sql):
                return
            if sql != last[0] and sql not in ("COMMIT", "ROLLBACK"):
                statement(_QUOTED.sub("?", sql))  # the trace has the values filled in
            last[0] = sql

        @event.listens_for(sync.pool, "checkout")
        def _trace(dbapi_connection: Any, *_: Any) -> None:
            dbapi_connection.driver_connection._conn.set_trace_callback(traced)  # noqa: SLF001

    @contextlib.contextmanager
    def counting(self) -> Iterator[Tally]:
        self.tally = Tally()
        try:
            yield self.tally
        finally:
            self.tally = None


async def _timed(call: Callable[[], Awaitable[None]], repeat: int = 31) -> float:
    """Median in-process milliseconds of ``call``, after one warm-up call."""
    await call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def _bulk(engine: AsyncEngine, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with engine.begin() as connection:
            await connection.execute(insert(table), rows)


def _messages(conversation: int, count: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {"conversation_id": conversation, "role": ("user", "assistant")[i % 2]}
        | {"content": f"{MESSAGE} #{i}", "status": "completed", "prompt_tokens": 0}
        | {"completion_tokens": 0, "created_at": now + timedelta(microseconds=i)}
        for i in range(count)
    ]


def _conversations(owner: int, count: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {"owner_id": owner, "title": f"c{i}", "status": "closed"}
        | {"created_at": now, "updated_at": now}
        for i in range(count)
    ]


@contextlib.asynccontextmanager
async def _application(postgres: str | None) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    fake = FakeLLMServer(api_key=None).start()
    try:
        with tempfile.TemporaryDirectory(prefix="parley-queries-") as tmp:
            async with scratch_database(Path(tmp), postgres, "parley_bench_queries") as url:
                settings = load_settings(
                    {
                        "PARLEY_DATABASE_URL": url,
                        "PARLEY_SECRET_KEY": SECRET_KEY,
                        "PARLEY_LOCAL_BASE_URL": fake.openai_base_url,
                        "PARLEY_LOCAL_MODELS": "fake-model",
                        "PARLEY_DEFAULT_MODEL": "fake-model",
                        "PARLEY_MAX_ACTIVE_CONVERSATIONS": "100000",
                        "PARLEY_LOG_LEVEL": "WARNING",
                        "PARLEY_RATE_LIMIT": "1000000/second",
                        "PARLEY_AUTH_RATE_LIMIT": "1000000/second",
                    }
                )
                container = build_container(settings)
                await upgrade(container.engine())
                app = create_app(container)
                logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request
                transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
                base = "http://parley.test"
                async with (
                    app.lifespan(),
                    httpx.AsyncClient(transport=transport, base_url=base, timeout=60) as client,
                ):
                    yield client, container.engine()
    finally:
        fake.stop()


async def count(postgres: str | None) -> dict[str, Any]:
    """Every scenario's tally (per request; chat rows: the mean of 5 exchanges)."""
    out: dict[str, Any] = {}
    async with _application(postgres) as (client, engine):
        counter = Counter(engine)

        async def register(name: str) -> tuple[dict[str, str], int]:
            body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
            response = (await client.post("/api/v1/register/", json=body)).raise_for_status()
            headers = {"Authorization": f"Bearer {response.json()['access']}"}
            me = (await client.get("/api/chat-setting/", headers=headers)).raise_for_status()
            return headers, int(me.json()["user"])

        async def new_conversation(headers: dict[str, str]) -> int:
            response = await client.post("/api/conversations/", headers=headers)
            return int(response.raise_for_status().json()["id"])

        async def chat(body: dict[str, Any]) -> None:
            response = await client.post("/api/v1/messages/chat/", json=body, headers=alice)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"chat: {response.status_code} {response.text[:200]}")

        alice, _ = await register("alice")
        bob, bob_id = await register("bob")
        with counter.counting() as tally:
            conversation = await new_conversation(alice)
        out["create_conversation"] = tally.per()
        exchange = {"conversation_id": conversation, "message": MESSAGE}
        await chat(exchange)  # the first one creates the chat settings row
        for key, body in (
            ("chat", exchange),
            ("chat_stream", exchange | {"stream": True}),
            ("chat_new_conversation", {"message": MESSAGE}),
        ):
            with counter.counting() as tally:
                for _ in range(EXCHANGES):
                    await chat(body)
            out[key] = tally.per(EXCHANGES)

        now = datetime.now(UTC)
        for size in (200, 20_000):
            conversation = await new_conversation(alice)
            await _bulk(engine, tables.messages, _messages(conversation, size, now))
            path = f"/api/conversations/{conversation}/messages/?limit=50"

            async def history(path: str = path) -> None:
                (await client.get(path, headers=alice)).raise_for_status()

            with counter.counting() as tally:
                await history()
            out[f"history_{size}"] = tally.per() | {"ms": await _timed(history)}

        async def listing() -> None:
            (await client.get("/api/conversations/", headers=bob)).raise_for_status()

        for _ in range(12):
            await new_conversation(bob)
        for size, more in ((12, 0), (2_012, 2_000)):
            await _bulk(engine, tables.conversations, _conversations(bob_id, more, now))
            with counter.counting() as tally:
                await listing()
            out[f"list_{size}"] = tally.per() | {"ms": await _timed(listing)}
    return out


LABELS = {
    "chat": "chat exchange, existing conversation (`POST /api/v1/messages/chat/`)",
    "chat_stream": "chat exchange, streamed",
    "chat_new_conversation": "chat exchange, new conversation",
    "create_conversation": "create conversation (`POST /api/conversations/`)",
    "history_200": "history, 200 messages, `?limit=50`",
    "history_20000": "history, 20,000 messages, `?limit=50`",
    "list_12": "conversation list, 12 conversations",
    "list_2012": "conversation list, 2,012 conversations",
}


def markdown(results: dict[str, Any]) -> list[str]:
    lines = [
        "Per request (chat rows: mean of 5 exchanges). Statements exclude BEGIN/COMMIT/"
        "ROLLBACK; check-outs are connections taken from the pool (on PostgreSQL each is "
        "also a ping, `pool_pre_ping`); resets are rollbacks the pool issues itself; ms is "
        "the in-process median over an ASGI client, no network.",
        "",
        "| request | statements | transactions | commits | rollbacks | check-outs | resets | ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LABELS.items():
        r = results[key]
        lines.append(
            f"| {label} | {r['statements']:g} | {r['transactions']:g} | {r['commits']:g} "
            f"| {r['rollbacks']:g} | {r['checkouts']:g} | {r['resets']:g} | {fmt(r.get('ms'))} |"
        )
    lines += ["", "Statements of one chat exchange (existing conversation):", ""]
    lines += [f"{i}. `{sql}`" for i, sql in enumerate(results["chat"]["sql"], 1)]
    lines += ["", "Statements of one history load (20,000 messages):", ""]
    lines += [f"{i}. `{sql}`" for i, sql in enumerate(results["history_20000"]["sql"], 1)]
    return lines
