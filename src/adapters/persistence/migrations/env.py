"""Alembic environment. Parley runs migrations through ``adapters.persistence.migrate``,
which hands over an open connection; plain ``alembic`` (with alembic.ini at the repository
root) connects to ``PARLEY_DATABASE_URL`` itself."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from adapters.persistence.database import create_engine
from adapters.persistence.search import include_object
from adapters.persistence.tables import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    url = os.environ.get("PARLEY_DATABASE_URL", "sqlite+aiosqlite:///./parley.db")
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Parley's migrations run online only.")

given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_with_own_engine())
