"""Count the SQL a request costs: statements, transactions, commits, rollbacks, pings.

In-process: the real application (``create_app(build_container(settings))``) over an
ASGI client, the fake upstream on 127.0.0.1, and SQLAlchemy event listeners on
``container.engine().sync_engine``. Nothing in ``src/`` is changed.

Scenarios: one chat exchange (existing conversation, new conversation, streamed), the
history of a 200-message and of a 20,000-message conversation, the conversation list
of a user with 12 and with 2,000 conversations. The two sizes show whether a query is
bounded: the statement count must not change and the time should not grow with size.

Usage: ``python bench/count_queries.py [--postgres URL] [--json OUT]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import event, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from tests.fakes.llm_server import FakeLLMServer  # noqa: E402

from adapters.persistence import tables  # noqa: E402
from adapters.persistence.migrate import upgrade  # noqa: E402
from entrypoints.http.app import build_container, create_app  # noqa: E402
from entrypoints.settings import load_settings  # noqa: E402

MESSAGE = "What is machine learning? Explain it in two sentences."
SECRET = "bench-secret-key-0123456789-0123456789-0123456789"


@dataclass
class Tally:
    statements: list[str] = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    pings: int = 0
    checkouts: int = 0
    resets: int = 0

    def as_dict(self, exchanges: int = 1) -> dict[str, Any]:
        return {
            "statements": len(self.statements) / exchanges,
            "transactions": self.begins / exchanges,
            "commits": self.commits / exchanges,
            "rollbacks": self.rollbacks / exchanges,
            "pings": self.pings / exchanges,
            "checkouts": self.checkouts / exchanges,
            "resets": self.resets / exchanges,
            "round_trips": (
                len(self.statements)
                + self.begins
                + self.commits
                + self.rollbacks
                + self.pings
                + self.resets
            )
            / exchanges,
            "sql": [_short(s) for s in self.statements[: len(self.statements) // exchanges]],
        }


def _short(statement: str) -> str:
    flat = re.sub(r"\s+", " ", statement).strip()
    flat = re.sub(r"SELECT (?!count\()\S.*? FROM", "SELECT … FROM", flat, count=1)
    flat = re.sub(r"\((?:[^()]|\([^()]*\))*\) VALUES \(.*?\)", "(…) VALUES (…)", flat)
    return flat[:110]


class Counter:
    def __init__(self, engine: Any) -> None:
        self.tally = Tally()
        self.enabled = False
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def _statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if self.enabled and not statement.lstrip().upper().startswith("BEGIN"):
                self.tally.statements.append(statement)

        @event.listens_for(sync, "begin")
        def _begin(conn: Any) -> None:
            if self.enabled:
                self.tally.begins += 1

        @event.listens_for(sync, "commit")
        def _commit(conn: Any) -> None:
            if self.enabled:
                self.tally.commits += 1

        @event.listens_for(sync, "rollback")
        def _rollback(conn: Any) -> None:
            if self.enabled:
                self.tally.rollbacks += 1

        @event.listens_for(sync.pool, "checkout")
        def _checkout(*args: Any) -> None:
            if self.enabled:
                self.tally.checkouts += 1

        @event.listens_for(sync.pool, "reset")
        def _reset(dbapi_connection: Any, record: Any, state: Any) -> None:
            # Only a reset that really rolls back costs a round trip.
            if self.enabled and not state.transaction_was_reset:
                self.tally.resets += 1

        dialect = sync.dialect
        original_ping = dialect.do_ping

        def do_ping(dbapi_connection: Any) -> Any:
            if self.enabled:
                self.tally.pings += 1
            return original_ping(dbapi_connection)

        dialect.do_ping = do_ping

    @contextlib.contextmanager
    def counting(self) -> Iterator[Tally]:
        self.tally = Tally()
        self.enabled = True
        try:
            yield self.tally
        finally:
            self.enabled = False


@contextlib.asynccontextmanager
async def database(postgres: str | None) -> AsyncIterator[str]:
    if postgres is None:
        with tempfile.TemporaryDirectory(prefix="parley-queries-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/parley.db"
        return
    name = "parley_bench_queries"
    admin = create_async_engine(postgres, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def timed(call: Callable[[], Any], repeat: int = 31) -> float:
    """Median in-process milliseconds of ``call`` (after one warm-up call)."""
    await call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def bulk_messages(engine: Any, conversation_id: int, count: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "conversation_id": conversation_id,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"{MESSAGE} #{i}",
            "status": "completed",
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "created_at": now + timedelta(microseconds=i),
        }
        for i in range(count)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(tables.messages), rows)


async def bulk_conversations(engine: Any, owner_id: int, count: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "owner_id": owner_id,
            "title": f"conversation {i}",
            "status": "closed",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(tables.conversations), rows)


async def measure(postgres: str | None) -> dict[str, Any]:
    fake = FakeLLMServer(api_key=None).start()
    results: dict[str, Any] = {"backend": "postgresql" if postgres else "sqlite"}
    try:
        async with database(postgres) as url:
            settings = load_settings(
                {
                    "PARLEY_DATABASE_URL": url,
                    "PARLEY_SECRET_KEY": SECRET,
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
            engine = container.engine()
            await upgrade(engine)
            counter = Counter(engine)
            app = create_app(container)
            logging.getLogger("httpx").setLevel(logging.WARNING)
            async with (
                app.lifespan(),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://parley.test",
                    timeout=60,
                ) as client,
            ):
                results.update(await scenarios(client, counter, engine))
    finally:
        fake.stop()
    return results


async def scenarios(client: httpx.AsyncClient, counter: Counter, engine: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}

    async def register(name: str) -> tuple[dict[str, str], int]:
        response = await client.post(
            "/api/v1/register/",
            json={"username": name, "email": f"{name}@example.com", "password": "correct-horse"},
        )
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['access']}"}
        settings = await client.get("/api/chat-setting/", headers=headers)
        settings.raise_for_status()
        return headers, int(settings.json()["user"])

    alice, _ = await register("alice")
    bob, bob_id = await register("bob")

    async def new_conversation(headers: dict[str, str]) -> int:
        response = await client.post("/api/conversations/", headers=headers)
        response.raise_for_status()
        return int(response.json()["id"])

    with counter.counting() as tally:
        conversation = await new_conversation(alice)
    out["create_conversation"] = tally.as_dict()

    async def chat(body: dict[str, Any]) -> None:
        response = await client.post("/api/v1/messages/chat/", json=body, headers=alice)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"chat failed: {response.status_code} {response.text[:200]}")

    exchange = {"conversation_id": conversation, "message": MESSAGE}
    await chat(exchange)  # first use creates the chat settings row
    exchanges = 5
    with counter.counting() as tally:
        for _ in range(exchanges):
            await chat(exchange)
    out["chat"] = tally.as_dict(exchanges)

    with counter.counting() as tally:
        for _ in range(exchanges):
            await chat({**exchange, "stream": True})
    out["chat_stream"] = tally.as_dict(exchanges)

    with counter.counting() as tally:
        for _ in range(exchanges):
            await chat({"message": MESSAGE})
    out["chat_new_conversation"] = tally.as_dict(exchanges)

    # History: the same page request on a 200- and a 20,000-message conversation.
    small, large = await new_conversation(alice), await new_conversation(alice)
    await bulk_messages(engine, small, 200)
    await bulk_messages(engine, large, 20_000)
    for label, conversation_id in (("200", small), ("20000", large)):
        for limit in (50, 200):
            path = f"/api/conversations/{conversation_id}/messages/?limit={limit}"

            async def load(path: str = path) -> None:
                (await client.get(path, headers=alice)).raise_for_status()

            with counter.counting() as tally:
                await load()
            row = tally.as_dict()
            row["ms_in_process"] = await timed(load)
            out[f"history_{label}_limit{limit}"] = row

    # Listing: 12 conversations against 2,000, same page size.
    for _ in range(12):
        await new_conversation(bob)

    async def listing() -> None:
        (await client.get("/api/conversations/", headers=bob)).raise_for_status()

    with counter.counting() as tally:
        await listing()
    out["list_12"] = tally.as_dict()
    out["list_12"]["ms_in_process"] = await timed(listing)
    await bulk_conversations(engine, bob_id, 2_000)
    with counter.counting() as tally:
        await listing()
    out["list_2000"] = tally.as_dict()
    out["list_2000"]["ms_in_process"] = await timed(listing)
    return out


LABELS = {
    "chat": "chat exchange, existing conversation (`POST /api/v1/messages/chat/`)",
    "chat_stream": "chat exchange, streamed",
    "chat_new_conversation": "chat exchange, new conversation",
    "create_conversation": "create conversation (`POST /api/conversations/`)",
    "history_200_limit50": "history, 200 messages, `?limit=50`",
    "history_20000_limit50": "history, 20,000 messages, `?limit=50`",
    "history_200_limit200": "history, 200 messages, `?limit=200`",
    "history_20000_limit200": "history, 20,000 messages, `?limit=200`",
    "list_12": "conversation list, 12 conversations",
    "list_2000": "conversation list, 2,012 conversations",
}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Backend: {results['backend']}. Per request (chat rows: mean of 5 exchanges); "
        "statements exclude BEGIN/COMMIT/ROLLBACK; checkouts = connections taken from the "
        "pool; resets = rollbacks the pool itself issues when a connection comes back; "
        "round trips = "
        "statements + transactions + commits + rollbacks + pings + resets (each one a "
        "thread hop with aiosqlite, a network round trip with asyncpg); ms = in-process "
        "median over an ASGI client, no network.",
        "",
        "| request | SQL statements | transactions | commits | rollbacks | checkouts | resets "
        "| pings | round trips | ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LABELS.items():
        row = results.get(key)
        if row is None:
            continue
        ms = row.get("ms_in_process")
        lines.append(
            f"| {label} | {row['statements']:g} | {row['transactions']:g} | {row['commits']:g} "
            f"| {row['rollbacks']:g} | {row['checkouts']:g} | {row['resets']:g} "
            f"| {row['pings']:g} | {row['round_trips']:g} "
            f"| {'' if ms is None else f'{ms:.1f}'} |"
        )
    lines += ["", "Statements of one chat exchange (existing conversation):", ""]
    lines += [f"{i}. `{sql}`" for i, sql in enumerate(results["chat"]["sql"], 1)]
    lines += ["", "Statements of one history load (20,000 messages, `?limit=50`):", ""]
    lines += [f"{i}. `{sql}`" for i, sql in enumerate(results["history_20000_limit50"]["sql"], 1)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="SQL per request for Parley's hot paths.")
    parser.add_argument("--postgres", help="admin URL; a parley_bench_queries database is used")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(measure(args.postgres))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
