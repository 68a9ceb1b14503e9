"""The chat path's database work is bounded: at most 5 SQL statements, 2 commits and 2
transactions per exchange (the caller's standing is read with the turn's conversation),
history is one bounded query however long the conversation, and lists cost the same
whatever the history (counted, not timed: by SQLite's trace of what its driver ran; on
PostgreSQL by asyncpg's query log plus SQLAlchemy's executions, as the chat path's
statements skip SQLAlchemy there too)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.integration.conftest import register
from tests.integration.servers import RunningServer


@dataclass
class Counter:
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    transactions: int = 0
    _last_traced: str = ""
    _heard: int = 0  # every report, to tell when they have stopped coming

    def settle(self) -> None:
        """Wait until the reports stop coming: asyncpg calls its query loggers from the
        event loop after the query, so a COMMIT's report can arrive after the response
        that followed it has reached the test."""
        quiet = 0
        for _ in range(100):
            heard = self._heard
            time.sleep(0.02)
            quiet = quiet + 1 if heard == self._heard else 0
            if quiet == 3:
                return

    def reset(self) -> None:
        self.settle()
        self.statements.clear()
        self.commits = 0
        self.transactions = 0

    def count(self, statement: str) -> None:
        self._heard += 1
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1")):
            self.statements.append(statement.split()[0].upper())

    def traced(self, statement: str) -> None:
        """What SQLite's trace reports. A trigger's statements come as "-- TRIGGER ..."
        comments, each followed by the statement that fired it again: counted once.
        FTS5 reads its own configuration with statements naming 'main': not ours."""
        self._heard += 1
        if statement.startswith("--") or "'main'" in statement:
            return
        if statement.startswith("BEGIN"):
            self.transactions += 1
        elif statement == "COMMIT":
            self.commits += 1
        elif statement not in (self._last_traced, "ROLLBACK"):
            self.count(statement)
        self._last_traced = statement

    def logged(self, record: Any) -> None:
        """What asyncpg's query logger reports: every statement sent with ``execute`` or
        ``fetch`` (the direct statements), the transactions' BEGIN and COMMIT."""
        self._heard += 1
        statement = record.query.strip().rstrip(";")
        if statement.startswith("BEGIN"):
            self.transactions += 1
        elif statement == "COMMIT":
            self.commits += 1
        elif statement != "ROLLBACK":
            self.count(statement)


@pytest.fixture
def counted(server: RunningServer) -> Iterator[Counter]:
    engine = server.container.engine().sync_engine
    counter = Counter()

    # The drivers' own logs count: the chat path's statements and transactions skip
    # SQLAlchemy (adapters/persistence/direct.py), and a cursor-execute listener would
    # switch that off.
    def on_sqlite_checkout(dbapi_connection: Any, *_: Any) -> None:
        driver = dbapi_connection.driver_connection._conn  # noqa: SLF001 (aiosqlite's sqlite3)
        driver.set_trace_callback(counter.traced)

    def on_asyncpg_checkout(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(counter.logged)

    def on_asyncpg_checkin(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(counter.logged)

    def on_execute(_conn: Any, clause: Any, *_: Any) -> None:
        # asyncpg logs no prepared statement's execution: SQLAlchemy's are counted here.
        counter.count(str(clause))

    listeners: list[tuple[Any, str, Callable[..., None]]] = (
        [(engine.pool, "checkout", on_sqlite_checkout)]
        if engine.dialect.name == "sqlite"
        else [
            (engine.pool, "checkout", on_asyncpg_checkout),
            (engine.pool, "checkin", on_asyncpg_checkin),
            (engine, "before_execute", on_execute),
        ]
    )
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    try:
        yield counter
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)


def test_a_chat_exchange_costs_at_most_five_statements_two_commits_two_transactions(
    client: httpx.Client, counted: Counter
) -> None:
    user = register(client)
    conversation = client.post(
        "/api/v1/messages/chat/", json={"message": "warm up"}, headers=user.bearer
    ).json()["conversation_id"]
    for n in range(30):
        client.post(
            "/api/v1/messages/chat/",
            json={"conversation_id": conversation, "message": f"turn {n}"},
            headers=user.bearer,
        )
    counted.reset()
    response = client.post(
        "/api/v1/messages/chat/",
        json={"conversation_id": conversation, "message": "how much did this cost?"},
        headers=user.bearer,
    )
    assert response.status_code == 201
    counted.settle()
    assert counted.statements.count("INSERT") == 2, counted.statements  # the counting counts
    assert len(counted.statements) <= 5, counted.statements
    assert counted.commits <= 2
    # Authentication included: the bearer's standing comes with the conversation.
    assert counted.transactions == 2
    # History is one query, bounded by LIMIT, however long the conversation is.
    assert counted.statements.count("SELECT") <= 3


def test_a_streamed_exchange_costs_two_transactions(client: httpx.Client, counted: Counter) -> None:
    """One before the first token (the turn's reads, the user's message and the reply's
    row), one when the reply is stored whole."""
    user = register(client)
    conversation = client.post(
        "/api/v1/messages/chat/", json={"message": "warm up"}, headers=user.bearer
    ).json()["conversation_id"]
    counted.reset()
    response = client.post(
        "/api/v1/messages/chat/",
        json={"conversation_id": conversation, "message": "stream it", "stream": True},
        headers=user.bearer,
    )
    assert response.status_code == 200
    assert "event: done" in response.text
    counted.settle()
    assert counted.transactions == 2, counted.statements
    assert counted.commits == 2


def test_listing_cost_does_not_grow_with_history(client: httpx.Client, counted: Counter) -> None:
    user = register(client)
    conversation = client.post("/api/conversations/", headers=user.bearer).json()["id"]

    def list_cost() -> int:
        counted.reset()
        assert client.get("/api/conversations/", headers=user.bearer).status_code == 200
        assert (
            client.get(
                f"/api/conversations/{conversation}/messages/?limit=10", headers=user.bearer
            ).status_code
            == 200
        )
        counted.settle()
        return len(counted.statements)

    before = list_cost()
    for n in range(20):
        client.post(
            f"/api/conversations/{conversation}/send_message/",
            json={"message": f"m{n}"},
            headers=user.bearer,
        )
    assert list_cost() == before
