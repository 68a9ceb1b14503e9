"""``python -m bench run | workers | admin [--quick] ...`` from the repository root."""

from __future__ import annotations

import argparse
import sys

from bench import admin, chat, harness, workers

COMMANDS = {
    "run": (chat, "Parley against the minimal persisted chat turn (floor) and LiteLLM (peer)"),
    "workers": (workers, "chat throughput on the offline echo model: 1 vs 2 workers"),
    "admin": (admin, "admin monitoring API latency at 100k and 1M messages"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=help_text, description=module.__doc__))
    args = parser.parse_args(argv)
    harness.stop_servers_on_exit()
    module = COMMANDS[args.command][0]
    return int(module.main(args))


if __name__ == "__main__":
    sys.exit(main())
