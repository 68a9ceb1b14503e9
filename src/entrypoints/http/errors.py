"""Errors to HTTP responses, in one place. Handlers contain no try/except; each dialect
presents the body its own way (``dialects.py``)."""

from __future__ import annotations

import logging
import math
from typing import Any

from asyncpg.exceptions import PostgresConnectionError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from adapters.telemetry.request_context import current_request_id
from application.errors import (
    ContentFiltered,
    EmptyReply,
    ModelFailure,
    OAuthNotConfigured,
    OAuthProviderError,
    OAuthStateInvalid,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaExceeded,
    ProviderRefusedRequest,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from application.idempotency import IdempotencyInProgress, IdempotencyKeyReused
from domain.branches import ReplyInProgress
from domain.budgets import BudgetExceeded, utc_text
from domain.errors import (
    ActiveConversationLimit,
    AuthenticationFailed,
    ConversationArchived,
    ConversationClosed,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UsernameTaken,
)
from entrypoints.http.bodies import UnsupportedMediaType
from entrypoints.http.dialects import OPENAI, Dialect, dialect_of
from entrypoints.http.observability import refused_limit

log = logging.getLogger("parley.http")

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    NotFound: 404,
    ConversationClosed: 409,
    ConversationArchived: 409,
    ActiveConversationLimit: 409,
    ReplyInProgress: 409,
    # As DRF answers it, and as both documented dialects list request errors: a 400 with
    # the field's message, not a 409.
    UsernameTaken: 400,
    ModelFailure: 502,
    ProviderError: 502,
    ProviderAuthError: 502,
    ProviderQuotaExceeded: 502,
    EmptyReply: 502,
    # The request was understood and answered, but the provider's safety system withheld
    # the answer: not a gateway failure, and sending it again will not help.
    ContentFiltered: 422,
    ProviderUnavailable: 503,
    ProviderTimeout: 504,
    OAuthStateInvalid: 400,
    RateLimited: 429,
    BudgetExceeded: 429,
    UnsupportedMediaType: 415,
    IdempotencyKeyReused: 422,
    IdempotencyInProgress: 409,
    OAuthProviderError: 502,
    OAuthNotConfigured: 503,
}

CODE_OF_HTTP_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
    503: "service_unavailable",
}


# On the OpenAI-compatible endpoint the caller wrote the messages and options the
# provider refused: that is the caller's 400, as OpenAI's own API would answer it.
OPENAI_STATUS_OF: dict[type[DomainError], int] = {ProviderRefusedRequest: 400}


def status_of(error: DomainError, dialect: Dialect | None = None) -> int:
    if dialect == OPENAI and type(error) in OPENAI_STATUS_OF:
        return OPENAI_STATUS_OF[type(error)]
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


