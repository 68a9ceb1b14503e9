"""The two API dialects and how each presents an error. Each router names its dialect
(``opt={"dialect": ...}``); only a request that matched no route is placed by its path.

- the DRF-style dialect (``/api/...``): validation ``{"field": ["msg", ...]}``, other
  errors ``{"detail": "...", "code": "..."}``, 401 with ``WWW-Authenticate: Token``;
- the ``/api/v1/...`` dialect: ``{"error": "...", "code": "..."}`` plus ``"fields":
  {...}`` for validation details, 401 with ``WWW-Authenticate: Bearer``."""

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


@dataclass(frozen=True)
class Dialect:
    name: str
    auth_scheme: str
    error_schema: Any  # the OpenAPI containers of its error bodies
    validation_schema: Any

    def error_body(
        self, message: str, code: str, fields: dict[str, list[str]] | None = None
    ) -> dict[str, Any]:
        if self.name == "v1":
            body: dict[str, Any] = {"error": message, "code": code}
            if fields:
                body["fields"] = fields
            return body
        if fields:
            return dict(fields)
        return {"detail": message, "code": code}


DRF_STYLE = Dialect(
    "drf",
    auth_scheme="Token",
    error_schema=ApiError,
    validation_schema=dict[str, list[str]] | ApiError,
)
V1 = Dialect("v1", auth_scheme="Bearer", error_schema=V1Error, validation_schema=V1Error)


def dialect_of(request: Request[Any, Any, Any]) -> Dialect:
    handler = request.scope.get("route_handler")
    declared = handler.opt.get("dialect") if handler is not None else None
    if isinstance(declared, Dialect):
        return declared
    path = request.url.path
    return V1 if path == "/api/v1" or path.startswith("/api/v1/") else DRF_STYLE
