"""What every benchmark shares: servers started and stopped by their own process group,
CPU and memory read from /proc, Parley's environment, scratch databases, result files."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench import wrk
from bench.loadgen import percentile, run_cell

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
PARLEY = str(Path(PYTHON).parent / "parley")
SECRET_KEY = "parley-bench-secret-key-0123456789abcdef0123456789abcdef"
PASSWORD = "correct-horse-battery"
MESSAGE = "What is machine learning? Explain it in two sentences."
HEALTH = "/api/v1/health/"
CHAT = "/api/v1/messages/chat/"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# The server under test on one CPU, everything that loads it (the generator, wrk, the fake
# upstream, py-spy) on another, when there are two: they never take each other's CPU.
ALL_CPUS = frozenset(os.sched_getaffinity(0))
SERVER_CPUS = frozenset({min(ALL_CPUS)}) if len(ALL_CPUS) > 1 else ALL_CPUS
LOAD_CPUS = ALL_CPUS - SERVER_CPUS or ALL_CPUS


def pin_this_process_to_load_cpus() -> None:
    """The harness is the load generator; what it starts inherits this unless told."""
    os.sched_setaffinity(0, LOAD_CPUS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- processes -------------------------------------------------------------------------------


class Server:
    """A process this run started, in a process group of its own (so that uvicorn's worker
    children stop with it), logging to ``<workdir>/<name>.log``. Signalled by its own group
    id only; every one still running is stopped at exit (see ``stop_servers_on_exit``)."""

    running: list[Server] = []

    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        workdir: Path,
        cpus: frozenset[int] = ALL_CPUS,
    ) -> None:
        self.name = name
        self.cpus = cpus
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),  # uvicorn's workers inherit it
        )
        self.pid = self.popen.pid  # also its process group id
        Server.running.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

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

    def loaded(self, *libraries: str) -> list[str]:
        """Which of these packages' native modules the server has loaded (e.g. uvloop):
        what it actually runs on, whatever is installed."""
        maps = ""
        for pid in self.workers():
            with contextlib.suppress(OSError):
                maps += Path(f"/proc/{pid}/maps").read_text()
        return [name for name in libraries if f"/site-packages/{name}/" in maps]

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, timeout: float = 20) -> None:
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
        if self in Server.running:
            Server.running.remove(self)


def stop_servers_on_exit() -> None:
    """However the run ends (an error, Ctrl-C, SIGTERM, SIGHUP), stop what it started."""

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)

    def stop_all() -> None:
        for server in list(Server.running):
            server.stop(timeout=5)

    atexit.register(stop_all)


async def wait_ready(server: Server, port: int, path: str = HEALTH, startups: int = 0) -> None:
    """Until ``path`` answers below 500 and the log shows ``startups`` finished start-ups."""
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited:\n{server.log_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"http://127.0.0.1:{port}{path}")
                started = server.log_text().count("Application startup complete")
                if response.status_code < 500 and started >= startups:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after 90 s:\n{server.log_text()[-3000:]}")


def process_tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [int(child) for child in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its descendants, all threads."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError):
            stat = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    """RSS (or ``VmHWM``, the peak) of ``pid`` and its descendants, in MB."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1]) / 1024
    return total or float("nan")


def machine_busy_seconds() -> float:
    """CPU time every process on the machine used (all CPUs), from /proc/stat."""
    values = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backend processes connected to ``database`` (found by process title)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
            if cmdline.startswith(b"postgres:") and database.encode() in cmdline:
                found.append(int(entry.name))
    return found


# ---- one measured cell -----------------------------------------------------------------------


@dataclass
class Sample:
    rps: float
    p50: float
    p99: float
    errors: int
    requests: int
    ttft_p50: float | None = None
    ttft_p99: float | None = None
    server_cpu_ms: float | None = None  # server CPU (all processes and threads) per request
    database_cpu_ms: float | None = None  # PostgreSQL backends of the scratch database
    worker_split: tuple[float, ...] = ()  # each worker's share of the server's CPU, %
    generator_cpu_pct: float = 0.0
    rss_max_mb: float | None = None
    other_load: float = 0.0  # CPUs kept busy by processes this run did not start
    first_error: str = ""


