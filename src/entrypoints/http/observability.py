"""Request ids, the access log and ``GET /metrics``.

Every request gets an id: the caller's ``X-Request-ID`` when it is a sane token, else a
new one. It is sent back in ``X-Request-ID``, named in 5xx error bodies, and carried by
every log line written while the request is served (the provider calls' included), so a
user's error report finds its lines."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.telemetry.request_context import begin_request, end_request
from application.errors import RateLimited
from domain.budgets import BudgetExceeded, ModelNotAllowed, Period
from domain.errors import ActiveConversationLimit, DomainError
from entrypoints.http.auth import UNLIMITED
from entrypoints.http.dialects import V1

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.middleware import DefineMiddleware

access_log = logging.getLogger("parley.access")

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# The fields of an access line, beside the request id, in a JSON log's keys.
ACCESS_FIELDS = (
    "method",
    "route",
    "status",
    "latency_ms",
    "user_id",
    "model",
    "provider",
    "prompt_tokens",
    "completion_tokens",
)


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestContext:
    """Outside everything Litestar does for a request (routing, 404s, error handlers):
    Litestar's own middleware runs only for requests that matched a route, and every
    request needs an id and, when asked for, a log line."""

    def __init__(self, app: ASGIApp, *, log_every_request: bool) -> None:
        self._app = app
        self._log_every_request = log_every_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        facts, token = begin_request(request_id_from(scope["headers"]))
        header = (b"x-request-id", facts.request_id.encode())
        status = 500  # if the app fails before answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            if self._log_every_request or status >= 500:
                route = scope.get("path_template") if "route_handler" in scope else None
                fields: dict[str, Any] = {
                    "method": method,
                    "route": route or scope["path"],
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": facts.user_id,
                    "model": facts.model,
                    "provider": facts.provider,
                    "prompt_tokens": facts.prompt_tokens,
                    "completion_tokens": facts.completion_tokens,
                }
                access_log.log(
                    logging.ERROR if status >= 500 else logging.INFO,
                    "%s %s %s %.1fms",
                    fields["method"],
                    fields["route"],
                    status,
                    fields["latency_ms"],
                    extra=fields,
                )
            end_request(token)


def wrap_with_request_context(app: Litestar, *, log_every_request: bool) -> None:
    # Where Litestar itself puts what must see every request (its CORS and OpenTelemetry
    # middleware wrap ``asgi_handler`` too).
    app.asgi_handler = RequestContext(app.asgi_handler, log_every_request=log_every_request)


# ---- metrics ------------------------------------------------------------------------------


def refused_limit(error: DomainError) -> str | None:
    """Which limit an error is a refusal by, as ``parley_limit_refusals_total`` names it."""
    if isinstance(error, RateLimited):
        return f"rate_{error.limit}"
    if isinstance(error, BudgetExceeded):
        return "budget_daily" if error.period is Period.DAY else "budget_monthly"
    if isinstance(error, ModelNotAllowed):
        return "model_not_allowed"
    if isinstance(error, ActiveConversationLimit):
        return "active_conversations"
    return None


def may_scrape(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """With a metrics token, a scraper presents it as a Bearer token; without one, only
    a client on this host may scrape (the operator publishes nothing by accident)."""
    token: str = connection.app.state.metrics_token
    if token:
        presented = connection.headers.get("authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            raise NotAuthorizedException("Send the metrics token as a Bearer token.")
        return
    host = connection.client.host if connection.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionDeniedException(
            "Metrics are served to this host only; set PARLEY_METRICS_TOKEN to scrape from "
            "elsewhere."
        )


def metrics_routes() -> tuple[type[Any], DefineMiddleware]:
    """The ``/metrics`` controller and the HTTP metrics middleware: Litestar's Prometheus
    plugin, imported only when metrics are on. Its controller already reads
    prometheus-client's multiprocess directory when several workers share one."""
    from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

    class MetricsController(PrometheusController):
        path = "/metrics"
        guards = [may_scrape]
        include_in_schema = False
        opt = {"dialect": V1, UNLIMITED: True}

    config = PrometheusConfig(
        app_name="parley",
        prefix="parley",
        # By route template: a path per conversation id would grow without bound.
        group_path=True,
        exclude=["^/metrics$", "^/static/"],
        buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    )
    return MetricsController, config.middleware
