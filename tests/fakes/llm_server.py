"""A fake LLM provider on a real 127.0.0.1 socket, speaking OpenAI's (and compatible servers'),
Gemini's and Anthropic's wire formats, as strictly as the real APIs.

``FakeLLMServer`` is an HTTP/1.1 server written directly on ``asyncio.start_server`` with a
small hand-written parser, running on its own event loop in a daemon thread. Owning the
socket lets it misbehave the way real upstreams do: reset connections, cut streams half
way, answer too late, or answer garbage. The formats live in ``wire_openai``,
``wire_gemini`` and ``wire_anthropic``; every answer is built from the fixtures in
``tests/fixtures/providers`` (see ``tests.fakes.fixtures.load_fixture``).

Endpoints (``POST`` unless noted):

* ``/v1/chat/completions`` -- OpenAI; key in ``Authorization: Bearer <key>``; ``"stream":
  true`` gives SSE chunks ending with ``data: [DONE]``; ``stream_options.include_usage`` adds
  the ``"choices": []`` usage chunk. The same API for other servers ("flavours"), each with
  its own quirks, errors and limits: ``/moonshot/v1/...``, ``/dashscope/v1/...`` (stands for
  ``.../compatible-mode/v1``), ``/deepseek/v1/...``, ``/ollama/v1/...``, ``/vllm/v1/...``
  (``server.flavour_base_url(name)``).
* ``/v1beta/models/{model}:generateContent`` and ``...:streamGenerateContent`` (``?alt=sse``
  for SSE, otherwise a streamed JSON array, as Google does); key in ``x-goog-api-key``
  (or ``?key=``). ``/v1/models/...`` is accepted as well.
* ``/v1/messages`` -- Anthropic Messages; key in ``x-api-key`` (or ``Authorization: Bearer``,
  as the official SDK sends it), ``anthropic-version`` required.
* ``GET /v1/models``, ``GET /{flavour}/v1/models`` and ``GET /v1beta/models`` -- model lists.

Requests are validated as the real APIs do (model ids from ``tests.fakes.provider_models``,
parameter ranges, content parts; on the OpenAI wire also ``top_p``, ``stop``, ``n``, ``tools``,
``tool_choice``, ``response_format`` and the tool-call turns, see ``wire_openai_params``): a
refused request gets the provider's own error and leaves the script untouched. Made-up model
ids must be allowed: ``FakeLLMServer(models=(...))`` or ``server.allow_models(...)``.

By default every chat request is answered with ``"fake reply to: <last user text>"`` and
usage counted in whitespace-separated words; with ``response_format`` json_object/json_schema
that reply is the JSON text ``{"echo": "<last user text>"}``, and when ``tool_choice`` is
``"required"`` or names a function the default is a call to that function (``"required"``: the
first tool) with arguments ``"{}"``. Tests change that per request with
``server.script(error(429, retry_after=1), reply("hi"), tool_call("get_weather", '{}'), ...)``
(a FIFO, one behaviour per chat request) or for all later requests with ``server.default``.

Usage::

    with FakeLLMServer(models=("fake-model",)) as server:
        server.script(error(429, retry_after=2), reset(), cut_stream(after_chunks=3))
        ...  # point the client under test at server.openai_base_url
        assert server.hits == 3
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import socket
import struct
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes import provider_models
from tests.fakes.behaviours import (
    BEHAVIOUR_TYPES,
    Behaviour,
    CutStream,
    Delay,
    Error,
    Malformed,
    NoDone,
    Overloaded,
    PromptBlock,
    QuotaExhausted,
    Refusal,
    Reply,
    Reset,
    SafetyBlock,
    StreamError,
    ToolCall,
    ToolCalls,
    cut_stream,
    delay,
    echo,
    error,
    malformed,
    no_done,
    overloaded,
    prompt_block,
    quota_exhausted,
    refusal,
    reply,
    reset,
    safety_block,
    slow_stream,
    stream_error,
    tool_call,
    tool_calls,
)
from tests.fakes.fixtures import Fixture, load_fixture
from tests.fakes.provider_models import ModelInfo
from tests.fakes.wire_anthropic import AnthropicWire
from tests.fakes.wire_common import (
    GEMINI_PATH,
    OPENAI_FLAVOURS,
    Answer,
    Call,
    FunctionCall,
    HttpError,
    RecordedRequest,
    Rejected,
    Wire,
    dumps,
    pieces,
    words,
)
from tests.fakes.wire_gemini import GeminiWire
from tests.fakes.wire_gemini import error_body as gemini_error_body
from tests.fakes.wire_openai import OpenAIWire, argument_pieces

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "Behaviour",
    "CutStream",
    "Delay",
    "Error",
    "FakeLLMServer",
    "Fixture",
    "Malformed",
    "NoDone",
    "Overloaded",
    "PromptBlock",
    "QuotaExhausted",
    "RecordedRequest",
    "Refusal",
    "Reply",
    "Reset",
    "SafetyBlock",
    "StreamError",
    "ToolCall",
    "ToolCalls",
    "cut_stream",
    "delay",
    "echo",
    "error",
    "load_fixture",
    "malformed",
    "no_done",
    "overloaded",
    "prompt_block",
    "quota_exhausted",
    "refusal",
    "reply",
    "reset",
    "safety_block",
    "slow_stream",
    "stream_error",
    "tool_call",
    "tool_calls",
]

ECHO_PREFIX = "fake reply to: "
_OPENAI = OpenAIWire()
_GEMINI = GeminiWire()
_ANTHROPIC = AnthropicWire()
_WIRES: dict[str, Wire] = {name: _OPENAI for name in OPENAI_FLAVOURS} | {
    "gemini": _GEMINI,
    "anthropic": _ANTHROPIC,
}
_WRONG_SHAPE = b'{"unexpected": "shape", "choices": null, "candidates": null, "content": null}'


class _Dropped(Exception):
    """The connection was closed (deliberately or by the peer); stop serving it."""


# ---- the server ------------------------------------------------------------------------------


class FakeLLMServer:
    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
        models: tuple[str, ...] = ("fake-model",),
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.models = models
        self.connections_accepted = 0
        self.errors: list[Exception] = []  # unexpected exceptions inside the fake (bugs)
        self._lock = threading.Lock()
        self._allowed: set[str] = set(models)
        self._queue: deque[Behaviour] = deque()
        self._default: Behaviour = Reply()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- lifecycle --

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def gemini_base_url(self) -> str:
        """Stands for ``https://generativelanguage.googleapis.com``: clients append the API
        version, as in ``{gemini_base_url}/v1beta/models/{model}:generateContent``."""
        return self.base_url

    @property
    def anthropic_base_url(self) -> str:
        """Stands for ``https://api.anthropic.com``: clients append ``/v1/messages``."""
        return self.base_url

    def flavour_base_url(self, name: str) -> str:
        """The OpenAI-compatible base URL of a flavour, e.g. ``http://127.0.0.1:PORT/moonshot/v1``
        (``"openai"`` is ``openai_base_url``)."""
        if name not in OPENAI_FLAVOURS:
            raise ValueError(
                f"not an OpenAI-compatible flavour: {name!r} (one of {OPENAI_FLAVOURS})"
            )
        return self.openai_base_url if name == "openai" else f"{self.base_url}/{name}/v1"

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("FakeLLMServer is already running")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="fake-llm-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FakeLLMServer did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("FakeLLMServer failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting and inspection (test thread) --

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, consumed one per chat request, in order."""
        for behaviour in behaviours:
            if not isinstance(behaviour, BEHAVIOUR_TYPES):
                raise TypeError(f"not a behaviour: {behaviour!r}")
        with self._lock:
            self._queue.extend(behaviours)

    @property
    def default(self) -> Behaviour:
        with self._lock:
            return self._default

    @default.setter
    def default(self, behaviour: Behaviour | None) -> None:
        with self._lock:
            self._default = Reply() if behaviour is None else behaviour

    @property
    def pending(self) -> int:
        """Scripted behaviours not consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request received yet")
            return self._requests[-1]

    def reset_state(self) -> None:
        """Forget recorded requests, the script, any changed default and recorded errors."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self.errors.clear()
            self._default = Reply()

    def allow_models(self, *ids: str) -> None:
        """Accept these (made-up) model ids on every flavour, as if the provider served them.
        Kept across ``reset_state``."""
        with self._lock:
            self._allowed.update(ids)

    def _lookup(self, flavour: str, model: str) -> ModelInfo | None:
        with self._lock:
            allowed = frozenset(self._allowed)
        return provider_models.lookup(flavour, model, allowed)

    def _listed_models(self, flavour: str) -> list[str]:
        with self._lock:
            allowed = sorted(self._allowed)
        return list(provider_models.CURRENT.get(flavour, {})) + [
            m for m in allowed if m not in provider_models.CURRENT.get(flavour, {})
        ]

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    # -- server thread --

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start()
            self._startup_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._serve_connection, self.host, self.port, backlog=512, limit=1 << 20
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await server.wait_closed()
            connections = list(self._connections)
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections_accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        graceful = True
        try:
            while await self._serve_one(reader, writer):
                pass
        except (_Dropped, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels these tasks. Ending quietly matters: on 3.11 asyncio's
            # stream callback calls task.exception() and logs a cancelled task as an error.
            graceful = False
        except Exception as exc:  # a bug in the fake itself: keep it for the test to see
            with self._lock:
                self.errors.append(exc)
            graceful = False
        finally:
            self._connections.discard(task)
            if not writer.is_closing():
                if graceful:
                    writer.close()  # flushes what is buffered, then FIN
                else:
                    writer.transport.abort()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read and answer one request; False when the connection must end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # peer closed between requests
        except asyncio.LimitOverrunError:
            _write(writer, 431, b"", b"text/plain", keep_alive=False)
            await writer.drain()
            return False
        lines = head[:-4].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            _write(writer, 400, b"", b"text/plain", keep_alive=False)
            await writer.drain()
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value

        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection

        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        else:
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""

        split = urlsplit(target)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(method, path, query, headers, parsed, body)
        with self._lock:
            self._requests.append(request)

        exchange = _Exchange(reader, writer, keep_alive)
        try:
            await self._route(exchange, request, method, path)
        except Rejected as rejected:
            exchange.respond(
                rejected.error.status, rejected.error.body, extra_headers=rejected.error.headers
            )
        await writer.drain()
        return exchange.keep_alive

    async def _route(
        self, exchange: _Exchange, request: RecordedRequest, method: str, path: str
    ) -> None:
        flavour = request.provider
        if method == "POST" and (match := GEMINI_PATH.match(path)):
            extra = {"model": match[2], "method": match[3], "version": match[1]}
            return await self._chat(exchange, request, "gemini", extra)
        if method == "POST" and path == "/v1/messages":
            return await self._chat(exchange, request, "anthropic", {})
        if flavour in OPENAI_FLAVOURS:
            prefix = "/v1" if flavour == "openai" else f"/{flavour}/v1"
            if method == "POST" and path == f"{prefix}/chat/completions":
                return await self._chat(exchange, request, flavour, {})
            if method == "GET" and path == f"{prefix}/models":
                _OPENAI.authorise(flavour, request, self.api_key)
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                    for m in self._listed_models(flavour)
                ]
                return exchange.respond(200, dumps({"object": "list", "data": data}))
            message = f"Invalid URL ({method} {path})"
            return exchange.respond(
                404, dumps({"error": {"message": message, "type": "invalid_request_error",
                                      "param": None, "code": "not_found"}}),
            )  # fmt: skip
        if flavour == "anthropic" and method == "GET" and path == "/v1/models":
            _ANTHROPIC.authorise("anthropic", request, self.api_key)
            listed = self._listed_models("anthropic")
            data = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in listed
            ]
            page = {"data": data, "has_more": False, "first_id": listed[0], "last_id": listed[-1]}
            return exchange.respond(200, dumps(page))
        if flavour == "gemini" and method == "GET" and path == "/v1beta/models":
            _GEMINI.authorise("gemini", request, self.api_key)
            data = [
                {"name": f"models/{m}", "displayName": m} for m in self._listed_models("gemini")
            ]
            return exchange.respond(200, dumps({"models": data}))
        if flavour == "gemini":
            message = f"{method} {path} is not a known endpoint"
            return exchange.respond(404, gemini_error_body(404, message))
        message = f"Invalid URL ({method} {path})"
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": "not_found"}}  # fmt: skip
        exchange.respond(404, dumps(body))

    async def _chat(
        self, exchange: _Exchange, request: RecordedRequest, flavour: str, extra: dict[str, str]
    ) -> None:
        wire = _WIRES[flavour]
        wire.authorise(flavour, request, self.api_key)
        call = wire.parse(flavour, request, self._lookup, next(self._ids), **extra)
        await self._perform(exchange, wire, call, self._next_behaviour())

    # -- behaviours --

    async def _perform(
        self, exchange: _Exchange, wire: Wire, call: Call, behaviour: Behaviour
    ) -> None:
        while isinstance(behaviour, Delay):
            await asyncio.sleep(behaviour.seconds)
            if exchange.reader.at_eof() or exchange.writer.is_closing():
                raise _Dropped  # the client gave up while we slept
            behaviour = behaviour.then if behaviour.then is not None else Reply()

        if isinstance(behaviour, ToolCall | ToolCalls) and call.flavour not in OPENAI_FLAVOURS:
            raise TypeError(  # a bug in the test: kept in server.errors
                f"tool_call() is scripted for a {call.flavour} request: the fake renders tool "
                "calls on the OpenAI-compatible wire only"
            )
        if isinstance(behaviour, Reset) or (isinstance(behaviour, CutStream) and not call.stream):
            exchange.reset()
        elif isinstance(behaviour, Error):
            self._send_error(
                exchange,
                wire.http_error(
                    call.flavour,
                    behaviour.status,
                    behaviour.message,
                    behaviour.code,
                    model=call.model,
                    retry_after=behaviour.retry_after,
                    retry_after_ms=behaviour.retry_after_ms,
                    retry_delay=behaviour.retry_delay,
                ),
            )
        elif isinstance(behaviour, QuotaExhausted):
            self._send_error(exchange, wire.quota_exhausted(call))
        elif isinstance(behaviour, Overloaded):
            self._send_error(exchange, wire.overloaded(call))
        elif isinstance(behaviour, Malformed):
            await self._malformed(exchange, wire, call, behaviour)
        elif isinstance(behaviour, CutStream):
            plan = wire.stream(call, self._answer(call, Reply()))
            await exchange.stream(
                plan.events[: max(0, min(behaviour.after_chunks, plan.body_events))],
                _stream_type(call),
                cut=True,
                abort=behaviour.abort,
            )
        elif isinstance(behaviour, StreamError):
            if not call.stream:
                self._send_error(
                    exchange, wire.stream_error_http(call, behaviour.message, behaviour.kind)
                )
                return
            plan = wire.stream(call, self._answer(call, Reply()))
            sent = plan.events[
                : min(plan.prefix + max(0, behaviour.after_chunks), plan.body_events)
            ]
            event = wire.stream_error_event(call, behaviour.message, behaviour.kind)
            await exchange.stream([*sent, event], _stream_type(call), close=True)
        else:
            await self._reply(exchange, wire, call, behaviour)

    @staticmethod
    async def _malformed(exchange: _Exchange, wire: Wire, call: Call, behaviour: Malformed) -> None:
        if behaviour.body is not None:
            payload = behaviour.body
        elif behaviour.kind == "shape":
            payload = _WRONG_SHAPE
        else:
            payload = wire.not_json
        body, events = wire.malformed(call, payload)
        if call.stream:
            await exchange.stream(events, _stream_type(call))
        else:
            exchange.respond(200, body)

    async def _reply(
        self,
        exchange: _Exchange,
        wire: Wire,
        call: Call,
        behaviour: Reply | Refusal | SafetyBlock | PromptBlock | NoDone | ToolCall | ToolCalls,
    ) -> None:
        answer = self._answer(call, behaviour)
        chunk_delay = behaviour.chunk_delay if isinstance(behaviour, Reply) else 0.0
        if call.stream:
            plan = wire.stream(call, answer)
            events = plan.events
            if isinstance(behaviour, NoDone) and plan.terminator:
                events = events[: -plan.terminator]
            await exchange.stream(events, _stream_type(call), chunk_delay)
        else:
            if chunk_delay:
                await asyncio.sleep(chunk_delay * (len(pieces(answer.text)) + 1))
            exchange.respond(200, wire.completion(call, answer))

    @staticmethod
    def _send_error(exchange: _Exchange, failure: HttpError) -> None:
        exchange.respond(failure.status, failure.body, extra_headers=failure.headers)

    @staticmethod
    def _answer(
        call: Call,
        behaviour: Reply | Refusal | SafetyBlock | PromptBlock | NoDone | ToolCall | ToolCalls,
    ) -> Answer:
        prompt = call.prompt_words
        if isinstance(behaviour, Reply) and behaviour.text is None and call.forced_tool:
            # tool_choice "required" or a named function: the model must call it
            behaviour = ToolCall(call.forced_tool)
        if isinstance(behaviour, ToolCall | ToolCalls):
            return _tool_answer(call, behaviour)
        if isinstance(behaviour, Refusal):
            return Answer("refusal", behaviour.text, prompt, words(behaviour.text), "stop")
        if isinstance(behaviour, SafetyBlock):
            return Answer("safety", "", prompt, 0, "content_filter")
        if isinstance(behaviour, PromptBlock):
            return Answer(
                "prompt_block", "", prompt, 0, "content_filter", block_reason=behaviour.reason
            )
        if isinstance(behaviour, NoDone):
            text = _echo(call) if behaviour.text is None else behaviour.text
            return Answer("text", text, prompt, words(text), "stop")
        text = _echo(call) if behaviour.text is None else behaviour.text
        if behaviour.prompt_tokens is not None:
            prompt = behaviour.prompt_tokens
        completion = (
            behaviour.completion_tokens if behaviour.completion_tokens is not None else words(text)
        )
        reasoning = behaviour.reasoning
        reasoning_tokens = 0
        if reasoning is not None:
            reasoning_tokens = (
                behaviour.reasoning_tokens
                if behaviour.reasoning_tokens is not None
                else words(reasoning)
            )
        return Answer(
            "text", text, prompt, completion, behaviour.finish_reason, reasoning, reasoning_tokens
        )


def _echo(call: Call) -> str:
    """The default reply: ``fake reply to: <last user text>``; with ``response_format``
    json_object / json_schema, JSON text ``{"echo": "<last user text>"}`` clients can parse."""
    if call.json_mode:
        return json.dumps({"echo": call.last_user_text}, ensure_ascii=False)
    return ECHO_PREFIX + call.last_user_text


def _tool_answer(call: Call, behaviour: ToolCall | ToolCalls) -> Answer:
    scripted = behaviour.calls if isinstance(behaviour, ToolCalls) else (behaviour,)
    rendered = []
    for index, scripted_call in enumerate(scripted):
        name = scripted_call.name or call.forced_tool or (call.tools[0] if call.tools else None)
        if name is None:
            raise ValueError(  # a bug in the test: kept in server.errors
                "tool_call() without a name answers a request that has no tools"
            )
        call_id = scripted_call.call_id or f"call_{call.response_id.rpartition('-')[2]}_{index}"
        rendered.append(FunctionCall(call_id, name, scripted_call.arguments))
    completion = sum(words(c.name) + len(argument_pieces(c.arguments)) for c in rendered)
    return Answer(
        "tool_calls",
        "",
        call.prompt_words,
        completion,
        "tool_calls",
        tool_calls=tuple(rendered),
    )


def _stream_type(call: Call) -> bytes:
    return b"text/event-stream" if call.sse else b"application/json; charset=UTF-8"


# ---- HTTP/1.1 plumbing -----------------------------------------------------------------------

_REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}


def _write(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    *,
    keep_alive: bool = True,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    head = [
        b"HTTP/1.1 %d %s\r\nServer: fake-llm\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        % (status, _REASONS.get(status, b"Unknown"), content_type, len(body))
    ]
    head += [name + b": " + value + b"\r\n" for name, value in extra_headers]
    if not keep_alive:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    writer.write(b"".join(head) + body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class _Exchange:
    """The response side of one request on a connection."""

    __slots__ = ("keep_alive", "reader", "writer")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep_alive: bool
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.keep_alive = keep_alive

    def respond(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        extra_headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        _write(
            self.writer,
            status,
            body,
            content_type,
            keep_alive=self.keep_alive,
            extra_headers=extra_headers,
        )

    def reset(self) -> None:
        """Abort with an RST: SO_LINGER on with a zero timeout, then close at once."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        raise _Dropped

    async def stream(
        self,
        events: list[bytes],
        content_type: bytes,
        chunk_delay: float = 0.0,
        *,
        cut: bool = False,
        abort: bool = False,
        close: bool = False,
    ) -> None:
        """A 200 with a chunked body of ``events``; ``cut`` drops the connection before the
        terminating zero-length chunk; ``close`` ends the body properly, then closes."""
        writer = self.writer
        keep_alive = self.keep_alive and not close
        writer.write(
            b"HTTP/1.1 200 OK\r\nServer: fake-llm\r\nContent-Type: %s\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n%s\r\n"
            % (content_type, b"" if keep_alive else b"Connection: close\r\n")
        )
        for event in events:
            if chunk_delay:
                await writer.drain()
                await asyncio.sleep(chunk_delay)
                if writer.is_closing():
                    raise _Dropped
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        if cut:
            if abort:
                self.reset()
            writer.close()
            raise _Dropped
        writer.write(b"0\r\n\r\n")
        if close:
            await writer.drain()
            raise _Dropped
