"""Chat throughput with the offline ``echo`` model: SQLite vs PostgreSQL, 1 vs 2 workers.

``just bench-workers`` (or ``.venv/bin/python bench/workers.py``) answers one question:
what does ``parley serve --workers 2`` buy over one worker on this machine, on each
database? No upstream is involved: with no provider configured Parley serves its
built-in offline ``echo`` model (``src/adapters/llm/echo.py``), so every request is
Parley and its database only.

For each backend -- a SQLite file in a scratch directory, and a scratch PostgreSQL
database ``parley_bench_workers`` created on the ``--postgres`` server and dropped
afterwards -- it runs ``parley migrate`` once, starts a set-up ``parley serve`` to register
one user per connection of the highest concurrency (each with one conversation, filled
with ``--prefill`` exchanges so that chat history is at its cap from the first measured
request), and stops it. Then, ``--repetitions`` times, in an order rotated between
repetitions so that drift on this shared machine falls on every configuration alike, for
each (backend, workers) it starts ``parley serve --workers N`` exactly as an operator
would (rate limits raised out of reach, the limiter still on the path), waits for every
worker, warms it up, measures non-streaming chat (``POST /api/v1/messages/chat/``, each
connection its own user and conversation) at each concurrency with ``bench/loadgen.py``,
and stops the server -- the whole process group, uvicorn's worker children included,
however the run ends.

Reported: medians of req/s, p50 and p99, errors, server CPU per request, how the CPU
split between the workers, the generator's own CPU and the CPU used by processes this
run did not start. Output: ``bench/results/workers-<timestamp>.md`` and a copy as
``bench/results/workers-latest.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from loadgen import build_request, percentile, run_cell
from run import (
    BIN,
    MESSAGE,
    RESULTS,
    _admin,
    cpu_seconds,
    free_port,
    log,
    machine_busy_seconds,
    machine_info,
    memory_mb,
    process_tree,
    register_user,
)
from run import parley_environment as run_parley_environment

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SCRATCH_DATABASE = "parley_bench_workers"
ECHO = "echo"
CHAT_PATH = "/api/v1/messages/chat/"
HEALTH_PATH = "/api/v1/health/"
HISTORY_CAP_EXCHANGES = 25  # PARLEY_HISTORY_MAX_MESSAGES (50) / 2


# ---- configuration ---------------------------------------------------------------------------


@dataclass
class Config:
    quick: bool
    postgres: str | None
    sqlite: bool
    workers: list[int]
    concurrencies: list[int]
    repetitions: int
    duration: float
    warmup: float
    server_warmup: float
    prefill: int
    keep: bool
    update_latest: bool
    command: str

    @property
    def users(self) -> int:
        return max(self.concurrencies)

    @property
    def backends(self) -> list[str]:
        return (["sqlite"] if self.sqlite else []) + (["postgresql"] if self.postgres else [])


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        description="Chat throughput with the offline echo model: SQLite vs PostgreSQL, "
        "1 vs 2 `parley serve` workers."
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: short cells, 1 repetition, no prefill"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=DEFAULT_POSTGRES,
        help=f"PostgreSQL admin URL; a scratch `{SCRATCH_DATABASE}` database is created on "
        f"its server and dropped afterwards (default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--workers", default="1,2", help="worker counts (default 1,2)")
    parser.add_argument("--concurrency", default="16,64", help="levels (default 16,64)")
    parser.add_argument("--repetitions", type=int, help="default 3 (--quick: 1)")
    parser.add_argument("--duration", type=float, help="seconds measured per cell (default 3)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per cell (default 1)")
    parser.add_argument(
        "--server-warmup",
        type=float,
        help="unrecorded chat load on each freshly started server, seconds (default 2)",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        help=f"chat exchanges per conversation before measuring (default "
        f"{HISTORY_CAP_EXCHANGES}: history at its 50-message cap; --quick: 0)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--no-latest", action="store_true", help="do not update bench/results/workers-latest.md"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    cfg = Config(
        quick=quick,
        postgres=None if args.no_postgres else args.postgres,
        sqlite=not args.no_sqlite,
        workers=[int(w) for w in args.workers.split(",")],
        concurrencies=[int(c) for c in args.concurrency.split(",")],
        repetitions=args.repetitions or (1 if quick else 3),
        duration=args.duration or (1.0 if quick else 3.0),
        warmup=args.warmup if args.warmup is not None else (0.3 if quick else 1.0),
        server_warmup=(
            args.server_warmup if args.server_warmup is not None else (0.5 if quick else 2.0)
        ),
        prefill=args.prefill if args.prefill is not None else (0 if quick else 25),
        keep=args.keep,
        update_latest=not args.no_latest,
        command=" ".join(
            [".venv/bin/python bench/workers.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    )
    if not cfg.backends:
        parser.error("nothing to measure: both --no-sqlite and --no-postgres")
    return cfg


# ---- processes -------------------------------------------------------------------------------


class Server:
    """A process this run started, in a session (and process group) of its own, so that
    stopping it stops uvicorn's worker children too. Signalled by its own group id only."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            cmd,
            env=env,
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid  # also the process group id
        STARTED.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def workers(self) -> list[int]:
        """Pids serving requests: uvicorn's spawned workers, or the process itself."""
        children = []
        for pid in process_tree(self.pid)[1:]:
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    children.append(pid)
        return sorted(children) or [self.pid]

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)  # uvicorn: graceful shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        deadline = time.monotonic() + 3
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._group_alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._log.close()
        if self in STARTED:
            STARTED.remove(self)


