"""Idempotency keys in the database: the primary key (user, key) is the lock, and a
lease (``holder``, ``lease_until``) says whether the request holding it is alive.

Taking over a key whose lease ended is one conditional UPDATE, so of several retries
that find it free at once -- on any worker -- exactly one gets it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence import tables as t
from application.ports import IdempotencyRecord, KeyHold

_keys = t.idempotency_keys


def _key_of(hold: KeyHold) -> ColumnElement[bool]:
    return (_keys.c.user_id == hold.user_id) & (_keys.c.key == hold.key)


def _held_by(hold: KeyHold) -> ColumnElement[bool]:
    return _key_of(hold) & (_keys.c.holder == hold.holder)


class SqlIdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(
        self,
        hold: KeyHold,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
        expired_before: datetime,
    ) -> IdempotencyRecord | None:
        mine = _key_of(hold)
        async with self._engine.connect() as connection:
            await connection.execute(delete(_keys).where(mine, _keys.c.created_at < expired_before))
            try:
                await connection.execute(
                    _keys.insert().values(
                        user_id=hold.user_id,
                        key=hold.key,
                        fingerprint=fingerprint,
                        created_at=now,
                        holder=hold.holder,
                        lease_until=lease_until,
                    )
                )
            except IntegrityError:
                await connection.rollback()
            else:
                await connection.commit()
                return None
            # Held by a request that stopped renewing (its process died): take it over.
            # Keys reserved before leases existed (migration 0007) have none.
            taken = await connection.execute(
                update(_keys)
                .where(
                    mine,
                    _keys.c.fingerprint == fingerprint,
                    _keys.c.answer.is_(None),
                    or_(_keys.c.lease_until.is_(None), _keys.c.lease_until < now),
                )
                .values(holder=hold.holder, lease_until=lease_until)
            )
            await connection.commit()
            if taken.rowcount == 1:
                return None
            row = (
                await connection.execute(select(_keys.c.fingerprint, _keys.c.answer).where(mine))
            ).first()
        if row is None:  # released between our insert and read: try again
            return IdempotencyRecord(fingerprint=fingerprint, answer=None)
        return IdempotencyRecord(fingerprint=row.fingerprint, answer=row.answer)

    async def renew(self, hold: KeyHold, lease_until: datetime) -> bool:
        async with self._engine.begin() as connection:
            renewed = await connection.execute(
                update(_keys)
                .where(_held_by(hold), _keys.c.answer.is_(None))
                .values(lease_until=lease_until)
            )
        return renewed.rowcount == 1

    async def complete(self, hold: KeyHold, answer: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(_keys)
                .where(_held_by(hold), _keys.c.answer.is_(None))
                .values(answer=answer, lease_until=None)
            )

    async def release(self, hold: KeyHold) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(_keys).where(_held_by(hold)))
