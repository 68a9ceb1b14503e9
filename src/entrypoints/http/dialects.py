"""The two API dialects and how each presents an error. Each router names its dialect
(``opt={"dialect": ...}``); only a request that matched no route is placed by its path.

- the DRF-style dialect (``/api/...``): validation ``{"field": ["msg", ...]}``, other
  errors ``{"detail": "...", "code": "..."}``, 401 with ``WWW-Authenticate: Token``;
- the ``/api/v1/...`` dialect: ``{"error": "...", "code": "..."}`` plus ``"fields":
  {...}`` for validation details, 401 with ``WWW-Authenticate: Bearer``;
- OpenAI's (``/v1/...``): ``{"error": {"message", "type", "param", "code"}}``, the type
  by status as OpenAI's API sets it (the SDKs pick their exception by status), ``param``
  the first failing field, 401 with ``WWW-Authenticate: Bearer``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request


class ApiError(msgspec.Struct):
    """An error on ``/api/...``."""

    detail: str
    code: str


class V1Error(msgspec.Struct):
    """An error on ``/api/v1/...``; ``fields`` lists every failing field (validation)."""

    error: str
    code: str
    fields: dict[str, list[str]] = msgspec.field(default_factory=dict)


class OpenAIErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(msgspec.Struct):
    """An error on ``/v1/...``, in OpenAI's shape."""

    error: OpenAIErrorDetail


_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


def _openai_type(status: int) -> str:
    if status >= 500:
        return "api_error"
    return _OPENAI_TYPES.get(status, "invalid_request_error")


@dataclass(frozen=True)
class Dialect:
    name: str
    auth_scheme: str
    error_schema: Any  # the OpenAPI containers of its error bodies
    validation_schema: Any

    def error_body(
        self,
        message: str,
        code: str,
        fields: dict[str, list[str]] | None = None,
        *,
        status: int = 500,
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``extra``: what an error says beyond its message (a budget's ``resets_at``),
        beside the code."""
        if self.name == "openai":
            if fields:
                message = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in fields.items())
            param = next(iter(fields)) if fields else None
            detail = {"message": message, "type": _openai_type(status), "param": param}
            return {"error": detail | {"code": code} | (extra or {})}
        if self.name == "v1":
            body: dict[str, Any] = {"error": message, "code": code}
            if fields:
                body["fields"] = fields
            return body | (extra or {})
        if fields:
            return dict(fields)
        return {"detail": message, "code": code} | (extra or {})


DRF_STYLE = Dialect(
    "drf",
    auth_scheme="Token",
    error_schema=ApiError,
    validation_schema=dict[str, list[str]] | ApiError,
)
V1 = Dialect("v1", auth_scheme="Bearer", error_schema=V1Error, validation_schema=V1Error)
OPENAI = Dialect(
    "openai", auth_scheme="Bearer", error_schema=OpenAIError, validation_schema=OpenAIError
)


def dialect_of(request: Request[Any, Any, Any]) -> Dialect:
    handler = request.scope.get("route_handler")
    declared = handler.opt.get("dialect") if handler is not None else None
    if isinstance(declared, Dialect):
        return declared
    path = request.url.path
    if path == "/v1" or path.startswith("/v1/"):
        return OPENAI
    return V1 if path == "/api/v1" or path.startswith("/api/v1/") else DRF_STYLE
