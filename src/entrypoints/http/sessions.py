"""Server-side browser sessions that exist only once someone logs in.

Litestar's server-side backend stores an empty session, and sets its cookie, on every
response. For an API mostly used with tokens that is a store write per request and a
cookie nobody asked for (which would also make CSRF checks apply to token clients that
keep cookies). This backend skips both when the session is empty and the request
brought no session cookie; an emptied session is still deleted and its cookie cleared."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Empty, Message, ScopeSession


class LazySessionBackend(ServerSideSessionBackend):
    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        if scope_session is Empty or not scope_session:
            if self.config.key not in connection.cookies:
                return
            scope_session = Empty
        await super().store_in_message(scope_session, message, connection)


class LazySessionConfig(ServerSideSessionConfig):
    _backend_class = LazySessionBackend
