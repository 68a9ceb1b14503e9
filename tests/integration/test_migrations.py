"""Alembic migrations: upgrade and downgrade cleanly; the migrated schema is the model's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from adapters.persistence.database import create_engine
from adapters.persistence.idempotency import SqlIdempotencyStore
from adapters.persistence.migrate import downgrade, upgrade
from adapters.persistence.search import include_object, matching_ids
from adapters.persistence.tables import metadata, users
from application.admin_ports import ConversationCriteria
from application.ports import KeyHold
from entrypoints.http.idempotency import RecordedResponse


def _schema_state(database_url: str) -> tuple[set[str], list[Any]]:
    async def run() -> tuple[set[str], list[Any]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:

                def inspect_sync(sync_connection: Any) -> tuple[set[str], list[Any]]:
                    tables = set(inspect(sync_connection).get_table_names())
                    context = MigrationContext.configure(
                        sync_connection,
                        # The keyword-search index is made by hand in migration 0003.
                        opts={"compare_type": True, "include_object": include_object},
                    )
                    return tables, compare_metadata(context, metadata)

                return await connection.run_sync(inspect_sync)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _migrate(database_url: str, direction: str) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        try:
            if direction == "up":
                await upgrade(engine)
            else:
                await downgrade(engine, "base")
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_upgrade_matches_models_and_downgrade_removes_everything(
    fresh_database_url: str,
) -> None:
    _migrate(fresh_database_url, "up")
    tables, differences = _schema_state(fresh_database_url)
    assert set(metadata.tables) <= tables
    assert differences == []

    _migrate(fresh_database_url, "down")
    tables, _ = _schema_state(fresh_database_url)
    assert tables <= {"alembic_version"}

    _migrate(fresh_database_url, "up")
    assert set(metadata.tables) <= _schema_state(fresh_database_url)[0]


def test_an_answer_kept_before_0009_still_replays_and_survives_a_downgrade(
    fresh_database_url: str,
) -> None:
    """Migration 0009 folds the status and body columns into one ``answer``: a key
    answered before it gives a retry the same status and body after it, and back."""
    body = '{"ai_message": {"content": "你好"}, "id": 7}'

    async def run() -> None:
        engine = create_engine(fresh_database_url)
        try:
            await upgrade(engine, "0008")
            now = datetime.now(UTC)
            async with engine.begin() as connection:
                user_id = (
                    await connection.execute(
                        users.insert()
                        .values(
                            username="old",
                            username_key="old",
                            email="old@example.com",
                            password_hash="!",
                            date_joined=now,
                        )
                        .returning(users.c.id)
                    )
                ).scalar_one()
                await connection.execute(
                    text(
                        "INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code,"
                        " response_body, created_at) VALUES (:user, 'k', 'fp', 201, :body, :now)"
                    ),
                    {"user": user_id, "body": body, "now": now},
                )
            await upgrade(engine)

            store = SqlIdempotencyStore(engine)
            hold = KeyHold(user_id=user_id, key="k", holder="retry")
            record = await store.claim(hold, "fp", now, now, now - timedelta(days=1))
            assert record is not None
            assert record.answer is not None
            replayed = RecordedResponse.replayed(record.answer)
            assert replayed.status_code == 201
            assert isinstance(replayed.content, bytes)
            assert json.loads(replayed.content) == json.loads(body)

            await downgrade(engine, "0008")
            async with engine.connect() as connection:
                status, kept = (
                    await connection.execute(
                        text("SELECT status_code, response_body FROM idempotency_keys")
                    )
                ).one()
            assert (status, json.loads(kept)) == (201, json.loads(body))
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_conversations_made_before_0013_become_single_branch_trees_and_go_back(
    fresh_database_url: str,
) -> None:
    """Every message follows the one before it in its own conversation, all on the
    current branch, counts unchanged; downgrading keeps the current branch."""

    async def rows(engine: Any) -> list[tuple[Any, ...]]:
        async with engine.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT m.id, m.conversation_id, m.parent_id, m.on_branch, c.message_count "
                    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                    "ORDER BY m.id"
                )
            )
            return [tuple(row) for row in result]

    async def run() -> None:
        engine = create_engine(fresh_database_url)
        try:
            await upgrade(engine, "0012")
            now = datetime.now(UTC)
            async with engine.begin() as connection:
                user_id = (
                    await connection.execute(
                        users.insert()
                        .values(
                            username="old",
                            username_key="old",
                            email="old@example.com",
                            password_hash="!",
                            date_joined=now,
                        )
                        .returning(users.c.id)
                    )
                ).scalar_one()
                conversation_ids = []
                for title in ("one", "two"):
                    conversation_ids.append(
                        (
                            await connection.execute(
                                text(
                                    "INSERT INTO conversations (owner_id, title, status, "
                                    "created_at, updated_at) VALUES (:user, :title, 'active', "
                                    ":now, :now) RETURNING id"
                                ),
                                {"user": user_id, "title": title, "now": now},
                            )
                        ).scalar_one()
                    )
                # Interleaved, as two conversations written at once would be.
                for index, conversation in enumerate([*conversation_ids, *conversation_ids] * 2):
                    await connection.execute(
                        text(
                            "INSERT INTO messages (conversation_id, role, content, status, "
                            "prompt_tokens, completion_tokens, created_at) "
                            "VALUES (:c, :role, 'text', 'completed', 1, 2, :now)"
                        ),
                        {
                            "c": conversation,
                            "role": "user" if index % 4 < 2 else "assistant",
                            "now": now,
                        },
                    )
            await upgrade(engine)
            migrated = await rows(engine)
            by_conversation: dict[int, list[tuple[Any, ...]]] = {}
            for row in migrated:
                by_conversation.setdefault(row[1], []).append(row)
            assert set(by_conversation) == set(conversation_ids)
            for chain in by_conversation.values():
                assert [row[2] for row in chain] == [None] + [row[0] for row in chain[:-1]]
                assert all(bool(row[3]) for row in chain)
                assert all(row[4] == 4 for row in chain)

            await downgrade(engine, "0012")
            async with engine.connect() as connection:
                kept = (await connection.execute(text("SELECT count(*) FROM messages"))).scalar()
            assert kept == 8
            await upgrade(engine)
            assert await rows(engine) == migrated
        finally:
            await engine.dispose()

    asyncio.run(run())


async def _insert(connection: Any, sql: str, **values: Any) -> int:
    return int((await connection.execute(text(sql + " RETURNING id"), values)).scalar_one())


async def _table_state(engine: Any) -> list[Any]:
    """Every row of the rebuilt tables and the stored counts, and their indexes."""
    async with engine.connect() as connection:
        rows = [
            [tuple(row) for row in await connection.execute(text(sql))]
            for sql in (
                "SELECT * FROM conversations ORDER BY id",
                "SELECT * FROM messages ORDER BY id",
                "SELECT * FROM budget_reservations ORDER BY id",
                "SELECT id, conversation_count FROM users ORDER BY id",
            )
        ]
        indexes = await connection.run_sync(
            lambda sync: {
                table: sorted(index["name"] for index in inspect(sync).get_indexes(table))
                for table in ("conversations", "messages", "budget_reservations")
            }
        )
    return [*rows, indexes]


async def _counts_agree(connection: Any) -> None:
    stored = (
        "SELECT c.message_count, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
        " FROM conversations c",
        "SELECT u.conversation_count, (SELECT count(*) FROM conversations c"
        " WHERE c.owner_id = u.id) FROM users u",
    )
    for sql in stored:
        pairs = [tuple(row) for row in await connection.execute(text(sql))]
        assert pairs
        assert all(kept == real for kept, real in pairs), pairs


async def _found(connection: Any, word: str) -> list[int]:
    criteria = ConversationCriteria(terms=(word,))
    found = await connection.scalars(matching_ids(connection.dialect.name, criteria, limit=None))
    return sorted(found)


def test_0014_keeps_rows_ids_search_and_counts_and_never_hands_an_id_out_twice(
    fresh_database_url: str,
) -> None:
    """Rebuilt with AUTOINCREMENT (SQLite), the tables keep every row, id and index, the
    search index and stored counts still follow every write, foreign keys still cascade,
    and no id is handed out again: not of the newest conversation deleted after it, nor
    of one deleted before it that the audit log names. Down and up again, the same."""
    conversation_sql = (
        "INSERT INTO conversations (owner_id, title, status, created_at, updated_at) "
        "VALUES (:owner, :title, 'active', :now, :now)"
    )
    message_sql = (
        "INSERT INTO messages (conversation_id, role, content, status, prompt_tokens, "
        "completion_tokens, created_at) VALUES (:c, 'user', :content, 'completed', 1, 2, :now)"
    )

    async def run() -> None:
        engine = create_engine(fresh_database_url)
        try:
            await upgrade(engine, "0013")
            now = datetime.now(UTC)
            async with engine.begin() as connection:
                owner = await _insert(
                    connection,
                    "INSERT INTO users (username, username_key, email, password_hash, "
                    "is_staff, is_active, date_joined) "
                    "VALUES ('old', 'old', 'old@example.com', '!', false, true, :now)",
                    now=now,
                )
                kept = [
                    await _insert(connection, conversation_sql, owner=owner, title=t, now=now)
                    for t in ("fruit", "weather")
                ]
                for conversation, content in [(kept[0], "pineapple tart"), (kept[1], "rain")]:
                    for _ in range(2):
                        await _insert(
                            connection, message_sql, c=conversation, content=content, now=now
                        )
                await _insert(
                    connection,
                    "INSERT INTO budget_reservations (user_id, tokens, cost_nanos, created_at, "
                    "lease_until) VALUES (:owner, 10, 0, :now, :now)",
                    owner=owner,
                    now=now,
                )
                gone = await _insert(connection, conversation_sql, owner=owner, title="x", now=now)
                await _insert(connection, message_sql, c=gone, content="deleted words", now=now)
                await _insert(
                    connection,
                    "INSERT INTO audit_log (actor_username, action, target_type, target_id, "
                    "details, created_at) VALUES ('admin', 'conversation.view', "
                    "'conversation', :gone, '{}', :now)",
                    gone=gone,
                    now=now,
                )
                await connection.execute(text(f"DELETE FROM conversations WHERE id = {gone}"))
            before = await _table_state(engine)

            await upgrade(engine)
            assert await _table_state(engine) == before
            async with engine.begin() as connection:
                assert await _found(connection, "pineapple") == [kept[0]]
                assert await _found(connection, "deleted words") == []
                newest = await _insert(
                    connection, conversation_sql, owner=owner, title="n", now=now
                )
                assert newest > gone
                fresh = await _insert(connection, message_sql, c=newest, content="mango", now=now)
                await connection.execute(
                    text(
                        f"DELETE FROM messages WHERE id = (SELECT max(id) FROM messages "
                        f"WHERE conversation_id = {kept[1]})"
                    )
                )
                assert await _found(connection, "mango") == [newest]
                await _counts_agree(connection)
                await connection.execute(text(f"DELETE FROM conversations WHERE id = {newest}"))
                again = await _insert(connection, conversation_sql, owner=owner, title="a", now=now)
                assert again > newest
                assert await _insert(connection, message_sql, c=again, content="m", now=now) > fresh
                assert await _found(connection, "mango") == []
                orphans = text(f"SELECT count(*) FROM messages WHERE conversation_id = {newest}")
                assert await connection.scalar(orphans) == 0
                await _counts_agree(connection)
                if connection.dialect.name == "sqlite":
                    assert (await connection.execute(text("PRAGMA foreign_key_check"))).all() == []
            migrated = await _table_state(engine)

            await downgrade(engine, "0013")
            assert await _table_state(engine) == migrated
            async with engine.begin() as connection:
                await _insert(connection, message_sql, c=again, content="papaya", now=now)
                assert await _found(connection, "papaya") == [again]
                await _counts_agree(connection)
            await upgrade(engine)
            async with engine.begin() as connection:
                assert await _found(connection, "papaya") == [again]
                await connection.execute(text(f"DELETE FROM conversations WHERE id = {again}"))
                last = await _insert(connection, conversation_sql, owner=owner, title="l", now=now)
                assert last > again
                await _counts_agree(connection)
        finally:
            await engine.dispose()

    asyncio.run(run())