class Window:
    """What a measured window costs the server and the machine: CPU of the server (each
    worker apart), of the PostgreSQL backends of ``database``, of this run's processes and
    of the whole machine (so the rest is other people's load), and the server's RSS
    sampled every 100 ms."""

    def __init__(self, server: Server, database: str | None) -> None:
        self.server = server
        self.database = database
        self.workers = server.workers()
        self.marks: dict[bool, dict[str, Any]] = {}
        self.rss: list[float] = []
        self._sampler: asyncio.Task[None] | None = None

    def _mark(self) -> dict[str, Any]:
        backends = postgres_backends(self.database) if self.database else []
        times = os.times()  # this process, and the children it has waited for (wrk)
        ours = sum(times[:4]) + sum(cpu_seconds(s.pid) for s in Server.running)
        return {
            "server": cpu_seconds(self.server.pid),
            "workers": [cpu_seconds(pid) for pid in self.workers],
            "database": {pid: cpu_seconds(pid) for pid in backends},
            "machine": machine_busy_seconds(),
            "ours": ours,
            "generator": sum(times[:4]),
        }

    async def _sample_rss(self) -> None:
        while True:
            self.rss.append(memory_mb(self.server.pid))
            await asyncio.sleep(0.1)

    def mark(self, opening: bool) -> None:
        self.marks[opening] = self._mark()
        if opening:
            self._sampler = asyncio.get_running_loop().create_task(self._sample_rss())
        elif self._sampler is not None:
            self._sampler.cancel()

    def sample(self, requests: int, duration: float, generator_cpu_s: float | None) -> Sample:
        """A Sample with the costs filled in (latency and the counts left to the caller)."""
        if self._sampler is not None:
            self._sampler.cancel()
        opened, closed = self.marks[True], self.marks[False]
        keys = ("server", "machine", "ours", "generator")
        delta = {k: closed[k] - opened[k] for k in keys}
        # Backends come and go with the pool's connections: each one's own difference (one
        # that ended in the window keeps its last reading; one that began counts from 0).
        before, after = opened["database"], closed["database"]
        delta["database"] = sum(
            after.get(pid, before.get(pid, 0.0)) - before.get(pid, 0.0) for pid in before | after
        )
        split = [b - a for a, b in zip(opened["workers"], closed["workers"], strict=True)]
        per_request = 1000 / requests if requests else float("nan")
        generator = delta["generator"] if generator_cpu_s is None else generator_cpu_s
        return Sample(
            rps=requests / duration if duration else 0.0,
            p50=float("nan"),
            p99=float("nan"),
            errors=0,
            requests=requests,
            server_cpu_ms=delta["server"] * per_request,
            database_cpu_ms=delta["database"] * per_request if self.database else None,
            worker_split=tuple(100 * w / sum(split) for w in split)
            if len(split) > 1 and sum(split) > 0
            else (),
            generator_cpu_pct=100 * generator / duration,
            rss_max_mb=max(self.rss) if self.rss else None,
            other_load=max(0.0, (delta["machine"] - delta["ours"] - delta["database"]) / duration),
        )


async def measure(
    server: Server,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    duration: float,
    warmup: float,
    *,
    first_token: Any = None,
    database: str | None = None,
    on_window: Callable[[bool], None] | None = None,
) -> Sample:
    """One closed-loop cell of ``bench.loadgen`` against ``server``, with its CPU, memory
    and the noise."""
    window = Window(server, database)

    def opening_or_closing(opening: bool) -> None:
        window.mark(opening)
        if on_window is not None:
            on_window(opening)

    result = await run_cell(
        "127.0.0.1",
        port,
        requests,
        concurrency=concurrency,
        duration=duration,
        warmup=warmup,
        first_token=first_token,
        on_window=opening_or_closing,
    )
    sample = window.sample(result.requests, duration, result.generator_cpu_s)
    sample.p50 = percentile(result.latencies_ns, 50)
    sample.p99 = percentile(result.latencies_ns, 99)
    sample.errors = result.errors
    sample.first_error = result.first_error
    if first_token:
        sample.ttft_p50 = percentile(result.ttft_ns, 50)
        sample.ttft_p99 = percentile(result.ttft_ns, 99)
    return sample


