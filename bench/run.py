"""Parley's benchmark: what Parley adds between a user and the model, on this machine.

``just bench`` (or ``.venv/bin/python bench/run.py``) starts, as separate processes:

* the fake upstream (``bench/fake_upstream.py``: ``tests.fakes.FakeLLMServer``, answering
  instantly on 127.0.0.1) -- called directly it is the *ceiling*;
* the minimal app (``bench/minimal_app.py``) -- the *floor* of this stack: same server,
  framework, driver and outbound client, two rows written, nothing else;
* Parley itself, started with ``parley serve`` exactly as an operator would (SQLite by
  default, PostgreSQL with ``--postgres``), routed to the fake upstream;

and drives them from this process with ``bench/loadgen.py`` (asyncio protocols on raw
sockets, closed loop). After setting up users and conversations and warming up, it runs
the matrix -- concurrency x {chat, streamed chat, conversation list, 200-message
history} for Parley, {chat, streamed chat} for the floor and the ceiling -- repeating the
whole matrix ``--repetitions`` times in rotated order so machine drift hits every cell
alike, and reports medians. Then, in the same run: experiments (Parley variants started
with ``bench/serve_parley.py``: access log off, SQLite pool, uvloop/httptools, aiohttp
transport), a pyinstrument profile of the chat path, a wrk cross-check of the generator,
the outbound-client comparison (``bench/transport.py``) and the SQL counts
(``bench/count_queries.py``).

Output: ``bench/results/<timestamp>.md`` (+ ``.json`` with every sample summary and the
profile text), copied to ``bench/results/latest.md``.

Options: ``--quick`` (smoke run, < 1 min), ``--postgres URL`` (an admin URL; a fresh
``parley_bench`` database is created and dropped), ``--repetitions N``, ``--duration S``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from loadgen import CellResult, build_request, percentile, run_cell

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
EXTRAS = HERE / ".extras"
PYTHON = sys.executable
BIN = Path(PYTHON).parent

MESSAGE = "What is machine learning? Explain it in two sentences."
SECRET_KEY = "parley-bench-secret-key-0123456789abcdef0123456789abcdef"
PASSWORD = "correct-horse-battery"
MODEL = "fake-model"
HISTORY_MESSAGES = 200
EXTRA_CONVERSATIONS = 10
EXTRAS_PACKAGES = [
    "uvloop",
    "httptools",
    "aiohttp",
    "aiohappyeyeballs",
    "aiosignal",
    "attrs",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
    "httpx-aiohttp",
]

PARLEY_FIRST_TOKEN = re.compile(rb"event: delta")
UPSTREAM_FIRST_TOKEN = re.compile(rb'"delta":\{"content":"[^"]')


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- configuration ---------------------------------------------------------------------------


@dataclass
class Config:
    quick: bool
    postgres: str | None
    repetitions: int
    duration: float
    warmup: float
    concurrencies: list[int]
    experiments: bool
    experiment_duration: float
    experiment_repetitions: int
    update_latest: bool
    profile_seconds: float
    transport: bool
    wrk: bool
    install: bool
    keep: bool
    command: str

    @property
    def users(self) -> int:
        return max(self.concurrencies)


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        description="Benchmark Parley against its ceiling (direct upstream) and floor."
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (< 1 minute)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL admin URL")
    parser.add_argument("--repetitions", type=int, help="matrix repetitions (default 3)")
    parser.add_argument("--duration", type=float, help="seconds measured per cell (default 2)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per cell (default 0.7)")
    parser.add_argument(
        "--concurrency", help="comma-separated levels (default 1,16,64; --quick: 1,16)"
    )
    parser.add_argument("--no-experiments", action="store_true")
    parser.add_argument("--experiment-repetitions", type=int, default=2, help="default 2")
    parser.add_argument(
        "--experiment-duration", type=float, help="seconds per experiment cell (default 1.5)"
    )
    parser.add_argument(
        "--no-latest", action="store_true", help="do not update bench/results/latest*.md"
    )
    parser.add_argument("--no-transport", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-wrk", action="store_true")
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never install wrk (apt) or bench/.extras (pip); skip what is missing",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    quick = args.quick
    concurrency = args.concurrency or ("1,16" if quick else "1,16,64")
    return Config(
        quick=quick,
        postgres=args.postgres,
        repetitions=args.repetitions or (1 if quick else 3),
        duration=args.duration or (0.6 if quick else 2.0),
        warmup=args.warmup if args.warmup is not None else (0.2 if quick else 0.7),
        concurrencies=[int(c) for c in concurrency.split(",")],
        experiments=not args.no_experiments and not quick,
        experiment_duration=args.experiment_duration or (0.5 if quick else 1.5),
        experiment_repetitions=args.experiment_repetitions,
        update_latest=not args.no_latest,
        profile_seconds=0.0 if args.no_profile else (1.0 if quick else 6.0),
        transport=not args.no_transport,
        wrk=not args.no_wrk and not quick,
        install=not args.no_install,
        keep=args.keep,
        command=" ".join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
    )


# ---- processes -------------------------------------------------------------------------------


BASELINE = "baseline (no switch)"
ACCESS_LOG_ON = "+ access log"
LOGS_ON = "+ access log + httpx INFO line"
ACCESS_LOG_OFF = "- access log"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A server this run started; stopped by its own pid only."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            cmd, env=env, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)  # uvicorn: graceful shutdown
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn ``--workers`` are child processes)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                queue += [int(child) for child in children]
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its descendants, all threads."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    """RSS (or another /proc status field) of ``pid`` and its descendants, in MB."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1]) / 1024
    return total or float("nan")


