"""A new user's first turns arrive together, and each makes the default chat settings:
the repository must let the first insert win and hand the others what it stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from adapters.persistence.database import create_engine
from adapters.persistence.repositories import SqlChatSettings
from domain.chat_settings import ChatSettings, UserChatSettings
from tests.integration.servers import migrate


def _defaults(model: str) -> ChatSettings:
    return ChatSettings(ai_model=model, temperature=0.7, max_tokens=1024)


async def _race(database_url: str) -> list[UserChatSettings]:
    # Separate engines: SQLite's pool keeps one connection per engine.
    engines = [create_engine(database_url, pool_size=1) for _ in range(2)]
    try:
        async with engines[0].begin() as setup:
            user_id = (
                await setup.execute(
                    text(
                        "INSERT INTO users (username, username_key, email, password_hash, "
                        "is_staff, is_active, date_joined) VALUES ('racer', 'racer', "
                        "'r@example.com', '!', false, true, :now) RETURNING id"
                    ),
                    {"now": datetime.now(UTC)},
                )
            ).scalar_one()
        first_inserted = asyncio.Event()

        async def first() -> UserChatSettings:
            async with engines[0].begin() as connection:
                stored = await SqlChatSettings(connection).add(user_id, _defaults("first"))
                first_inserted.set()
                await asyncio.sleep(0.3)  # still uncommitted while the second one inserts
                return stored

        async def second() -> UserChatSettings:
            await first_inserted.wait()
            async with engines[1].begin() as connection:
                return await SqlChatSettings(connection).add(user_id, _defaults("second"))

        return list(await asyncio.gather(first(), second()))
    finally:
        for engine in engines:
            await engine.dispose()


def test_concurrent_first_settings_agree_on_the_first_stored(fresh_database_url: str) -> None:
    migrate(fresh_database_url)
    first, second = asyncio.run(_race(fresh_database_url))
    assert first.id == second.id
    assert second.settings.ai_model == "first"
