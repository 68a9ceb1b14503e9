"""Serve Parley the way ``parley serve`` does, with switches for experiments.

``parley serve`` itself is what the benchmark matrix measures. This launcher exists to
measure what a change *would* gain without editing ``src/``: it builds the very same
application (``entrypoints.http.app.app_from_environment``) and then varies one thing:

* ``--access-log on|off``: uvicorn's per-request access log forced on or off (by default
  it follows ``PARLEY_ACCESS_LOG``, as ``parley serve`` does);
* ``--httpx-log info|warning``: httpx's per-request ``HTTP Request: POST ...`` line on
  (INFO) or off (by default as Parley configures it);
* ``--loop`` / ``--http``: the event loop and HTTP parser (uvloop, httptools) when they
  are importable (``run.py`` installs them into ``bench/.extras``, never into the venv);
* ``--transport httpx``: the providers' clients on httpx's own connection pool (what
  Parley used before ``adapters/llm/transport.py``), to show what that change gains;
* ``--sqlite-driver aiosqlite``: SQLite through aiosqlite as shipped instead of Parley's
  inline driver (``adapters/persistence/inline_sqlite.py``), likewise;
* ``--sqlite-pool N``: the SQLite engine keeps at most N connections (``1`` serialises
  transactions in-process instead of racing for SQLite's lock);
* ``--no-pool-reset``: ``pool_reset_on_return=None`` (the unit of work already ends
  every transaction, so the pool's rollback on check-in is a redundant round trip);
* ``--cache-users SECONDS``: ``Authenticate`` reads a user's row at most once per
  SECONDS (the per-request token checks stay);
* ``--profile PATH``: pyinstrument samples the server from SIGUSR1 until SIGINT/SIGTERM
  and writes a text report to PATH (and ``PATH.json``: self time per function and per
  library, inclusive time per function).

The database must already be migrated (``parley migrate`` or a running ``parley serve``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

EXTRAS = Path(__file__).resolve().parent / ".extras"


def _patch_sqlite_pool(size: int) -> None:
    from sqlalchemy.ext import asyncio as sa_asyncio

    import adapters.persistence.database as database

    original = getattr(database, "create_async_engine", sa_asyncio.create_async_engine)

    def create_async_engine(url: Any, **kwargs: Any) -> Any:
        if str(url).startswith("sqlite"):
            kwargs.setdefault("pool_size", size)
            kwargs.setdefault("max_overflow", 0)
        return original(url, **kwargs)

    database.create_async_engine = create_async_engine  # type: ignore[assignment]


def _patch_no_pool_reset() -> None:
    """The unit of work always ends its transaction; the pool's own rollback on return
    is then a redundant round trip."""
    from sqlalchemy.ext import asyncio as sa_asyncio

    import adapters.persistence.database as database

    original = getattr(database, "create_async_engine", sa_asyncio.create_async_engine)

    def create_async_engine(url: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("pool_reset_on_return", None)
        return original(url, **kwargs)

    database.create_async_engine = create_async_engine  # type: ignore[assignment]


def _patch_cached_users(ttl: float) -> None:
    """Authenticate: the user row read at most once per ``ttl`` seconds per user (the
    token's own checks still run on every request)."""
    import time

    from application import accounts

    original = accounts.Authenticate._user
    cache: dict[int, tuple[float, Any]] = {}

    async def _user(self: Any, user_id: int, issued_at: Any) -> Any:
        hit = cache.get(user_id)
        now = time.monotonic()
        if hit is None or hit[0] < now:
            user = await original(self, user_id, issued_at)
            cache[user_id] = (now + ttl, user)
            return user
        user = hit[1]
        if not user.accepts_credentials_issued_at(issued_at):
            raise accounts.AuthenticationFailed("This session was signed out; log in again.")
        return user

    accounts.Authenticate._user = _user  # type: ignore[method-assign]


def _patch_transport(kind: str) -> None:
    """``httpx``: the providers' clients on httpx's own pool (Parley's previous transport,
    with the limits it had) instead of ``adapters.llm.transport``'s aiohttp pool."""
    if kind == "aiohttp":
        return
    import httpx

    import adapters.llm.setup as setup

    def client(timeout: httpx.Timeout) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        return httpx.AsyncClient(timeout=timeout, limits=limits)

    setup.provider_http_client = client  # type: ignore[assignment]


def _patch_sqlite_driver(kind: str) -> None:
    """``aiosqlite``: SQLite through aiosqlite as shipped (a worker thread per connection,
    SQLite's own busy handler) instead of Parley's inline driver."""
    if kind == "parley":
        return
    from collections.abc import Callable

    import aiosqlite

    import adapters.persistence.database as database

    def connector(path: str, busy_timeout_s: float) -> Callable[[], Any]:
        async def create() -> Any:
            return await aiosqlite.connect(
                path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False
            )

        return create

    database.inline_connector = connector  # type: ignore[assignment]


def _package(path: str | None) -> str:
    """Which library (or which part of Parley, or which stdlib module) a file belongs to."""
    if not path:
        return "<native>"
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/" in path:
        parts = path.split("/src/", 1)[1].split("/")
        return "parley " + "/".join(parts[:2]).removesuffix(".py")
    match = re.search(r"/lib/python3\.\d+/([^/]+)", path)
    if match:
        return "stdlib " + match[1].removesuffix(".py")
    return Path(path).name


def _where(path: str | None, line: int | None) -> str:
    if not path:
        return "<native>"
    for marker in ("/site-packages/", "/src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = re.sub(r"^.*/lib/python3\.\d+/", "", path)
    return f"{path}:{line}"


def _summary(session: Any, top: int = 40) -> dict[str, Any]:
    """Self and total time per function and self time per library, in % of wall time."""
    functions: dict[str, list[float]] = {}
    packages: dict[str, float] = {}
    root = session.root_frame() if session is not None else None
    if root is None:
        return {"duration_s": 0, "functions": [], "packages": []}

    def walk(frame: Any, seen: frozenset[str]) -> None:
        if frame.is_synthetic:  # [self] / [await]: already in the parent's total_self_time
            return
        package = _package(frame.file_path)
        name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
        key = f"{name} ({_where(frame.file_path, frame.line_no)})"
        entry = functions.setdefault(key, [0.0, 0.0])
        entry[0] += frame.total_self_time
        if key not in seen:
            entry[1] += frame.time
        packages[package] = packages.get(package, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child, seen | {key})

    walk(root, frozenset())
    duration = session.duration or 1.0
    rows = [
        {"function": key, "self_pct": 100 * v[0] / duration, "total_pct": 100 * v[1] / duration}
        for key, v in functions.items()
    ]
    by_self = sorted(rows, key=lambda r: r["self_pct"], reverse=True)[:top]
    by_total = sorted(rows, key=lambda r: r["total_pct"], reverse=True)[: top * 2]
    return {
        "duration_s": duration,
        "functions": by_self,
        "cumulative": by_total,
        "packages": sorted(
            ({"package": k, "self_pct": 100 * v / duration} for k, v in packages.items()),
            key=lambda r: r["self_pct"],
            reverse=True,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve Parley with experiment switches.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--access-log",
        choices=["settings", "on", "off"],
        default="settings",
        help="uvicorn's access log: as PARLEY_ACCESS_LOG says (default), or forced",
    )
    parser.add_argument(
        "--httpx-log",
        choices=["settings", "info", "warning"],
        default="settings",
        help="level of the httpx/httpcore loggers (INFO logs every upstream request)",
    )
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--http", default="auto")
    parser.add_argument("--transport", default="aiohttp", choices=["httpx", "aiohttp"])
    parser.add_argument("--sqlite-driver", default="parley", choices=["parley", "aiosqlite"])
    parser.add_argument("--sqlite-pool", type=int, default=0)
    parser.add_argument("--no-pool-reset", action="store_true")
    parser.add_argument("--cache-users", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--profile-interval", type=float, default=0.0005)
    args = parser.parse_args()

    if args.loop != "auto" or args.http != "auto":
        # bench/.extras goes after the venv, and uvicorn's "auto" keeps meaning what it
        # means without it: only the variant asked for changes.
        import importlib.util

        if args.loop == "auto":
            args.loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        if args.http == "auto":
            args.http = "httptools" if importlib.util.find_spec("httptools") else "h11"
        sys.path.append(str(EXTRAS))

    import uvicorn

    from entrypoints.settings import load_settings, with_secret_key

    if args.sqlite_pool:
        _patch_sqlite_pool(args.sqlite_pool)
    if args.no_pool_reset:
        _patch_no_pool_reset()
    if args.cache_users:
        _patch_cached_users(args.cache_users)
    _patch_transport(args.transport)
    _patch_sqlite_driver(args.sqlite_driver)

    settings = with_secret_key(load_settings())
    os.environ.setdefault("PARLEY_SECRET_KEY", settings.secret_key)
    if args.httpx_log != "settings":
        # app_from_environment configures logging; these loggers are set after it.
        import entrypoints.http.app as app_module

        configure = app_module.configure_logging
        level = logging.INFO if args.httpx_log == "info" else logging.WARNING

        def configure_logging(s: Any) -> None:
            configure(s)
            for name in ("httpx", "httpcore"):
                logging.getLogger(name).setLevel(level)

        app_module.configure_logging = configure_logging  # type: ignore[assignment]
    if args.access_log == "settings":
        # Before PARLEY_ACCESS_LOG existed, uvicorn logged every request at INFO.
        access_log = bool(getattr(settings, "access_log", True))
    else:
        access_log = args.access_log == "on"

    from entrypoints.http.app import app_from_environment

    app = app_from_environment()

    profiler = None
    if args.profile is not None:
        import signal

        from pyinstrument import Profiler

        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the
        # handler it found: make that handler end the process through ``finally``.
        def stop(signum: int, _frame: Any) -> None:
            raise KeyboardInterrupt(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, stop)

        profiler = Profiler(interval=args.profile_interval, async_mode="disabled")
        # SIGUSR1 starts sampling, so that start-up and the first requests (which build
        # the engine and the HTTP clients lazily) can be left out; SIGINT stops the server.
        signal.signal(signal.SIGUSR1, lambda *_: profiler.start())
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=settings.log_level.lower(),
            access_log=access_log,
            proxy_headers=True,
            loop=args.loop,
            http=args.http,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if profiler is not None and profiler.is_running:
            profiler.stop()
            args.profile.write_text(
                profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8"
            )
            args.profile.with_suffix(".json").write_text(
                json.dumps(_summary(profiler.last_session), indent=2), encoding="utf-8"
            )


if __name__ == "__main__":
    main()
