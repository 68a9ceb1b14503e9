"""A lean closed-loop HTTP/1.1 load generator: asyncio protocols on raw sockets.

Each of ``concurrency`` keep-alive connections sends a prepared request, waits for the
whole response, records it and sends the next one at once (a closed loop, like wrk).
Everything happens in protocol callbacks: no task, future or stream object per request,
so the generator stays several times faster than what it measures (``run.py`` reports
its ceiling against the fake upstream and its own CPU use in every cell).

Responses are parsed just enough to find their end (Content-Length or chunked) and,
for streams, the moment the first token arrives: the first time ``first_token`` (a
compiled bytes regex) matches the body received so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked")

_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER = range(5)


def build_request(
    method: str,
    host: str,
    port: int,
    path: str,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class CellResult:
    """What one closed-loop run measured inside its window."""

    concurrency: int
    duration: float
    latencies_ns: list[int] = field(default_factory=list)
    ttft_ns: list[int] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    generator_cpu_s: float = 0.0
    first_error: str = ""

    @property
    def requests(self) -> int:
        return len(self.latencies_ns)

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0


def percentile(values: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of nanosecond samples, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank] / 1e6


class _Run:
    """Shared state of one cell: the measurement window and the samples."""

    def __init__(
        self,
        ok_statuses: frozenset[int],
        first_token: re.Pattern[bytes] | None,
        result: CellResult,
    ) -> None:
        self.ok_statuses = ok_statuses
        self.first_token = first_token
        self.result = result
        self.window_start = 0
        self.window_end = 1 << 62
        self.sending = True
        self.in_flight = 0
        self.completed = 0
        self.warm_after = 0
        self.warm = asyncio.Event()
        self.idle = asyncio.Event()
        self.connections: list[_Connection] = []
        self.reconnects: set[asyncio.Task[None]] = set()
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    async def open(self, request: bytes) -> _Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: _Connection(self, request), *self.address
        )
        self.connections.append(protocol)
        return protocol

    def replace(self, request: bytes) -> None:
        """The server closed a connection: open another one and carry on."""

        async def reopen() -> None:
            try:
                connection = await self.open(request)
            except OSError as error:
                self.error(f"reconnect failed: {error!r}")
                return
            if self.sending:
                connection.send()

        task = asyncio.get_running_loop().create_task(reopen())
        self.reconnects.add(task)
        task.add_done_callback(self.reconnects.discard)

    def record(self, start: int, end: int, status: int, ttft: int) -> None:
        if self.window_start <= end < self.window_end:
            result = self.result
            if status in self.ok_statuses:
                result.latencies_ns.append(end - start)
                if ttft:
                    result.ttft_ns.append(ttft - start)
            else:
                result.errors += 1
                if not result.first_error:
                    result.first_error = f"HTTP {status}"
            result.statuses[status] = result.statuses.get(status, 0) + 1

    def error(self, message: str) -> None:
        self.result.errors += 1
        if not self.result.first_error:
            self.result.first_error = message


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run, request: bytes) -> None:
        self.run = run
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.state = _HEAD
        self.remaining = 0
        self.status = 0
        self.started = 0
        self.ttft = 0
        self.scan_from = 0
        self.busy = False
        self.lost = asyncio.get_running_loop().create_future()

    # -- protocol callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.busy = False
            self.run.in_flight -= 1
            self.run.error(f"connection lost: {exc!r}")
            if self.run.in_flight == 0:
                self.run.idle.set()
        if not self.lost.done():
            self.lost.set_result(None)
        if self.run.sending:
            self.run.replace(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._parse()
        except (ValueError, IndexError) as error:
            self.run.error(f"unparsable response: {error}")
            if self.transport is not None:
                self.transport.abort()

    # -- the loop --

    def send(self) -> None:
        assert self.transport is not None
        self.busy = True
        self.run.in_flight += 1
        self.run.idle.clear()
        self.state = _HEAD
        self.ttft = 0
        self.started = time.perf_counter_ns()
        self.transport.write(self.request)

    def _finished(self) -> None:
        end = time.perf_counter_ns()
        run = self.run
        self.busy = False
        run.in_flight -= 1
        run.completed += 1
        if run.completed >= run.warm_after:
            run.warm.set()
        run.record(self.started, end, self.status, self.ttft)
        if run.sending:
            self.send()
        elif run.in_flight == 0:
            run.idle.set()

    def _scan(self, data: bytes | bytearray) -> None:
        """Look for the first token in the body received so far."""
        pattern = self.run.first_token
        if pattern is not None and not self.ttft and pattern.search(data):
            self.ttft = time.perf_counter_ns()

    # One state machine in one loop, on the generator's hot path: not split into calls.
    def _parse(self) -> None:  # noqa: C901
        buffer = self.buffer
        while True:
            state = self.state
            if state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[: end + 2]).lower()
                del buffer[: end + 4]
                self.status = int(head[9:12])
                if _CHUNKED.search(head):
                    self.state = _CHUNK_SIZE
                else:
                    match = _CONTENT_LENGTH.search(head)
                    self.remaining = int(match[1]) if match else 0
                    self.state = _BODY
            elif state == _BODY:
                if len(buffer) < self.remaining:
                    self._scan(buffer)
                    return
                self._scan(buffer[: self.remaining])
                del buffer[: self.remaining]
                self._finished()
                if not buffer:
                    return
            elif state == _CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
                del buffer[: end + 2]
                if size == 0:
                    self.state = _TRAILER
                else:
                    self.remaining = size + 2
                    self.state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if len(buffer) < self.remaining:
                    return
                self._scan(buffer[: self.remaining - 2])
                del buffer[: self.remaining]
                self.state = _CHUNK_SIZE
            else:  # _TRAILER
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._finished()
                    if not buffer:
                        return
                    self.state = _HEAD


async def run_cell(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 0.5,
    ok_statuses: frozenset[int] = frozenset({200, 201}),
    first_token: re.Pattern[bytes] | None = None,
    drain_timeout: float = 30.0,
    on_window: Callable[[bool], None] | None = None,
) -> CellResult:
    """Open ``concurrency`` connections, run closed loops for ``warmup + duration`` seconds
    and keep the responses that completed inside the last ``duration`` seconds.

    The warm-up lasts at least ``warmup`` seconds and until every connection has had one
    answer (at most 20 s more), so slow cells start measuring in their steady state.
    Connection ``i`` sends ``requests[i % len(requests)]`` over and over. ``on_window``
    is called with True when the window opens and False when it closes."""
    result = CellResult(concurrency=concurrency, duration=duration)
    run = _Run(ok_statuses, first_token, result)
    run.address = (host, port)
    run.warm_after = concurrency
    try:
        for index in range(concurrency):
            await run.open(requests[index % len(requests)])
        for connection in list(run.connections):
            connection.send()
        await asyncio.sleep(warmup)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.warm.wait(), 20)
        if on_window is not None:
            on_window(True)
        cpu_start = time.process_time()
        run.window_start = time.perf_counter_ns()
        run.window_end = run.window_start + int(duration * 1e9)
        await asyncio.sleep(duration)
        result.generator_cpu_s = time.process_time() - cpu_start
        if on_window is not None:
            on_window(False)
        run.sending = False
        if run.in_flight:
            try:
                await asyncio.wait_for(run.idle.wait(), drain_timeout)
            except TimeoutError:
                run.error(f"{run.in_flight} requests still running {drain_timeout}s after the run")
    finally:
        run.sending = False
        for task in list(run.reconnects):
            task.cancel()
        for connection in run.connections:
            if connection.transport is not None:
                connection.transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.lost for c in run.connections)), 5)
    return result
