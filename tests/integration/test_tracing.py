"""OpenTelemetry traces (README "Traces"): a server span per request, its database
statements and its provider call as child spans of one trace; never a message text, a
key, a token or a query-string secret in any span; nothing at all without
OTEL_EXPORTER_OTLP_ENDPOINT; and ``parley serve`` really sending OTLP/HTTP.

In process, spans go to the SDK's in-memory exporter (``tracing(..., exporter)``); the
``parley serve`` test runs a small OTLP/HTTP receiver of its own."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.server
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from entrypoints.container import Container
from entrypoints.http.app import build_container, create_app
from entrypoints.settings import Settings
from entrypoints.tracing import (
    INSTALL_HINT,
    Tracing,
    TracingUnavailable,
    tracing,
    tracing_from_environment,
)
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import Account, register
from tests.integration.servers import (
    TEST_SECRET_KEY,
    RunningServer,
    free_port,
    migrate,
    running_server,
    serving,
    start_parley_serve,
)

KEY = "sk-tracing-provider-key-5e1d7c"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
MODEL = "gpt-6.1-sol"
SEND_MESSAGE_ROUTE = "POST /api/conversations/{conversation_id}/send_message"
# What tracing loads, and the default app must not. (Not "no opentelemetry module at
# all": redis-py 8 imports opentelemetry.metrics and opentelemetry.sdk.metrics itself
# whenever they are installed, for its own opt-in metrics.)
TRACING_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
    "litestar.plugins.opentelemetry",
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


def _settings(database_url: str, tmp_path: Path, upstream: FakeLLMServer) -> Settings:
    return dataclasses.replace(
        Settings(),
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        secret_key_file=str(tmp_path / "unused-secret-key"),
        log_level="WARNING",
        db_pool_size=2,
        db_max_overflow=6,
        rate_limit="1000000/minute",
        auth_rate_limit="1000000/minute",
        providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
        default_model=MODEL,
    )


@contextlib.contextmanager
def traced_server(
    settings: Settings, traced: Callable[[Container], Tracing]
) -> Iterator[RunningServer]:
    """As ``running_server``, with the app given ``traced(container)``'s tracing."""
    migrate(settings.database_url)
    container = build_container(settings)
    app = create_app(container, traced(container))
    with serving(app) as base_url:
        yield RunningServer(base_url, settings, container)


def _chat_turn(base_url: str, text: str) -> tuple[Account, httpx.Response]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        account = register(http, "traced")
        started = http.post("/api/conversations/", headers=account.bearer)
        assert started.status_code == 201, started.text
        sent = http.post(
            f"/api/conversations/{started.json()['id']}/send_message/",
            json={"message": text},
            headers=account.bearer,
        )
    return account, sent


