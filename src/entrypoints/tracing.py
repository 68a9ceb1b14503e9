"""OpenTelemetry traces (the optional ``otel`` extra), on when ``OTEL_EXPORTER_OTLP_ENDPOINT``
is set: a server span per request, named by its route, with child spans for the database
statements it runs and the provider calls it makes, sent over OTLP/HTTP.

Nothing here imports OpenTelemetry until tracing is asked for, and without it nothing is
instrumented: the default app pays nothing for it. (Litestar itself imports its
OpenTelemetry middleware module at start-up whenever the packages are installed.)

Spans never carry message content or credentials: SQL spans hold the statement and not
its parameters; query-string secrets (WeChat's ``code``, ``secret``, ``access_token``...)
are masked in every attribute; credential headers are masked even when an operator asks
OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* to capture them; image downloads (their URL
is what a user sent) are not traced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from litestar.plugins import InitPlugin

from adapters.llm.transport import through_httpx_only
from entrypoints.log_redaction import redact

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.types import ASGIApp, Receive, Scope, Send
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.util.types import Attributes

    from entrypoints.container import Container

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
INSTALL_HINT = "pip install 'parley[otel]'"
DEFAULT_SERVICE_NAME = "parley"
MASKED = "[REDACTED]"
# As the HTTP instrumentations name captured headers: http.request.header.<name>, with
# the name lower-cased and "-" turned into "_".
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "x_api_key",
        "api_key",
        "x_goog_api_key",
        "x_csrftoken",
    }
)


class TracingUnavailable(RuntimeError):
    pass


def tracing_from_environment(container: Container, environ: Mapping[str, str]) -> Tracing | None:
    """Tracing when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set in ``environ``, else None. The
    exporter reads the other standard variables (OTEL_EXPORTER_OTLP_HEADERS, ..._TIMEOUT,
    ..._TRACES_ENDPOINT) itself, from the process environment; OTEL_SERVICE_NAME defaults
    to "parley"."""
    if not environ.get(ENDPOINT_VARIABLE):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as missing:
        raise TracingUnavailable(
            f"{ENDPOINT_VARIABLE} is set but OpenTelemetry is not installed "
            f"(no module {missing.name!r}): {INSTALL_HINT}, or unset {ENDPOINT_VARIABLE}"
        ) from missing
    return tracing(
        container,
        OTLPSpanExporter(),
        processor=BatchSpanProcessor,
        service_name=environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
    )


def tracing(
    container: Container,
    exporter: SpanExporter,
    *,
    processor: Callable[[SpanExporter], SpanProcessor],
    service_name: str = DEFAULT_SERVICE_NAME,
) -> Tracing:
    """Tracing into ``exporter`` (through ``processor``, e.g. BatchSpanProcessor): the
    database engine and the provider clients are instrumented now, the request spans once
    the returned plugin is given to the app."""
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(processor(cast("SpanExporter", _RedactingExporter(exporter))))
    # Traces only: metrics are GET /metrics' business, so the instrumentations get a meter
    # that records nothing.
    meters = NoOpMeterProvider()
    _trace_database(container, provider, meters)
    _trace_provider_calls(container, provider, meters)
    return Tracing(provider, meters)


class Tracing(InitPlugin):
    """The request spans, and a flush of what is still buffered on shutdown."""

    def __init__(self, provider: TracerProvider, meters: MeterProvider) -> None:
        self.provider = provider
        self._meters = meters

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig

        config = OpenTelemetryConfig(
            tracer_provider=self.provider,
            meter_provider=self._meters,
            scope_span_details_extractor=_unrouted_span_name,
            # One span per ASGI message would mean one per streamed chunk; the request's
            # own span already times the whole exchange.
            exclude_spans=["receive", "send"],
        )
        # Litestar lifts this middleware out to wrap the whole app (before routing and
        # error handling, so that every response is in a span); the span is named by
        # the route once routing has found it.
        app_config.middleware.insert(0, config.middleware)
        app_config.middleware.append(_name_span_by_route)
        app_config.on_shutdown.append(self.shutdown)
        return app_config

    async def shutdown(self) -> None:
        # Exports what is still queued; blocking, and up to the exporter's timeout when
        # the collector is away.
        await asyncio.to_thread(self.provider.shutdown)


def _unrouted_span_name(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The path would make a name per conversation id (and per scanner's guess); until
    # the route is known the span is named by its method, as the conventions say.
    return str(scope.get("method") or scope["type"]), {}


def _name_span_by_route(app: ASGIApp) -> ASGIApp:
    from opentelemetry import trace
    from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        template = scope.get("path_template")
        if template and span.is_recording():
            span.update_name(f"{scope.get('method', scope['type'])} {template}")
            span.set_attribute(HTTP_ROUTE, template)
        await app(scope, receive, send)

    return middleware


def _trace_database(container: Container, provider: TracerProvider, meters: MeterProvider) -> None:
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__

    # EngineTracer is what SQLAlchemyInstrumentor().instrument(engine=...) builds. The
    # instrumentor is a process-wide singleton that ignores every call after the first
    # and patches sqlalchemy.create_engine for the whole process; Parley traces just its
    # own engine, with its own provider (tests run several apps in one process).
    # Statements are recorded, their parameters (message texts, password hashes) never.
    meter = meters.get_meter("opentelemetry.instrumentation.sqlalchemy")
    EngineTracer(  # type: ignore[no-untyped-call]
        provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__),
        container.engine().sync_engine,
        meter.create_up_down_counter("db.client.connections.usage"),
    )


def _trace_provider_calls(
    container: Container, provider: TracerProvider, meters: MeterProvider
) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    llm = container.llm()
    # Not the image downloads: their URLs are what users put in their messages.
    image_client = llm.images._http  # noqa: SLF001 -- src/adapters/llm has no accessor for it
    for client in llm.clients:
        if client is not image_client:
            through_httpx_only(client)
            HTTPXClientInstrumentor.instrument_client(
                client, tracer_provider=provider, meter_provider=meters
            )


class _RedactingExporter:
    """Masks secrets in every span before ``inner`` sees it: whichever instrumentation
    set an attribute, and whenever. Runs in the export thread, off the request path.
    (A SpanExporter by its methods: subclassing the SDK's would load the SDK with this
    module, in every app.)"""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([_redacted(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _redacted(span: ReadableSpan) -> ReadableSpan:
    from opentelemetry.sdk.trace import Event, ReadableSpan

    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_redacted_attributes(span.attributes),
        events=[
            Event(event.name, _redacted_attributes(event.attributes), event.timestamp)
            for event in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _redacted_attributes(attributes: Attributes) -> dict[str, Any]:
    return {key: _redacted_value(key, value) for key, value in (attributes or {}).items()}


def _redacted_value(key: str, value: Any) -> Any:
    header = key.removeprefix("http.request.header.").removeprefix("http.response.header.")
    masked = header != key and header in CREDENTIAL_HEADERS
    if isinstance(value, str):
        return MASKED if masked else redact(value)
    if isinstance(value, tuple | list) and value and isinstance(value[0], str):
        return tuple(MASKED if masked else redact(item) for item in value)
    return value
