"""``python -m bench run``: what Parley adds between a user and the model.

Starts, as separate processes, the fake upstream (``bench.upstream``; called directly it
is the *ceiling*), the minimal app (``bench.floor``; the *floor* of this stack) and Parley
itself (``parley serve``, as an operator runs it, on SQLite or ``--postgres``), and drives
them with ``bench.loadgen``. The data is made through a separate set-up Parley (so that
argon2 does not sit in the measured server's memory). The matrix -- concurrency x {chat,
streamed chat} for all three, plus the conversation list and a 200-message history for
Parley -- runs ``--repetitions`` times in rotated order, so drift on the machine falls on
every cell alike; medians are reported. Then py-spy samples the measured server under
chat load, and the SQL per request is counted in-process (``bench.queries``).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import queries
from bench.harness import (
    CHAT,
    MESSAGE,
    PARLEY,
    PYTHON,
    Sample,
    Server,
    clean_environment,
    fmt,
    free_port,
    log,
    machine_line,
    measure,
    median,
    memory_mb,
    parley_environment,
    register_user,
    scratch_database,
    wait_ready,
    write_result,
)
from bench.loadgen import build_request

HISTORY = 200
PARLEY_FIRST_TOKEN = re.compile(rb"event: delta")
UPSTREAM_FIRST_TOKEN = re.compile(rb'"delta":\{"content":"[^"]')
WORKLOADS = {"chat": "chat", "stream": "chat, streamed", "list": "list", "history": "history"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL admin URL (default SQLite)")
    parser.add_argument("--repetitions", type=int, help="of the whole matrix (default 3)")
    parser.add_argument("--duration", type=float, help="seconds measured per cell (default 2)")
    parser.add_argument("--concurrency", help="comma-separated (default 1,16,64; --quick 1,16)")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy")


@dataclass
class Target:
    name: str  # ceiling | floor | parley
    server: Server
    port: int


@dataclass
class Fixtures:
    tokens: list[str]
    chat: list[int]  # a conversation per user for chat, another for streams
    stream: list[int]
    history: int  # user 0's conversation of exactly HISTORY messages


async def set_up(base_url: str, users: int) -> Fixtures:
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def user(index: int) -> tuple[str, list[int]]:
            async with limit:
                token = await register_user(client, f"bench{index}")
            ids = []
            for _ in range(12):
                async with limit:
                    response = await client.post(
                        "/api/conversations/", headers={"Authorization": f"Bearer {token}"}
                    )
                ids.append(int(response.raise_for_status().json()["id"]))
            return token, ids

        made = await asyncio.gather(*(user(i) for i in range(users)))
        auth = {"Authorization": f"Bearer {made[0][0]}"}
        response = await client.post("/api/conversations/", headers=auth)
        history = int(response.raise_for_status().json()["id"])
        for _ in range(HISTORY // 2):
            body = {"conversation_id": history, "message": MESSAGE}
            (await client.post(CHAT, json=body, headers=auth)).raise_for_status()
        path = f"/api/conversations/{history}/messages/?limit=500"
        if len((await client.get(path, headers=auth)).json()) != HISTORY:
            raise RuntimeError(f"the history conversation does not have {HISTORY} messages")
    return Fixtures(
        tokens=[t for t, _ in made],
        chat=[ids[0] for _, ids in made],
        stream=[ids[1] for _, ids in made],
        history=history,
    )


def requests(target: Target, workload: str, c: int, fx: Fixtures) -> list[bytes]:
    def post(path: str, body: dict[str, Any], headers: list[tuple[str, str]]) -> bytes:
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = [*headers, ("Content-Type", "application/json")]
        return build_request("POST", "127.0.0.1", target.port, path, data, headers)

    stream = workload == "stream"
    if target.name == "ceiling":
        body: dict[str, Any] = {
            "model": "fake-model",
            "messages": [{"role": "user", "content": MESSAGE}],
            "temperature": 0.7,
            "max_tokens": 1024,
        }
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return [post("/v1/chat/completions", body, [("Authorization", "Bearer bench")])]
    if target.name == "floor":
        return [
            post("/chat/", {"conversation_id": i + 1, "message": MESSAGE, "stream": stream}, [])
            for i in range(c)
        ]
    out = []
    for i in range(c):
        auth = [("Authorization", f"Bearer {fx.tokens[i % len(fx.tokens)]}")]
        conversation = (fx.stream if stream else fx.chat)[i % len(fx.tokens)]
        if workload in ("chat", "stream"):
            body = {"conversation_id": conversation, "message": MESSAGE, "stream": stream}
            out.append(post(CHAT, body, auth))
        elif workload == "list":
            out.append(
                build_request("GET", "127.0.0.1", target.port, "/api/conversations/", b"", auth)
            )
        else:
            path = f"/api/conversations/{fx.history}/messages/?limit={HISTORY}"
            owner = [("Authorization", f"Bearer {fx.tokens[0]}")]
            out.append(build_request("GET", "127.0.0.1", target.port, path, b"", owner))
    return out


async def cell(
    target: Target, workload: str, c: int, fx: Fixtures, duration: float, warmup: float, **kw: Any
) -> Sample:
    token = UPSTREAM_FIRST_TOKEN if target.name == "ceiling" else PARLEY_FIRST_TOKEN
    return await measure(
        target.server,
        target.port,
        requests(target, workload, c, fx),
        c,
        duration,
        warmup,
        first_token=token if workload == "stream" else None,
        **kw,
    )


def _library(path: str) -> str:
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/" in path:
        return "parley " + "/".join(path.split("/src/", 1)[1].split("/")[:2]).removesuffix(".py")
    match = re.search(r"/lib/python3\.\d+/([^/]+)", path)
    return "stdlib " + match[1].removesuffix(".py") if match else (path or "<native>")


async def cpu_profile(parley: Target, fx: Fixtures, c: int, seconds: int, workdir: Path) -> Any:
    """py-spy ``--gil``, attached from outside to the measured ``parley serve``: where the
    server's CPU goes, all threads, nothing in it changed."""
    spy = shutil.which("py-spy") or shutil.which(str(Path(PYTHON).parent / "py-spy"))
    if spy is None:
        return None
    raw = workdir / "py-spy.txt"
    started: list[subprocess.Popen[bytes]] = []

    def attach(opening: bool) -> None:
        if opening:
            cmd = [spy, "record", "--gil", "--rate", "250", "--format", "raw", "--nonblocking"]
            cmd += ["--full-filenames", "--duration", str(seconds), "--pid", str(parley.server.pid)]
            started.append(
                subprocess.Popen(
                    [*cmd, "--output", str(raw)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    log(f"py-spy on parley serve under chat c={c}, {seconds} s")
    sample = await cell(parley, "chat", c, fx, seconds + 0.5, 0.5, on_window=attach)
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
    }


async def run(args: argparse.Namespace, workdir: Path) -> str:
    quick = args.quick
    concurrencies = [
        int(c) for c in (args.concurrency or ("1,16" if quick else "1,16,64")).split(",")
    ]
    repetitions = args.repetitions or (1 if quick else 3)
    duration = args.duration or (0.6 if quick else 2.0)
    warmup = 0.2 if quick else 0.7
    ports = {name: free_port() for name in ("ceiling", "floor", "setup", "parley", "metrics")}
    upstream = f"http://127.0.0.1:{ports['ceiling']}/v1"
    env = clean_environment()
    backend = "postgresql" if args.postgres else "sqlite"
    memory: dict[str, float] = {}
    async with (
        scratch_database(workdir, args.postgres, "parley_bench") as parley_db,
        scratch_database(workdir, args.postgres, "parley_bench_floor") as floor_db,
    ):
        log("starting the fake upstream, the floor and a set-up Parley")
        ceiling = Target(
            "ceiling",
            Server(
                "upstream",
                [PYTHON, "-m", "bench.upstream", "--port", str(ports["ceiling"])],
                env,
                workdir,
            ),
            ports["ceiling"],
        )
        floor_cmd = [PYTHON, "-m", "bench.floor", "--port", str(ports["floor"])]
        floor_cmd += ["--database-url", floor_db, "--upstream", upstream]
        floor = Target("floor", Server("floor", floor_cmd, env, workdir), ports["floor"])
        setup = Server(
            "parley-setup",
            [PARLEY, "serve"],
            parley_environment(parley_db, ports["setup"], upstream),
            workdir,
        )
        await wait_ready(ceiling.server, ceiling.port, "/v1/models")
        await wait_ready(floor.server, floor.port, "/chat/")
        await wait_ready(setup, ports["setup"])
        users = max(concurrencies)
        log(f"{users} users, 12 conversations each, a {HISTORY}-message history")
        fx = await set_up(f"http://127.0.0.1:{ports['setup']}", users)
        memory["set-up server's peak (argon2 for every user)"] = memory_mb(setup.pid, "VmHWM")
        setup.stop()

        log("starting the Parley to measure (parley serve)")
        env_parley = parley_environment(parley_db, ports["parley"], upstream)
        parley = Target(
            "parley", Server("parley", [PARLEY, "serve"], env_parley, workdir), ports["parley"]
        )
        # The same Parley with GET /metrics on (issue 20): what counting everything costs.
        env_metrics = parley_environment(parley_db, ports["metrics"], upstream)
        env_metrics["PARLEY_METRICS_ENABLED"] = "true"
        metered = Target(
            "parley+metrics",
            Server("parley-metrics", [PARLEY, "serve"], env_metrics, workdir),
            ports["metrics"],
        )
        await wait_ready(parley.server, parley.port)
        await wait_ready(metered.server, metered.port)
        memory["Parley after start-up"] = memory_mb(parley.server.pid)
        plan = [
            (t, w, c) for c in concurrencies for t in (ceiling, floor) for w in ("chat", "stream")
        ]
        plan += [(parley, w, c) for c in concurrencies for w in WORKLOADS]
        plan += [(metered, w, c) for c in concurrencies for w in ("chat", "stream")]
        if not quick:
            log("warming up every cell once (not recorded)")
            for target, workload, _ in plan:
                await cell(target, workload, min(4, users), fx, 0.5, 0.2)
        memory["Parley after warm-up"] = memory_mb(parley.server.pid)
        samples: dict[tuple[str, str, int], list[Sample]] = {}
        for rep in range(repetitions):
            shift = rep * len(plan) // repetitions
            for target, workload, c in plan[shift:] + plan[:shift]:
                s = await cell(target, workload, c, fx, duration, warmup)
                samples.setdefault((target.name, workload, c), []).append(s)
                log(
                    f"rep {rep + 1} {target.name} {workload} c={c}: {s.rps:.0f} req/s "
                    f"p50 {s.p50:.2f} ms errors {s.errors}"
                )
        matrix = {key: median(values) for key, values in samples.items()}
        top = max(concurrencies)
        memory[f"Parley under the c={top} cells (max, sampled every 100 ms)"] = max(
            matrix["parley", w, top]["rss_max_mb"] or 0 for w in WORKLOADS
        )
        memory["Parley's peak over the run (VmHWM)"] = memory_mb(parley.server.pid, "VmHWM")
        memory["the floor's peak (VmHWM)"] = memory_mb(floor.server.pid, "VmHWM")
        profile = None
        if not args.no_profile:
            c = 16 if 16 in concurrencies else top
            profile = await cpu_profile(parley, fx, c, 2 if quick else 6, workdir)
        for target in (parley, metered, floor, ceiling):
            target.server.stop()
    log("counting SQL per request in-process (bench.queries)")
    counted = await queries.count(args.postgres)
    settings = {"backend": backend, "repetitions": repetitions, "duration": duration}
    return render(
        args, settings | {"warmup": warmup, "cs": concurrencies}, matrix, memory, counted, profile
    )


# ---- the report ------------------------------------------------------------------------------


def _pct(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{100 * a / b:.0f}%"


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def render(
    args: argparse.Namespace,
    cfg: dict[str, Any],
    m: dict[tuple[str, str, int], dict[str, Any]],
    memory: dict[str, float],
    counted: dict[str, Any],
    profile: Any,
) -> str:
    cs = cfg["cs"]
    command = " ".join(
        ["just bench", *(["--quick"] if args.quick else [])]
        + ([f"--postgres {args.postgres}"] if args.postgres else [])
    )
    out = [f"# Parley against its ceiling and its floor ({cfg['backend']})", ""]
    if args.quick:
        out += ["**Smoke run (`--quick`)**: it shows the harness works; not numbers to quote.", ""]
    out += [
        f"Command: `{command}`. {machine_line()}",
        "",
        f"Closed loop (`bench/loadgen.py`), {cfg['repetitions']} repetition(s) of the whole "
        f"matrix in rotated order, {cfg['warmup']:g} s warm-up + {cfg['duration']:g} s measured "
        "per cell; medians. Ceiling = the fake upstream called directly; floor = "
        "`bench/floor.py` (decode, commit the user's row, call the upstream with Parley's "
        "client, commit the reply, on Parley's engine). The upstream, the floor, Parley and "
        "the load generator are separate processes sharing the machine's CPUs.",
        "",
    ]
    chat, history = counted["chat"], counted["history_20000"]
    on_messages = [s for s in history["sql"] if "FROM messages" in s]
    targets = []
    if 16 in cs:
        p, f = m["parley", "chat", 16]["rps"], m["floor", "chat", 16]["rps"]
        targets.append(
            (
                "chat req/s vs the floor, c=16",
                f"{fmt(p, 0)} vs {fmt(f, 0)} = {_pct(p, f)}",
                "≥ 70%",
                p >= 0.7 * f,
            )
        )
    if 1 in cs:
        for label, workload, key, goal in (
            ("added p50 latency over the direct upstream, c=1", "chat", "p50", 2.0),
            ("added time to first token over the direct upstream, c=1", "stream", "ttft_p50", 1.0),
        ):
            added = _minus(m["parley", workload, 1][key], m["ceiling", workload, 1][key])
            floor_added = _minus(m["floor", workload, 1][key], m["ceiling", workload, 1][key])
            targets.append(
                (
                    label,
                    f"{fmt(added, 2)} ms (the floor: {fmt(floor_added, 2)} ms)",
                    f"≤ {goal:g} ms",
                    added is not None and added <= goal,
                )
            )
    targets.append(
        (
            "SQL per chat exchange",
            f"{chat['statements']:g} statements, {chat['commits']:g} commits",
            "≤ 6, ≤ 2",
            chat["statements"] <= 6 and chat["commits"] <= 2,
        )
    )
    bounded = len(on_messages) == 1 and "LIMIT" in on_messages[0]
    targets.append(
        (
            "history: one bounded query",
            f"{len(on_messages)} on messages; "
            f"{fmt(counted['history_200']['ms'])} ms at 200 vs {fmt(history['ms'])} ms "
            "at 20,000 messages",
            "O(page)",
            bounded,
        )
    )
    rss = max(m["parley", w, max(cs)]["rss_max_mb"] or 0 for w in WORKLOADS)
    targets.append((f"server RSS at c={max(cs)}", f"{rss:.0f} MB", "≤ 150 MB", rss <= 150))
    out += ["## Targets", "", "| target | measured | goal | met |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {'yes' if d else '**no**'} |" for a, b, c, d in targets]

    out += [
        "",
        "## Every cell",
        "",
        "Latency in ms; server CPU = CPU time of the server (all threads) per request; "
        "generator CPU = the load generator's use of one core; other load = CPUs busy "
        "with processes this run did not start (the noise on a shared machine).",
        "",
        "| server | workload | c | req/s (range) | p50 | p99 | TTFT p50 | TTFT p99 | errors "
        "| server CPU ms/req | generator CPU % | other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, workload, c), r in m.items():
        low, high = r["rps_range"]
        errors = f"{r['errors']}" + (f" ({r['first_error']})" if r["errors"] else "")
        out.append(
            f"| {name} | {WORKLOADS[workload]} | {c} | {fmt(r['rps'], 0)} ({fmt(low, 0)}-"
            f"{fmt(high, 0)}) | {fmt(r['p50'], 2)} | {fmt(r['p99'], 2)} | {fmt(r['ttft_p50'], 2)} "
            f"| {fmt(r['ttft_p99'], 2)} | {errors} | {fmt(r['server_cpu_ms'], 2)} "
            f"| {fmt(r['generator_cpu_pct'], 0)} | {fmt(r['other_load'], 2)} |"
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
        if name != "parley+metrics":
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
        s, total = profile["sample"], profile["total"] or 1
        out += [
            "",
            f"## Where the server's CPU goes: chat, c={profile['c']}",
            "",
            f"py-spy `--gil` attached to `parley serve` for {profile['seconds']} s: "
            f"{total} samples, {fmt(s.rps, 0)} req/s, {fmt(s.server_cpu_ms, 2)} ms CPU per "
            "request. Percentages are of CPU samples (whichever thread holds the GIL).",
        ]
        for title, table, n in (
            ("library (self)", "libraries", 16),
            ("function (self)", "functions", 20),
            ("Parley function (inclusive)", "inclusive", 25),
        ):
            out += ["", f"| {title} | % of CPU |", "|---|---:|"]
            out += [f"| `{k}` | {100 * v / total:.1f} |" for k, v in profile[table].most_common(n)]
    return "\n".join(out) + "\n"


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