def _server_span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    """The server span named ``name``, once it has ended (just after its response)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            span
            for span in exporter.get_finished_spans()
            if span.kind is SpanKind.SERVER and span.name == name
        ]
        if found:
            assert len(found) == 1, [span.name for span in found]
            return found[0]
        assert time.monotonic() < deadline, "no server span " + name
        time.sleep(0.02)


def _every_attribute_value(spans: Sequence[ReadableSpan]) -> list[str]:
    values = []
    for span in spans:
        values.append(span.name)
        for attributes in [span.attributes, *(event.attributes for event in span.events)]:
            values.extend(str(value) for value in (attributes or {}).values())
    return values


def test_a_chat_turn_is_one_trace_of_request_database_and_provider_spans(
    database_url: str, tmp_path: Path, upstream: FakeLLMServer
) -> None:
    exporter = InMemorySpanExporter()
    text = f"a private message {uuid.uuid4().hex}"
    settings = _settings(database_url, tmp_path, upstream)
    with traced_server(
        settings, lambda container: tracing(container, exporter, processor=SimpleSpanProcessor)
    ) as parley:
        account, sent = _chat_turn(parley.base_url, text)
        assert sent.status_code == 201, sent.text
        request = _server_span(exporter, SEND_MESSAGE_ROUTE)
        provider_request = upstream.last_request

    trace_id = request.context.trace_id
    in_trace = [span for span in exporter.get_finished_spans() if span.context.trace_id == trace_id]
    assert request.parent is None
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/api/conversations/{conversation_id}/send_message"
    assert request.attributes["http.status_code"] == 201
    children = [span for span in in_trace if span is not request]
    assert children, "the request span has no children"
    assert all(
        span.parent is not None and span.parent.span_id == request.context.span_id
        for span in children
    ), [(span.name, span.parent) for span in children]

    statements = [str((span.attributes or {}).get("db.statement", "")) for span in children]
    assert any(statement.startswith("INSERT INTO messages") for statement in statements)
    provider_calls = [
        span
        for span in children
        if span.kind is SpanKind.CLIENT and "db.statement" not in (span.attributes or {})
    ]
    assert len(provider_calls) == 1, [span.name for span in provider_calls]
    call = provider_calls[0]
    assert call.attributes is not None
    assert call.attributes["http.url"] == f"{upstream.openai_base_url}/chat/completions"
    assert call.attributes["http.status_code"] == 200
    # The trace goes on into the provider: it was told the provider call's span.
    assert provider_request.headers["traceparent"].split("-")[1:3] == [
        f"{trace_id:032x}",
        f"{call.context.span_id:016x}",
    ]

    recorded = " ".join(_every_attribute_value(exporter.get_finished_spans()))
    assert text not in recorded
    assert KEY not in recorded
    assert account.access not in recorded
    assert account.password not in recorded


def test_secrets_in_query_strings_and_credential_headers_are_masked(
    database_url: str,
    tmp_path: Path,
    upstream: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An operator who asks the instrumentations to record every header.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    exporter = InMemorySpanExporter()
    code, access_token = f"code-{uuid.uuid4().hex}", f"token-{uuid.uuid4().hex}"
    settings = _settings(database_url, tmp_path, upstream)
    with traced_server(
        settings, lambda container: tracing(container, exporter, processor=SimpleSpanProcessor)
    ) as parley:
        account, sent = _chat_turn(parley.base_url, "hello")
        assert sent.status_code == 201, sent.text
        _server_span(exporter, SEND_MESSAGE_ROUTE)
        httpx.get(
            f"{parley.base_url}/api/v1/auth/wechat/callback/",
            params={"code": code, "state": "s", "access_token": access_token},
            headers={"Cookie": f"parley_session={account.refresh}"},
        )
        callback = _server_span(exporter, "GET /api/v1/auth/wechat/callback")

    assert callback.attributes is not None
    assert callback.attributes["http.url"] == (
        f"{parley.base_url}/api/v1/auth/wechat/callback/?code=***&state=s&access_token=***"
    ), callback.attributes
    captured = {
        key: value
        for span in exporter.get_finished_spans()
        for key, value in (span.attributes or {}).items()
        if key.startswith("http.request.header.")
    }
    # The headers were captured, as asked; the credentials among them were not.
    assert "http.request.header.user_agent" in captured
    assert captured["http.request.header.authorization"] == ("[REDACTED]",)
    assert captured["http.request.header.cookie"] == ("[REDACTED]",)
    recorded = " ".join(_every_attribute_value(exporter.get_finished_spans()))
    for secret in (code, access_token, KEY, account.access, account.refresh):
        assert secret not in recorded


class _ImageHost(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a 1x1 PNG."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_image_downloads_are_not_traced(
    database_url: str, tmp_path: Path, upstream: FakeLLMServer
) -> None:
    """The image's address is part of what the user sent."""
    images = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageHost)
    threading.Thread(target=images.serve_forever, daemon=True).start()
    image_url = f"http://127.0.0.1:{images.server_address[1]}/holiday-{uuid.uuid4().hex}.png"
    exporter = InMemorySpanExporter()
    settings = dataclasses.replace(
        _settings(database_url, tmp_path, upstream), allow_private_image_urls=True
    )
    try:
        with traced_server(
            settings,
            lambda container: tracing(container, exporter, processor=SimpleSpanProcessor),
        ) as parley:
            with httpx.Client(base_url=parley.base_url, timeout=30) as client:
                sent = client.post(
                    "/api/v1/messages/chat/",
                    json={"message": "look", "image_url": image_url},
                    headers=register(client, "images").bearer,
                )
            assert sent.status_code == 201, sent.text
            _server_span(exporter, "POST /api/v1/messages/chat")
    finally:
        images.shutdown()
        images.server_close()
    sent_to_model = upstream.last_request.json["messages"][-1]["content"]
    assert [part["type"] for part in sent_to_model] == ["text", "image_url"]
    recorded = " ".join(_every_attribute_value(exporter.get_finished_spans()))
    assert f"{upstream.openai_base_url}/chat/completions" in recorded
    assert "holiday-" not in recorded


