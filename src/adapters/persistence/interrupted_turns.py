"""Finding and answering user messages left without a reply (``MarkInterruptedTurns``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence import tables as t
from adapters.persistence.repositories import _MESSAGE_COLUMNS, SqlMessages, _message
from domain.conversation import Message, MessageRole, NewMessage

_m = t.messages
_later = _m.alias("later")


class SqlUnansweredTurns:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def unanswered(self, sent_after: datetime | None, sent_before: datetime) -> list[Message]:
        # The window is on ix_messages_created_at; "last of its conversation" is one probe
        # of ix_messages_conversation_id_id per candidate.
        query = (
            select(*_MESSAGE_COLUMNS)
            .where(
                _m.c.role == MessageRole.USER.value,
                _m.c.created_at < sent_before,
                ~exists().where(
                    _later.c.conversation_id == _m.c.conversation_id, _later.c.id > _m.c.id
                ),
            )
            .order_by(_m.c.id)
        )
        if sent_after is not None:
            query = query.where(_m.c.created_at >= sent_after)
        async with self._engine.connect() as connection:
            return [_message(row) for row in await connection.execute(query)]

    async def answer(self, question: Message, reply: NewMessage) -> bool:
        async with self._engine.begin() as connection:
            # SQLite transactions begin IMMEDIATE and are serialised already; elsewhere a
            # second worker answering the same message waits here, then sees this reply.
            conversation = select(t.conversations.c.id).where(
                t.conversations.c.id == question.conversation_id
            )
            if connection.dialect.name != "sqlite":
                conversation = conversation.with_for_update()
            if await connection.scalar(conversation) is None:
                return False
            moved_on = exists().where(
                _m.c.conversation_id == question.conversation_id, _m.c.id > question.id
            )
            if await connection.scalar(select(moved_on)):
                return False
            await SqlMessages(connection).add(reply)
        return True