async def wait_ready(process: Process, url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(url)
                if response.status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{process.name} not ready after {within}s:\n{process.tail()}")


def clean_environment() -> dict[str, str]:
    """The inherited environment without anything that configures Parley or a provider."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PARLEY_")
        and not key.endswith(("_API_KEY", "_BASE_URL"))
        and key not in ("PYTHONPATH",)
    }


def parley_environment(database_url: str, upstream: str, port: int) -> dict[str, str]:
    env = clean_environment()
    env.update(
        PARLEY_HOST="127.0.0.1",
        PARLEY_PORT=str(port),
        PARLEY_DATABASE_URL=database_url,
        PARLEY_SECRET_KEY=SECRET_KEY,
        PARLEY_LOCAL_BASE_URL=upstream,
        PARLEY_LOCAL_MODELS=MODEL,
        PARLEY_DEFAULT_MODEL=MODEL,
        PARLEY_MAX_ACTIVE_CONVERSATIONS="1000000",
        PARLEY_ACCESS_TOKEN_MINUTES="600",
        PARLEY_LOG_LEVEL="INFO",  # the default, stated
        # The limiter stays on the path (every request still hits it), at a rate the load
        # cannot reach: the benchmark measures cost, not the throttle.
        PARLEY_RATE_LIMIT="1000000/second",
        PARLEY_AUTH_RATE_LIMIT="1000000/second",
    )
    return env


# ---- PostgreSQL --------------------------------------------------------------------------------


async def _admin(url: str, *statements: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def bench_database(cfg: Config, workdir: Path) -> Any:
    if cfg.postgres is None:
        yield (
            f"sqlite+aiosqlite:///{workdir / 'parley.db'}",
            f"sqlite+aiosqlite:///{workdir}/floor.db",
        )
        return
    from sqlalchemy.engine import make_url

    name = "parley_bench"
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    await _admin(cfg.postgres, drop, f'CREATE DATABASE "{name}"')
    url = make_url(cfg.postgres).set(database=name).render_as_string(hide_password=False)
    try:
        yield url, url
    finally:
        await _admin(cfg.postgres, drop)


# ---- optional tools ----------------------------------------------------------------------------


HTTPX_POOL = "before: providers on httpx's own pool"
AIOSQLITE = "before: SQLite through aiosqlite's thread"


def ensure_extras(cfg: Config) -> dict[str, bool]:
    """uvloop, httptools, aiohttp and httpx-aiohttp for experiments, in bench/.extras."""
    probe = (
        "import importlib.util, json, sys; sys.path.append(sys.argv[1]); "
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
        "('uvloop', 'httptools', 'aiohttp', 'httpx_aiohttp')}))"
    )

    def available() -> dict[str, bool]:
        out = subprocess.run(
            [PYTHON, "-c", probe, str(EXTRAS)], capture_output=True, text=True, check=True
        )
        return dict(json.loads(out.stdout))

    found = available()
    if not all(found.values()) and cfg.install:
        log("installing bench-only packages into bench/.extras (pip --target)")
        subprocess.run(
            [
                PYTHON,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(EXTRAS),
                *EXTRAS_PACKAGES,
            ],
            check=False,
            timeout=300,
        )
        found = available()
    return found


def ensure_wrk(cfg: Config) -> str | None:
    path = shutil.which("wrk")
    if path or not cfg.install or not shutil.which("apt-get") or os.geteuid() != 0:
        return path
    log("wrk not found: apt-get install -y wrk")
    for command in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"]):
        subprocess.run(command, capture_output=True, check=False, timeout=300)
        if shutil.which("wrk"):
            break
    if not shutil.which("wrk"):
        subprocess.run(
            ["apt-get", "install", "-y", "wrk"], capture_output=True, check=False, timeout=300
        )
    return shutil.which("wrk")


# ---- the data the load works on ----------------------------------------------------------------


@dataclass
class Fixtures:
    tokens: list[str]
    chat_conversations: list[int]
    stream_conversations: list[int]
    history_conversation: int


async def register_user(client: httpx.AsyncClient, username: str) -> str:
    """A new user through the API; their access token."""
    response = await client.post(
        "/api/v1/register/",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    if response.status_code != 201:
        raise RuntimeError(f"register: {response.status_code} {response.text[:300]}")
    return str(response.json()["access"])


async def set_up(base_url: str, users: int) -> Fixtures:
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def register(index: int) -> str:
            async with limit:
                return await register_user(client, f"bench{index}")

        tokens = await asyncio.gather(*(register(i) for i in range(users)))

        async def conversations(token: str, count: int) -> list[int]:
            ids = []
            for _ in range(count):
                async with limit:
                    response = await client.post(
                        "/api/conversations/", headers={"Authorization": f"Bearer {token}"}
                    )
                if response.status_code != 201:
                    raise RuntimeError(f"conversation: {response.status_code} {response.text}")
                ids.append(int(response.json()["id"]))
            return ids

        owned = await asyncio.gather(*(conversations(t, 2 + EXTRA_CONVERSATIONS) for t in tokens))
        history = (await conversations(tokens[0], 1))[0]
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        for _ in range(HISTORY_MESSAGES // 2):
            response = await client.post(
                "/api/v1/messages/chat/",
                json={"conversation_id": history, "message": MESSAGE},
                headers=auth,
            )
            if response.status_code != 201:
                raise RuntimeError(f"chat: {response.status_code} {response.text[:300]}")
        check = await client.get(f"/api/conversations/{history}/messages/?limit=500", headers=auth)
        if len(check.json()) != HISTORY_MESSAGES:
            raise RuntimeError(f"history has {len(check.json())} messages")
        return Fixtures(
            tokens=list(tokens),
            chat_conversations=[ids[0] for ids in owned],
            stream_conversations=[ids[1] for ids in owned],
            history_conversation=history,
        )


# ---- cells -------------------------------------------------------------------------------------


@dataclass
class Cell:
    target: str  # ceiling | floor | parley | a variant name
    workload: str  # chat | stream | list | history
    concurrency: int
    port: int
    pid: int
    requests: list[bytes]
    first_token: re.Pattern[bytes] | None = None

    @property
    def key(self) -> str:
        return f"{self.target}|{self.workload}|{self.concurrency}"


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def parley_requests(port: int, fx: Fixtures, workload: str, concurrency: int) -> list[bytes]:
    requests = []
    for index in range(concurrency):
        user = index % len(fx.tokens)
        headers = [("Authorization", f"Bearer {fx.tokens[user]}")]
        if workload in ("chat", "stream"):
            body: dict[str, Any] = {"message": MESSAGE}
            if workload == "chat":
                body["conversation_id"] = fx.chat_conversations[user]
            else:
                body["conversation_id"] = fx.stream_conversations[user]
                body["stream"] = True
            requests.append(
                build_request(
                    "POST",
                    "127.0.0.1",
                    port,
                    "/api/v1/messages/chat/",
                    _json(body),
                    [*headers, ("Content-Type", "application/json")],
                )
            )
        elif workload == "list":
            requests.append(
                build_request("GET", "127.0.0.1", port, "/api/conversations/", b"", headers)
            )
        elif workload == "history":
            path = (
                f"/api/conversations/{fx.history_conversation}/messages/?limit={HISTORY_MESSAGES}"
            )
            owner = [("Authorization", f"Bearer {fx.tokens[0]}")]
            requests.append(build_request("GET", "127.0.0.1", port, path, b"", owner))
        else:
            raise ValueError(workload)
    return requests


def floor_requests(port: int, workload: str, concurrency: int) -> list[bytes]:
    return [
        build_request(
            "POST",
            "127.0.0.1",
            port,
            "/chat/",
            _json(
                {"conversation_id": index + 1, "message": MESSAGE}
                | ({"stream": True} if workload == "stream" else {})
            ),
            [("Content-Type", "application/json")],
        )
        for index in range(concurrency)
    ]


def ceiling_requests(port: int, workload: str) -> list[bytes]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": MESSAGE}],
        "temperature": 0.7,
        "max_tokens": 1024,
    }
    if workload == "stream":
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return [
        build_request(
            "POST",
            "127.0.0.1",
            port,
            "/v1/chat/completions",
            _json(body),
            [("Content-Type", "application/json"), ("Authorization", "Bearer bench")],
        )
    ]


@dataclass
class Sample:
    """One cell run, summarised."""

    key: str
    rps: float
    p50: float
    p99: float
    errors: int
    requests: int
    ttft_p50: float | None = None
    ttft_p99: float | None = None
    server_cpu_ms: float | None = None  # server CPU per request
    generator_cpu_pct: float = 0.0
    rss_max_mb: float | None = None
    first_error: str = ""
    other_load: float = 0.0  # CPUs busy with processes this run did not start


def machine_busy_seconds() -> float:
    """CPU time spent by every process on the machine (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


OURS: list[int] = []  # pids of the servers this run started (see Run.start)
STARTED: list[Process] = []  # stopped at exit whatever happens (see main)


def our_cpu_seconds() -> float:
    return sum(os.times()[:2]) + sum(cpu_seconds(pid) for pid in OURS)


async def measure(
    cell: Cell,
    duration: float,
    warmup: float,
    hook: Callable[[bool], None] | None = None,
) -> Sample:
    marks: dict[str, float] = {}
    rss: list[float] = []
    sampler: asyncio.Task[None] | None = None

    async def sample_rss() -> None:
        while True:
            with contextlib.suppress(OSError):
                rss.append(memory_mb(cell.pid))
            await asyncio.sleep(0.1)

    def on_window(opening: bool) -> None:
        nonlocal sampler
        phase = "open" if opening else "close"
        with contextlib.suppress(OSError):
            marks[phase] = cpu_seconds(cell.pid)
            marks[phase + "_machine"] = machine_busy_seconds()
            marks[phase + "_ours"] = our_cpu_seconds()
        if hook is not None:
            hook(opening)
        if opening:
            sampler = asyncio.get_running_loop().create_task(sample_rss())
        elif sampler is not None:
            sampler.cancel()

    result: CellResult = await run_cell(
        "127.0.0.1",
        cell.port,
        cell.requests,
        concurrency=cell.concurrency,
        duration=duration,
        warmup=warmup,
        first_token=cell.first_token,
        on_window=on_window,
    )
    if sampler is not None:
        sampler.cancel()
    cpu = marks.get("close", 0.0) - marks.get("open", 0.0)
    foreign = (marks.get("close_machine", 0.0) - marks.get("open_machine", 0.0)) - (
        marks.get("close_ours", 0.0) - marks.get("open_ours", 0.0)
    )
    return Sample(
        key=cell.key,
        rps=result.rps,
        p50=percentile(result.latencies_ns, 50),
        p99=percentile(result.latencies_ns, 99),
        errors=result.errors,
        requests=result.requests,
        ttft_p50=percentile(result.ttft_ns, 50) if cell.first_token else None,
        ttft_p99=percentile(result.ttft_ns, 99) if cell.first_token else None,
        server_cpu_ms=1000 * cpu / result.requests if result.requests else None,
        generator_cpu_pct=100 * result.generator_cpu_s / duration,
        rss_max_mb=max(rss) if rss else None,
        first_error=result.first_error,
        other_load=max(0.0, foreign / duration),
    )


def rotated(cells: list[Cell], rep: int, reps: int) -> list[Cell]:
    shift = (rep * len(cells)) // max(reps, 1)
    return cells[shift:] + cells[:shift]


def median_of(samples: list[Sample]) -> dict[str, Any]:
    def med(name: str) -> float | None:
        values = [getattr(s, name) for s in samples if getattr(s, name) is not None]
        values = [v for v in values if v == v]  # drop NaN
        return statistics.median(values) if values else None

    rps = [s.rps for s in samples]
    return {
        "rps": med("rps"),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "p50": med("p50"),
        "p99": med("p99"),
        "ttft_p50": med("ttft_p50"),
        "ttft_p99": med("ttft_p99"),
        "errors": sum(s.errors for s in samples),
        "requests": sum(s.requests for s in samples),
        "server_cpu_ms": med("server_cpu_ms"),
        "generator_cpu_pct": med("generator_cpu_pct"),
        "rss_max_mb": max((s.rss_max_mb for s in samples if s.rss_max_mb), default=None),
        "first_error": next((s.first_error for s in samples if s.first_error), ""),
        "other_load": med("other_load"),
        "other_load_max": max(s.other_load for s in samples),
        "repetitions": len(samples),
    }


# ---- wrk cross-check ---------------------------------------------------------------------------


def run_wrk(
    wrk: str, url: str, request: bytes, concurrency: int, duration: float, workdir: Path
) -> dict[str, Any]:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    headers = [
        line.split(": ", 1)
        for line in lines[1:]
        if not line.lower().startswith(("host:", "content-length:"))
    ]
    script = [f'wrk.method = "{method}"', f"wrk.body = {json.dumps(body.decode())}"]
    script += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers]
    path = workdir / f"wrk-{free_port()}.lua"
    path.write_text("\n".join(script) + "\n")
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(path),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=duration + 60,
    ).stdout

    def latency(label: str) -> float | None:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return None
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match[2]]
        return float(match[1]) * scale

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps[1]) if rps else None,
        "p50": latency("50%"),
        "p99": latency("99%"),
        "errors": (int(non2xx[1]) if non2xx else 0)
        + (sum(map(int, errors.groups())) if errors else 0),
    }


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Run:
    cfg: Config
    workdir: Path
    processes: list[Process] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> Process:
        process = Process(name, cmd, env, self.workdir)
        self.processes.append(process)
        OURS.append(process.pid)
        STARTED.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