def test_without_the_endpoint_nothing_is_traced(
    database_url: str, tmp_path: Path, upstream: FakeLLMServer
) -> None:
    settings = _settings(database_url, tmp_path, upstream)
    container = build_container(settings)
    assert tracing_from_environment(container, {"OTEL_SERVICE_NAME": "parley"}) is None
    with running_server(
        database_url,
        tmp_path,
        providers=settings.providers,
        default_model=MODEL,
    ) as parley:
        _, sent = _chat_turn(parley.base_url, "hello")
        assert sent.status_code == 201, sent.text
        provider_request = upstream.last_request
    assert "traceparent" not in provider_request.headers


def test_importing_the_app_loads_no_tracing_module() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, entrypoints.http.app\n"
            f"print(sorted(m for m in sys.modules if m.startswith({TRACING_MODULES!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    assert loaded.stdout.strip() == "[]"


def test_missing_packages_are_a_clear_startup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeLLMServer
) -> None:
    # As if the otel extra were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    container = build_container(_settings("sqlite+aiosqlite://", tmp_path, upstream))
    with pytest.raises(TracingUnavailable) as refused:
        tracing_from_environment(
            container, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
        )
    assert INSTALL_HINT in str(refused.value)
    assert INSTALL_HINT == "pip install 'parley[otel]'"


def test_an_unreachable_collector_does_not_break_requests(
    database_url: str,
    tmp_path: Path,
    upstream: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    settings = _settings(database_url, tmp_path, upstream)
    tracings: list[Tracing] = []

    def from_environment(container: Container) -> Tracing:
        traced = tracing_from_environment(container, os.environ)
        assert traced is not None
        tracings.append(traced)
        return traced

    # On the exporter's logger itself: the app's start re-configures the root logger's
    # handlers, caplog's among them.
    exporter_log = logging.getLogger("opentelemetry.exporter")
    exporter_log.addHandler(caplog.handler)
    with contextlib.ExitStack() as undo, traced_server(settings, from_environment) as parley:
        undo.callback(exporter_log.removeHandler, caplog.handler)
        _, first = _chat_turn(parley.base_url, "hello")
        # Export now, to the collector that is not there; then chat on.
        tracings[0].provider.force_flush()
        _, second = _chat_turn(parley.base_url, "hello again")
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert any(record.name.startswith("opentelemetry.exporter") for record in caplog.records), [
        record.getMessage() for record in caplog.records
    ]


class _Collector(http.server.ThreadingHTTPServer):
    """Receives OTLP/HTTP trace exports as a collector does."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        self.exports: list[tuple[dict[str, str], ExportTraceServiceRequest]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CollectorHandler(http.server.BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            self.server.exports.append(({k.lower(): v for k, v in self.headers.items()}, export))
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_parley_serve_sends_its_traces_to_the_collector_on_shutdown(
    tmp_path: Path, upstream: FakeLLMServer
) -> None:
    collector = _Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "OTEL_"))}
    environment.update(
        PARLEY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
        PARLEY_SECRET_KEY=TEST_SECRET_KEY,
        PARLEY_LOG_LEVEL="WARNING",
        PARLEY_DEFAULT_MODEL=MODEL,
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=upstream.openai_base_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_EXPORTER_OTLP_HEADERS="x-collector-token=collector-secret",
        # Nothing is sent on the batch timer in this test: what arrives was flushed by
        # the shutdown.
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )
    log = tmp_path / "parley.log"
    try:
        process, base_url = start_parley_serve(tmp_path, environment, log)
        try:
            _, sent = _chat_turn(base_url, "hello")
            assert sent.status_code == 201, sent.text
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    finally:
        collector.shutdown()
        collector.server_close()

    assert collector.exports, log.read_text()
    headers = collector.exports[0][0]
    assert headers["x-collector-token"] == "collector-secret"
    assert headers["content-type"] == "application/x-protobuf"
    names: set[str] = set()
    services: set[str] = set()
    for _, export in collector.exports:
        for resource_spans in export.resource_spans:
            services.update(
                attribute.value.string_value
                for attribute in resource_spans.resource.attributes
                if attribute.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert services == {"parley"}
    assert SEND_MESSAGE_ROUTE in names
    assert "POST /api/v1/register" in names
    assert any(name.startswith("INSERT") for name in names), names
    assert "POST" in names  # the provider call
