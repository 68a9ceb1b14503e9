"""``python -m bench run``: Parley against an honest floor and a real peer.

Starts, as separate processes: the fake upstream (``bench.upstream``; called directly, the
*ceiling*), a bare Litestar hello-world and the minimal persisted chat turn (``bench.floor``;
the *floor*), Parley itself (``parley serve`` as an operator runs it, on SQLite or
``--postgres``, once as installed and once with metrics on) and LiteLLM's proxy
(``bench.peer``; the *peer*). Each server under test is pinned to one CPU; the generator,
wrk, the fake upstream and py-spy to the other (when there are two). Non-streamed cells
are driven by wrk where it is installed, streamed ones (time to first token) by
``bench.loadgen``. The matrix runs ``--repetitions`` times in rotated order, so drift on
the machine falls on every cell alike; medians are reported. Then py-spy samples Parley
under chat load (tables and a flame graph) and the SQL per request is counted in-process
(``bench.queries``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import floor as floor_app
from bench import peer, queries, wrk
from bench.harness import (
    ALL_CPUS,
    CHAT,
    LOAD_CPUS,
    MESSAGE,
    PARLEY,
    PYTHON,
    RESULTS,
    ROOT,
    SERVER_CPUS,
    Sample,
    Server,
    clean_environment,
    fmt,
    free_port,
    log,
    machine_line,
    measure,
    measure_wrk,
    median,
    memory_mb,
    parley_environment,
    pin_this_process_to_load_cpus,
    register_user,
    scratch_database,
    wait_ready,
    write_result,
)
from bench.loadgen import build_request

PARLEY_FIRST_TOKEN = re.compile(rb"event: delta")
UPSTREAM_FIRST_TOKEN = re.compile(rb'"delta":\{"content":"[^"]')
WORKLOADS = {"chat": "chat", "stream": "chat, streamed"}
LABELS = {
    "ceiling": "upstream called directly",
    "hello": "bare Litestar hello-world (`GET /`)",
    "floor": "minimal persisted chat turn (`bench/floor.py`)",
    "parley": "Parley, as installed",
    "parley+metrics": "Parley, metrics on",
    "litellm": "LiteLLM proxy {version}: one worker, no database (persists nothing)",
}
NATIVE = ("uvloop", "httptools")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL admin URL (default SQLite)")
    parser.add_argument("--repetitions", type=int, help="of the whole matrix (default 3)")
    parser.add_argument("--duration", type=int, help="seconds measured per cell (default 3)")
    parser.add_argument("--concurrency", help="chat, comma-separated (default 1,16,64)")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy")
    parser.add_argument("--no-litellm", action="store_true", help="skip the peer")
    parser.add_argument("--no-wrk", action="store_true", help="bench.loadgen for every cell")


@dataclass
class Target:
    name: str
    server: Server
    port: int
    workloads: tuple[str, ...] = ("chat", "stream")
    database: str | None = None  # PostgreSQL: whose backends' CPU to count


@dataclass
class Fixtures:
    tokens: list[str]  # Parley's users' access tokens
    chat: list[int]  # a conversation per user for chat, another for streams
    stream: list[int]


@dataclass
class Plan:
    duration: int
    warmup: int  # wrk's, whole seconds; loadgen's is warmup_loadgen
    warmup_loadgen: float
    use_wrk: bool
    samples: dict[tuple[str, str, int], list[Sample]] = field(default_factory=dict)


async def set_up(base_url: str, users: int) -> Fixtures:
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def user(index: int) -> tuple[str, list[int]]:
            async with limit:
                token = await register_user(client, f"bench{index}")
            ids = []
            for _ in range(2):
                async with limit:
                    response = await client.post(
                        "/api/conversations/", headers={"Authorization": f"Bearer {token}"}
                    )
                ids.append(int(response.raise_for_status().json()["id"]))
            return token, ids

        made = await asyncio.gather(*(user(i) for i in range(users)))
    return Fixtures(
        tokens=[t for t, _ in made],
        chat=[ids[0] for _, ids in made],
        stream=[ids[1] for _, ids in made],
    )


def requests(target: Target, workload: str, c: int, fx: Fixtures) -> list[bytes]:
    """What each connection sends: ``c`` of them, each its own user and conversation
    where the server keeps any."""

    def post(path: str, body: dict[str, Any], headers: list[tuple[str, str]]) -> bytes:
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = [*headers, ("Content-Type", "application/json")]
        return build_request("POST", "127.0.0.1", target.port, path, data, headers)

    stream = workload == "stream"
    if target.name in ("ceiling", "litellm"):
        body: dict[str, Any] = {
            "model": "fake-model",
            "messages": [{"role": "user", "content": MESSAGE}],
            "temperature": 0.7,
            "max_tokens": 1024,
        }
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        key = "bench" if target.name == "ceiling" else peer.MASTER_KEY
        return [post(peer.CHAT, body, [("Authorization", f"Bearer {key}")])]
    if target.name == "hello":
        return [build_request("GET", "127.0.0.1", target.port, "/")]
    out = []
    for i in range(c):
        if target.name == "floor":
            token = floor_app.key(i % floor_app.KEYS)
            conversation = floor_app.conversation(i % floor_app.KEYS, stream=stream)
        else:
            token = fx.tokens[i % len(fx.tokens)]
            conversation = (fx.stream if stream else fx.chat)[i % len(fx.tokens)]
        body = {"conversation_id": conversation, "message": MESSAGE, "stream": stream}
        out.append(post(CHAT, body, [("Authorization", f"Bearer {token}")]))
    return out


async def cell(
    target: Target,
    workload: str,
    c: int,
    fx: Fixtures,
    plan: Plan,
    *,
    duration: float | None = None,
    **kw: Any,
) -> Sample:
    prepared = requests(target, workload, c, fx)
    seconds = duration or plan.duration
    if workload == "chat" and plan.use_wrk:
        return await measure_wrk(
            target.server,
            target.port,
            prepared,
            c,
            max(1, round(seconds)),
            plan.warmup,
            database=target.database,
            **kw,
        )
    streamed = workload == "stream"
    token = PARLEY_FIRST_TOKEN if target.name in ("floor", "parley", "parley+metrics") else None
    return await measure(
        target.server,
        target.port,
        prepared,
        c,
        seconds,
        plan.warmup_loadgen,
        first_token=(token or UPSTREAM_FIRST_TOKEN) if streamed else None,
        database=target.database,
        **kw,
    )


def _library(path: str) -> str:
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/" in path:
        return "parley " + "/".join(path.split("/src/", 1)[1].split("/")[:2]).removesuffix(".py")
    match = re.search(r"/lib/python3\.\d+/([^/]+)", path)
    return "stdlib " + match[1].removesuffix(".py") if match else (path or "<native>")


async def cpu_profile(
    parley: Target, fx: Fixtures, plan: Plan, c: int, seconds: int, flame: Path, workdir: Path
) -> Any:
    """py-spy ``--gil``, attached from outside to the measured ``parley serve`` (nothing
    in it changed): twice at once, raw stacks for the tables and the flame graph."""
    spy = shutil.which("py-spy") or shutil.which(str(Path(PYTHON).parent / "py-spy"))
    if spy is None:
        return None
    raw = workdir / "py-spy.txt"
    started: list[subprocess.Popen[bytes]] = []

    def attach(opening: bool) -> None:
        if not opening:
            return
        cmd = [spy, "record", "--gil", "--rate", "250", "--nonblocking"]
        cmd += ["--duration", str(seconds), "--pid", str(parley.server.pid)]
        # The tables group by library (full paths); the graph by function (no line numbers).
        tables, graph = ["raw", "--full-filenames"], ["flamegraph", "--nolineno"]
        for output, form in ((raw, tables), (flame, graph)):
            started.append(
                subprocess.Popen(
                    [*cmd, "--format", *form, "--output", str(output)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    log(f"py-spy on parley serve under chat c={c}, {seconds} s")
    sample = await cell(parley, "chat", c, fx, plan, duration=seconds + 1, on_window=attach)
    for spy_process in started:
        await asyncio.to_thread(spy_process.wait, 60)
    if not raw.exists():
        return None
    libraries: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame.rpartition(" (") for frame in stack.split(";")]
        name, _, where = frames[-1]
        path = where.rstrip(")").rsplit(":", 1)[0]
        libraries[_library(path)] += int(count)
        short = re.sub(r"^.*/(site-packages|src|lib/python3\.\d+)/", "", path)
        functions[f"{name} ({short})"] += int(count)
        for name, _, where in {f for f in frames if "/src/" in f[2]}:
            path = where.rstrip(")").rsplit(":", 1)[0].split("/src/", 1)[1]
            if path != "entrypoints/cli.py":
                inclusive[f"{name} ({path})"] += int(count)
    return {"c": c, "seconds": seconds, "sample": sample, "total": sum(libraries.values())} | {
        "libraries": libraries,
        "functions": functions,
        "inclusive": inclusive,
        "flame": flame if await asyncio.to_thread(flame.exists) else None,
    }


async def start_peer(upstream: str, port: int, workdir: Path) -> tuple[Server | None, str]:
    """LiteLLM's proxy, started (not yet ready), or None and why not."""
    litellm = await peer.install()
    if isinstance(litellm, str):
        return None, litellm
    config = workdir / "litellm.yaml"
    config.write_text(peer.config(upstream), encoding="utf-8")
    env = peer.environment(clean_environment())
    server = Server("litellm", peer.command(litellm, config, port), env, workdir, SERVER_CPUS)
    return server, peer.version()


