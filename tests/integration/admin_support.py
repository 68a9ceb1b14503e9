"""Helpers for the admin API tests: staff accounts, and rows written with chosen
timestamps and token counts (through SQLAlchemy Core, so the types and the search-index
triggers behave as they do for the app)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import update

from adapters.persistence import tables as t
from adapters.persistence.database import create_engine
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer


def _run(database_url: str, statement: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(statement)
                if not result.is_insert:
                    return None
                key = result.inserted_primary_key
                assert key is not None  # a single-row INSERT always has one
                return key[0]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def make_staff(server: RunningServer, client: httpx.Client, prefix: str = "admin") -> Account:
    account = register(client, prefix)
    _run(
        server.settings.database_url,
        update(t.users).where(t.users.c.id == account.id).values(is_staff=True),
    )
    return account


def add_message(
    server: RunningServer,
    conversation_id: int,
    content: str,
    created_at: datetime,
    *,
    role: str = "user",
    model: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    status: str = "completed",
) -> int:
    return int(
        _run(
            server.settings.database_url,
            t.messages.insert().values(
                conversation_id=conversation_id,
                role=role,
                content=content,
                status=status,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                created_at=created_at,
            ),
        )
    )


def set_title(server: RunningServer, conversation_id: int, title: str) -> None:
    _run(
        server.settings.database_url,
        update(t.conversations).where(t.conversations.c.id == conversation_id).values(title=title),
    )


def word(prefix: str = "w") -> str:
    """A word no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def chinese(length: int) -> str:
    """Random common CJK ideographs: a Chinese 'word' no other test uses."""
    return "".join(chr(random.randrange(0x4E00, 0x9FA5)) for _ in range(length))


def start(client: httpx.Client, who: Account) -> int:
    response = client.post("/api/conversations/", headers=who.bearer)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def send(client: httpx.Client, who: Account, conversation_id: int, text: str) -> None:
    response = client.post(
        f"/api/conversations/{conversation_id}/send_message/",
        json={"message": text},
        headers=who.bearer,
    )
    assert response.status_code == 201, response.text


def add_conversations(
    server: RunningServer,
    owner_id: int,
    count: int,
    *,
    message: str,
    when: datetime,
    status: str = "closed",
) -> list[int]:
    """``count`` conversations of the owner, each with one message, in one transaction."""

    async def run() -> list[int]:
        engine = create_engine(server.settings.database_url)
        try:
            async with engine.begin() as connection:
                ids = []
                for _ in range(count):
                    result = await connection.execute(
                        t.conversations.insert().values(
                            owner_id=owner_id,
                            title="",
                            status=status,
                            created_at=when,
                            updated_at=when,
                        )
                    )
                    key = result.inserted_primary_key
                    assert key is not None  # a single-row INSERT always has one
                    ids.append(int(key[0]))
                await connection.execute(
                    t.messages.insert(),
                    [
                        {
                            "conversation_id": i,
                            "role": "user",
                            "content": message,
                            "status": "completed",
                            "prompt_tokens": 0,
                            "completion_tokens": 0,
                            "created_at": when,
                        }
                        for i in ids
                    ],
                )
                return ids
        finally:
            await engine.dispose()

    return asyncio.run(run())
