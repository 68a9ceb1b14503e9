"""A fake LLM provider on a real 127.0.0.1 socket, speaking OpenAI's and Gemini's wire formats.

``FakeLLMServer`` is an HTTP/1.1 server written directly on ``asyncio.start_server`` with a
small hand-written parser, running on its own event loop in a daemon thread. Owning the
socket lets it misbehave the way real upstreams do: reset connections, cut streams half
way, answer too late, or answer garbage.

Endpoints (``POST`` unless noted):

* ``/v1/chat/completions`` -- OpenAI-compatible chat completions; key in
  ``Authorization: Bearer <key>``; ``"stream": true`` gives SSE chunks ending with
  ``data: [DONE]``; ``stream_options.include_usage`` adds the ``"choices": []`` usage chunk.
* ``/v1beta/models/{model}:generateContent`` and ``...:streamGenerateContent`` (``?alt=sse``
  for SSE, otherwise a streamed JSON array, as Google does); key in ``x-goog-api-key``
  (or ``?key=``). ``/v1/models/...`` is accepted as well.
* ``GET /v1/models`` and ``GET /v1beta/models`` -- tiny model lists.

By default every chat request is answered with ``"fake reply to: <last user text>"`` and
usage counted in whitespace-separated words. Tests change that per request with
``server.script(error(429, retry_after=1), reply("hi"), ...)`` (a FIFO, one behaviour per chat
request) or for all later requests with ``server.default = ...``. The queue is consumed only
by chat requests that pass authentication and body validation: a request with a bad key
gets the provider's auth error and leaves the script untouched.

Usage::

    with FakeLLMServer() as server:
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
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "Behaviour",
    "CutStream",
    "Delay",
    "Error",
    "FakeLLMServer",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Reset",
    "cut_stream",
    "delay",
    "echo",
    "error",
    "malformed",
    "reply",
    "reset",
    "slow_stream",
]

ECHO_PREFIX = "fake reply to: "


# ---- behaviours ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer. ``text=None`` echoes the last user message (the default reply).

    ``finish_reason`` is given in either vocabulary and translated per endpoint
    (``stop``<->``STOP``, ``length``<->``MAX_TOKENS``, ``content_filter``<->``SAFETY``);
    anything else is passed through verbatim. ``chunk_delay`` sleeps before each streamed
    chunk (non-streaming requests sleep the same total before answering)."""

    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    chunk_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Error:
    """An HTTP error with the provider's error body for the endpoint hit.

    ``code`` overrides OpenAI's ``error.code`` or Google's ``error.status`` string."""

    status: int
    message: str | None = None
    retry_after: float | str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Delay:
    """Sleep ``seconds`` before answering, then behave as ``then`` (default: the echo reply).
    If the client gave up meanwhile, the connection is simply closed."""

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True, slots=True)
class Reset:
    """Abort the TCP connection (SO_LINGER 0, so an RST) without sending any response."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """HTTP 200 with a bad body: ``kind="json"`` is not JSON at all, ``kind="shape"`` is valid
    JSON of the wrong shape. For streaming requests the bad payload is sent as one SSE event
    (followed by ``[DONE]`` on the OpenAI endpoint). ``body`` replaces the payload verbatim."""

    kind: Literal["json", "shape"] = "json"
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class CutStream:
    """For streaming requests: 200, ``after_chunks`` data chunks, then the connection drops
    (a FIN, or an RST with ``abort=True``) without the final chunk, terminator or ``[DONE]``.
    ``after_chunks`` is capped so the finishing chunk is never sent. Non-streaming requests
    are reset as with ``Reset``."""

    after_chunks: int = 2
    abort: bool = False


Behaviour = Reply | Error | Delay | Reset | Malformed | CutStream


def reply(
    text: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    finish_reason: str = "stop",
) -> Reply:
    return Reply(text, prompt_tokens, completion_tokens, finish_reason)


def echo() -> Reply:
    return Reply()


def error(
    status: int,
    message: str | None = None,
    retry_after: float | str | None = None,
    *,
    code: str | None = None,
) -> Error:
    return Error(status, message, retry_after, code)


def delay(seconds: float, then: Behaviour | None = None) -> Delay:
    return Delay(seconds, then)


def reset() -> Reset:
    return Reset()


def malformed(kind: Literal["json", "shape"] = "json", body: bytes | None = None) -> Malformed:
    return Malformed(kind, body)


def cut_stream(after_chunks: int = 2, *, abort: bool = False) -> CutStream:
    return CutStream(after_chunks, abort)


def slow_stream(chunk_delay: float, text: str | None = None) -> Reply:
    return Reply(text, chunk_delay=chunk_delay)


# ---- recorded requests -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    json: Any  # parsed body, or None when empty or not JSON
    body: bytes

    @property
    def provider(self) -> Literal["openai", "gemini"] | None:
        if self.path.startswith("/v1beta/") or _GEMINI_PATH.match(self.path):
            return "gemini"
        if self.path.startswith("/v1/"):
            return "openai"
        return None


# ---- wire formats ----------------------------------------------------------------------------

_GEMINI_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
_PIECES = re.compile(r"\s*\S+|\s+$")
_TO_GEMINI_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
_TO_OPENAI_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_OPENAI_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    # status: (message, type, code)
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "permission_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error",
          "model_not_found"),
    429: ("Rate limit reached for requests. Please try again later.", "requests",
          "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}  # fmt: skip
_GOOGLE_DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report the problem.",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _words(text: str) -> int:
    return len(text.split())


def _pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is exactly ``text``."""
    return _PIECES.findall(text)


