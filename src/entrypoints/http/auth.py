"""Who is calling: ``Authorization: Bearer <JWT>`` or ``Authorization: Token <api token>``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from application.accounts import Authenticate
from domain.errors import AuthenticationFailed, NotAuthenticated
from domain.users import User


def credentials_of(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    return scheme.lower(), credentials.strip()


async def authenticated_user(
    request: Request[Any, Any, Any], authenticate: NamedDependency[Authenticate]
) -> User:
    presented = credentials_of(request)
    if presented is None:
        return await _session_user(request, authenticate)
    scheme, credentials = presented
    if not credentials:
        raise AuthenticationFailed("Invalid authorization header. No credentials provided.")
    if scheme == "bearer":
        return await authenticate.with_access_token(credentials)
    if scheme == "token":
        return await authenticate.with_api_token(credentials)
    raise AuthenticationFailed("Unsupported authorization scheme; use Bearer or Token.")


def presented_api_token(request: Request[Any, Any, Any]) -> str | None:
    presented = credentials_of(request)
    if presented is not None and presented[0] == "token":
        return presented[1]
    return None


async def _session_user(request: Request[Any, Any, Any], authenticate: Authenticate) -> User:
    session = request.session if "session" in request.scope else {}
    user_id, started = session.get("user_id"), session.get("started_at")
    if not isinstance(user_id, int) or not isinstance(started, str):
        raise NotAuthenticated()
    try:
        started_at = datetime.fromisoformat(started)
    except ValueError:
        raise NotAuthenticated() from None
    return await authenticate.with_session(user_id, started_at)


async def optional_user(
    request: Request[Any, Any, Any], authenticate: NamedDependency[Authenticate]
) -> User | None:
    """The caller if credentials were presented, None for an anonymous request; bad
    credentials are still 401."""
    if credentials_of(request) is None and not (
        "session" in request.scope and request.session.get("user_id")
    ):
        return None
    return await authenticated_user(request, authenticate)
