"""Admin monitoring benchmark: p50/p95 latency over HTTP at two sizes, on SQLite and
PostgreSQL.

    python bench/admin_bench.py all                 # seed what is missing, measure, report
    python bench/admin_bench.py run --url URL --label sqlite-1m
    python bench/admin_bench.py report RESULT.json ...

``all`` seeds (bench/admin_seed.py) 100k- and 1M-message databases on both backends
unless they already exist (``--reseed`` rebuilds them), starts ``parley serve`` on each in
its own process, sends every request one after another from this process, and prints a
Markdown table. SQLite files and JSON results go to ``--data`` (default: a directory in
the system temp dir); PostgreSQL databases ``parley_admin_100k`` and ``parley_admin_1m``
are created on ``--postgres``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

import admin_seed as seed

ROOT = Path(__file__).resolve().parent.parent
PARLEY = Path(sys.executable).parent / "parley"
SIZES = {"100k": 100_000, "1m": 1_000_000}
WARMUP = 20


@dataclass(frozen=True)
class Scenario:
    name: str
    request: Callable[[random.Random], tuple[str, dict[str, str]]]
    required: bool = True  # one of the five the issue asks for


def scenarios(messages: int) -> list[Scenario]:
    users = max(2, messages // 100)
    conversations = max(1, messages // 10)
    admin = {"Authorization": f"Token {seed.ADMIN_TOKEN}"}
    member = {"Authorization": f"Token {seed.MEMBER_TOKEN}"}
    base = "/api/admin/conversations/"

    def fixed(url: str, headers: dict[str, str]) -> Callable[[random.Random], Any]:
        return lambda _rnd: (url, headers)

    return [
        Scenario("search, rare word (en)", fixed(f"{base}?search={seed.RARE_EN}", admin)),
        Scenario("search, rare word (zh)", fixed(f"{base}?search={seed.RARE_ZH}", admin), False),
        Scenario(
            "search, common word (en), first page",
            fixed(f"{base}?search={seed.COMMON_EN}", admin),
        ),
        Scenario(
            "search, common word (zh), first page",
            fixed(f"{base}?search={seed.COMMON_ZH}", admin),
            False,
        ),
        Scenario(
            "search, common 2-character word (zh), first page",
            fixed(f"{base}?search={seed.SHORT_ZH}", admin),
            False,
        ),
        Scenario(
            "conversation stats",
            lambda rnd: (f"{base}{rnd.randint(1, conversations)}/stats/", admin),
        ),
        Scenario(
            "users list page (50)",
            lambda rnd: (
                f"/api/admin/users/?limit=50&offset={50 * rnd.randrange(max(1, users // 50))}",
                admin,
            ),
        ),
        Scenario(
            "a user's conversations (admin ?user=)",
            lambda rnd: (f"{base}?user=user{rnd.randint(2, users):06d}", admin),
        ),
        Scenario(
            "a user's conversations (their own list)", fixed("/api/conversations/", member), False
        ),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``parley serve`` in its own process, on a migrated database."""

    def __init__(self, url: str) -> None:
        self.port = _free_port()
        env = dict(os.environ)
        env.update(
            PARLEY_DATABASE_URL=url,
            PARLEY_SECRET_KEY="admin-benchmark-secret-key-0123456789abcdefghijklmnop",
            PARLEY_LOG_LEVEL="WARNING",
            PARLEY_RATE_LIMIT="100000000/minute",
            PARLEY_AUTH_RATE_LIMIT="100000000/minute",
        )
        self.process = subprocess.Popen(
            [str(PARLEY), "serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=tempfile.gettempdir(),
        )
        self.base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base_url}/api/v1/health/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("parley serve did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(url: str, label: str, messages: int, requests: int) -> dict[str, Any]:
    """Other work on the machine skews latency: the load average is recorded with it."""
    server = Server(url)
    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            for scenario in scenarios(messages):
                rnd = random.Random(scenario.name)
                timings: list[float] = []
                sample: httpx.Response | None = None
                for i in range(WARMUP + requests):
                    path, headers = scenario.request(rnd)
                    started = time.perf_counter()
                    response = client.get(path, headers=headers)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
                    if i >= WARMUP:
                        timings.append(elapsed)
                    sample = response
                assert sample is not None
                results[scenario.name] = {
                    "required": scenario.required,
                    "n": len(timings),
                    "p50": _percentile(timings, 0.50),
                    "p95": _percentile(timings, 0.95),
                    "p99": _percentile(timings, 0.99),
                    "mean": statistics.fmean(timings),
                    "total": sample.headers.get("X-Total-Count"),
                    "capped": sample.headers.get("X-Total-Count-Capped") == "true",
                }
                row = results[scenario.name]
                print(
                    f"  {scenario.name:44s} p50 {row['p50']:7.2f} ms  p95 {row['p95']:7.2f} ms"
                    f"  (total {row['total']}{'+' if row['capped'] else ''})"
                )
    finally:
        server.stop()
    backend = make_url(url).get_backend_name()
    load = (load_before, os.getloadavg()[0])
    print(f"  load average (1 min) before/after: {load[0]:.2f} / {load[1]:.2f}")
    return {
        "label": label,
        "backend": backend,
        "messages": messages,
        "load_average": load,
        "cpus": os.cpu_count(),
        "results": results,
    }


def report(runs: list[dict[str, Any]]) -> str:
    """A Markdown table per backend: p50/p95 at each size, and search's 1M/100k ratio."""
    lines: list[str] = []
    for backend in ("sqlite", "postgresql"):
        mine = sorted((r for r in runs if r["backend"] == backend), key=lambda r: r["messages"])
        if not mine:
            continue
        sizes = [f"{r['messages']:,} messages" for r in mine]
        loads = ", ".join(f"{r['load_average'][0]:.1f}" for r in mine if "load_average" in r)
        title = "SQLite" if backend == "sqlite" else "PostgreSQL"
        lines.append(f"**{title}** (load average at start: {loads})\n")
        header = "| request | " + " | ".join(f"p50 / p95 at {s}" for s in sizes)
        lines.append(header + (" | p95 ratio |" if len(mine) == 2 else " |"))
        lines.append("|---" * (len(mine) + 1 + (len(mine) == 2)) + "|")
        for name in mine[-1]["results"]:
            cells = []
            for run in mine:
                row = run["results"].get(name)
                cells.append("—" if row is None else f"{row['p50']:.1f} / {row['p95']:.1f} ms")
            ratio = ""
            if len(mine) == 2 and name.startswith("search"):
                small, large = (run["results"].get(name) for run in mine)
                if small and large:
                    ratio = f"{large['p95'] / small['p95']:.2f}x"
            label = name if mine[-1]["results"][name]["required"] else f"{name} *"
            lines.append(
                f"| {label} | " + " | ".join(cells) + (f" | {ratio} |" if len(mine) == 2 else " |")
            )
        lines.append("")
    return "\n".join(lines)


def _database_url(backend: str, size: str, data: Path, postgres: str) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{data / f'admin-{size}.db'}"
    return (
        make_url(postgres)
        .set(database=f"parley_admin_{size}")
        .render_as_string(hide_password=False)
    )


def _exists(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "").exists()
    import asyncio

    import asyncpg

    async def check() -> bool:
        admin = parsed.set(drivername="postgresql", database="postgres")
        db = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            found = await db.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", parsed.database
            )
        finally:
            await db.close()
        return bool(found)

    return asyncio.run(check())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    every = commands.add_parser("all", help="seed what is missing, measure everything, report")
    every.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "parley-admin-bench"
    )
    every.add_argument(
        "--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    every.add_argument("--backends", default="sqlite,postgresql")
    every.add_argument("--sizes", default="100k,1m")
    every.add_argument("--requests", type=int, default=300)
    every.add_argument("--reseed", action="store_true")
    one = commands.add_parser("run", help="measure one seeded database")
    one.add_argument("--url", required=True)
    one.add_argument("--label", required=True)
    one.add_argument("--messages", type=int, required=True, help="the size it was seeded with")
    one.add_argument("--requests", type=int, default=300)
    one.add_argument("--out", type=Path)
    combine = commands.add_parser("report", help="Markdown table from result files")
    combine.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args(argv)

    if args.command == "report":
        print(report([json.loads(p.read_text()) for p in args.results]))
        return 0
    if args.command == "run":
        result = measure(args.url, args.label, args.messages, args.requests)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))
        return 0

    args.data.mkdir(parents=True, exist_ok=True)
    runs = []
    for backend in args.backends.split(","):
        for size in args.sizes.split(","):
            url = _database_url(backend, size, args.data, args.postgres)
            if args.reseed or not _exists(url):
                seed.main(["--url", url, "--messages", str(SIZES[size]), "--replace"])
            print(f"measuring {backend} {size} ({args.requests} requests each)")
            result = measure(url, f"{backend}-{size}", SIZES[size], args.requests)
            (args.data / f"{backend}-{size}.json").write_text(json.dumps(result, indent=2))
            runs.append(result)
    print()
    print(report(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
