"""Who is calling: ``Authorization: Bearer <JWT>`` or ``Authorization: Token <api token>``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from adapters.telemetry.request_context import current_request
from application.authentication import Authenticate
from application.ports import AccessClaims
from application.throttling import Throttle
from domain.errors import AuthenticationFailed, NotAuthenticated
from domain.users import User
from entrypoints.http.sessions import live_session_id


def credentials_of(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    return scheme.lower(), credentials.strip()


async def authenticated_user(
    request: Request[Any, Any, Any],
    authenticate: NamedDependency[Authenticate],
    throttle: NamedDependency[Throttle],
) -> User:
    try:
        user = await _identify(request, authenticate)
    except AuthenticationFailed:
        # Guessing tokens costs the address its anonymous allowance.
        await throttle.address(client_address(request))
        raise
    _identified(user)
    await throttle.user(user.id)
    return user


def _identified(user: User | AccessClaims) -> None:
    facts = current_request()
    if facts is not None:  # for the request's log line
        facts.user_id = user.id if isinstance(user, User) else user.user_id


@dataclass(frozen=True)
class Caller:
    """Who asks for a chat turn. ``unconfirmed``: the claims of a signed access token
    whose user row the turn reads in its own first transaction (``SendMessageRequest.
    unconfirmed_caller``) instead of one of its own here; None: the user was read."""

    id: int
    unconfirmed: AccessClaims | None = None


async def turn_caller(
    request: Request[Any, Any, Any],
    authenticate: NamedDependency[Authenticate],
    throttle: NamedDependency[Throttle],
) -> Caller:
    """``user`` for the endpoints that send a message: the same credentials, the same
    401s, the same per-user limit. A bearer access token is only verified here; the
    turn confirms its user. With an ``Idempotency-Key`` the user is read here, since a
    retry may be answered from the first request's record without any turn."""
    presented = credentials_of(request)
    if (
        presented is None
        or presented[0] != "bearer"
        or not presented[1]
        or "idempotency-key" in request.headers
    ):
        return Caller((await authenticated_user(request, authenticate, throttle)).id)
    try:
        claims = authenticate.access_claims(presented[1])
    except AuthenticationFailed:
        await throttle.address(client_address(request))
        raise
    _identified(claims)
    await throttle.user(claims.user_id)
    return Caller(claims.user_id, unconfirmed=claims)


async def bearer_user(
    request: Request[Any, Any, Any],
    authenticate: NamedDependency[Authenticate],
    throttle: NamedDependency[Throttle],
) -> User:
    """The caller of OpenAI's API shape: ``Authorization: Bearer <key>``, where the key
    (the SDKs' ``api_key``) is a Parley API token or a JWT access token (it has dots;
    an API token is hex). Browser sessions are not taken here: OpenAI clients send none,
    and a cookie-authenticated cross-site call is what CSRF protection exists for."""
    try:
        user = await _bearer_identity(request, authenticate)
    except AuthenticationFailed:
        await throttle.address(client_address(request))
        raise
    _identified(user)
    await throttle.user(user.id)
    return user


async def _bearer_identity(request: Request[Any, Any, Any], authenticate: Authenticate) -> User:
    presented = credentials_of(request)
    if presented is None:
        raise NotAuthenticated(
            "You didn't provide an API key: send it as `Authorization: Bearer <key>` "
            "(a Parley API token from POST /api/auth/token/)."
        )
    scheme, key = presented
    if scheme != "bearer" or not key:
        raise AuthenticationFailed("Send the API key as `Authorization: Bearer <key>`.")
    if "." in key:
        return await authenticate.with_access_token(key)
    return await authenticate.with_api_token(key)


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


# Route ``opt`` flag for endpoints that must answer whatever the limits (health probes).
UNLIMITED = "unlimited"


async def limit_anonymous_requests(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: requests without credentials count per client address;
    authenticated ones are counted per user once the user is known."""
    # A cookie that names no stored session is no credential: it must not buy a request
    # out of the per-address limit.
    if "authorization" in request.headers or live_session_id(request) is not None:
        return
    if request.route_handler.opt.get(UNLIMITED):
        return
    throttle: Throttle = request.app.state.throttle
    await throttle.address(client_address(request))


async def _identify(request: Request[Any, Any, Any], authenticate: Authenticate) -> User:
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
    request: Request[Any, Any, Any],
    authenticate: NamedDependency[Authenticate],
    throttle: NamedDependency[Throttle],
) -> User | None:
    """The caller if credentials were presented, None for an anonymous request; bad
    credentials are still 401."""
    if credentials_of(request) is None and not (
        "session" in request.scope and request.session.get("user_id")
    ):
        return None
    return await authenticated_user(request, authenticate, throttle)
