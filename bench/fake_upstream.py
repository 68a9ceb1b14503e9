"""Run ``tests.fakes.FakeLLMServer`` in its own process for the benchmark.

Usage: ``python bench/fake_upstream.py --port 0`` prints ``READY <port>`` on stdout once it
listens, then serves until SIGTERM/SIGINT. Any key is accepted (``api_key=None``).

The fake records every request it receives (for tests); a benchmark sends millions, so a
background thread forgets them every second to keep its memory flat."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.llm_server import FakeLLMServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = FakeLLMServer(api_key=None, host=args.host, port=args.port).start()
    print(f"READY {server.port}", flush=True)
    try:
        while not stop.wait(1.0):
            server.reset_state()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