async def run(cfg: Config, workdir: Path) -> dict[str, Any]:
    bench = Run(cfg, workdir)
    data = bench.data
    data["config"] = {
        "quick": cfg.quick,
        "repetitions": cfg.repetitions,
        "duration_s": cfg.duration,
        "warmup_s": cfg.warmup,
        "concurrencies": cfg.concurrencies,
        "backend": "postgresql" if cfg.postgres else "sqlite",
        "command": cfg.command,
    }
    data["machine"] = machine_info()
    started = time.monotonic()
    extras = ensure_extras(cfg) if cfg.experiments or (cfg.transport and not cfg.quick) else {}
    data["extras"] = extras
    try:
        async with bench_database(cfg, workdir) as (parley_db, floor_db):
            await _run(bench, parley_db, floor_db, extras)
    finally:
        bench.stop_all()
    data["elapsed_s"] = time.monotonic() - started
    return data


async def _run(bench: Run, parley_db: str, floor_db: str, extras: dict[str, bool]) -> None:
    cfg, data = bench.cfg, bench.data
    fake_port, parley_port, floor_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{fake_port}/v1"

    log("starting the fake upstream, the floor app and a set-up instance of Parley")
    fake = bench.start(
        "fake-upstream",
        [PYTHON, str(HERE / "fake_upstream.py"), "--port", str(fake_port)],
        clean_environment(),
    )
    floor = bench.start(
        "floor",
        [
            PYTHON,
            str(HERE / "minimal_app.py"),
            "--port",
            str(floor_port),
            "--database-url",
            floor_db,
            "--upstream",
            upstream,
        ],
        clean_environment(),
    )
    # On SQLite, a second floor on Parley's own SQLite driver: how much of Parley's
    # standing against the floor is that driver rather than less work per request.
    floor_inline: Process | None = None
    floor_inline_port = free_port()
    if floor_db.startswith("sqlite"):
        floor_inline = bench.start(
            "floor-inline",
            [
                PYTHON,
                str(HERE / "minimal_app.py"),
                "--port",
                str(floor_inline_port),
                "--database-url",
                floor_db.replace("floor.db", "floor-inline.db"),
                "--upstream",
                upstream,
                "--sqlite-driver",
                "parley",
            ],
            clean_environment(),
        )
    await wait_ready(fake, f"http://127.0.0.1:{fake_port}/v1/models")
    await wait_ready(floor, f"http://127.0.0.1:{floor_port}/chat/")
    if floor_inline is not None:
        await wait_ready(floor_inline, f"http://127.0.0.1:{floor_inline_port}/chat/")

    # The data is made through a Parley of its own (migrating the database on the way),
    # so that registering users -- argon2 in worker threads -- does not weigh on the
    # memory of the Parley that is measured. Its own peak is reported.
    setup_port = free_port()
    setup_server = bench.start(
        "parley-setup",
        [str(BIN / "parley"), "serve"],
        parley_environment(parley_db, upstream, setup_port),
    )
    await wait_ready(setup_server, f"http://127.0.0.1:{setup_port}/api/v1/health/")
    log(
        f"setting up {cfg.users} users, their conversations "
        f"and a {HISTORY_MESSAGES}-message history"
    )
    fx = await set_up(f"http://127.0.0.1:{setup_port}", cfg.users)
    data["memory"] = {
        "setup_server_peak_rss_mb": memory_mb(setup_server.pid, "VmHWM"),
        "setup_users": cfg.users,
    }
    setup_server.stop()

    log("starting Parley to measure (parley serve)")
    parley_env = parley_environment(parley_db, upstream, parley_port)
    parley = bench.start("parley", [str(BIN / "parley"), "serve"], parley_env)
    await wait_ready(parley, f"http://127.0.0.1:{parley_port}/api/v1/health/")
    data["memory"]["parley_rss_after_start_mb"] = memory_mb(parley.pid)

    def cells_for(concurrency: int) -> list[Cell]:
        out = [
            Cell(
                "ceiling",
                w,
                concurrency,
                fake_port,
                fake.pid,
                ceiling_requests(fake_port, w),
                UPSTREAM_FIRST_TOKEN if w == "stream" else None,
            )
            for w in ("chat", "stream")
        ]
        out += [
            Cell(
                "floor",
                w,
                concurrency,
                floor_port,
                floor.pid,
                floor_requests(floor_port, w, concurrency),
                PARLEY_FIRST_TOKEN if w == "stream" else None,
            )
            for w in ("chat", "stream")
        ]
        if floor_inline is not None:
            out += [
                Cell(
                    "floor-inline",
                    w,
                    concurrency,
                    floor_inline_port,
                    floor_inline.pid,
                    floor_requests(floor_inline_port, w, concurrency),
                    PARLEY_FIRST_TOKEN if w == "stream" else None,
                )
                for w in ("chat", "stream")
            ]
        out += [
            Cell(
                "parley",
                w,
                concurrency,
                parley_port,
                parley.pid,
                parley_requests(parley_port, fx, w, concurrency),
                PARLEY_FIRST_TOKEN if w == "stream" else None,
            )
            for w in ("chat", "stream", "list", "history")
        ]
        return out

    matrix = [cell for c in cfg.concurrencies for cell in cells_for(c)]

    if not cfg.quick:
        log("warming up every cell once (not recorded)")
        for cell in cells_for(min(4, max(cfg.concurrencies))):
            await measure(cell, 0.5, 0.2)
    data["memory"]["parley_rss_after_warmup_mb"] = memory_mb(parley.pid)

    samples: dict[str, list[Sample]] = {}
    total = len(matrix) * cfg.repetitions
    done = 0
    for rep in range(cfg.repetitions):
        for cell in rotated(matrix, rep, cfg.repetitions):
            sample = await measure(cell, cfg.duration, cfg.warmup)
            samples.setdefault(cell.key, []).append(sample)
            done += 1
            log(
                f"[{done}/{total}] rep {rep + 1} {cell.key}: {sample.rps:.0f} req/s "
                f"p50 {sample.p50:.2f} ms p99 {sample.p99:.2f} ms errors {sample.errors}"
                + (f" ttft p50 {sample.ttft_p50:.2f} ms" if sample.ttft_p50 is not None else "")
            )
    data["matrix"] = {key: median_of(values) for key, values in samples.items()}
    data["samples"] = {key: [vars(s) for s in values] for key, values in samples.items()}
    data["memory"]["parley_peak_rss_mb"] = memory_mb(parley.pid, "VmHWM")
    data["memory"]["parley_rss_c64_max_mb"] = max(
        (
            m["rss_max_mb"] or 0
            for k, m in data["matrix"].items()
            if k.startswith("parley|") and k.endswith("|64")
        ),
        default=None,
    )
    data["memory"]["floor_peak_rss_mb"] = memory_mb(floor.pid, "VmHWM")

    # Each later step is optional evidence: one that fails is reported, not fatal.
    steps: list[tuple[str, Callable[[], Any]]] = []
    if cfg.experiments:
        steps.append(("experiments", lambda: experiments(bench, parley, parley_env, fx, extras)))
    if cfg.profile_seconds > 0:
        steps.append(("py-spy", lambda: cpu_profile(bench, parley, parley_port, fx)))
        if not cfg.quick:
            steps.append(("pyinstrument", lambda: profile(bench, parley_env, fx)))
    if cfg.wrk:
        steps.append(("wrk", lambda: wrk_check(bench, fake_port, parley_port, fx)))
    if cfg.transport:
        steps.append(("transport", lambda: asyncio.to_thread(transport, bench, upstream)))
    steps.append(("queries", lambda: asyncio.to_thread(count_queries, bench)))
    if cfg.postgres is None and not cfg.quick:
        steps.append(("sqlite paths", lambda: asyncio.to_thread(sqlite_paths, bench)))
    for name, step in steps:
        try:
            await step()
        except Exception as error:
            detail = getattr(error, "stderr", b"") or b""
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            log(f"step {name} failed: {error!r}\n{detail[-2000:]}")
            data.setdefault("failed_steps", {})[name] = f"{error!r} {detail[-500:]}"