class ErrorBody:
    """Builds an error response in the request's dialect."""

    @staticmethod
    def render(
        request: Request[Any, Any, Any],
        status: int,
        *,
        message: str,
        code: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> Response[Any]:
        dialect = dialect_of(request)
        if status >= 500 and (request_id := current_request_id()) is not None:
            # What the user quotes when reporting it; the server's log line carries it too.
            extra = {**(extra or {}), "request_id": request_id}
        if status == 401:
            scheme = dialect.auth_scheme
            headers = {"WWW-Authenticate": f'{scheme} realm="api"', **(headers or {})}
        body = dialect.error_body(message, code, fields, status=status, extra=extra)
        return Response(body, status_code=status, headers=headers)


def domain_error(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    if request.app.state.metrics and (limit := refused_limit(error)) is not None:
        from adapters.telemetry import metrics  # imported once metrics are on (see there)

        metrics.LIMIT_REFUSALS.labels(limit).inc()
    fields = error.field_errors if isinstance(error, InvalidInput) else None
    headers = _rate_limit_headers(error) if isinstance(error, RateLimited) else None
    if isinstance(error, ModelFailure | IdempotencyInProgress) and error.retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
    extra = None
    if isinstance(error, BudgetExceeded):
        headers = {"Retry-After": str(error.retry_after)}
        extra = {"resets_at": utc_text(error.resets_at), "period": error.period.value}
    return ErrorBody.render(
        request,
        status_of(error, dialect_of(request)),
        message=error.message,
        code=error.code,
        fields=fields,
        headers=headers,
        extra=extra,
    )


def _rate_limit_headers(error: RateLimited) -> dict[str, str]:
    decision = error.decision
    return {
        "Retry-After": str(max(1, math.ceil(decision.retry_after))),
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(max(1, math.ceil(decision.reset_after))),
    }


# What Litestar's ``Request.body()`` raises (as a 500) when the client leaves before the
# body is complete; pinned by tests/integration/test_edge_hardening.py.
CLIENT_DISCONNECTED = "client disconnected prematurely"


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    status = error.status_code
    if isinstance(error, ValidationException):
        fields = _validation_fields(error.extra)
        return ErrorBody.render(
            request, 400, message="Invalid input.", code="invalid", fields=fields or None
        )
    if status >= 500 and error.detail == CLIENT_DISCONNECTED:
        # Nobody is left to answer: not a server error, and the traceback says nothing.
        log.info("client disconnected mid-body on %s %s", request.method, request.url.path)
        return ErrorBody.render(
            request, 400, message="The client disconnected.", code="client_disconnected"
        )
    if status >= 500:
        log.error(
            "HTTP %s on %s %s: %s",
            status,
            request.method,
            request.url.path,
            error.detail,
            exc_info=error.__cause__ or error,
        )
    return ErrorBody.render(
        request,
        status,
        message=str(error.detail),
        code=CODE_OF_HTTP_STATUS.get(status, "error"),
        headers=dict(error.headers or {}),
    )


def database_error(request: Request[Any, Any, Any], error: DBAPIError) -> Response[Any]:
    """A database that cannot be reached (restart, failover, network) costs the requests
    in flight a 503 with a clear code; the pool replaces dead connections for the next."""
    if _database_unreachable(error):
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(error.orig).__name__ if error.orig is not None else error,
        )
        return ErrorBody.render(
            request,
            503,
            message="The database is not answering; try again shortly.",
            code="database_unavailable",
            headers={"Retry-After": "2"},
        )
    return unexpected_error(request, error)


def connection_lost(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Connecting failed outright (refused, reset, timed out, server starting up): the
    drivers raise these unwrapped."""
    redis_down = isinstance(error, RedisConnectionError | RedisTimeoutError)
    log.warning(
        "%s unavailable on %s %s: %s",
        "redis" if redis_down else "database",
        request.method,
        request.url.path,
        type(error).__name__,
    )
    return ErrorBody.render(
        request,
        503,
        message="A service Parley depends on is not answering; try again shortly.",
        code="redis_unavailable" if redis_down else "database_unavailable",
        headers={"Retry-After": "2"},
    )


def pool_exhausted(request: Request[Any, Any, Any], error: SQLAlchemyTimeoutError) -> Response[Any]:
    if request.app.state.metrics:
        from adapters.telemetry import metrics

        metrics.DB_POOL_TIMEOUTS.inc()
    log.warning("database pool exhausted on %s %s", request.method, request.url.path)
    return ErrorBody.render(
        request,
        503,
        message="The server is busy; try again shortly.",
        code="database_unavailable",
        headers={"Retry-After": "1"},
    )


def _database_unreachable(error: DBAPIError) -> bool:
    if error.connection_invalidated or isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error.orig, OSError | ConnectionError)


def unexpected_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return ErrorBody.render(
        request, 500, message="Internal server error.", code=CODE_OF_HTTP_STATUS[500]
    )


def _validation_fields(extra: Any) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                key = str(item.get("key") or "non_field_errors")
                fields.setdefault(key, []).append(str(item.get("message", "Invalid value.")))
    elif isinstance(extra, dict):
        for key, messages in extra.items():
            fields[str(key)] = (
                [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
            )
    return fields


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DBAPIError: database_error,
    SQLAlchemyTimeoutError: pool_exhausted,
    ConnectionError: connection_lost,
    TimeoutError: connection_lost,
    PostgresConnectionError: connection_lost,
    RedisConnectionError: connection_lost,
    RedisTimeoutError: connection_lost,
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
