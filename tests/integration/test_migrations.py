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
from adapters.persistence.search import include_object
from adapters.persistence.tables import metadata, users
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