STARTED: list[Server] = []


async def wait_ready(server: Server, port: int, workers: int, within: float = 90) -> None:
    """Until the health endpoint answers and every worker has finished its start-up."""
    deadline = time.monotonic() + within
    url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(url)
                started = server.log_text().count("Application startup complete")
                if response.status_code < 500 and started >= workers:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {within}s:\n{server.tail()}")


def parley_environment(database_url: str, port: int) -> dict[str, str]:
    """``run.py``'s Parley (quotas and rate limits out of reach, the limiter still on
    every request), with no provider: so the offline echo model."""
    env = run_parley_environment(database_url, "", port)
    for provider_setting in ("PARLEY_LOCAL_BASE_URL", "PARLEY_LOCAL_MODELS"):
        del env[provider_setting]
    env.update(PARLEY_DEFAULT_MODEL=ECHO, PARLEY_SHUTDOWN_GRACE_SECONDS="5")
    return env


# ---- databases -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(backend: str, cfg: Config, workdir: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'parley.db'}"
        return
    from sqlalchemy.engine import make_url

    assert cfg.postgres is not None
    drop = f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'
    await _admin(cfg.postgres, drop, f'CREATE DATABASE "{SCRATCH_DATABASE}"')
    try:
        yield (
            make_url(cfg.postgres)
            .set(database=SCRATCH_DATABASE)
            .render_as_string(hide_password=False)
        )
    finally:
        await _admin(cfg.postgres, drop)


# ---- the data --------------------------------------------------------------------------------


@dataclass
class Fixtures:
    tokens: list[str]
    conversations: list[int]


async def set_up(base_url: str, users: int, prefill: int) -> Fixtures:
    """One user per connection, each with one conversation on the echo model."""
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def user(index: int) -> tuple[str, int]:
            async with limit:
                token = await register_user(client, f"workers{index}")
                auth = {"Authorization": f"Bearer {token}"}
                response = await client.post("/api/conversations/", headers=auth)
                if response.status_code != 201:
                    raise RuntimeError(f"conversation: {response.status_code} {response.text}")
                conversation = int(response.json()["id"])
            for _ in range(prefill):
                async with limit:
                    response = await client.post(
                        CHAT_PATH,
                        json={"conversation_id": conversation, "message": MESSAGE},
                        headers=auth,
                    )
                if response.status_code != 201:
                    raise RuntimeError(f"chat: {response.status_code} {response.text[:300]}")
            return token, conversation

        made = await asyncio.gather(*(user(i) for i in range(users)))
        # The model really is the offline one.
        check = await client.post(
            CHAT_PATH,
            json={"conversation_id": made[0][1], "message": MESSAGE},
            headers={"Authorization": f"Bearer {made[0][0]}"},
        )
        reply = check.json()
        text = json.dumps(reply)
        if check.status_code != 201 or "Echo:" not in text:
            raise RuntimeError(f"not the echo model: {check.status_code} {text[:300]}")
    return Fixtures(tokens=[t for t, _ in made], conversations=[c for _, c in made])


def chat_requests(port: int, fx: Fixtures, concurrency: int) -> list[bytes]:
    return [
        build_request(
            "POST",
            "127.0.0.1",
            port,
            CHAT_PATH,
            json.dumps(
                {"conversation_id": fx.conversations[i], "message": MESSAGE},
                separators=(",", ":"),
            ).encode(),
            [
                ("Authorization", f"Bearer {fx.tokens[i]}"),
                ("Content-Type", "application/json"),
            ],
        )
        for i in range(concurrency)
    ]


