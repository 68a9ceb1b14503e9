"""Alembic migrations: upgrade and downgrade cleanly; the migrated schema is the model's."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from adapters.persistence.database import create_engine
from adapters.persistence.migrate import downgrade, upgrade
from adapters.persistence.search import include_object
from adapters.persistence.tables import metadata


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