async def run(args: argparse.Namespace, workdir: Path) -> str:
    quick = args.quick
    chat_cs = [int(c) for c in (args.concurrency or ("1,16" if quick else "1,16,64")).split(",")]
    stream_cs = [c for c in chat_cs if c <= (1 if quick else 16)] or chat_cs[:1]
    repetitions = args.repetitions or (1 if quick else 3)
    use_wrk = not args.no_wrk and wrk.executable() is not None
    plan = Plan(
        duration=args.duration or (1 if quick else 3),
        warmup=0 if quick else 1,
        warmup_loadgen=0.2 if quick else 0.7,
        use_wrk=use_wrk,
    )
    names = ("ceiling", "hello", "floor", "setup", "parley", "metrics", "litellm")
    ports = {name: free_port() for name in names}
    upstream = f"http://127.0.0.1:{ports['ceiling']}/v1"
    env = clean_environment()
    backend = "postgresql" if args.postgres else "sqlite"
    memory: dict[str, float] = {}
    notes: dict[str, str] = {}
    pin_this_process_to_load_cpus()
    async with (
        scratch_database(workdir, args.postgres, "parley_bench") as parley_db,
        scratch_database(workdir, args.postgres, "parley_bench_floor") as floor_db,
    ):
        log("starting the fake upstream, the hello-world, the floor, the peer, a set-up Parley")
        up_cmd = [PYTHON, "-m", "bench.upstream", "--port", str(ports["ceiling"])]
        ceiling = Target(
            "ceiling", Server("upstream", up_cmd, env, workdir, LOAD_CPUS), ports["ceiling"]
        )
        hello_cmd = [PYTHON, "-m", "bench.floor", "--hello", "--port", str(ports["hello"])]
        hello = Target(
            "hello",
            Server("hello", hello_cmd, env, workdir, SERVER_CPUS),
            ports["hello"],
            ("chat",),
        )
        floor_cmd = [PYTHON, "-m", "bench.floor", "--port", str(ports["floor"])]
        floor_cmd += ["--database-url", floor_db, "--upstream", upstream]
        floor = Target(
            "floor",
            Server("floor", floor_cmd, env, workdir, SERVER_CPUS),
            ports["floor"],
            database="parley_bench_floor" if args.postgres else None,
        )
        litellm_server, notes["litellm"] = (
            (None, "skipped: --no-litellm")
            if args.no_litellm
            else await start_peer(upstream, ports["litellm"], workdir)
        )
        setup = Server(
            "parley-setup",
            [PARLEY, "serve"],
            parley_environment(parley_db, ports["setup"], upstream),
            workdir,
            ALL_CPUS,
        )
        await wait_ready(ceiling.server, ceiling.port, "/v1/models")
        await wait_ready(hello.server, hello.port, "/")
        await wait_ready(floor.server, floor.port, CHAT)
        await wait_ready(setup, ports["setup"])
        users = max(chat_cs)
        log(f"{users} users, a conversation each for chat and for streams")
        fx = await set_up(f"http://127.0.0.1:{ports['setup']}", users)
        memory["set-up server's peak (argon2 for every user)"] = memory_mb(setup.pid, "VmHWM")
        setup.stop()

        parley_command, notes["parley"] = await peer.production_parley(ROOT, PARLEY)
        log(
            "starting the Parleys to measure (parley serve, metrics off and on) from "
            + notes["parley"]
        )
        env_parley = parley_environment(parley_db, ports["parley"], upstream)
        database = "parley_bench" if args.postgres else None
        parley = Target(
            "parley",
            Server("parley", [parley_command, "serve"], env_parley, workdir, SERVER_CPUS),
            ports["parley"],
            database=database,
        )
        # The same Parley with GET /metrics on (issue 20): what counting everything costs.
        env_metrics = parley_environment(parley_db, ports["metrics"], upstream)
        env_metrics["PARLEY_METRICS_ENABLED"] = "true"
        metered = Target(
            "parley+metrics",
            Server("parley-metrics", [parley_command, "serve"], env_metrics, workdir, SERVER_CPUS),
            ports["metrics"],
            database=database,
        )
        await wait_ready(parley.server, parley.port)
        await wait_ready(metered.server, metered.port)
        targets = [ceiling, hello, floor, parley, metered]
        if litellm_server is not None:
            try:
                await wait_ready(litellm_server, ports["litellm"], peer.READY)
                targets.append(Target("litellm", litellm_server, ports["litellm"]))
            except RuntimeError as error:
                notes["litellm"] = f"did not start: {str(error).splitlines()[0]}"
                log(notes["litellm"])
                litellm_server.stop()
        memory["Parley after start-up"] = memory_mb(parley.server.pid)
        matrix_plan = [(t, "chat", c) for c in chat_cs for t in targets]
        matrix_plan += [
            (t, "stream", c) for c in stream_cs for t in targets if "stream" in t.workloads
        ]
        log("warming up every server once (not recorded)")
        warm = Plan(1, 0, 0.2, False)
        for target in targets:
            for workload in target.workloads:
                await cell(target, workload, min(4, users), fx, warm, duration=0.3 if quick else 1)
        memory["Parley after warm-up"] = memory_mb(parley.server.pid)
        stacks = {t.name: t.server.loaded(*NATIVE) for t in targets}
        for rep in range(repetitions):
            shift = rep * len(matrix_plan) // repetitions
            for target, workload, c in matrix_plan[shift:] + matrix_plan[:shift]:
                s = await cell(target, workload, c, fx, plan)
                plan.samples.setdefault((target.name, workload, c), []).append(s)
                log(
                    f"rep {rep + 1} {target.name} {workload} c={c}: {s.rps:.0f} req/s "
                    f"p50 {s.p50:.2f} ms errors {s.errors}"
                )
        matrix = {key: median(values) for key, values in plan.samples.items()}
        top = max(chat_cs)
        memory[f"Parley under the c={top} chat cells (max, sampled every 100 ms)"] = (
            matrix["parley", "chat", top]["rss_max_mb"] or 0
        )
        memory["Parley's peak over the run (VmHWM)"] = memory_mb(parley.server.pid, "VmHWM")
        memory["the floor's peak (VmHWM)"] = memory_mb(floor.server.pid, "VmHWM")
        if any(t.name == "litellm" for t in targets) and litellm_server is not None:
            memory["LiteLLM's peak (VmHWM)"] = memory_mb(litellm_server.pid, "VmHWM")
        profile = None
        if not args.no_profile:
            c = 16 if 16 in chat_cs else top
            suffix = "-quick" if quick else ""
            flame = RESULTS / f"chat-{backend}-flame{suffix}.svg"
            RESULTS.mkdir(exist_ok=True)
            profile = await cpu_profile(parley, fx, plan, c, 2 if quick else 6, flame, workdir)
        for target in targets:
            target.server.stop()
    log("counting SQL per request in-process (bench.queries)")
    counted = await queries.count(args.postgres)
    settings = {
        "backend": backend,
        "repetitions": repetitions,
        "plan": plan,
        "chat_cs": chat_cs,
        "stream_cs": stream_cs,
        "notes": notes,
        "stacks": stacks,
    }
    return render(args, settings, matrix, memory, counted, profile)


