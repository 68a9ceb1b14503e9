"""``python -m bench admin``: the admin monitoring API's p50/p95 at two sizes, on SQLite
and PostgreSQL.

Seeds (``bench.admin_seed``), once, a database per backend and size -- SQLite files in
``$TMPDIR/parley-admin-bench/``, PostgreSQL databases ``parley_admin_<size>`` on the
``--postgres`` server -- unless they exist (``--reseed`` rebuilds them). Then, per
database, ``parley serve`` in its own process and one client sending 20 warm-up and
``--requests`` timed requests per row, one after another, with an API token: latency at
the client, so HTTP, authentication and the database. ``--quick`` seeds 1k- and
10k-message databases in a scratch directory and drops them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench import admin_seed as data
from bench.harness import (
    PARLEY,
    Server,
    clean_environment,
    free_port,
    log,
    machine_line,
    wait_ready,
    write_result,
)

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
WARMUP = 20
Request = Callable[[random.Random], tuple[str, dict[str, str]]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="1k/10k messages, 20 requests")
    parser.add_argument(
        "--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--requests", type=int, help="timed requests per row (default 300)")
    parser.add_argument("--reseed", action="store_true", help="rebuild the seeded databases")


def scenarios(messages: int) -> list[tuple[str, Request]]:
    """The rows: (name, request); a name ending in * is extra to the five asked for."""
    users, conversations = max(2, messages // 100), max(1, messages // 10)
    admin = {"Authorization": f"Token {data.ADMIN_TOKEN}"}
    member = {"Authorization": f"Token {data.MEMBER_TOKEN}"}
    base = "/api/admin/conversations/"

    def fixed(url: str, headers: dict[str, str] = admin) -> Request:
        return lambda _rnd: (url, headers)

    return [
        ("search, rare word (en)", fixed(f"{base}?search={data.RARE_EN}")),
        ("search, rare word (zh) *", fixed(f"{base}?search={data.RARE_ZH}")),
        ("search, common word (en), first page", fixed(f"{base}?search={data.COMMON_EN}")),
        ("search, common word (zh), first page *", fixed(f"{base}?search={data.COMMON_ZH}")),
        ("search, common 2-character word (zh) *", fixed(f"{base}?search={data.SHORT_ZH}")),
        (
            "conversation stats",
            lambda rnd: (f"{base}{rnd.randint(1, conversations)}/stats/", admin),
        ),
        (
            "users list page (50)",
            lambda rnd: (
                f"/api/admin/users/?limit=50&offset={50 * rnd.randrange(max(1, users // 50))}",
                admin,
            ),
        ),
        (
            "a user's conversations (admin ?user=)",
            lambda rnd: (f"{base}?user=user{rnd.randint(2, users):06d}", admin),
        ),
        ("a user's conversations (their own list) *", fixed("/api/conversations/", member)),
    ]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(url: str, messages: int, requests: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    env = clean_environment()
    env.update(
        PARLEY_DATABASE_URL=url,
        PARLEY_SECRET_KEY="admin-benchmark-secret-key-0123456789abcdefghijklmnop",
        PARLEY_LOG_LEVEL="WARNING",
        PARLEY_RATE_LIMIT="100000000/minute",
        PARLEY_AUTH_RATE_LIMIT="100000000/minute",
    )
    cmd = [PARLEY, "serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)]
    server = Server(f"admin-{port}", cmd, env, workdir)
    rows: dict[str, tuple[float, float, str]] = {}
    load = os.getloadavg()[0]
    try:
        await wait_ready(server, port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for name, request in scenarios(messages):
                rnd, timings, total = random.Random(name), [], ""
                for i in range(WARMUP + requests):
                    path, headers = request(rnd)
                    started = time.perf_counter()
                    response = await client.get(path, headers=headers)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
                    if i >= WARMUP:
                        timings.append(elapsed)
                    total = response.headers.get("X-Total-Count", "")
                    total += "+" if response.headers.get("X-Total-Count-Capped") == "true" else ""
                rows[name] = (_percentile(timings, 0.5), _percentile(timings, 0.95), total)
                log(f"  {name:44s} p50 {rows[name][0]:6.1f} ms  p95 {rows[name][1]:6.1f} ms")
    finally:
        server.stop()
    return {"messages": messages, "load": load, "rows": rows}


def _url(backend: str, size: str, directory: Path, postgres: str) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{directory / f'admin-{size}.db'}"
    database = f"parley_admin_{size}"
    return make_url(postgres).set(database=database).render_as_string(hide_password=False)


async def _on_server(url: str, statement: str, *args: Any) -> Any:
    """``statement`` on the maintenance database of ``url``'s PostgreSQL server."""
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    db = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        return await db.fetchval(statement, *args)
    finally:
        await db.close()