async def experiments(
    bench: Run, parley: Process, env: dict[str, str], fx: Fixtures, extras: dict[str, bool]
) -> None:
    cfg, data = bench.cfg, bench.data
    sqlite = cfg.postgres is None
    variants: list[tuple[str, list[str]]] = [
        (ACCESS_LOG_ON, ["--access-log", "on"]),
        (LOGS_ON, ["--access-log", "on", "--httpx-log", "info"]),
        (ACCESS_LOG_OFF, ["--access-log", "off"]),
        ("no pool reset on check-in", ["--no-pool-reset"]),
        ("user row cached 10 s", ["--cache-users", "10"]),
    ]
    combined = ["--access-log", "off", "--httpx-log", "warning", "--no-pool-reset"]
    combined += ["--cache-users", "10"]
    # Two steps already taken, measured backwards: Parley as it was before each.
    variants.append((HTTPX_POOL, ["--transport", "httpx"]))
    if sqlite:
        variants.append((AIOSQLITE, ["--sqlite-driver", "aiosqlite"]))
        variants.append(("SQLite pool of 1 connection", ["--sqlite-pool", "1"]))
    if extras.get("uvloop") and extras.get("httptools"):
        variants.append(("uvloop + httptools", ["--loop", "uvloop", "--http", "httptools"]))
        combined += ["--loop", "uvloop", "--http", "httptools"]
    variants.append(("all of the above", combined))

    log(f"experiments: {len(variants)} Parley variants (bench/serve_parley.py)")
    # The baseline is the same launcher without a switch, so that every variant differs
    # from it in exactly one respect. On PostgreSQL ten servers at once would exceed
    # max_connections (100) with Parley's pool of 10 + 10, so every one of them,
    # the baseline included, gets a pool of 4 (+ 10 overflow) there.
    variants.insert(0, (BASELINE, []))
    extra_env = {} if sqlite else {"PARLEY_DB_POOL_SIZE": "4"}
    data["experiment_env"] = extra_env
    servers: list[tuple[str, int, int]] = []
    started = []
    for index, (name, flags) in enumerate(variants):
        port = free_port()
        variant_env = dict(env, PARLEY_PORT=str(port), **extra_env)
        process = bench.start(
            f"variant-{index}",
            [PYTHON, str(HERE / "serve_parley.py"), "--port", str(port), *flags],
            variant_env,
        )
        started.append((name, port, process))
    for name, port, process in started:
        await wait_ready(process, f"http://127.0.0.1:{port}/api/v1/health/")
        servers.append((name, port, process.pid))

    samples: dict[str, list[Sample]] = {}
    plan = [("chat", c) for c in cfg.concurrencies if c <= 16] + [("stream", 1)]
    wide = [c for c in cfg.concurrencies if c > 16]
    # At high concurrency only where the outbound client changes (encode/httpx#3215).
    at_high = {servers[0][0], HTTPX_POOL, "all of the above"}
    plan += [("chat", c) for c in wide]
    steps = [step for _ in range(cfg.experiment_repetitions) for step in plan]
    for turn, (workload, concurrency) in enumerate(steps, 1):
        chosen = [s for s in servers if concurrency <= 16 or s[0] in at_high]
        for offset in range(len(chosen)):
            name, port, pid = chosen[(offset + turn) % len(chosen)]
            cell = Cell(
                name,
                workload,
                concurrency,
                port,
                pid,
                parley_requests(port, fx, workload, concurrency),
                PARLEY_FIRST_TOKEN if workload == "stream" else None,
            )
            sample = await measure(cell, cfg.experiment_duration, cfg.warmup)
            samples.setdefault(cell.key, []).append(sample)
            log(
                f"  {cell.key}: {sample.rps:.0f} req/s p50 {sample.p50:.2f} ms "
                f"errors {sample.errors}"
            )
    data["experiments"] = {
        "variants": [s[0] for s in servers],
        "flags": dict(variants),
        "repetitions": cfg.experiment_repetitions,
        "results": {key: median_of(values) for key, values in samples.items()},
    }
    for _, _, process in started:
        process.stop()


