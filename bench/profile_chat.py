"""CPU profile of Parley's chat path at a fixed concurrency, as an operator runs it.

Starts the fake upstream and ``parley serve`` (SQLite in a scratch directory), registers
one user per connection, then drives non-streaming chat with ``bench/loadgen.py`` while
py-spy samples the server (all threads, idle frames dropped). Prints req/s, the server's
CPU per request and the functions with the most inclusive CPU samples.

Usage: ``python bench/profile_chat.py [--concurrency 1] [--seconds 10] [--top 40]
[--env NAME=VALUE ...]``. Needs the ``bench`` extra (py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import loadgen  # noqa: E402
import run as harness  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

SCRATCH_DATABASE = "parley_profile"


def _collapse(path: Path, top: int) -> list[tuple[str, float]]:
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].rstrip(")")
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
    return [(name, n / total) for name, n in inclusive.most_common(top)]


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("Parley did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--postgres", metavar="URL", help="PostgreSQL admin URL: a scratch database there"
    )
    parser.add_argument(
        "--cprofile", type=Path, help="run the server under cProfile, writing stats here"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="parley-profile-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upstream = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "fake_upstream.py")],
            stdout=subprocess.PIPE,
        )
        processes.append(upstream)
        assert upstream.stdout is not None
        upstream_port = int(upstream.stdout.readline().split()[1])
        port = harness.free_port()
        database_url = f"sqlite+aiosqlite:///{scratch}/parley.db"
        if args.postgres:
            drop = f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'
            asyncio.run(
                harness._admin(args.postgres, drop, f'CREATE DATABASE "{SCRATCH_DATABASE}"')
            )
            database_url = (
                make_url(args.postgres)
                .set(database=SCRATCH_DATABASE)
                .render_as_string(hide_password=False)
            )
        env = harness.parley_environment(database_url, f"http://127.0.0.1:{upstream_port}/v1", port)
        env.update(item.split("=", 1) for item in args.env)
        command = [str(Path(sys.executable).parent / "parley"), "serve"]
        if args.cprofile:
            env["CPROF_OUT"] = str(args.cprofile.resolve())
            command = [sys.executable, str(ROOT / "bench" / "cprofile_serve.py")]
        server = subprocess.Popen(command, env=env, cwd=scratch)
        processes.append(server)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        users = max(args.concurrency, 1)
        with httpx.Client(base_url=base, timeout=60) as client:
            requests = []
            for index in range(users):
                token = client.post(
                    "/api/v1/register/",
                    json={
                        "username": f"prof{index}",
                        "email": f"prof{index}@example.com",
                        "password": harness.PASSWORD,
                    },
                ).json()["access"]
                conversation = client.post(
                    "/api/conversations/", headers={"Authorization": f"Bearer {token}"}
                ).json()["id"]
                requests.append(
                    loadgen.build_request(
                        "POST",
                        "127.0.0.1",
                        port,
                        "/api/v1/messages/chat/",
                        body=(
                            f'{{"conversation_id": {conversation}, "message": "hello"}}'
                        ).encode(),
                        headers=[
                            ("Authorization", f"Bearer {token}"),
                            ("Content-Type", "application/json"),
                        ],
                    )
                )
        asyncio.run(
            loadgen.run_cell(
                "127.0.0.1", port, requests, concurrency=args.concurrency, duration=2, warmup=1
            )
        )
        raw = scratch / "profile.txt"
        spy = None
        if not args.no_profile:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--duration",
                    str(int(args.seconds)),
                    "--rate",
                    "500",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
        cpu_before = harness.cpu_seconds(server.pid)
        result = asyncio.run(
            loadgen.run_cell(
                "127.0.0.1",
                port,
                requests,
                concurrency=args.concurrency,
                duration=args.seconds - 1,
                warmup=0.2,
            )
        )
        cpu = harness.cpu_seconds(server.pid) - cpu_before
        done = result.requests
        print(
            f"c={args.concurrency}: {done / result.duration:.1f} req/s, "
            f"p50 {loadgen.percentile(result.latencies_ns, 50):.2f} ms, "
            f"server CPU {cpu / max(done, 1) * 1e3:.2f} ms/req (incl. warm-up), "
            f"errors {result.errors}"
        )
        if spy is not None:
            spy.wait()
            for name, share in _collapse(raw, args.top):
                print(f"{share * 100:5.1f}%  {name}")
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)
        if args.postgres:
            drop = f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'
            asyncio.run(harness._admin(args.postgres, drop))


if __name__ == "__main__":
    main()
