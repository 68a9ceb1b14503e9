"""Recent model calls for the admin's provider health view (``RecentModelCalls``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import String, cast, func, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence import tables as t
from domain.conversation import MessageRole, MessageStatus
from domain.provider_health import RecentCall

_m = t.messages
_calls = t.model_calls


class SqlRecentModelCalls:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def recent(
        self, models: Collection[str], since: datetime, per_model: int
    ) -> Mapping[str, Sequence[RecentCall]]:
        if not models:
            return {}
        # One statement: each side reads only the window (ix_messages_model_created_at,
        # ix_model_calls_created_at), and the ranking keeps the newest ``per_model`` of
        # each model, so a busy hour costs a sort of that hour, never a table scan.
        replies = select(
            _m.c.model,
            _m.c.status,
            _m.c.latency_ms,
            _m.c.error_code,
            _m.c.error_message,
            _m.c.created_at,
        ).where(
            _m.c.model.in_(models),
            _m.c.created_at >= since,
            _m.c.role == MessageRole.ASSISTANT.value,
            _m.c.status != MessageStatus.STREAMING.value,
        )
        stateless = select(
            _calls.c.model,
            _calls.c.status,
            _calls.c.latency_ms,
            _calls.c.error_code,
            cast(null(), String(500)).label("error_message"),
            _calls.c.created_at,
        ).where(_calls.c.model.in_(models), _calls.c.created_at >= since)
        both = union_all(replies, stateless).subquery()
        ranked = select(
            *both.c,
            func.row_number()
            .over(partition_by=both.c.model, order_by=both.c.created_at.desc())
            .label("newness"),
        ).subquery()
        query = select(*[column for column in ranked.c if column.name != "newness"]).where(
            ranked.c.newness <= per_model
        )
        found: dict[str, list[RecentCall]] = {}
        async with self._engine.connect() as connection:
            for row in await connection.execute(query):
                found.setdefault(row.model, []).append(
                    RecentCall(
                        status=MessageStatus(row.status),
                        latency_ms=row.latency_ms,
                        error_code=row.error_code,
                        error_message=row.error_message,
                        created_at=row.created_at,
                    )
                )
        return found