# ---- measuring -------------------------------------------------------------------------------


@dataclass
class Sample:
    rps: float
    p50: float
    p99: float
    errors: int
    requests: int
    server_cpu_ms: float | None
    worker_cpu_split: list[float]  # share of the workers' CPU, per worker, in %
    generator_cpu_pct: float
    other_load: float  # CPUs busy with processes this run did not start
    database_cpu_ms: float | None = None  # PostgreSQL backends serving the run, per request
    first_error: str = ""


def _ours(server: Server) -> float:
    return sum(os.times()[:2]) + cpu_seconds(server.pid)


def database_backends() -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends connected to the scratch database (found by
    their process titles, ``postgres: user database host(port) state``)."""
    title = SCRATCH_DATABASE.encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            if cmdline.startswith(b"postgres:") and title in cmdline:
                found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


async def measure(
    server: Server,
    port: int,
    fx: Fixtures,
    concurrency: int,
    cfg: Config,
    postgres: bool,
) -> Sample:
    workers = server.workers()
    marks: dict[str, Any] = {}

    def on_window(opening: bool) -> None:
        phase = "open" if opening else "close"
        marks[phase] = cpu_seconds(server.pid)
        marks[phase + "_workers"] = [cpu_seconds(pid) for pid in workers]
        marks[phase + "_machine"] = machine_busy_seconds()
        marks[phase + "_ours"] = _ours(server)
        marks[phase + "_db"] = database_backends() if postgres else {}

    result = await run_cell(
        "127.0.0.1",
        port,
        chat_requests(port, fx, concurrency),
        concurrency=concurrency,
        duration=cfg.duration,
        warmup=cfg.warmup,
        on_window=on_window,
    )
    cpu = marks.get("close", 0.0) - marks.get("open", 0.0)
    per_worker = [
        after - before
        for before, after in zip(
            marks.get("open_workers", []), marks.get("close_workers", []), strict=False
        )
    ]
    total = sum(per_worker)
    opened, closed = marks.get("open_db", {}), marks.get("close_db", {})
    database_cpu = sum(after - opened.get(pid, 0.0) for pid, after in closed.items())
    foreign = (marks.get("close_machine", 0.0) - marks.get("open_machine", 0.0)) - (
        marks.get("close_ours", 0.0) - marks.get("open_ours", 0.0) + database_cpu
    )
    return Sample(
        rps=result.rps,
        p50=percentile(result.latencies_ns, 50),
        p99=percentile(result.latencies_ns, 99),
        errors=result.errors,
        requests=result.requests,
        server_cpu_ms=1000 * cpu / result.requests if result.requests else None,
        worker_cpu_split=[100 * w / total for w in per_worker] if total > 0 else [],
        generator_cpu_pct=100 * result.generator_cpu_s / cfg.duration,
        other_load=max(0.0, foreign / cfg.duration),
        database_cpu_ms=(
            1000 * database_cpu / result.requests if postgres and result.requests else None
        ),
        first_error=result.first_error,
    )


@dataclass
class Bench:
    cfg: Config
    workdir: Path
    samples: dict[tuple[str, int, int], list[Sample]] = field(default_factory=dict)
    servers: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    setup: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


async def prepare(bench: Bench, backend: str, url: str) -> Fixtures:
    cfg = bench.cfg
    env = parley_environment(url, 0)
    log(f"{backend}: parley migrate")
    started = time.monotonic()
    await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "parley"), "migrate"],
        env=env,
        cwd=bench.workdir,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    server = Server(
        f"{backend}-setup",
        [str(BIN / "parley"), "serve", "--no-migrate"],
        parley_environment(url, port),
        bench.workdir,
    )
    try:
        await wait_ready(server, port, 1)
        log(
            f"{backend}: {cfg.users} users, one conversation each, "
            f"{cfg.prefill} exchanges of history each"
        )
        fx = await set_up(f"http://127.0.0.1:{port}", cfg.users, cfg.prefill)
    finally:
        server.stop()
    bench.setup[backend] = {"seconds": time.monotonic() - started}
    return fx


async def measure_server(
    bench: Bench, backend: str, url: str, workers: int, fx: Fixtures, rep: int
) -> None:
    cfg = bench.cfg
    port = free_port()
    cmd = [str(BIN / "parley"), "serve", "--workers", str(workers), "--no-migrate"]
    server = Server(
        f"{backend}-w{workers}-rep{rep + 1}", cmd, parley_environment(url, port), bench.workdir
    )
    info: dict[str, Any] = {"rep": rep + 1}
    try:
        began = time.monotonic()
        await wait_ready(server, port, workers)
        info["start_s"] = time.monotonic() - began
        pids = server.workers()
        info["worker_pids"] = len(pids) if pids != [server.pid] else 1
        info["startups_logged"] = server.log_text().count("Application startup complete")
        if cfg.server_warmup > 0:
            await run_cell(
                "127.0.0.1",
                port,
                chat_requests(port, fx, cfg.users),
                concurrency=cfg.users,
                duration=cfg.server_warmup,
                warmup=0.2,
            )
        levels = cfg.concurrencies if rep % 2 == 0 else list(reversed(cfg.concurrencies))
        for concurrency in levels:
            sample = await measure(
                server, port, fx, concurrency, cfg, postgres=backend == "postgresql"
            )
            bench.samples.setdefault((backend, workers, concurrency), []).append(sample)
            split = "/".join(f"{s:.0f}" for s in sample.worker_cpu_split)
            log(
                f"rep {rep + 1} {backend} workers={workers} c={concurrency}: "
                f"{sample.rps:.1f} req/s p50 {sample.p50:.1f} ms p99 {sample.p99:.1f} ms "
                f"errors {sample.errors}"
                + (f" ({sample.first_error})" if sample.first_error else "")
                + f", worker CPU {split}%, other load {sample.other_load:.2f} CPU"
            )
        info["rss_mb"] = memory_mb(server.pid)
        info["errors_logged"] = server.log_text().count("Traceback")
    finally:
        server.stop()
        bench.servers.setdefault((backend, workers), []).append(info)


async def run(cfg: Config, workdir: Path) -> Bench:
    bench = Bench(cfg, workdir)
    async with contextlib.AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        fixtures: dict[str, Fixtures] = {}
        for backend in cfg.backends:
            urls[backend] = await stack.enter_async_context(database(backend, cfg, workdir))
            fixtures[backend] = await prepare(bench, backend, urls[backend])
        configs = [(b, w) for b in cfg.backends for w in cfg.workers]
        for rep in range(cfg.repetitions):
            shift = (rep * len(configs)) // cfg.repetitions
            for backend, workers in configs[shift:] + configs[:shift]:
                try:
                    await measure_server(
                        bench, backend, urls[backend], workers, fixtures[backend], rep
                    )
                except Exception as error:
                    message = f"rep {rep + 1} {backend} workers={workers}: {error!r}"
                    log(f"FAILED {message}")
                    bench.failures.append(message)
    return bench


# ---- report ----------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v == v]
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def summarise(samples: list[Sample]) -> dict[str, Any]:
    splits = [s.worker_cpu_split for s in samples if s.worker_cpu_split]
    split = (
        [statistics.median(parts) for parts in zip(*splits, strict=False)]
        if splits and len({len(s) for s in splits}) == 1
        else []
    )
    return {
        "rps": _median([s.rps for s in samples]),
        "rps_min": min(s.rps for s in samples),
        "rps_max": max(s.rps for s in samples),
        "p50": _median([s.p50 for s in samples]),
        "p99": _median([s.p99 for s in samples]),
        "errors": sum(s.errors for s in samples),
        "requests": sum(s.requests for s in samples),
        "server_cpu_ms": _median([s.server_cpu_ms for s in samples if s.server_cpu_ms]),
        "database_cpu_ms": _median([s.database_cpu_ms for s in samples if s.database_cpu_ms]),
        "split": split,
        "generator_cpu_pct": _median([s.generator_cpu_pct for s in samples]),
        "other_load": _median([s.other_load for s in samples]),
        "first_error": next((s.first_error for s in samples if s.first_error), ""),
        "n": len(samples),
    }


def just_command(cfg: Config) -> str:
    return " ".join(["just bench-workers", *cfg.command.split()[2:]])


def render(bench: Bench, stamp: str, elapsed: float) -> str:
    cfg = bench.cfg
    machine = machine_info()
    stats = {key: summarise(values) for key, values in bench.samples.items()}
    lines = [
        f"# Chat throughput, offline echo model: SQLite vs PostgreSQL, 1 vs 2 workers -- {stamp}",
        "",
    ]
    if cfg.quick:
        lines += [
            "**Smoke run (`--quick`)**: one short repetition, no history prefill. It shows "
            "the harness works; its numbers are not for quoting.",
            "",
        ]
    lines += [
        f"Command: `{cfg.command}` (= `{just_command(cfg)}`)",
        "",
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model'] or 'unknown model'}), "
        f"Python {machine['python']}, commit {machine['commit']}"
        f"{' (src/ modified)' if machine['dirty'] else ''}; shared with other work "
        f"(the *other load* column: CPUs busy with processes this run did not start, "
        f"PostgreSQL's backends for this run excepted). "
        f"The load generator runs on the same {machine['cpus']} CPUs as the server.",
        "",
        "Server: `parley serve --workers N --no-migrate` after one `parley migrate`; no "
        "provider configured, so the offline `echo` model (`PARLEY_DEFAULT_MODEL=echo`); "
        "`PARLEY_RATE_LIMIT` and `PARLEY_AUTH_RATE_LIMIT` 1000000/second (the limiter "
        "still runs), `PARLEY_MAX_ACTIVE_CONVERSATIONS` 1000000, `PARLEY_LOG_LEVEL` INFO, "
        "access log off (the default); database pools at their defaults (PostgreSQL: 10 + "
        "10 overflow per process).",
        "",
        f"Load: non-streaming `POST {CHAT_PATH}`, closed loop (`bench/loadgen.py`), one "
        f"keep-alive connection per user, each on its own conversation ({cfg.users} users, "
        f"{cfg.prefill} exchanges of history each before measuring; the chat path loads at "
        f"most 50 messages). Per cell: {cfg.warmup:g} s warm-up, {cfg.duration:g} s "
        f"measured; each server warmed with {cfg.server_warmup:g} s of unrecorded load at "
        f"c={cfg.users} after start. {cfg.repetitions} repetition(s), each starting every "
        f"server afresh, the order of servers rotated between repetitions; medians "
        f"(req/s range over repetitions in brackets). Elapsed {elapsed:.0f} s.",
        "",
        "| backend | workers | c | req/s | p50 ms | p99 ms | errors | Parley CPU ms/req "
        "| PostgreSQL CPU ms/req | workers' CPU split % | generator CPU % "
        "| other load (CPUs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for backend in cfg.backends:
        for workers in cfg.workers:
            for concurrency in cfg.concurrencies:
                s = stats.get((backend, workers, concurrency))
                if s is None:
                    lines.append(f"| {backend} | {workers} | {concurrency} | failed ||||||||")
                    continue
                spread = f" ({s['rps_min']:,.0f}-{s['rps_max']:,.0f})" if s["n"] > 1 else ""
                errors = str(s["errors"]) + (f" ({s['first_error']})" if s["errors"] else "")
                lines.append(
                    f"| {backend} | {workers} | {concurrency} | {_fmt(s['rps'])}{spread} "
                    f"| {_fmt(s['p50'])} | {_fmt(s['p99'])} | {errors} "
                    f"| {_fmt(s['server_cpu_ms'], 2)} | {_fmt(s['database_cpu_ms'], 2)} "
                    f"| {' / '.join(f'{v:.0f}' for v in s['split']) or '-'} "
                    f"| {_fmt(s['generator_cpu_pct'], 0)} | {_fmt(s['other_load'], 2)} |"
                )
    lines += ["", "Servers started:", ""]
    lines += [
        "| backend | workers | worker processes found | start-ups logged | ready after s "
        "| RSS after, all processes MB | tracebacks in log |",
        "|---|---:|---|---|---|---|---|",
    ]
    for (backend, workers), infos in sorted(bench.servers.items()):
        lines.append(
            f"| {backend} | {workers} "
            f"| {', '.join(str(i.get('worker_pids', '?')) for i in infos)} "
            f"| {', '.join(str(i.get('startups_logged', '?')) for i in infos)} "
            f"| {', '.join(_fmt(i.get('start_s')) for i in infos)} "
            f"| {', '.join(_fmt(i.get('rss_mb'), 0) for i in infos)} "
            f"| {', '.join(str(i.get('errors_logged', '?')) for i in infos)} |"
        )
    if bench.failures:
        lines += ["", "Failures:", "", *[f"- {f}" for f in bench.failures]]
    lines += ["", "## Reading", "", *reading(cfg, stats)]
    return "\n".join(lines) + "\n"


def reading(cfg: Config, stats: dict[tuple[str, int, int], dict[str, Any]]) -> list[str]:
    out = []
    if len(cfg.workers) >= 2:
        one, two = cfg.workers[0], cfg.workers[1]
        for backend in cfg.backends:
            parts = []
            for c in cfg.concurrencies:
                a, b = stats.get((backend, one, c)), stats.get((backend, two, c))
                if a and b and a["rps"] and b["rps"]:
                    parts.append(
                        f"c={c}: {b['rps'] / a['rps']:.2f}x the req/s "
                        f"({_fmt(a['rps'])} -> {_fmt(b['rps'])}), p99 "
                        f"{_fmt(a['p99'], 0)} -> {_fmt(b['p99'], 0)} ms"
                    )
            if parts:
                out.append(f"- {backend}, {two} workers vs {one}: " + "; ".join(parts) + ".")
    if len(cfg.backends) == 2:
        for workers in cfg.workers:
            parts = []
            for c in cfg.concurrencies:
                a = stats.get(("sqlite", workers, c))
                b = stats.get(("postgresql", workers, c))
                if a and b and a["rps"] and b["rps"]:
                    parts.append(f"c={c}: {b['rps'] / a['rps']:.2f}x")
            if parts:
                out.append(
                    f"- PostgreSQL vs SQLite, {workers} worker(s), req/s: " + "; ".join(parts) + "."
                )
    cpus = os.cpu_count() or 0
    out += [
        "",
        f"This machine has {cpus} CPUs, and the load generator (its CPU use is in the table) "
        "runs on them too, as does PostgreSQL when it is the backend; other work on the "
        "machine takes what the *other load* column says. A second worker can only help "
        "as far as one worker leaves a CPU idle: here the two workers, the generator and "
        "the database share two cores, so 2 vs 1 measures what a second process costs "
        "(memory, a second set of database connections, context switches) as much as what "
        "it brings. On a machine with more cores than Parley's processes the picture "
        "would differ; these numbers do not say how far.",
        "",
        "SQLite: every Parley transaction there begins IMMEDIATE, i.e. takes the "
        "database's single write lock up front, reads included, and a chat exchange is "
        "three of them. Within one process they hardly ever meet: Parley's SQLite driver "
        "runs each transaction's statements on the event loop's thread, so one finishes "
        "before another starts unless it pauses at an `await`. A second process is a "
        "second writer on the same file: a transaction that finds the lock taken backs "
        "off asynchronously (0.2 ms doubling to 20 ms, up to 15 s) and retries, so the "
        "two processes take turns at the lock and a request can wait several back-offs "
        "-- the long p99. A second worker can add CPU for the work around the database "
        "(HTTP, JSON, SQLAlchemy), not for the writes. "
        "PostgreSQL takes row locks only: chats on different conversations do not wait "
        "for one another (the owner-row lock is only taken when a chat starts a "
        "conversation, which this benchmark does not do), at the price of a round trip "
        "per statement and backend processes competing for the same CPUs (their CPU per "
        "request is the *PostgreSQL CPU* column, taken out of *other load*; PostgreSQL's "
        "shared background processes, WAL writer included, stay in *other load*).",
        "",
        "The *workers' CPU split* shows whether both workers carried load (uvicorn's "
        "workers share one listening socket; each keep-alive connection stays with the "
        "worker that accepted it, so the split follows how the kernel handed out the "
        "connections).",
    ]
    if cfg.quick:
        out += [
            "",
            "This was a `--quick` smoke run: one repetition of short cells on conversations "
            "without history. Run without `--quick` for numbers to compare.",
        ]
    return out


# ---- main ------------------------------------------------------------------------------------


def stop_everything() -> None:
    for server in list(STARTED):
        server.stop(timeout=5)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)

    # However the run ends -- an error, Ctrl-C, SIGTERM, SIGHUP -- the servers it started
    # are stopped (by their own process groups).
    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    atexit.register(stop_everything)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-workers-"))
    log(f"scratch directory {workdir}")
    started = time.monotonic()
    try:
        bench = asyncio.run(run(cfg, workdir))
    except KeyboardInterrupt as stop:
        log(f"interrupted ({stop or 'SIGINT'}): servers stopped, nothing written")
        return 130
    finally:
        stop_everything()
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    markdown = render(bench, stamp, time.monotonic() - started)
    RESULTS.mkdir(exist_ok=True)
    name = f"workers-{stamp}{'-quick' if cfg.quick else ''}.md"
    (RESULTS / name).write_text(markdown, encoding="utf-8")
    if cfg.update_latest:
        shutil.copyfile(RESULTS / name, RESULTS / "workers-latest.md")
    log(f"wrote bench/results/{name}" + (" and workers-latest.md" if cfg.update_latest else ""))
    print(markdown)
    return 0 if not bench.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
