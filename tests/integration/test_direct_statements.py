"""The chat path's statements run on SQLite's driver and on asyncpg past SQLAlchemy's
execution layer (``adapters/persistence/direct.py``): they must read and write exactly what
SQLAlchemy would, fail as SQLAlchemy would, and belong to the unit of work's transaction."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, select
from sqlalchemy.dialects.sqlite import aiosqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence import tables as t
from adapters.persistence.database import create_engine
from adapters.persistence.direct import DirectStatement
from adapters.persistence.repositories import _CONVERSATION_WITH_SETTINGS, _HISTORY
from tests.integration.servers import migrate, postgres_database

NO_TOKENS = {"prompt_tokens": 0, "completion_tokens": 0}
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
# An insert names every column with a Python-side default (direct statements apply none).
REQUIRED = ("conversation_id", "role", "content", "status", "created_at", *NO_TOKENS)
POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('direct') / 'parley.db'}"
        migrate(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip("PARLEY_TEST_POSTGRES_URL is not set")
    with postgres_database(POSTGRES_URL) as url:
        migrate(url)
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _a_conversation_with_history(engine: AsyncEngine, name: str) -> tuple[int, int]:
    async with engine.begin() as connection:
        owner = (
            await connection.execute(
                t.users.insert().returning(t.users.c.id),
                {"username": name, "email": "", "password_hash": "x", "date_joined": T0}
                | {"is_staff": False, "is_active": True, "credentials_valid_after": T0},
            )
        ).scalar_one()
        conversation = (
            await connection.execute(
                t.conversations.insert().returning(t.conversations.c.id),
                {"owner_id": owner, "title": "t", "status": "active"}
                | {"created_at": T0, "updated_at": T0, "archived_at": T0},
            )
        ).scalar_one()
        await connection.execute(
            t.chat_settings.insert(),
            {"user_id": owner, "ai_model": "m", "temperature": 1.25, "max_tokens": 9},
        )
        await connection.execute(
            t.messages.insert(),
            [
                {"conversation_id": conversation, "role": role, "content": f"{role} {n}"}
                | {"status": "completed", "created_at": T0, "image_data": "AAAA" if n else None}
                for n, role in enumerate(["user", "assistant", "user"])
            ],
        )
    return owner, conversation


async def test_rows_are_what_sqlalchemy_reads_value_for_value_and_type_for_type(
    engine: AsyncEngine,
) -> None:
    owner, conversation = await _a_conversation_with_history(engine, "reader")
    cases: list[tuple[Any, dict[str, Any]]] = [
        (_CONVERSATION_WITH_SETTINGS, {"conversation_id": conversation, "owner_id": owner}),
        (_HISTORY, {"conversation_id": conversation, "limit": 2}),
    ]
    async with engine.connect() as connection:
        for statement, parameters in cases:
            params = {"login_id": None} | parameters
            expected = (await connection.execute(statement, params)).all()
            rows = await DirectStatement(statement, named=True).rows(connection, params)
            assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
            assert [[type(v) for v in row] for row in rows] == [
                [type(v) for v in row] for row in expected
            ]
            assert [row._asdict() for row in rows] == [row._asdict() for row in expected]
        strangers = {"conversation_id": conversation, "owner_id": owner + 1, "login_id": None}
        assert await DirectStatement(_CONVERSATION_WITH_SETTINGS).rows(connection, strangers) == []


async def test_the_chat_paths_statements_skip_sqlalchemys_execution_on_both_drivers(
    engine: AsyncEngine,
) -> None:
    """What the direct path is for (bench/results): were it to fall back to SQLAlchemy
    unnoticed (a driver adapter changed), every chat turn would cost ~0.5 ms more."""
    owner, conversation = await _a_conversation_with_history(engine, "skipper")
    executed: list[Any] = []

    def on_execute(_conn: Any, clause: Any, *_: Any) -> None:
        executed.append(clause)

    event.listen(engine.sync_engine, "before_execute", on_execute)
    try:
        async with engine.connect() as connection:
            context = await DirectStatement(_CONVERSATION_WITH_SETTINGS, named=True).rows(
                connection, {"conversation_id": conversation, "owner_id": owner, "login_id": None}
            )
            history = await DirectStatement(_HISTORY).rows(
                connection, {"conversation_id": conversation, "limit": 5}
            )
    finally:
        event.remove(engine.sync_engine, "before_execute", on_execute)
    assert [row.temperature for row in context] == [1.25]
    assert [row[2] for row in history] == ["user 2", "assistant 1", "user 0"]
    assert executed == []


async def test_a_write_belongs_to_the_transaction_and_reads_back_through_sqlalchemy(
    engine: AsyncEngine,
) -> None:
    _, conversation = await _a_conversation_with_history(engine, "writer")
    insert = DirectStatement(
        t.messages.insert().returning(t.messages.c.id, t.messages.c.created_at),
        keys=(*REQUIRED, "on_branch"),
    )
    values = {"conversation_id": conversation, "role": "user", "content": "kept?"}
    values |= {"status": "completed", "created_at": T0, "on_branch": False} | NO_TOKENS
    count = select(func.count()).where(t.messages.c.content == bindparam("content"))
    async with engine.connect() as connection:
        [(message_id, created_at)] = await insert.rows(connection, values)
        assert created_at == T0
        await connection.rollback()
        assert (await connection.execute(count, {"content": "kept?"})).scalar_one() == 0
        [(message_id, _)] = await insert.rows(connection, values | {"content": "kept!"})
        await connection.commit()
    async with engine.connect() as connection:
        stored = (
            await connection.execute(select(t.messages).where(t.messages.c.id == message_id))
        ).one()
    assert (stored.content, stored.created_at, stored.on_branch) == ("kept!", T0, False)


def test_an_insert_that_leaves_a_python_side_default_out_is_refused_when_compiled() -> None:
    statement = DirectStatement(t.messages.insert(), keys=REQUIRED[:5])
    with pytest.raises(TypeError, match="Python-side column defaults"):
        statement._compile(aiosqlite.dialect())  # noqa: SLF001 (what executing would do first)


async def test_a_refused_write_is_sqlalchemys_error_and_stores_nothing(engine: AsyncEngine) -> None:
    insert = DirectStatement(
        t.messages.insert().returning(t.messages.c.id),
        keys=REQUIRED,
    )
    orphan = {"conversation_id": 2_000_000_000, "role": "user", "content": "orphan"}
    orphan |= {"status": "completed", "created_at": T0} | NO_TOKENS
    async with engine.connect() as connection:
        with pytest.raises(IntegrityError):  # the foreign key: no such conversation
            await insert.rows(connection, orphan)
        await connection.rollback()
        count = select(func.count()).where(t.messages.c.content == "orphan")
        assert (await connection.execute(count)).scalar_one() == 0


async def test_with_a_cursor_listener_statements_run_through_sqlalchemy(
    engine: AsyncEngine,
) -> None:
    """What OpenTelemetry's SQLAlchemy instrumentation needs to see every statement."""
    _, conversation = await _a_conversation_with_history(engine, "traced")
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        async with engine.connect() as connection:
            rows = await DirectStatement(_HISTORY, named=True).rows(
                connection, {"conversation_id": conversation, "limit": 5}
            )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)
    assert [row.content for row in rows] == ["user 2", "assistant 1", "user 0"]
    assert any(statement.startswith("SELECT messages.id") for statement in seen), seen