async def measure_wrk(
    server: Server,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    duration: int,
    warmup: int,
    *,
    database: str | None = None,
    on_window: Callable[[bool], None] | None = None,
) -> Sample:
    """The same cell with wrk as the generator: a warm-up run, then the measured one
    (whole seconds, its own connections); the window is wrk's whole measured run."""
    if warmup:
        await wrk.run("127.0.0.1", port, requests, concurrency=concurrency, duration=warmup)
    window = Window(server, database)
    window.mark(True)
    if on_window is not None:
        on_window(True)
    result = await wrk.run("127.0.0.1", port, requests, concurrency=concurrency, duration=duration)
    window.mark(False)
    if on_window is not None:
        on_window(False)
    answered = result.requests - result.errors["status"]
    sample = window.sample(answered, result.duration_s, None)
    sample.p50, sample.p99 = result.p50_ms, result.p99_ms
    sample.errors = result.failed
    sample.first_error = result.first_error()
    return sample


def median(samples: list[Sample]) -> dict[str, Any]:
    """Medians over repetitions (errors and requests summed, the req/s range kept)."""
    out: dict[str, Any] = {}
    for f in fields(Sample):
        values = [getattr(s, f.name) for s in samples]
        if f.name in ("errors", "requests"):
            out[f.name] = sum(values)
        elif f.name == "first_error":
            out[f.name] = next((v for v in values if v), "")
        elif f.name == "worker_split":  # per worker, if every repetition saw the same workers
            same = len({len(v) for v in values}) == 1
            out[f.name] = [statistics.median(p) for p in zip(*values, strict=True)] if same else []
        else:
            present = [v for v in values if v is not None and v == v]
            out[f.name] = statistics.median(present) if present else None
    out["rps_range"] = (min(s.rps for s in samples), max(s.rps for s in samples))
    out["n"] = len(samples)
    return out


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


# ---- Parley and its data ---------------------------------------------------------------------


def clean_environment() -> dict[str, str]:
    """The inherited environment without anything that configures Parley or a provider."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PARLEY_")
        and not key.endswith(("_API_KEY", "_BASE_URL"))
        and key != "PYTHONPATH"
    }


def parley_environment(database_url: str, port: int, upstream: str | None) -> dict[str, str]:
    """``parley serve`` as an operator runs it, routed to ``upstream`` (``None``: no
    provider, so the offline ``echo`` model); quotas and rate limits out of reach (the
    limiter still runs on every request)."""
    env = clean_environment()
    env.update(
        PARLEY_HOST="127.0.0.1",
        PARLEY_PORT=str(port),
        PARLEY_DATABASE_URL=database_url,
        PARLEY_SECRET_KEY=SECRET_KEY,
        PARLEY_MAX_ACTIVE_CONVERSATIONS="1000000",
        PARLEY_ACCESS_TOKEN_MINUTES="600",
        PARLEY_LOG_LEVEL="INFO",  # the default, stated
        PARLEY_RATE_LIMIT="1000000/second",
        PARLEY_AUTH_RATE_LIMIT="1000000/second",
        PARLEY_SHUTDOWN_GRACE_SECONDS="5",
    )
    if upstream is None:
        env["PARLEY_DEFAULT_MODEL"] = "echo"
    else:
        env.update(
            PARLEY_LOCAL_BASE_URL=upstream,
            PARLEY_LOCAL_MODELS="fake-model",
            PARLEY_DEFAULT_MODEL="fake-model",
        )
    return env


async def register_user(client: httpx.AsyncClient, username: str) -> str:
    """A new user through the API; their access token."""
    response = await client.post(
        "/api/v1/register/",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    if response.status_code != 201:
        raise RuntimeError(f"register: {response.status_code} {response.text[:300]}")
    return str(response.json()["access"])


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def scratch_database(workdir: Path, postgres: str | None, name: str) -> AsyncIterator[str]:
    """A SQLite file in ``workdir``, or database ``name`` created afresh on the server of
    the admin URL ``postgres`` and dropped afterwards."""
    if postgres is None:
        yield f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
        return
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    await _admin(postgres, drop, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(postgres, drop)


# ---- reports ---------------------------------------------------------------------------------


def machine_line() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return run.stdout.strip()

    dirty = " (src/ modified)" if git("status", "--porcelain", "--", "src") else ""
    return (
        f"Machine: {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.platform()}; Parley at {git('rev-parse', '--short', 'HEAD')}{dirty}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    )


def write_result(name: str, markdown: str, *, quick: bool) -> Path:
    """``bench/results/<name>-latest.md``, replacing the previous run's; smoke runs write
    ``<name>-quick.md`` (git-ignored) instead, so they never stand for a full run."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{'quick' if quick else 'latest'}.md"
    path.write_text(markdown, encoding="utf-8")
    log(f"wrote {path.relative_to(ROOT)}")
    return path
