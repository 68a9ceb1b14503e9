"""Real Parley servers for integration tests: uvicorn on a 127.0.0.1 socket, in a thread,
on a freshly migrated database (a SQLite file, or a throwaway PostgreSQL database)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.persistence.database import create_engine
from adapters.persistence.migrate import upgrade
from entrypoints.container import Container
from entrypoints.http.app import build_container, create_app
from entrypoints.settings import Settings

TEST_SECRET_KEY = "integration-test-secret-key-with-enough-entropy-0123456789"


@dataclasses.dataclass
class RunningServer:
    base_url: str
    settings: Settings
    container: Container


def migrate(database_url: str) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server behind ``admin_url``, dropped afterwards."""
    name = f"parley_test_{uuid.uuid4().hex[:12]}"

    async def execute(statement: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def running_server(
    database_url: str,
    tmp_path: Path,
    *,
    configure: Callable[[Container], None] | None = None,
    base: Settings | None = None,
    **overrides: Any,
) -> Iterator[RunningServer]:
    # Many test servers live at once; small pools keep PostgreSQL well under its
    # connection limit.
    overrides.setdefault("db_pool_size", 2)
    overrides.setdefault("db_max_overflow", 6)
    overrides.setdefault("rate_limit", "1000000/minute")
    overrides.setdefault("auth_rate_limit", "1000000/minute")
    settings = dataclasses.replace(
        base or Settings(),
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        secret_key_file=str(tmp_path / "unused-secret-key"),
        log_level="WARNING",
        **overrides,
    )
    migrate(database_url)
    container = build_container(settings)
    if configure is not None:
        configure(container)
    app = create_app(container)
    with serving(app) as base_url:
        yield RunningServer(base_url, settings, container)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` in a thread on a free 127.0.0.1 port; its base URL."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every request on a reused connection waits ~40 ms for delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextlib.contextmanager
def stdlib_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``http.server`` serving ``handler`` in a thread on a free 127.0.0.1 port (an image
    host, a provider, WeChat's QR page): its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def query(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Read the server's database directly, to check what was (not) stored."""

    async def run() -> list[tuple[Any, ...]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(sql), params)
                if not result.returns_rows:
                    await connection.commit()
                    return []
                return [tuple(row) for row in result]
        finally:
            await engine.dispose()

    return asyncio.run(run())


PARLEY = str(Path(sys.executable).with_name("parley"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_parley_serve(
    cwd: Path,
    environment: dict[str, str],
    log: Path,
    port: int | None = None,
    options: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    """``parley serve`` as the README runs it, in its own process (so a test can kill it or
    drive it from a browser); returns once its health endpoint answers. Output goes to
    ``log``, which a failed start shows."""
    port = port or free_port()
    process = subprocess.Popen(
        [PARLEY, "serve", "--port", str(port), *options],
        env=environment,
        cwd=cwd,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/api/v1/health/", timeout=2).status_code == 200:
                return process, base_url
        assert time.monotonic() < deadline, "parley serve did not become healthy"
        time.sleep(0.1)


def stop_parley_serve(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it takes too long."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
