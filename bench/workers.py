"""``python -m bench workers``: what ``parley serve --workers 2`` buys over one worker, on
SQLite and on PostgreSQL.

No upstream: with no provider configured Parley serves its offline ``echo`` model, so
every request is Parley and its database only. For each backend (a SQLite file; a
scratch database ``parley_bench_workers`` on the ``--postgres`` server) it migrates once,
registers one user per connection through a set-up server (each with a conversation
filled to the history cap), then, ``--repetitions`` times in rotated order, starts
``parley serve --workers N`` afresh, warms it up and measures non-streaming chat at each
concurrency: req/s, latency, CPU per request (Parley's and PostgreSQL's), how the CPU
split between the workers, RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    CHAT,
    MESSAGE,
    PARLEY,
    Sample,
    Server,
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
from bench.loadgen import build_request, run_cell

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DATABASE = "parley_bench_workers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smoke run: short, no history")
    parser.add_argument("--postgres", metavar="URL", default=DEFAULT_POSTGRES, help="admin URL")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--repetitions", type=int, help="default 3 (--quick 1)")
    parser.add_argument("--duration", type=float, help="seconds measured per cell (default 3)")


async def set_up(base_url: str, users: int, prefill: int) -> list[tuple[str, bytes]]:
    """One user per connection, each on a conversation with ``prefill`` exchanges: their
    token and their chat request's body."""
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def user(index: int) -> tuple[str, bytes]:
            async with limit:
                token = await register_user(client, f"workers{index}")
                auth = {"Authorization": f"Bearer {token}"}
                response = await client.post("/api/conversations/", headers=auth)
            body = {"conversation_id": response.raise_for_status().json()["id"], "message": MESSAGE}
            for _ in range(prefill):
                async with limit:
                    reply = await client.post(CHAT, json=body, headers=auth)
                if "Echo:" not in reply.raise_for_status().text:
                    raise RuntimeError(f"not the echo model: {reply.text[:300]}")
            return token, json.dumps(body).encode()

        return list(await asyncio.gather(*(user(i) for i in range(users))))


