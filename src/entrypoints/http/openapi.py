"""The OpenAPI document tells the truth about errors and authentication.

Litestar documents a handler's success response and its own 400 body. Parley's errors
have each dialect's shape and come from a few known places (authentication, rate limits,
ids, bodies, the model), so this derives, once, for every operation: the statuses it can
answer, their bodies, and whether it needs credentials - from the dependencies the
handler declares, which is also what makes it answer those statuses."""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType

from entrypoints.http.dialects import DRF_STYLE, OPENAI
from entrypoints.http.schema_docs import NO_NUL

SECURITY: list[dict[str, list[str]]] = [{"BearerJWT": []}, {"ApiToken": []}, {"Session": []}]
OPENAI_SECURITY: list[dict[str, list[str]]] = [{"OpenAIKey": []}]


DESCRIPTIONS = {
    400: "Invalid input: every failing field is reported.",
    401: "Missing or invalid credentials.",
    403: "Not allowed (staff only, a session request without its CSRF token, or a model "
    "the user may not use: code model_not_allowed).",
    404: "Not found (another user's objects are not found either).",
    409: "Conflict with the current state (closed conversation, active limit, a duplicate "
    "request still running).",
    413: "The request body is larger than the configured limit.",
    415: "The body is not sent as application/json.",
    422: "The Idempotency-Key was used for a different request, or the provider's safety "
    "system blocked the answer (code content_filtered; the exchange is stored as blocked).",
    429: "Rate limited (see Retry-After and the RateLimit-* headers), or the user's "
    "budget does not cover the call (code budget_exceeded; Retry-After: seconds until "
    "the period resets, resets_at in the body).",
    502: "The model provider (or WeChat) failed, with the provider's own message; the "
    "user's message is kept (codes provider_error, provider_auth, provider_quota, "
    "empty_reply).",
    503: "A dependency (model providers, database, Redis) is unavailable; retry later.",
    504: "The model provider did not answer in time; the user's message is kept.",
}

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_MODEL_CALLS = {"send_message", "stream_message", "complete_chat", "stream_chat"}
_CONFLICTS = {
    "start_conversation",
    "reopen_conversation",
    "unarchive_conversation",
    "update_conversation",
    "reopen_any_conversation",
    "complete_wechat_login",
} | _MODEL_CALLS
_CREDENTIALS = {"register", "login", "refresh_session", "issue_api_token", "verify_password"}
_OAUTH = {"begin_wechat_login", "complete_wechat_login"}


def _statuses(handler: HTTPRouteHandler, path: str) -> set[int]:
    parameters = set(inspect.signature(handler.fn).parameters)
    statuses = {429, 503}
    if parameters & {"user", "caller", "staff", "optional_user"}:
        statuses.add(401)
        if "staff" in parameters or handler.http_methods & _UNSAFE:
            statuses.add(403)
    if "{" in path:
        statuses |= {400, 404}
    if _names_a_conversation(handler):
        statuses.add(404)
    if "data" in parameters:
        statuses |= {400, 413, 415}
    if parameters & {"page", "request"} or parameters - {"self", "data", "request"}:
        statuses.add(400)  # query parameters
    if parameters & _CONFLICTS:
        statuses.add(409)
    if parameters & _MODEL_CALLS:
        statuses |= {403, 422, 502, 504}
    if parameters & _CREDENTIALS:
        statuses.add(401)
    if parameters & _OAUTH:
        statuses |= {400, 502}
    return statuses


# A conversation named in the query or the body must be one of the caller's: 404 if not.
_REFERENCES = {"conversation_id"}


def _names_a_conversation(handler: HTTPRouteHandler) -> bool:
    parameters = handler.parsed_fn_signature.parameters
    if _REFERENCES & set(parameters):
        return True
    body = parameters.get("data")
    if body is None or not isinstance(body.annotation, type):
        return False
    if not issubclass(body.annotation, msgspec.Struct):
        return False
    return bool(_REFERENCES & {f.encode_name for f in msgspec.structs.fields(body.annotation)})


def _needs_credentials(handler: HTTPRouteHandler) -> bool | None:
    parameters = set(inspect.signature(handler.fn).parameters)
    if parameters & {"user", "caller", "staff"}:
        return True
    if "optional_user" in parameters:
        return None
    return False


def allowed_methods(app: Litestar) -> dict[str, str]:
    """``Allow`` header values by path template: every method of every route there.

    Litestar's automatic OPTIONS answer lists the methods of only one of the route
    objects registered for a path when handlers for that path come from several."""
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods:
            methods.setdefault(route.path_format, set()).update(route_methods)
    return {path: ", ".join(sorted(found)) for path, found in methods.items()}


def document(app: Litestar) -> None:
    """Run once on the built app, before the schema is first generated."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            dialect = handler.opt.get("dialect", DRF_STYLE)
            responses: dict[int, ResponseSpec] = {}
            for status in sorted(_statuses(handler, route.path)):
                # ResponseSpec takes unions too (the DRF-style validation body).
                container: Any = (
                    dialect.validation_schema if status == 400 else dialect.error_schema
                )
                responses[status] = ResponseSpec(
                    data_container=container, description=DESCRIPTIONS[status]
                )
            if handler.status_code == 204:
                # No body, whatever the return annotation (`Response[None]` would otherwise
                # be documented as a JSON null).
                responses[204] = ResponseSpec(
                    data_container=None, description="Done; there is no body."
                )
            handler.responses = {**responses, **dict(handler.responses or {})}
            needs = _needs_credentials(handler)
            if needs is None:
                handler.security = [*SECURITY, {}]
            elif needs:
                handler.security = OPENAI_SECURITY if dialect == OPENAI else SECURITY


_MODEL_FIELDS = {"ai_model", "model"}
_MODEL_LIST_FIELDS = {"allowed_models"}


def list_models(app: Litestar, model_ids: list[str]) -> None:
    """Request fields that name a model accept the configured models only: say which.

    Builds the document now (it is otherwise built on first request) so the list is this
    app's catalogue."""
    for name, schema in (app.openapi_schema.components.schemas or {}).items():
        if not name.endswith(("In", "Put", "Patch")):
            continue
        for field, prop in (schema.properties or {}).items():
            if field in _MODEL_FIELDS and isinstance(prop, Schema):
                prop.enum = [*model_ids, None] if prop.one_of else list(model_ids)
            if field in _MODEL_LIST_FIELDS and isinstance(prop, Schema):
                for member in [prop, *(prop.one_of or [])]:
                    if isinstance(member, Schema) and isinstance(member.items, Schema):
                        member.items.enum = list(model_ids)


def refuse_nul_in_message_texts(app: Litestar) -> None:
    """A chat message's text refuses NUL as every other text does; Litestar drops the
    pattern of ``Text`` inside the ``content`` union (text or parts), so it is put back."""
    for schema in (app.openapi_schema.components.schemas or {}).values():
        content = (schema.properties or {}).get("content")
        if not isinstance(content, Schema) or not content.one_of:
            continue
        for member in content.one_of:
            if isinstance(member, Schema) and member.type == OpenAPIType.STRING:
                member.pattern = member.pattern or NO_NUL
