"""Provider response fixtures (``tests/fixtures/providers/``): loading and SSE parsing.

A JSON fixture is an envelope ``{"origin", "status", "headers", "body"}``; an ``.sse``
fixture is a valid SSE stream whose leading comment lines (``: origin: ...``) say where the
shape comes from. ``load_fixture("openai/completion.json")`` returns a cached, read-only
``Fixture``; use ``fixture.copy_body()`` / ``fixture.payloads()`` to get fresh objects.

The fake provider uses these files as templates for everything it answers, so the shapes
it serves are the fixtures' shapes; tests can compare against them directly.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FIXTURES_DIR", "Fixture", "SSEEvent", "load_fixture", "parse_sse"]

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "providers"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One SSE event: its ``event:`` name (None when absent) and its joined ``data:`` lines."""

    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True, slots=True)
class Fixture:
    name: str
    origin: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON fixtures
    events: tuple[SSEEvent, ...] = ()  # SSE fixtures
    raw: bytes = b""  # the file as stored (SSE fixtures: the exact bytes after the comments)

    def copy_body(self) -> Any:
        return copy.deepcopy(self.body)

    def payloads(self) -> list[Any]:
        """The events' ``data`` parsed as JSON (``[DONE]`` stays the string ``"[DONE]"``)."""
        return [e.data if e.data == "[DONE]" else e.json() for e in self.events]


def parse_sse(text: str) -> tuple[list[SSEEvent], list[str]]:
    """Events and comment lines of an SSE text (``\\n``, ``\\r\\n`` or ``\\r`` line ends)."""
    events: list[SSEEvent] = []
    comments: list[str] = []
    name: str | None = None
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data or name is not None:
                events.append(SSEEvent(name, "\n".join(data)))
            name, data = None, []
        elif line.startswith(":"):
            comments.append(line[1:].strip())
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
    if data or name is not None:
        events.append(SSEEvent(name, "\n".join(data)))
    return events, comments


@functools.cache
def load_fixture(name: str) -> Fixture:
    """``name`` is relative to ``tests/fixtures/providers``, e.g. ``"gemini/stream.sse"``."""
    path = FIXTURES_DIR / name
    raw = path.read_bytes()
    if path.suffix == ".sse":
        events, comments = parse_sse(raw.decode())
        origin = next(
            (c.removeprefix("origin:").strip() for c in comments if c.startswith("origin:")), ""
        )
        body_start = 0
        for line in raw.splitlines(keepends=True):
            if not line.startswith(b":"):
                break
            body_start += len(line)
        return Fixture(name, origin, 200, {}, None, tuple(events), raw[body_start:])
    envelope = json.loads(raw)
    return Fixture(
        name,
        envelope["origin"],
        envelope.get("status", 200),
        {k.lower(): str(v) for k, v in envelope.get("headers", {}).items()},
        envelope["body"],
        (),
        raw,
    )
