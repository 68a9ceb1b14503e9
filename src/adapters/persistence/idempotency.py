"""Idempotency keys in the database: the primary key (user, key) is the lock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence import tables as t
from application.ports import IdempotencyRecord, StoredResponse

_keys = t.idempotency_keys


class SqlIdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(
        self, user_id: int, key: str, fingerprint: str, now: datetime, expired_before: datetime
    ) -> IdempotencyRecord | None:
        mine = (_keys.c.user_id == user_id) & (_keys.c.key == key)
        async with self._engine.connect() as connection:
            await connection.execute(delete(_keys).where(mine, _keys.c.created_at < expired_before))
            try:
                await connection.execute(
                    _keys.insert().values(
                        user_id=user_id, key=key, fingerprint=fingerprint, created_at=now
                    )
                )
            except IntegrityError:
                await connection.rollback()
            else:
                await connection.commit()
                return None
            row = (
                await connection.execute(
                    select(_keys.c.fingerprint, _keys.c.status_code, _keys.c.response_body).where(
                        mine
                    )
                )
            ).first()
        if row is None:  # released between our insert and read: try again
            return IdempotencyRecord(fingerprint=fingerprint, response=None)
        response = None
        if row.status_code is not None:
            response = StoredResponse(
                status_code=row.status_code, body=(row.response_body or "").encode()
            )
        return IdempotencyRecord(fingerprint=row.fingerprint, response=response)

    async def complete(self, user_id: int, key: str, response: StoredResponse) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(_keys)
                .where(_keys.c.user_id == user_id, _keys.c.key == key)
                .values(status_code=response.status_code, response_body=response.body.decode())
            )

    async def release(self, user_id: int, key: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(_keys).where(_keys.c.user_id == user_id, _keys.c.key == key)
            )