# ---- the report ------------------------------------------------------------------------------


def _pct(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b or a != a or b != b else f"{100 * a / b:.0f}%"


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _get(m: dict[tuple[str, str, int], dict[str, Any]], *key: Any) -> dict[str, Any]:
    return m.get(key, {})


def summary(
    m: dict[tuple[str, str, int], dict[str, Any]], cfg: dict[str, Any]
) -> tuple[list[tuple[str, str, int, str]], dict[str, list[float | None]]]:
    """The issue's table: its columns (workload, c, field) and each target's values."""
    top = max(cfg["chat_cs"])
    mid = 16 if 16 in cfg["chat_cs"] else top
    columns = [
        ("c=1 req/s", "chat", 1, "rps"),
        ("c=1 p50 ms", "chat", 1, "p50"),
        (f"c={mid} req/s", "chat", mid, "rps"),
        (f"c={top} req/s", "chat", top, "rps"),
        ("stream TTFT p50 c=1 ms", "stream", 1, "ttft_p50"),
        (f"server CPU ms/req (chat, c={mid})", "chat", mid, "server_cpu_ms"),
    ]
    if top == mid:
        del columns[3]
    rows = {
        name: [_get(m, name, w, c).get(f) for _, w, c, f in columns]
        for name in LABELS
        if any(key[0] == name for key in m)
    }
    return columns, rows


def render(
    args: argparse.Namespace,
    cfg: dict[str, Any],
    m: dict[tuple[str, str, int], dict[str, Any]],
    memory: dict[str, float],
    counted: dict[str, Any],
    profile: Any,
) -> str:
    plan: Plan = cfg["plan"]
    backend = cfg["backend"]
    command = " ".join(
        ["just bench", *(["--quick"] if args.quick else [])]
        + ([f"--postgres {args.postgres}"] if args.postgres else [])
    )
    generators = (
        f"non-streamed cells by wrk (one thread per connection; {plan.warmup:g} s warm-up), "
        f"streamed ones by `bench/loadgen.py` (time to first token; {plan.warmup_loadgen:g} s "
        "warm-up)"
        if plan.use_wrk
        else f"every cell by `bench/loadgen.py` ({plan.warmup_loadgen:g} s warm-up; wrk not "
        "installed, or `--no-wrk`)"
    )
    server_cpus, load_cpus = (",".join(map(str, sorted(c))) for c in (SERVER_CPUS, LOAD_CPUS))
    pinned = (
        f"servers under test pinned to CPU {server_cpus}; the generator, wrk, the fake "
        f"upstream and py-spy to CPU {load_cpus}"
        if SERVER_CPUS != LOAD_CPUS
        else "one CPU: nothing pinned"
    )
    out = [f"# Parley against its floor and a peer ({backend})", ""]
    if args.quick:
        out += ["**Smoke run (`--quick`)**: it shows the harness works; not numbers to quote.", ""]
    out += [
        f"Command: `{command}`. {machine_line()}",
        "",
        f"Closed loops, {generators}; {plan.duration:g} s measured per cell, "
        f"{cfg['repetitions']} repetition(s) of the whole matrix in rotated order, medians; "
        f"{pinned}. The fake "
        "upstream answers at once. Each connection is its own user and conversation (Parley, "
        "the floor); Parley authenticates with its access JWT, the floor with an API key's "
        f"digest. Parley runs from {cfg['notes'].get('parley', 'the dev venv')}.",
        "",
    ]
    columns, rows = summary(m, cfg)
    peer_note = cfg["notes"].get("litellm", "")
    out += [
        "| target | " + " | ".join(c[0] for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, values in rows.items():
        label = LABELS[name].format(version=peer_note)
        digits = [2 if f in ("p50", "ttft_p50", "server_cpu_ms") else 0 for *_, f in columns]
        cells = [fmt(v, d) for v, d in zip(values, digits, strict=True)]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    if "litellm" not in rows:
        out.append(f"| LiteLLM proxy: not measured ({peer_note}) |" + " |" * len(columns))
    out += [
        "",
        "Ratios per cell (Parley's value as a share of the other's: req/s wants high, "
        "latency and CPU low):",
        "",
    ]
    out += [
        "| ratio | " + " | ".join(c[0] for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for other, shown in (("floor", "the floor"), ("litellm", "LiteLLM")):
        if "parley" in rows and other in rows:
            ratios = [_pct(p, o) for p, o in zip(rows["parley"], rows[other], strict=True)]
            out.append(f"| Parley / {shown} | " + " | ".join(ratios) + " |")
    mid = 16 if 16 in cfg["chat_cs"] else max(cfg["chat_cs"])
    hello_cpu = _get(m, "hello", "chat", mid).get("server_cpu_ms")
    hello_stack = ", ".join(cfg["stacks"].get("hello", [])) or "asyncio, h11"
    floor_cpu = _get(m, "floor", "chat", mid).get("server_cpu_ms")
    out += [
        "",
        f"The floor's own cost: the bare hello-world takes {fmt(hello_cpu, 2)} ms of server "
        f"CPU per request at c={mid} on the same server (uvicorn, {hello_stack}); "
        f"the floor {fmt(floor_cpu, 2)} ms, so its two SELECTs, two commits and the "
        f"upstream call add {fmt(_minus(floor_cpu, hello_cpu), 2)} ms.",
        "",
        "Event loop and HTTP parser as run (native modules loaded in each server): "
        + "; ".join(
            f"{name}: {', '.join(libs) or 'asyncio, h11'}"
            for name, libs in cfg["stacks"].items()
            if name != "ceiling"  # the fake upstream: an asyncio server of its own
        )
        + ".",
    ]
    out += ["", "## Targets", "", "| target | measured | goal | met |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(m, cfg, counted)]
    out += [
        "",
        "## Every cell",
        "",
        "Latency in ms; server CPU = CPU time of the server (all processes and threads) per "
        "request; database CPU = its PostgreSQL backends' per request; generator CPU = the "
        "load generator's (wrk's, or this process's) use of one core; other load = CPUs busy "
        "with processes this run did not start (the noise on a shared machine).",
        "",
        "| server | workload | c | req/s (range) | p50 | p99 | TTFT p50 | TTFT p99 | errors "
        "| server CPU ms/req | database CPU ms/req | generator CPU % | other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, workload, c), r in sorted(
        m.items(), key=lambda kv: (list(LABELS).index(kv[0][0]), kv[0][1], kv[0][2])
    ):
        low, high = r["rps_range"]
        errors = f"{r['errors']}" + (f" ({r['first_error']})" if r["errors"] else "")
        shown = "GET /" if name == "hello" else WORKLOADS[workload]
        out.append(
            f"| {name} | {shown} | {c} | {fmt(r['rps'], 0)} ({fmt(low, 0)}-{fmt(high, 0)}) "
            f"| {fmt(r['p50'], 2)} | {fmt(r['p99'], 2)} | {fmt(r['ttft_p50'], 2)} "
            f"| {fmt(r['ttft_p99'], 2)} | {errors} | {fmt(r['server_cpu_ms'], 2)} "
            f"| {fmt(r['database_cpu_ms'], 2)} | {fmt(r['generator_cpu_pct'], 0)} "
            f"| {fmt(r['other_load'], 2)} |"
        )
    out += [
        "",
        "## What metrics cost",
        "",
        "The same `parley serve` on the same database with `PARLEY_METRICS_ENABLED=true` "
        "(HTTP, chat, database metrics), in the same run.",
        "",
        "| workload | c | req/s off → on | change | p50 off → on (ms) "
        "| server CPU ms/req off → on |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (name, workload, c), on in m.items():
        if name != "parley+metrics" or ("parley", workload, c) not in m:
            continue
        off = m["parley", workload, c]
        out.append(
            f"| {WORKLOADS[workload]} | {c} | {fmt(off['rps'], 0)} → {fmt(on['rps'], 0)} "
            f"| {_pct(on['rps'], off['rps'])} | {fmt(off['p50'], 2)} → {fmt(on['p50'], 2)} "
            f"| {fmt(off['server_cpu_ms'], 2)} → {fmt(on['server_cpu_ms'], 2)} |"
        )
    out += ["", "## Memory", "", *[f"- {k}: {v:.0f} MB RSS" for k, v in memory.items()]]
    out += ["", "## SQL per request (`bench/queries.py`)", "", *queries.markdown(counted)]
    if profile is not None:
        out += profile_section(profile)
    return "\n".join(out) + "\n"


def targets(
    m: dict[tuple[str, str, int], dict[str, Any]], cfg: dict[str, Any], counted: dict[str, Any]
) -> list[tuple[str, str, str, str]]:
    """The issue's targets: (what, measured, goal, met)."""
    cs, backend = cfg["chat_cs"], cfg["backend"]
    rows: list[tuple[str, str, str, bool | None]] = []
    if 16 in cs:
        p, f = _get(m, "parley", "chat", 16).get("rps"), _get(m, "floor", "chat", 16).get("rps")
        rows.append(
            (
                f"{backend}: chat req/s vs the floor, c=16",
                f"{fmt(p, 0)} vs {fmt(f, 0)} = {_pct(p, f)}",
                "≥ 70%",
                None if p is None or f is None else p >= 0.7 * f,
            )
        )
    for label, workload, key, goal in (
        ("chat: added p50 over the floor, c=1", "chat", "p50", 1.5),
        ("stream: added time to first token over the floor, c=1", "stream", "ttft_p50", 1.0),
    ):
        p, f = _get(m, "parley", workload, 1).get(key), _get(m, "floor", workload, 1).get(key)
        added = _minus(p, f)
        rows.append(
            (
                label + ("" if backend == "sqlite" else " (goal: on SQLite)"),
                f"{fmt(added, 2)} ms ({fmt(p, 2)} vs {fmt(f, 2)})",
                f"≤ {goal:g} ms",
                None if added is None else added <= goal,
            )
        )
    if 16 in cs:
        p, lt = _get(m, "parley", "chat", 16).get("rps"), _get(m, "litellm", "chat", 16).get("rps")
        ratio = f"{p / lt:.1f}x" if p and lt else "-"
        rows.append(
            (
                "chat req/s vs LiteLLM, c=16"
                + ("" if backend == "sqlite" else " (goal: on SQLite)"),
                f"{fmt(p, 0)} vs {fmt(lt, 0)} = {ratio}",
                "≥ 3x",
                None if not p or not lt else p >= 3 * lt,
            )
        )
    chat, history = counted["chat"], counted["history_20000"]
    rows.append(
        (
            "SQL per chat exchange",
            f"{chat['statements']:g} statements, {chat['commits']:g} commits",
            "≤ 6, ≤ 2",
            chat["statements"] <= 6 and chat["commits"] <= 2,
        )
    )
    rows.append(
        (
            "chat path in 2 transactions" + ("" if backend == "postgresql" else " (PostgreSQL's)"),
            f"{chat['transactions']:g} transactions ({chat['checkouts']:g} pool check-outs)",
            "2",
            chat["transactions"] <= 2,
        )
    )
    on_messages = [s for s in history["full_sql"] if "FROM messages" in s]
    rows.append(
        (
            "history: one bounded query",
            f"{len(on_messages)} on messages; "
            f"{fmt(counted['history_200']['ms'])} ms at 200 vs {fmt(history['ms'])} ms "
            "at 20,000 messages",
            "O(page)",
            len(on_messages) == 1 and "LIMIT" in on_messages[0],
        )
    )
    top = max(cs)
    rss = _get(m, "parley", "chat", top).get("rss_max_mb")
    rows.append(
        (
            f"server RSS at c={top}",
            f"{fmt(rss, 0)} MB",
            "≤ 150 MB",
            None if rss is None else rss <= 150,
        )
    )
    shown = {True: "yes", False: "**no**", None: "not measured"}
    return [(a, b, c, shown[d]) for a, b, c, d in rows]


def profile_section(profile: dict[str, Any]) -> list[str]:
    s, total = profile["sample"], profile["total"] or 1
    flame = profile["flame"]
    out = [
        "",
        f"## Where Parley's CPU goes: chat, c={profile['c']}",
        "",
        f"py-spy `--gil` attached to `parley serve` for {profile['seconds']} s: "
        f"{total} samples, {fmt(s.rps, 0)} req/s, {fmt(s.server_cpu_ms, 2)} ms CPU per "
        "request. Percentages are of CPU samples (whichever thread holds the GIL)."
        + (f" Flame graph: [`{flame.name}`]({flame.name})." if flame is not None else ""),
    ]
    for title, table, n in (
        ("library (self)", "libraries", 16),
        ("function (self)", "functions", 20),
        ("Parley function (inclusive)", "inclusive", 25),
    ):
        out += ["", f"| {title} | % of CPU |", "|---|---:|"]
        out += [f"| `{k}` | {100 * v / total:.1f} |" for k, v in profile[table].most_common(n)]
    return out


def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    started = time.monotonic()
    try:
        markdown = asyncio.run(run(args, workdir))
    finally:
        for server in list(Server.running):
            server.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    name = f"chat-{'postgresql' if args.postgres else 'sqlite'}"
    write_result(name, markdown, quick=args.quick)
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0