def chat_requests(port: int, made: list[tuple[str, bytes]]) -> list[bytes]:
    return [
        build_request(
            "POST",
            "127.0.0.1",
            port,
            CHAT,
            body,
            [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")],
        )
        for token, body in made
    ]


async def run(args: argparse.Namespace, workdir: Path) -> tuple[dict[Any, Any], list[str], Any]:
    quick = args.quick
    backends = {"sqlite": None} | ({} if args.no_postgres else {"postgresql": args.postgres})
    concurrencies, worker_counts = [16, 64], [1, 2]
    repetitions = args.repetitions or (1 if quick else 3)
    duration = args.duration or (1.0 if quick else 3.0)
    warmup, server_warmup = (0.3, 0.5) if quick else (1.0, 2.0)
    samples: dict[tuple[str, int, int], list[Sample]] = {}
    servers: dict[tuple[str, int], list[str]] = {}
    failures: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        prepared: dict[str, tuple[str, list[tuple[str, bytes]]]] = {}
        for backend, admin in backends.items():
            url = await stack.enter_async_context(scratch_database(workdir, admin, DATABASE))
            env = parley_environment(url, 0, None)
            log(f"{backend}: parley migrate, {max(concurrencies)} users")
            await asyncio.to_thread(
                subprocess.run,
                [PARLEY, "migrate"],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
            port = free_port()
            cmd = [PARLEY, "serve", "--no-migrate"]
            setup = Server(f"{backend}-setup", cmd, parley_environment(url, port, None), workdir)
            try:
                await wait_ready(setup, port, startups=1)
                prefill = 0 if quick else 25  # the history window's cap: 50 messages
                made = await set_up(f"http://127.0.0.1:{port}", max(concurrencies), prefill)
                prepared[backend] = url, made
            finally:
                setup.stop()
        configs = [(b, w) for b in backends for w in worker_counts]
        for rep in range(repetitions):
            shift = rep * len(configs) // repetitions
            for backend, workers in configs[shift:] + configs[:shift]:
                url, made = prepared[backend]
                port = free_port()
                cmd = [PARLEY, "serve", "--workers", str(workers), "--no-migrate"]
                env = parley_environment(url, port, None)
                server = Server(f"{backend}-w{workers}-{rep}", cmd, env, workdir)
                try:
                    await wait_ready(server, port, startups=workers)
                    requests = chat_requests(port, made)
                    await run_cell(
                        "127.0.0.1",
                        port,
                        requests,
                        concurrency=len(made),
                        duration=server_warmup,
                        warmup=0.2,
                    )
                    for c in concurrencies if rep % 2 == 0 else concurrencies[::-1]:
                        database = DATABASE if backend == "postgresql" else None
                        s = await measure(
                            server, port, requests[:c], c, duration, warmup, database=database
                        )
                        samples.setdefault((backend, workers, c), []).append(s)
                        log(
                            f"rep {rep + 1} {backend} workers={workers} c={c}: {s.rps:.0f} req/s "
                            f"p99 {s.p99:.0f} ms errors {s.errors}"
                        )
                    servers.setdefault((backend, workers), []).append(
                        f"{len(server.workers())} process(es), {memory_mb(server.pid):.0f} MB, "
                        f"{server.log_text().count('Traceback')} tracebacks"
                    )
                except Exception as error:
                    failures.append(f"rep {rep + 1} {backend} workers={workers}: {error!r}")
                    log(f"FAILED {failures[-1]}")
                finally:
                    server.stop()
    settings = {"repetitions": repetitions, "duration": duration, "warmup": warmup}
    return {k: median(v) for k, v in samples.items()}, failures, (servers, settings)


def render(args: argparse.Namespace, stats: dict[Any, Any], failures: list[str], extra: Any) -> str:
    servers, cfg = extra
    command = "just bench-workers" + (" --quick" if args.quick else "")
    command += " --no-postgres" if args.no_postgres else ""
    out = ["# Chat throughput with the offline echo model: 1 vs 2 workers", ""]
    if args.quick:
        out += ["**Smoke run (`--quick`)**: it shows the harness works; not numbers to quote.", ""]
    out += [
        f"Command: `{command}`. {machine_line()}",
        "",
        "`parley serve --workers N --no-migrate`, no provider (the offline `echo` model), "
        "rate limits out of reach, pools at their defaults. Non-streaming "
        f"`POST {CHAT}`, closed loop, one keep-alive connection per user, each on its own "
        "conversation (history at its 50-message cap unless `--quick`). Per cell "
        f"{cfg['warmup']:g} s warm-up, {cfg['duration']:g} s measured, {cfg['repetitions']} "
        "repetition(s), every server started afresh, order rotated; medians.",
        "",
        "| backend | workers | c | req/s (range) | p50 ms | p99 ms | errors | Parley CPU ms/req "
        "| PostgreSQL CPU ms/req | workers' CPU split % | generator CPU % | other load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for (backend, workers, c), s in sorted(
        stats.items(), key=lambda kv: (kv[0][0] != "sqlite", kv[0])
    ):
        low, high = s["rps_range"]
        split = " / ".join(f"{v:.0f}" for v in s["worker_split"]) or "-"
        out.append(
            f"| {backend} | {workers} | {c} | {fmt(s['rps'], 0)} ({fmt(low, 0)}-{fmt(high, 0)}) "
            f"| {fmt(s['p50'])} | {fmt(s['p99'])} | {s['errors']} | {fmt(s['server_cpu_ms'], 2)} "
            f"| {fmt(s['database_cpu_ms'], 2)} | {split} "
            f"| {fmt(s['generator_cpu_pct'], 0)} | {fmt(s['other_load'], 2)} |"
        )
    out += ["", "Servers (per repetition: processes serving, RSS of all after, tracebacks logged):"]
    out += [
        "",
        *[
            f"- {b}, {w} worker(s): {'; '.join(i)}"
            for (b, w), i in sorted(servers.items(), key=lambda kv: (kv[0][0] != "sqlite", kv[0]))
        ],
    ]
    if failures:
        out += ["", "Failures:", "", *[f"- {f}" for f in failures]]
    return "\n".join(out) + "\n"


def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-workers-"))
    started = time.monotonic()
    try:
        stats, failures, extra = asyncio.run(run(args, workdir))
    finally:
        for server in list(Server.running):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    write_result("workers", render(args, stats, failures, extra), quick=args.quick)
    log(f"done in {time.monotonic() - started:.0f} s")
    return 1 if failures else 0
