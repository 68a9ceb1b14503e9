"""The benchmark's load generator measures what it drives: requests, latency, time to
first token (``python -m bench run --quick`` exercises the rest end to end)."""

from __future__ import annotations

import json
import re

from bench.chat import UPSTREAM_FIRST_TOKEN
from bench.loadgen import build_request, percentile, run_cell

from tests.fakes.llm_server import FakeLLMServer


def _chat(port: int, *, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        body["stream"] = True
    headers = [("Content-Type", "application/json"), ("Authorization", "Bearer bench")]
    return build_request(
        "POST", "127.0.0.1", port, "/v1/chat/completions", json.dumps(body).encode(), headers
    )


async def test_a_closed_loop_cell_counts_answers_and_first_tokens() -> None:
    with FakeLLMServer(api_key=None) as server:
        plain = await run_cell(
            "127.0.0.1",
            server.port,
            [_chat(server.port, stream=False)],
            concurrency=4,
            duration=0.3,
            warmup=0.1,
        )
        streamed = await run_cell(
            "127.0.0.1",
            server.port,
            [_chat(server.port, stream=True)],
            concurrency=2,
            duration=0.3,
            warmup=0.1,
            first_token=UPSTREAM_FIRST_TOKEN,
        )
    assert (plain.errors, streamed.errors) == (0, 0)
    assert plain.requests > 10
    assert len(streamed.ttft_ns) == streamed.requests > 0
    assert all(t <= whole for t, whole in zip(streamed.ttft_ns, streamed.latencies_ns, strict=True))


async def test_refused_requests_are_errors_not_samples() -> None:
    with FakeLLMServer(api_key="the-right-key") as server:
        result = await run_cell(
            "127.0.0.1",
            server.port,
            [_chat(server.port, stream=False)],
            concurrency=1,
            duration=0.2,
            warmup=0.05,
        )
    assert result.requests == 0
    assert result.errors > 0
    assert re.fullmatch(r"HTTP 4\d\d", result.first_error)


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    samples = [i * 1_000_000 for i in range(1, 101)]
    assert (percentile(samples, 50), percentile(samples, 99), percentile(samples, 100)) == (
        50.0,
        99.0,
        100.0,
    )
    assert percentile([3_000_000], 99) == 3.0