async def _exists(url: str) -> bool:
    name = make_url(url).database or ""
    if make_url(url).get_backend_name() == "sqlite":
        return await asyncio.to_thread(Path(name).exists)
    return bool(await _on_server(url, "SELECT 1 FROM pg_database WHERE datname = $1", name))


def render(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]]) -> str:
    command = "just bench-admin" + (" --quick" if args.quick else "")
    out = ["# Admin monitoring: p50 / p95 latency by size", ""]
    if args.quick:
        out += ["**Smoke run (`--quick`)**: it shows the harness works; not numbers to quote.", ""]
    out += [
        f"Command: `{command}`. {machine_line()}",
        "",
        f"One client, requests one after another ({WARMUP} warm-up, then the timed ones), "
        "latency at the client (HTTP, authentication, the database). The load average when "
        "each database's run started is in its heading; other work on a shared machine "
        "shows there first. Rows marked * are extra to the five asked for.",
    ]
    for backend, mine in runs.items():
        loads = ", ".join(f"{r['load']:.1f}" for r in mine)
        out += ["", f"## {backend} (load average at start: {loads})", ""]
        out.append(
            "| request | "
            + " | ".join(f"{r['messages']:,} messages" for r in mine)
            + " | p95 ratio | matches |"
        )
        out.append("|---" * (len(mine) + 3) + "|")
        for name in mine[-1]["rows"]:
            cells = [f"{r['rows'][name][0]:.1f} / {r['rows'][name][1]:.1f} ms" for r in mine]
            ratio = mine[-1]["rows"][name][1] / mine[0]["rows"][name][1]
            shown = f"{ratio:.2f}x" if name.startswith("search") else ""
            out.append(f"| {name} | {' | '.join(cells)} | {shown} | {mine[-1]['rows'][name][2]} |")
    return "\n".join(out) + "\n"


async def run(args: argparse.Namespace, directory: Path) -> dict[str, list[dict[str, Any]]]:
    sizes = ["1k", "10k"] if args.quick else ["100k", "1m"]
    requests = args.requests or (20 if args.quick else 300)
    backends = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    runs: dict[str, list[dict[str, Any]]] = {}
    for backend in backends:
        for size in sizes:
            url = _url(backend, size, directory, args.postgres)
            if args.reseed or args.quick or not await _exists(url):
                await asyncio.to_thread(data.seed, url, SIZES[size])
            log(f"measuring {backend} {size}, {requests} requests per row")
            try:
                runs.setdefault(backend, []).append(
                    await measure(url, SIZES[size], requests, directory)
                )
            finally:
                if args.quick and backend == "postgresql":
                    drop = f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'
                    await _on_server(url, drop)
    return runs


def main(args: argparse.Namespace) -> int:
    directory = Path(tempfile.gettempdir()) / "parley-admin-bench"
    if args.quick:
        directory = Path(tempfile.mkdtemp(prefix="parley-admin-quick-"))
    directory.mkdir(exist_ok=True)
    try:
        runs = asyncio.run(run(args, directory))
    finally:
        for server in list(Server.running):
            server.stop()
        if args.quick:
            shutil.rmtree(directory, ignore_errors=True)
    write_result("admin", render(args, runs), quick=args.quick)
    return 0
