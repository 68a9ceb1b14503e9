"""How much does the outbound HTTP client cost? Closed loops against the fake upstream.

Clients compared (each for ``--duration`` seconds at each concurrency, in this process,
so their CPU cost per call is measured as well as their throughput and latency):

* ``httpx-default``: ``httpx.AsyncClient()`` with httpx's default pool (100 connections,
  20 kept alive) -- the configuration encode/httpx#3215 is about;
* ``httpx-limits-200``: httpx's pool with ``Limits(max_connections=200,
  max_keepalive_connections=100)``: Parley's client until it moved off httpx's pool;
* ``httpx-aiohttp``: the same httpx API over ``httpx_aiohttp.AiohttpTransport``;
* ``parley``: Parley's providers' client now (``adapters/llm/transport.py``: httpx over
  httpx-aiohttp, with its error re-mapping);
* ``aiohttp``: a plain ``aiohttp.ClientSession``;
* ``raw``: this harness's own load generator (the ceiling of the fake upstream).

aiohttp and httpx-aiohttp are Parley's own dependencies now.

Usage: ``python bench/transport.py --upstream http://127.0.0.1:PORT/v1 [--json OUT]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.llm.transport import provider_http_client

HERE = Path(__file__).resolve().parent
EXTRAS = HERE / ".extras"
if EXTRAS.is_dir():
    sys.path.append(str(EXTRAS))  # after the venv: never shadows what Parley runs with

import httpx  # noqa: E402
from loadgen import build_request, percentile, run_cell  # noqa: E402

BODY = {
    "model": "fake-model",
    "messages": [{"role": "user", "content": "What is machine learning? Explain briefly."}],
    "temperature": 0.7,
    "max_tokens": 1024,
}


async def closed_loop(
    call: Callable[[], Awaitable[None]], concurrency: int, duration: float, warmup: float
) -> dict[str, Any]:
    latencies: list[int] = []
    errors = 0
    window = [0, 1 << 62]
    stop = False

    async def worker() -> None:
        nonlocal errors
        while not stop:
            start = time.perf_counter_ns()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            end = time.perf_counter_ns()
            if window[0] <= end < window[1]:
                latencies.append(end - start)

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    cpu = time.process_time()
    window[0] = time.perf_counter_ns()
    window[1] = window[0] + int(duration * 1e9)
    await asyncio.sleep(duration)
    cpu = time.process_time() - cpu
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return _summary(latencies, errors, duration, cpu)


def _summary(latencies: list[int], errors: int, duration: float, cpu: float) -> dict[str, Any]:
    count = len(latencies)
    return {
        "rps": count / duration,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "errors": errors,
        "client_cpu_us_per_call": 1e6 * cpu / count if count else float("nan"),
        "client_cpu_pct": 100 * cpu / duration,
    }


def _httpx(limits: httpx.Limits | None, transport: Any = None) -> httpx.AsyncClient:
    kwargs: dict[str, Any] = {"timeout": httpx.Timeout(60.0, connect=5.0)}
    if limits is not None:
        kwargs["limits"] = limits
    if transport is not None:
        kwargs["transport"] = transport
    return httpx.AsyncClient(**kwargs)


async def measure(
    upstream: str, concurrencies: list[int], duration: float, warmup: float
) -> list[dict[str, Any]]:
    url = upstream.rstrip("/") + "/chat/completions"
    split = urlsplit(url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    rows: list[dict[str, Any]] = []

    clients: dict[str, Callable[[], Any]] = {
        "httpx-default": lambda: _httpx(None),
        "httpx-limits-200": lambda: _httpx(
            httpx.Limits(max_connections=200, max_keepalive_connections=100)
        ),
        "parley": lambda: provider_http_client(httpx.Timeout(60.0, connect=5.0)),
    }
    try:
        from httpx_aiohttp import AiohttpTransport

        clients["httpx-aiohttp"] = lambda: _httpx(None, AiohttpTransport())
    except ImportError:
        pass
    try:
        import aiohttp

        clients["aiohttp"] = lambda: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200)
        )
    except ImportError:
        aiohttp = None  # type: ignore[assignment]

    for concurrency in concurrencies:
        request = build_request(
            "POST",
            host,
            port,
            split.path,
            json.dumps(BODY).encode(),
            [("Content-Type", "application/json"), ("Authorization", "Bearer bench")],
        )
        raw = await run_cell(
            host, port, [request], concurrency=concurrency, duration=duration, warmup=warmup
        )
        rows.append(
            {
                "client": "raw",
                "concurrency": concurrency,
                **_summary(raw.latencies_ns, raw.errors, duration, raw.generator_cpu_s),
            }
        )
        for name, make in clients.items():
            client = make()
            try:
                if name == "aiohttp":

                    async def call(session: Any = client) -> None:
                        async with session.post(url, json=BODY) as response:
                            response.raise_for_status()
                            await response.json()

                else:

                    async def call(http: Any = client) -> None:
                        response = await http.post(
                            url, json=BODY, headers={"Authorization": "Bearer bench"}
                        )
                        response.raise_for_status()
                        response.json()

                result = await closed_loop(call, concurrency, duration, warmup)
            finally:
                with contextlib.suppress(Exception):
                    if name == "aiohttp":
                        await client.close()
                    else:
                        await client.aclose()
            rows.append({"client": name, "concurrency": concurrency, **result})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| client | c | req/s | p50 ms | p99 ms | errors | client CPU µs/call |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['client']} | {row['concurrency']} | {row['rps']:.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} | "
            f"{row['client_cpu_us_per_call']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Outbound HTTP client cost.")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    rows = asyncio.run(measure(args.upstream, concurrencies, args.duration, args.warmup))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(markdown(rows))


if __name__ == "__main__":
    main()
