"""``parley serve | migrate | createsuperuser | models``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from application.accounts import RegisterUserRequest
from domain.errors import InvalidInput
from entrypoints.http.app import build_container, configure_logging
from entrypoints.settings import Settings, SettingsError, load_settings, with_secret_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parley", description="Parley AI chat backend")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", help="default PARLEY_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default PARLEY_PORT or 8000")
    serve.add_argument("--workers", type=int, help="worker processes (default PARLEY_WORKERS or 1)")
    serve.add_argument("--no-migrate", action="store_true", help="skip migrations")
    commands.add_parser("migrate", help="apply database migrations")
    superuser = commands.add_parser("createsuperuser", help="create a staff user")
    superuser.add_argument("--username", required=True)
    superuser.add_argument("--email", required=True)
    commands.add_parser("models", help="list the models this configuration can serve")
    args = parser.parse_args(argv)

    try:
        settings = with_secret_key(load_settings())
    except SettingsError as error:
        print(f"parley: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)

    if args.command == "serve":
        return _serve(settings, args.host, args.port, args.workers, migrate=not args.no_migrate)
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("Database is up to date.")
        return 0
    if args.command == "createsuperuser":
        return asyncio.run(_create_superuser(settings, args.username, args.email))
    if args.command == "models":
        container = build_container(settings)
        for model in container.catalog().available():
            default = " (default)" if model.id == container.catalog().default_model else ""
            print(f"{model.id}\t{model.name}\t{model.provider}{default}")
        return 0
    return 2


async def _migrate(settings: Settings) -> None:
    from adapters.persistence.migrate import upgrade

    container = build_container(settings)
    engine = container.engine()
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _serve(
    settings: Settings,
    host: str | None,
    port: int | None,
    workers: int | None,
    *,
    migrate: bool,
) -> int:
    import uvicorn

    if migrate:
        asyncio.run(_migrate(settings))
    # The factory re-reads the same settings; the secret key file now exists, so every
    # worker agrees on the key.
    os.environ.setdefault("PARLEY_SECRET_KEY", settings.secret_key)
    worker_count = workers or settings.workers
    if settings.metrics_enabled and (worker_count > 1 or "PROMETHEUS_MULTIPROC_DIR" in os.environ):
        share_metrics_between_workers()
    uvicorn.run(
        "entrypoints.http.app:app_from_environment",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        # JSON lines: uvicorn's own loggers go through Parley's handler, as every other.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        http=http_protocol(),
        **forwarded_headers(settings),
        # Parley writes the access line itself (the request id, the user, the model and
        # tokens); one per request costs throughput (measured in bench/), so opt in.
        access_log=False,
        workers=worker_count,
        # On SIGTERM, stop accepting and give requests and streams in flight this long.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    return 0


def share_metrics_between_workers() -> None:
    """prometheus-client's multiprocess mode: each worker writes its metrics to files in
    one directory and a scrape of any worker sums them. The operator's
    PROMETHEUS_MULTIPROC_DIR is used if set; else a new directory, emptied at start so
    that counts from an earlier run are not added in. Set before the workers start (they
    read it when they import prometheus-client)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory is None:
        directory = tempfile.mkdtemp(prefix="parley-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def forwarded_headers(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy settings. Its default believes X-Forwarded-For from 127.0.0.1, so
    anything on the same host (or a proxy that passes the header through) chose the
    client address that rate limits count by. Parley believes forwarded headers only
    from ``trusted_proxies``; with none, the connection's peer is the client."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


# Both dialects' keys: a request that cannot be parsed has no trustworthy path to tell
# /api/ from /api/v1/ by.
_INVALID_REQUEST = json.dumps(
    {"detail": "Invalid HTTP request.", "error": "Invalid HTTP request.", "code": "bad_request"}
).encode()


def _invalid_request_head() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_INVALID_REQUEST)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
    ]


class JsonErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering a request it cannot parse in Parley's JSON error
    shape rather than as plain text. Such a request never reaches the ASGI app, so this
    is the only place to do it: uvicorn offers no hook but the protocol class."""

    def send_400_response(self, msg: str) -> None:
        for event in (
            h11.Response(status_code=400, headers=_invalid_request_head(), reason=b"Bad Request"),
            h11.Data(data=_INVALID_REQUEST),
            h11.EndOfMessage(),
        ):
            output = self.conn.send(event)
            if output:
                self.transport.write(output)
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is a dependency, but has no wheel for every platform
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
        """The same JSON 400 on uvicorn's httptools protocol (at module level: several
        workers receive the class by pickling)."""

        def send_400_response(self, msg: str) -> None:
            head = b"".join(
                name + b": " + value + b"\r\n" for name, value in _invalid_request_head()
            )
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\n" + head + b"\r\n" + _INVALID_REQUEST
            )
            self.transport.close()


def http_protocol() -> type[asyncio.Protocol]:
    """httptools' parser, uvicorn's fast path (measured in bench/), where it is installed;
    h11 otherwise."""
    if HttpToolsProtocol is None:
        return JsonErrorH11Protocol
    return JsonErrorHttpToolsProtocol


async def _create_superuser(settings: Settings, username: str, email: str) -> int:
    password = os.environ.get("PARLEY_SUPERUSER_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            print("parley: set PARLEY_SUPERUSER_PASSWORD or run interactively", file=sys.stderr)
            return 2
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            print("parley: passwords do not match", file=sys.stderr)
            return 2
    container = build_container(settings)
    try:
        await container.register()(
            RegisterUserRequest(username=username, email=email, password=password, is_staff=True)
        )
    except InvalidInput as invalid:
        for field, messages in invalid.field_errors.items():
            print(f"parley: {field}: {' '.join(messages)}", file=sys.stderr)
        return 1
    finally:
        await container.engine().dispose()
    print(f"Superuser {username} created.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
