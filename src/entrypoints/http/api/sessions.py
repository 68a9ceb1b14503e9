"""Browser sessions (the DRF-style "Session authentication") and logging out everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, post
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import JSONBody

from application.accounts import Credentials, LogOutEverywhere, VerifyPassword
from application.throttling import Throttle
from domain.users import User
from entrypoints.http.api.schemas import TokenCredentialsIn
from entrypoints.http.auth import client_address
from entrypoints.http.bodies import CheckedBody
from entrypoints.http.csrf import csrf_token
from entrypoints.http.sessions import start_session

SESSION_USER = "user_id"
SESSION_STARTED = "started_at"


def start_browser_session(request: Request[Any, Any, Any], user: User) -> tuple[str, Cookie]:
    """Sign ``user`` in with a new browser session; its CSRF token and the ``csrftoken``
    cookie that hands the token to the page's script. Shared by every way of signing in
    from a browser (the password here, WeChat's QR login in the web app)."""
    session_id = start_session(
        request, {SESSION_USER: user.id, SESSION_STARTED: datetime.now(UTC).isoformat()}
    )
    csrf: CSRFConfig = request.app.state.csrf_config
    token = csrf_token(session_id, csrf.secret)
    cookie = Cookie(
        key=csrf.cookie_name,
        value=token,
        path=csrf.cookie_path,
        domain=csrf.cookie_domain,
        secure=csrf.cookie_secure,
        httponly=csrf.cookie_httponly,
        samesite=csrf.cookie_samesite,
    )
    return token, cookie


class SessionOut(msgspec.Struct):
    username: str
    email: str
    csrf_token: str


class SessionController(Controller):
    path = "/auth"
    tags = ["auth (/api)"]

    @post(
        "/session/",
        operation_id="api_session_login",
        status_code=200,
        dto=CheckedBody[TokenCredentialsIn],
        return_dto=None,
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TokenCredentialsIn],
        verify_password: NamedDependency[VerifyPassword],
        throttle: NamedDependency[Throttle],
    ) -> Response[SessionOut]:
        """Start a browser session: an http-only, SameSite=Lax cookie backed by the
        server-side store. Unsafe requests made with the session must send the CSRF token
        (also set as the `csrftoken` cookie) in an `X-CSRFToken` header."""
        await throttle.credentials(data.username, client_address(request))
        user = await verify_password(Credentials(username=data.username, password=data.password))
        token, csrf_cookie = start_browser_session(request, user)
        return Response(
            SessionOut(username=user.username, email=user.email, csrf_token=token),
            cookies=[csrf_cookie],
        )

    @delete("/session/", operation_id="api_session_logout", status_code=204)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[None]:
        """End this browser session (idempotent); its cookies are deleted."""
        request.clear_session()
        csrf: CSRFConfig = request.app.state.csrf_config
        response = Response(None, status_code=204)
        response.delete_cookie(csrf.cookie_name, path=csrf.cookie_path, domain=csrf.cookie_domain)
        return response

    @post("/logout-everywhere/", operation_id="api_logout_everywhere", status_code=204)
    async def logout_everywhere(
        self,
        request: Request[Any, Any, Any],
        user: NamedDependency[User],
        logout_everywhere: NamedDependency[LogOutEverywhere],
    ) -> None:
        """Sign out on every device: all refresh tokens, API tokens, access tokens and
        browser sessions of your account stop working now."""
        await logout_everywhere(user.id)
        request.clear_session()
