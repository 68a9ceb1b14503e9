"""Server-side browser sessions that exist only once someone logs in.

Litestar's server-side backend falls short in four ways, each fixed here:
- It stores an empty session, and sets its cookie, on every response. For an API mostly
  used with tokens that is a store write per request and a cookie nobody asked for
  (which would also make CSRF checks apply to token clients that keep cookies). This
  backend skips both when the session is empty and the request brought no session
  cookie; an emptied session is still deleted and its cookie cleared.
- It "deletes" a cookie as ``parley_session=null; expires=<now>; Max-Age=<session
  lifetime>``: ``Max-Age`` wins over ``Expires`` (RFC 6265 §5.3), so browsers kept
  ``null`` for 14 days. Here the deleting cookie has ``Max-Age=0``.
- It keeps whatever id the request's cookie carries, so logging in over a planted or
  stale cookie would store the new session under an id someone else chose. ``start_session``
  gives every login a fresh id and drops the previous session.
- It writes the session back on every response. A request that loaded the session
  before a logout and answers after it (the page's own requests are in flight when Sign
  out is clicked) stored it again: the logout was undone and the browser signed back in.
  Here a session is written only when the request changed it, so a session lives
  ``max_age`` from the sign-in (as Django's does by default), and only a login creates
  one."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.scope.state import ScopeState

SESSION_COOKIE = "parley_session"
SESSION_ID_BYTES = 32
# Request state keys: the session a login replaces, deleted from the store on the way out;
# the session as the request loaded it, to write back only what the request changed.
_REPLACED = "parley_replaced_session_id"
_LOADED = "parley_loaded_session"
_STARTED = "parley_started_session"


def start_session(request: Request[Any, Any, Any], data: dict[str, Any]) -> str:
    """Start a session under a new id (never the one the request's cookie chose) and
    return that id."""
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        request.state[_REPLACED] = previous
    session_id = secrets.token_hex(SESSION_ID_BYTES)
    ScopeState.from_scope(request.scope).session_id = session_id
    request.state[_STARTED] = True
    request.set_session(data)
    return session_id


def live_session_id(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The id of the stored session the request's cookie names, None when the cookie is
    missing or names no stored session (expired, logged out, made up)."""
    if not connection.scope.get("session"):
        return None
    return connection.cookies.get(SESSION_COOKIE) or None


class LazySessionBackend(ServerSideSessionBackend):
    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        # The id chosen during the request (by ``start_session``) wins over the cookie's.
        return connection.get_session_id() or super().get_session_id(connection)

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        loaded = await super().load_from_connection(connection)
        connection.state[_LOADED] = dict(loaded)
        return loaded

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        store = self.config.get_store_from_app(connection.scope["app"])
        replaced = connection.state.get(_REPLACED)
        if replaced:
            await self.delete(replaced, store=store)
        if scope_session is not Empty and scope_session:
            started = connection.state.get(_STARTED, False)
            if not started and scope_session == connection.state.get(_LOADED):
                return
            await super().store_in_message(scope_session, message, connection)
            return
        cookie = connection.cookies.get(self.config.key)
        if cookie is None:
            return
        await self.delete(cookie, store=store)
        MutableScopeHeaders.from_message(message).add(
            "Set-Cookie",
            Cookie(
                key=self.config.key,
                value="",
                path=self.config.path,
                domain=self.config.domain,
                secure=self.config.secure,
                httponly=self.config.httponly,
                samesite=self.config.samesite,
                max_age=0,
                expires=0,
            ).to_header(header=""),
        )


class LazySessionConfig(ServerSideSessionConfig):
    _backend_class = LazySessionBackend
