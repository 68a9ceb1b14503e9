"""The benchmark's load generators measure what they drive: requests, latency, time to
first token, each connection its own request (``python -m bench run --quick`` exercises
the rest end to end). The wrk tests need the Debian package ``wrk``; without it the
benchmark drives every cell with ``bench.loadgen``."""

from __future__ import annotations

import json
import re

import pytest
from bench import wrk
from bench.chat import UPSTREAM_FIRST_TOKEN
from bench.loadgen import build_request, percentile, run_cell

from tests.fakes.llm_server import FakeLLMServer

needs_wrk = pytest.mark.skipif(
    wrk.executable() is None,
    reason="wrk is not installed (Debian package wrk); the benchmark then uses bench.loadgen",
)


def _chat(port: int, *, stream: bool, content: str = "hi") -> bytes:
    body: dict[str, object] = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": content}],
    }
    if stream:
        body["stream"] = True
    headers = [("Content-Type", "application/json"), ("Authorization", "Bearer bench")]
    return build_request(
        "POST",
        "127.0.0.1",
        port,
        "/v1/chat/completions",
        json.dumps(body, ensure_ascii=False).encode(),
        headers,
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


@needs_wrk
async def test_wrk_sends_each_connection_its_own_request_and_reads_its_counts() -> None:
    # Quotes, backslashes and non-ASCII survive the trip through the Lua script.
    contents = [f'connection {i}: "quoted" \\ 机器学习' for i in range(3)]
    with FakeLLMServer(api_key=None) as server:
        prepared = [_chat(server.port, stream=False, content=c) for c in contents]
        result = await wrk.run("127.0.0.1", server.port, prepared, concurrency=3, duration=1)
        seen = {r.json["messages"][0]["content"] for r in server.requests}
    assert result.failed == 0
    assert result.requests > 10
    assert 0 < result.p50_ms <= result.p99_ms
    assert seen == set(contents)


@needs_wrk
async def test_wrk_counts_refused_requests_as_errors_not_answers() -> None:
    with FakeLLMServer(api_key="the-right-key") as server:
        prepared = [_chat(server.port, stream=False)]
        result = await wrk.run("127.0.0.1", server.port, prepared, concurrency=1, duration=1)
    assert result.requests > 0
    assert result.errors["status"] == result.requests
    assert result.rps == 0
    assert "status" in result.first_error()


def test_wrk_output_without_its_result_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no wrk-result line"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")
