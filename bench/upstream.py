"""``python -m bench.upstream --port P``: ``tests.fakes.FakeLLMServer`` in a process of its
own, answering at once with any key. Called directly it is the benchmark's ceiling.

The fake records every request (for tests); a benchmark sends millions, so it forgets them
every second to keep its memory flat."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fakes.llm_server import FakeLLMServer


def main() -> None:
    parser = argparse.ArgumentParser(description="The fake OpenAI-compatible upstream.")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = FakeLLMServer(api_key=None, host="127.0.0.1", port=port).start()
    try:
        while not stop.wait(1.0):
            server.reset_state()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
