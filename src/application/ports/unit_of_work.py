"""The unit of work (one transaction, the repositories it holds) and the database probe."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from application.ports.accounts import (
    ApiTokens,
    ChatSettingsStore,
    ExternalIdentities,
    RefreshTokens,
    Users,
)
from application.ports.conversations import Conversations, Messages
from application.ports.spending import ModelCalls, Spending


class UnitOfWork(Protocol):
    """One transaction. Rolls back on exit unless ``commit()`` was called.

    Can be entered again after it exits, starting a new transaction."""

    @property
    def users(self) -> Users: ...

    @property
    def conversations(self) -> Conversations: ...

    @property
    def messages(self) -> Messages: ...

    @property
    def chat_settings(self) -> ChatSettingsStore: ...

    @property
    def refresh_tokens(self) -> RefreshTokens: ...

    @property
    def api_tokens(self) -> ApiTokens: ...

    @property
    def identities(self) -> ExternalIdentities: ...

    @property
    def model_calls(self) -> ModelCalls: ...

    @property
    def spending(self) -> Spending: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class DatabaseProbe(Protocol):
    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        ...
