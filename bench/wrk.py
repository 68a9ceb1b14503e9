"""wrk (the Debian package) as the load generator for non-streamed cells.

One wrk thread per connection, so that connection ``i`` sends ``requests[i % len]``
over and over -- the same raw bytes ``bench.loadgen`` would send, each connection its
own user and conversation. wrk only lets a script tell its threads apart, not the
connections of one thread. A Lua ``done()`` prints the counts and the exact percentiles
(microseconds, from wrk's histogram) on one line that ``parse`` reads.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RESULT_PREFIX = "wrk-result"
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")

_SCRIPT = """\
local prepared = {%(requests)s}
local threads = 0

function setup(thread)
  thread:set("connection", threads)
  threads = threads + 1
end

function init(args)
  raw = prepared[connection %% #prepared + 1]
end

function request()
  return raw
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(prefix)s requests=%%.0f duration_us=%%.0f connect=%%.0f read=%%.0f write=%%.0f "
      .. "status=%%.0f timeout=%%.0f p50_us=%%.0f p99_us=%%.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def executable() -> str | None:
    return shutil.which("wrk")


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal: printable ASCII as is, every other byte as a
    three-digit decimal escape (so a digit after it is never read as part of it)."""
    safe = (chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03d}" for b in data)
    return '"' + "".join(safe) + '"'


def script(requests: Sequence[bytes]) -> str:
    literals = ", ".join(lua_string(r) for r in requests)
    return _SCRIPT % {"requests": literals, "prefix": RESULT_PREFIX}


@dataclass
class WrkResult:
    requests: int  # every response, refused ones included (counted again in errors)
    duration_s: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        answered = self.requests - self.errors.get("status", 0)
        return answered / self.duration_s if self.duration_s else 0.0

    def first_error(self) -> str:
        kinds = [f"{n} {kind}" for kind, n in self.errors.items() if n]
        return f"wrk: {', '.join(kinds)} errors" if kinds else ""


def parse(output: str) -> WrkResult:
    """The line ``done()`` printed; ValueError if wrk printed none (it failed to run)."""
    line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_PREFIX + " ")), None)
    if line is None:
        raise ValueError(f"no {RESULT_PREFIX} line in wrk's output: {output[-500:]!r}")
    values = {k: int(v) for k, v in (f.split("=", 1) for f in line.split()[1:])}
    return WrkResult(
        requests=values["requests"],
        duration_s=values["duration_us"] / 1e6,
        errors={kind: values[kind] for kind in ERROR_KINDS},
        p50_ms=values["p50_us"] / 1e3,
        p99_ms=values["p99_us"] / 1e3,
    )


async def run(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    duration: int,
    response_timeout: int = 30,
) -> WrkResult:
    """``concurrency`` keep-alive connections in closed loops for ``duration`` whole
    seconds (wrk takes no fractions)."""
    wrk = executable()
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    with tempfile.TemporaryDirectory(prefix="parley-wrk-") as directory:
        lua = Path(directory) / "requests.lua"
        lua.write_text(script(requests), encoding="latin-1")
        process = await asyncio.create_subprocess_exec(
            wrk,
            f"--threads={concurrency}",
            f"--connections={concurrency}",
            f"--duration={max(1, duration)}s",
            f"--timeout={response_timeout}s",
            f"--script={lua}",
            f"http://{host}:{port}/",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    return parse(output.decode(errors="replace"))
