"""Engine construction: SQLite tuned for a server by default, PostgreSQL by URL."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.persistence.inline_sqlite import inline_connector

SQLITE_BUSY_TIMEOUT_MS = 15_000


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 10.0,
    statement_timeout_ms: int = 30_000,
) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["server_settings"] = {"statement_timeout": str(statement_timeout_ms)}
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
    )
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A connection the server dropped (restart, failover) is noticed on checkout and
    replaced, so only requests in flight at that moment fail. SQLAlchemy's pre-ping does
    the same with a query: on asyncpg a BEGIN, a ``;`` and a ROLLBACK, three round trips
    per checkout, six per chat turn (bench/results). asyncpg already knows: the server's
    goodbye (or the socket closing) reaches the idle connection's protocol on the event
    loop, and ``is_closed`` reads that. ``DisconnectionError`` is SQLAlchemy's documented
    way for a checkout hook to have the pool discard it and connect anew."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _sqlite_engine(url: str, *, echo: bool) -> AsyncEngine:
    database = make_url(url).database or ":memory:"
    engine = create_async_engine(
        url,
        echo=echo,
        # Statements run on the event loop's thread (see inline_sqlite for why and how
        # lock waits stay asynchronous). The driver's BEGIN is off (isolation_level None,
        # SQLAlchemy's documented aiosqlite recipe) so that every transaction can begin
        # IMMEDIATE, below.
        async_creator=inline_connector(database, SQLITE_BUSY_TIMEOUT_MS / 1000),
        # One connection, as SQLite has one writer: transactions of this process queue
        # in the pool (woken in turn) instead of polling SQLite's lock with back-off.
        # Statements run inline, so a transaction holds it only while it pauses at an
        # await, which the use cases avoid (password checks run outside transactions).
        pool_size=1,
        max_overflow=0,
        pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front. Read-check-write sequences such as
        # "count active conversations, then insert one" are then serialised across
        # connections and processes instead of racing (a DEFERRED transaction would let
        # two of them read the same count). Sent on the driver's cursor: through
        # exec_driver_sql it cost a whole SQLAlchemy execution, ~4% of a chat request.
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection.driver_connection.in_transaction:
            return  # a direct statement began it (adapters/persistence/direct.py)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise OperationalError("BEGIN IMMEDIATE", None, error) from error
        finally:
            cursor.close()

    return engine


class SqlDatabaseProbe:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


class RedisProbe:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def ping(self) -> None:
        await self._redis.ping()
