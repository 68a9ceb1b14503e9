"""CSRF protection for cookie sessions only.

Litestar's CSRFMiddleware checks every unsafe request. Parley's token and JWT clients
carry no ambient credential a third-party page could borrow, so they must not need a
CSRF token; only requests that carry the session cookie (and no Authorization header)
are checked. The token format and comparison stay Litestar's."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.types import Receive, Scope, Send

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
SESSION_COOKIE = "parley_session"


class SessionCSRFMiddleware(CSRFMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            headers = dict(scope["headers"])
            cookies = headers.get(b"cookie", b"").decode("latin-1")
            if b"authorization" in headers or f"{SESSION_COOKIE}=" not in cookies:
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def new_csrf_token(request: Request[Any, Any, Any]) -> str:
    secret: str = request.app.state.csrf_secret
    return generate_csrf_token(secret)