async def profile(bench: Run, env: dict[str, str], fx: Fixtures) -> None:
    cfg, data = bench.cfg, bench.data
    port = free_port()
    output = bench.workdir / "profile-chat.txt"
    process = bench.start(
        "profiled",
        [
            PYTHON,
            str(HERE / "serve_parley.py"),
            "--port",
            str(port),
            "--profile",
            str(output),
            "--profile-interval",
            "0.001",
        ],
        dict(env, PARLEY_PORT=str(port)),
    )
    await wait_ready(process, f"http://127.0.0.1:{port}/api/v1/health/")
    concurrency = 16 if 16 in cfg.concurrencies else max(cfg.concurrencies)
    log(f"profiling the chat path: pyinstrument, c={concurrency}, {cfg.profile_seconds:.0f}s")
    cell = Cell(
        "profiled",
        "chat",
        concurrency,
        port,
        process.pid,
        parley_requests(port, fx, "chat", concurrency),
    )
    await measure(cell, 1.0, 0.2)  # first requests build the engine and HTTP clients

    def start_profiler(opening: bool) -> None:
        if opening:
            os.kill(process.pid, signal.SIGUSR1)

    sample = await measure(cell, cfg.profile_seconds, 0.2, start_profiler)
    process.stop(timeout=120)
    summary_path = output.with_suffix(".json")
    data["profile"] = {
        "concurrency": concurrency,
        "seconds": cfg.profile_seconds,
        "rps_under_profiler": sample.rps,
        "text": output.read_text() if output.exists() else "",
        "summary": json.loads(summary_path.read_text()) if summary_path.exists() else {},
    }


