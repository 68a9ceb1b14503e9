"""CSRF protection for cookie sessions only, with tokens bound to their session.

Litestar's CSRFMiddleware checks every unsafe request, and its token is a double-submit
cookie: any validly signed token works as long as the header repeats the cookie, so
session B's token (set as cookie and header) was accepted with session A's cookie.
Parley keeps Litestar's middleware for what it does well (safe methods pass, its
``PermissionDeniedException``, its cookie attributes) and changes what it falls short on:
- Only requests that carry a live session (a cookie naming a stored session) and no
  Authorization header are checked. Token and JWT clients carry no ambient credential a
  third-party page could borrow; neither does a stale, logged-out or made-up cookie, so
  such a cookie cannot stand between a browser and the next login.
- The token is derived from the session id (an HMAC under the app secret), so it is
  valid for its own session only and changes with every login. The ``csrftoken`` cookie
  is only there for the page's script to read; a safe request whose cookie is missing or
  wrong gets it set again to the session's token."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import Message, Receive, Scope, Send

from entrypoints.http.sessions import SESSION_COOKIE, live_session_id

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "SESSION_COOKIE", "SessionCSRFMiddleware", "csrf_token"]

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"


def csrf_token(session_id: str, secret: str) -> str:
    """The CSRF token of one session."""
    return hmac.new(
        secret.encode(), b"parley-csrf\x00" + session_id.encode(), hashlib.sha256
    ).hexdigest()


class SessionCSRFMiddleware(CSRFMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        connection = ASGIConnection[Any, Any, Any, Any](scope, receive=receive, send=send)
        session_id = live_session_id(connection)
        if session_id is None or "authorization" in connection.headers:
            await self.app(scope, receive, send)
            return
        expected = csrf_token(session_id, self.config.secret)
        if scope["method"] in self.config.safe_methods:
            if connection.cookies.get(self.config.cookie_name) == expected:
                await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, self._setting_cookie(send, expected))
            return
        presented = connection.headers.get(self.config.header_name, "")
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise PermissionDeniedException("CSRF token verification failed")
        await self.app(scope, receive, send)

    def _setting_cookie(self, send: Send, token: str) -> Send:
        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                self._set_cookie_if_needed(message=message, token=token)
            await send(message)

        return send_with_cookie
