"""Errors to HTTP responses, in one place. Handlers contain no try/except.

Each dialect has its error shape:
- ``/api/...`` (seed 004, DRF style): validation ``{"field": ["msg", ...]}``, other
  errors ``{"detail": "...", "code": "..."}``.
- ``/api/v1/...`` (seed 000): ``{"error": "...", "code": "..."}`` plus
  ``"fields": {...}`` for validation details.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from application.errors import (
    ModelFailure,
    OAuthNotConfigured,
    OAuthProviderError,
    OAuthStateInvalid,
    ProviderAuthError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from domain.errors import (
    ActiveConversationLimit,
    AuthenticationFailed,
    ConversationClosed,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)

log = logging.getLogger("parley.http")

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    NotFound: 404,
    ConversationClosed: 409,
    ActiveConversationLimit: 409,
    ModelFailure: 502,
    ProviderError: 502,
    ProviderAuthError: 502,
    ProviderUnavailable: 503,
    ProviderTimeout: 504,
    OAuthStateInvalid: 400,
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


def status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def is_v1(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return path == "/api/v1" or path.startswith("/api/v1/")


class ErrorBody:
    """Builds an error body in the request's dialect."""

    @staticmethod
    def render(
        request: Request[Any, Any, Any],
        status: int,
        *,
        message: str,
        code: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response[Any]:
        if status == 401:
            scheme = "Bearer" if is_v1(request) else "Token"
            headers = {"WWW-Authenticate": f'{scheme} realm="api"', **(headers or {})}
        if is_v1(request):
            body: dict[str, Any] = {"error": message, "code": code}
            if fields:
                body["fields"] = fields
        elif fields:
            body = dict(fields)
        else:
            body = {"detail": message, "code": code}
        return Response(body, status_code=status, headers=headers)


def domain_error(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    fields = error.field_errors if isinstance(error, InvalidInput) else None
    return ErrorBody.render(
        request, status_of(error), message=error.message, code=error.code, fields=fields
    )


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    status = error.status_code
    if isinstance(error, ValidationException):
        fields = _validation_fields(error.extra)
        return ErrorBody.render(
            request, 400, message="Invalid input.", code="invalid", fields=fields or None
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
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