def _frame_parts(frame: str) -> tuple[str, str]:
    """py-spy's ``function (path:line)`` as (function, path)."""
    name, _, where = frame.rpartition(" (")
    return name, where.rstrip(")").rsplit(":", 1)[0]


def _library(path: str) -> str:
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/" in path:
        return "parley " + "/".join(path.split("/src/", 1)[1].split("/")[:2]).removesuffix(".py")
    match = re.search(r"/lib/python3\.\d+/([^/]+)", path)
    return "stdlib " + match[1].removesuffix(".py") if match else (path or "<native>")


async def cpu_profile(bench: Run, parley: Process, port: int, fx: Fixtures) -> None:
    """py-spy, attached from outside to the measured ``parley serve`` (nothing patched):
    only samples holding the GIL, i.e. where the server's CPU goes, all threads."""
    cfg, data = bench.cfg, bench.data
    spy = shutil.which("py-spy") or shutil.which(str(BIN / "py-spy"))
    if spy is None:
        data["cpu_profile"] = {"available": False}
        return
    concurrency = 16 if 16 in cfg.concurrencies else max(cfg.concurrencies)
    log(f"CPU profile of parley serve under chat c={concurrency}: py-spy --gil")
    raw = bench.workdir / "py-spy.txt"
    seconds = max(2, round(cfg.profile_seconds))
    cell = Cell(
        "py-spy",
        "chat",
        concurrency,
        port,
        parley.pid,
        parley_requests(port, fx, "chat", concurrency),
    )
    spy_process: subprocess.Popen[bytes] | None = None

    def attach(opening: bool) -> None:
        nonlocal spy_process
        if opening:
            spy_process = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--gil",
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--full-filenames",
                    "--duration",
                    str(seconds),
                    "--pid",
                    str(parley.pid),
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    sample = await measure(cell, seconds + 0.5, 0.5, attach)
    if spy_process is not None:
        await asyncio.to_thread(spy_process.wait, 60)
    if not raw.exists():
        data["cpu_profile"] = {"available": False}
        return
    total = 0
    self_by_library: dict[str, int] = {}
    self_by_function: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf_name, leaf_path = _frame_parts(frames[-1])
        library = _library(leaf_path)
        self_by_library[library] = self_by_library.get(library, 0) + count
        short = re.sub(r"^.*/lib/python3\.\d+/", "", leaf_path)
        key = f"{leaf_name} ({short.split('/site-packages/')[-1].split('/src/')[-1]})"
        self_by_function[key] = self_by_function.get(key, 0) + count
        for frame in set(frames):
            name, path = _frame_parts(frame)
            if "/src/" in path and not path.endswith("entrypoints/cli.py"):
                where = path.split("/src/", 1)[1]
                inclusive[f"{name} ({where})"] = inclusive.get(f"{name} ({where})", 0) + count

    def top(table: dict[str, int], n: int) -> list[dict[str, Any]]:
        rows = sorted(table.items(), key=lambda kv: kv[1], reverse=True)[:n]
        return [{"name": k, "pct": 100 * v / total} for k, v in rows]

    data["cpu_profile"] = {
        "available": True,
        "concurrency": concurrency,
        "seconds": seconds,
        "samples": total,
        "rps": sample.rps,
        "server_cpu_ms": sample.server_cpu_ms,
        "libraries": top(self_by_library, 20),
        "functions": top(self_by_function, 25),
        "parley_inclusive": top(inclusive, 30),
    }