def _openai_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _gemini_text(content: Any) -> str:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return ""
    return " ".join(
        part["text"]
        for part in content["parts"]
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


@dataclass(slots=True)
class _Call:
    """One validated chat request, in a provider-neutral form."""

    provider: Literal["openai", "gemini"]
    model: str
    stream: bool
    last_user_text: str
    prompt_words: int
    response_id: str
    include_usage: bool = False  # OpenAI stream_options.include_usage
    sse: bool = True  # Gemini: alt=sse; otherwise a streamed JSON array


def _openai_error(message: str, kind: str, code: str | None, param: str | None = None) -> bytes:
    return _dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})


class _OpenAIFormat:
    @staticmethod
    def error_body(status: int, message: str | None, code: str | None = None) -> bytes:
        default_message, kind, default_code = _OPENAI_DEFAULT_ERRORS.get(
            status,
            ("Request failed.", "server_error" if status >= 500 else "invalid_request_error", None),
        )
        return _openai_error(
            message or default_message, kind, code if code is not None else default_code
        )

    @staticmethod
    def completion(call: _Call, text: str, usage: tuple[int, int], finish: str) -> bytes:
        return _dumps(
            {
                "id": call.response_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": call.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": _TO_OPENAI_FINISH.get(finish, finish),
                    }
                ],
                "usage": {
                    "prompt_tokens": usage[0],
                    "completion_tokens": usage[1],
                    "total_tokens": usage[0] + usage[1],
                },
                "system_fingerprint": None,
            }
        )

    @staticmethod
    def stream(
        call: _Call, text: str, usage: tuple[int, int], finish: str
    ) -> tuple[list[bytes], int]:
        """SSE events, and how many of them come before the finishing chunk."""
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": call.response_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": call.model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if call.include_usage:
                payload["usage"] = None
            return b"data: " + _dumps(payload) + b"\n\n"

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in _pieces(text)]
        body_events = len(events)
        events.append(chunk({}, _TO_OPENAI_FINISH.get(finish, finish)))
        if call.include_usage:
            usage_chunk = {
                "id": call.response_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": call.model,
                "system_fingerprint": None,
                "choices": [],
                "usage": {
                    "prompt_tokens": usage[0],
                    "completion_tokens": usage[1],
                    "total_tokens": usage[0] + usage[1],
                },
            }
            events.append(b"data: " + _dumps(usage_chunk) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        return events, body_events

    @staticmethod
    def malformed(call: _Call, payload: bytes) -> tuple[bytes, list[bytes]]:
        """(non-streaming body, streaming events)."""
        return payload, [b"data: " + payload + b"\n\n", b"data: [DONE]\n\n"]


class _GeminiFormat:
    @staticmethod
    def error_body(
        status: int, message: str | None, code: str | None = None, details: Any = None
    ) -> bytes:
        error: dict[str, Any] = {
            "code": status,
            "message": message or _GOOGLE_DEFAULT_MESSAGES.get(status, "Request failed."),
            "status": code or _GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
        if details is not None:
            error["details"] = details
        return _dumps({"error": error})

    @staticmethod
    def _candidate(text: str | None, finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {}
        # A blocked answer (e.g. SAFETY) with no text has no content at all, as with Google.
        if text or finish in (None, "STOP"):
            candidate["content"] = {"role": "model", "parts": [{"text": text or ""}]}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        return candidate

    @classmethod
    def completion(cls, call: _Call, text: str, usage: tuple[int, int], finish: str) -> bytes:
        return _dumps(
            {
                "candidates": [cls._candidate(text, _TO_GEMINI_FINISH.get(finish, finish))],
                "usageMetadata": {
                    "promptTokenCount": usage[0],
                    "candidatesTokenCount": usage[1],
                    "totalTokenCount": usage[0] + usage[1],
                },
                "modelVersion": call.model,
                "responseId": call.response_id,
            }
        )

    @classmethod
    def stream(
        cls, call: _Call, text: str, usage: tuple[int, int], finish: str
    ) -> tuple[list[bytes], int]:
        pieces = _pieces(text) or [""]
        last = len(pieces) - 1
        payloads = []
        for index, piece in enumerate(pieces):
            final = index == last
            payload = {
                "candidates": [
                    cls._candidate(piece, _TO_GEMINI_FINISH.get(finish, finish) if final else None)
                ],
                "usageMetadata": (
                    {
                        "promptTokenCount": usage[0],
                        "candidatesTokenCount": usage[1],
                        "totalTokenCount": usage[0] + usage[1],
                    }
                    if final
                    else {"promptTokenCount": usage[0], "totalTokenCount": usage[0]}
                ),
                "modelVersion": call.model,
                "responseId": call.response_id,
            }
            payloads.append(_dumps(payload))
        return cls._frame(call, payloads), last

    @staticmethod
    def _frame(call: _Call, payloads: list[bytes]) -> list[bytes]:
        if call.sse:
            return [b"data: " + payload + b"\r\n\r\n" for payload in payloads]
        # Without alt=sse Google streams one JSON array, element by element.
        framed = [(b"[" if i == 0 else b",\r\n") + p for i, p in enumerate(payloads)]
        framed.append(b"]")
        return framed

    @classmethod
    def malformed(cls, call: _Call, payload: bytes) -> tuple[bytes, list[bytes]]:
        if call.sse:
            return payload, [b"data: " + payload + b"\r\n\r\n"]
        return payload, [b"[" + payload, b"]"]


_FORMATS: dict[str, Any] = {"openai": _OpenAIFormat, "gemini": _GeminiFormat}
_NOT_JSON = {
    "openai": b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess',
    "gemini": b'{"candidates": [{"content": {"role": "model", "par',
}
_WRONG_SHAPE = b'{"unexpected": "shape", "choices": null, "candidates": null}'


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
            if not isinstance(behaviour, Reply | Error | Delay | Reset | Malformed | CutStream):
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
        if path == "/v1/chat/completions" and method == "POST":
            await self._openai_chat(exchange, request)
        elif (match := _GEMINI_PATH.match(path)) and method == "POST":
            await self._gemini_generate(exchange, request, match[2], match[3])
        elif path == "/v1/models" and method == "GET":
            if self._openai_authorised(exchange, request):
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                    for m in self.models
                ]
                exchange.respond(200, _dumps({"object": "list", "data": data}))
        elif path == "/v1beta/models" and method == "GET":
            if self._gemini_authorised(exchange, request):
                data = [{"name": f"models/{m}", "displayName": m} for m in self.models]
                exchange.respond(200, _dumps({"models": data}))
        elif path.startswith("/v1beta/"):
            exchange.respond(
                404, _GeminiFormat.error_body(404, f"{method} {path} is not a known endpoint")
            )
        else:
            exchange.respond(
                404, _OpenAIFormat.error_body(404, f"Invalid URL ({method} {path})", "not_found")
            )
        await writer.drain()
        return exchange.keep_alive

    # -- OpenAI --

    def _openai_authorised(self, exchange: _Exchange, request: RecordedRequest) -> bool:
        if self.api_key is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() == "bearer" and key.strip() == self.api_key:
            return True
        if not key.strip():
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            body = _openai_error(message, "invalid_request_error", None)
        else:
            shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "****"
            message = f"Incorrect API key provided: {shown}. You can find your API key in settings."
            body = _OpenAIFormat.error_body(401, message, "invalid_api_key")
        exchange.respond(401, body)
        return False

    async def _openai_chat(self, exchange: _Exchange, request: RecordedRequest) -> None:
        if not self._openai_authorised(exchange, request):
            return
        body = request.json

        def invalid(message: str, param: str | None = None) -> None:
            exchange.respond(400, _openai_error(message, "invalid_request_error", None, param))

        if not isinstance(body, dict):
            return invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)"
            )
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return invalid("you must provide a model parameter", "model")
        if not isinstance(messages, list) or not messages:
            return invalid("Missing required parameter: 'messages'.", "messages")
        last_user = ""
        prompt_words = 0
        for message in messages:
            if not isinstance(message, dict):
                return invalid("Invalid type for 'messages': expected an object.", "messages")
            text = _openai_text(message.get("content"))
            prompt_words += _words(text)
            if message.get("role") == "user":
                last_user = text
        stream = body.get("stream") is True
        options = body.get("stream_options")
        call = _Call(
            provider="openai",
            model=model,
            stream=stream,
            last_user_text=last_user,
            prompt_words=prompt_words,
            response_id=f"chatcmpl-fake{next(self._ids)}",
            include_usage=stream
            and isinstance(options, dict)
            and options.get("include_usage") is True,
        )
        await self._perform(exchange, call, self._next_behaviour())

    # -- Gemini --

    def _gemini_authorised(self, exchange: _Exchange, request: RecordedRequest) -> bool:
        if self.api_key is None:
            return True
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key == self.api_key:
            return True
        if not key:
            # What Google answers when no key (or other identity) is sent at all.
            exchange.respond(
                403,
                _GeminiFormat.error_body(
                    403,
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity "
                    "to call this API.",
                ),
            )
        else:
            # A wrong key is 400 INVALID_ARGUMENT (not 401/403) with reason API_KEY_INVALID.
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
            exchange.respond(
                400,
                _GeminiFormat.error_body(
                    400, "API key not valid. Please pass a valid API key.", details=details
                ),
            )
        return False

    async def _gemini_generate(
        self, exchange: _Exchange, request: RecordedRequest, model: str, method: str
    ) -> None:
        if not self._gemini_authorised(exchange, request):
            return
        body = request.json
        if not isinstance(body, dict):
            exchange.respond(400, _GeminiFormat.error_body(400, "Invalid JSON payload received."))
            return
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            exchange.respond(
                400,
                _GeminiFormat.error_body(
                    400, "* GenerateContentRequest.contents: contents is not specified\n"
                ),
            )
            return
        last_user = ""
        prompt_words = _words(_gemini_text(body.get("systemInstruction")))
        for content in contents:
            if not isinstance(content, dict):
                exchange.respond(400, _GeminiFormat.error_body(400, "Invalid value at 'contents'."))
                return
            role = content.get("role", "user")
            if role not in ("user", "model"):
                exchange.respond(
                    400,
                    _GeminiFormat.error_body(
                        400, "Please use a valid role: user, model.", "INVALID_ARGUMENT"
                    ),
                )
                return
            text = _gemini_text(content)
            prompt_words += _words(text)
            if role == "user":
                last_user = text
        call = _Call(
            provider="gemini",
            model=model,
            stream=method == "streamGenerateContent",
            last_user_text=last_user,
            prompt_words=prompt_words,
            response_id=f"fake-gemini-{next(self._ids)}",
            sse=request.query.get("alt") == "sse",
        )
        await self._perform(exchange, call, self._next_behaviour())

    # -- behaviours --

    async def _perform(self, exchange: _Exchange, call: _Call, behaviour: Behaviour) -> None:
        fmt = _FORMATS[call.provider]
        while isinstance(behaviour, Delay):
            await asyncio.sleep(behaviour.seconds)
            if exchange.reader.at_eof() or exchange.writer.is_closing():
                raise _Dropped  # the client gave up while we slept
            behaviour = behaviour.then if behaviour.then is not None else Reply()

        if isinstance(behaviour, Reset) or (isinstance(behaviour, CutStream) and not call.stream):
            exchange.reset()
        elif isinstance(behaviour, Error):
            extra = ()
            if behaviour.retry_after is not None:
                value = behaviour.retry_after
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                extra = ((b"Retry-After", str(value).encode()),)
            exchange.respond(
                behaviour.status,
                fmt.error_body(behaviour.status, behaviour.message, behaviour.code),
                extra_headers=extra,
            )
        elif isinstance(behaviour, Malformed):
            if behaviour.body is not None:
                payload = behaviour.body
            elif behaviour.kind == "shape":
                payload = _WRONG_SHAPE
            else:
                payload = _NOT_JSON[call.provider]
            body, events = fmt.malformed(call, payload)
            if call.stream:
                await exchange.stream(events, _stream_type(call))
            else:
                exchange.respond(200, body)
        elif isinstance(behaviour, CutStream):
            events, body_events = self._render_stream(call, Reply())
            await exchange.stream(
                events[: max(0, min(behaviour.after_chunks, body_events))],
                _stream_type(call),
                cut=True,
                abort=behaviour.abort,
            )
        else:
            assert isinstance(behaviour, Reply)
            if call.stream:
                events, _ = self._render_stream(call, behaviour)
                await exchange.stream(events, _stream_type(call), behaviour.chunk_delay)
            else:
                text, usage = self._answer(call, behaviour)
                if behaviour.chunk_delay:
                    await asyncio.sleep(behaviour.chunk_delay * (len(_pieces(text)) + 1))
                exchange.respond(200, fmt.completion(call, text, usage, behaviour.finish_reason))

    @staticmethod
    def _answer(call: _Call, behaviour: Reply) -> tuple[str, tuple[int, int]]:
        text = ECHO_PREFIX + call.last_user_text if behaviour.text is None else behaviour.text
        prompt = (
            behaviour.prompt_tokens if behaviour.prompt_tokens is not None else call.prompt_words
        )
        completion = (
            behaviour.completion_tokens if behaviour.completion_tokens is not None else _words(text)
        )
        return text, (prompt, completion)

    def _render_stream(self, call: _Call, behaviour: Reply) -> tuple[list[bytes], int]:
        text, usage = self._answer(call, behaviour)
        return _FORMATS[call.provider].stream(call, text, usage, behaviour.finish_reason)


def _stream_type(call: _Call) -> bytes:
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
    parts = []
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
    ) -> None:
        """A 200 with a chunked body of ``events``; ``cut`` drops the connection before the
        terminating zero-length chunk."""
        writer = self.writer
        writer.write(
            b"HTTP/1.1 200 OK\r\nServer: fake-llm\r\nContent-Type: %s\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n%s\r\n"
            % (content_type, b"" if self.keep_alive else b"Connection: close\r\n")
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
