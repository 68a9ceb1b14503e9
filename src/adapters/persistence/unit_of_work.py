"""The SQL unit of work: one connection and transaction per ``async with``."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.persistence.events import DATABASE_EVENTS
from adapters.persistence.repositories import (
    SqlApiTokens,
    SqlChatSettings,
    SqlConversations,
    SqlExternalIdentities,
    SqlMessages,
    SqlModelCalls,
    SqlRefreshTokens,
    SqlUsers,
)
from adapters.persistence.spending import SqlSpending


class SqlUnitOfWork:
    users: SqlUsers
    conversations: SqlConversations
    messages: SqlMessages
    chat_settings: SqlChatSettings
    refresh_tokens: SqlRefreshTokens
    api_tokens: SqlApiTokens
    identities: SqlExternalIdentities
    model_calls: SqlModelCalls
    spending: SqlSpending

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already in a transaction")
        waiting = DATABASE_EVENTS.waiting
        if waiting is None:
            connection = await self._engine.connect()
        else:
            waiting(1)
            try:
                connection = await self._engine.connect()
            finally:
                waiting(-1)
        self._connection = connection
        self.users = SqlUsers(connection)
        self.conversations = SqlConversations(connection)
        self.messages = SqlMessages(connection)
        self.chat_settings = SqlChatSettings(connection)
        self.refresh_tokens = SqlRefreshTokens(connection)
        self.api_tokens = SqlApiTokens(connection)
        self.identities = SqlExternalIdentities(connection)
        self.model_calls = SqlModelCalls(connection)
        self.spending = SqlSpending(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()

    async def commit(self) -> None:
        if self._connection is None:
            raise RuntimeError("commit outside a transaction")
        await self._connection.commit()