async def wrk_check(bench: Run, fake_port: int, parley_port: int, fx: Fixtures) -> None:
    cfg, data = bench.cfg, bench.data
    wrk = ensure_wrk(cfg)
    if wrk is None:
        data["wrk"] = {"available": False}
        return
    log("cross-checking the Python generator against wrk (c=16)")
    rows = []
    for name, port, path, request in (
        (
            "fake upstream (ceiling) chat",
            fake_port,
            "/v1/chat/completions",
            ceiling_requests(fake_port, "chat")[0],
        ),
        (
            "Parley chat (one conversation)",
            parley_port,
            "/api/v1/messages/chat/",
            parley_requests(parley_port, fx, "chat", 1)[0],
        ),
    ):
        cell = Cell("wrk-check", "chat", 16, port, 0, [request])
        ours = await measure(cell, cfg.duration, cfg.warmup)
        theirs = await asyncio.to_thread(
            run_wrk, wrk, f"http://127.0.0.1:{port}{path}", request, 16, cfg.duration, bench.workdir
        )
        rows.append(
            {
                "target": name,
                "python": {
                    "rps": ours.rps,
                    "p50": ours.p50,
                    "p99": ours.p99,
                    "cpu_pct": ours.generator_cpu_pct,
                },
                "wrk": theirs,
            }
        )
    data["wrk"] = {"available": True, "rows": rows}


def transport(bench: Run, upstream: str) -> None:
    cfg, data = bench.cfg, bench.data
    log("outbound client comparison (bench/transport.py)")
    out = bench.workdir / "transport.json"
    args = [PYTHON, str(HERE / "transport.py"), "--upstream", upstream, "--json", str(out)]
    if cfg.quick:
        args += ["--concurrency", "16", "--duration", "0.4", "--warmup", "0.2"]
    else:
        args += ["--concurrency", ",".join(map(str, cfg.concurrencies)), "--duration", "1.5"]
    subprocess.run(
        args, check=True, env=clean_environment(), cwd=HERE, capture_output=True, timeout=600
    )
    data["transport"] = json.loads(out.read_text())


def count_queries(bench: Run) -> None:
    log("counting SQL per request (bench/count_queries.py)")
    out = bench.workdir / "queries.json"
    args = [PYTHON, str(HERE / "count_queries.py"), "--json", str(out)]
    if bench.cfg.postgres:
        args += ["--postgres", bench.cfg.postgres]
    subprocess.run(
        args, check=True, env=clean_environment(), cwd=ROOT, capture_output=True, timeout=600
    )
    bench.data["queries"] = json.loads(out.read_text())


def sqlite_paths(bench: Run) -> None:
    log("one SQLite transaction through each access path (bench/sqlite_paths.py)")
    out = bench.workdir / "sqlite-paths.json"
    count = "200" if bench.cfg.quick else "480"
    subprocess.run(
        [PYTHON, str(HERE / "sqlite_paths.py"), "--count", count, "--json", str(out)],
        check=True,
        env=clean_environment(),
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )
    bench.data["sqlite_paths"] = json.loads(out.read_text())


def machine_info() -> dict[str, Any]:
    import importlib.util

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    def version(module: str) -> str:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as v

        try:
            return v(module)
        except PackageNotFoundError:
            return "-"

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "src")),
        "uvloop_in_venv": importlib.util.find_spec("uvloop") is not None,
        "httptools_in_venv": importlib.util.find_spec("httptools") is not None,
        "versions": {
            m: version(m)
            for m in (
                "litestar",
                "uvicorn",
                "httpx",
                "httpcore",
                "sqlalchemy",
                "aiosqlite",
                "asyncpg",
                "msgspec",
            )
        },
    }


# ---- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from report import render

    cfg = parse_args(argv)

    # However the run ends -- an error, Ctrl-C, SIGTERM, SIGHUP -- the servers it started
    # are stopped (by their own pids). In a background shell SIGINT may be ignored, so
    # SIGTERM and SIGHUP are turned into KeyboardInterrupt as well.
    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    atexit.register(lambda: [p.stop(timeout=5) for p in STARTED if p.alive()])

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    log(f"scratch directory {workdir}")
    try:
        data = asyncio.run(run(cfg, workdir))
    finally:
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    data["stamp"] = stamp
    RESULTS.mkdir(exist_ok=True)
    markdown = render(data)
    backend = data["config"]["backend"]
    suffix = "-quick" if cfg.quick else ""
    name = f"{stamp}-{backend}{suffix}"
    (RESULTS / f"{name}.md").write_text(markdown, encoding="utf-8")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    if "profile" in data and data["profile"].get("text"):
        (RESULTS / f"{name}-profile-chat.txt").write_text(data["profile"]["text"], encoding="utf-8")
    if cfg.update_latest:
        shutil.copyfile(RESULTS / f"{name}.md", RESULTS / "latest.md")
    if cfg.update_latest and not cfg.quick:
        shutil.copyfile(RESULTS / f"{name}.md", RESULTS / f"latest-{backend}.md")
    latest = " (and latest.md)" if cfg.update_latest else ""
    log(f"wrote bench/results/{name}.md{latest} in {data['elapsed_s']:.0f}s")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
