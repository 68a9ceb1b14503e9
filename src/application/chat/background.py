"""Writes that must finish even when the request that started them is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


class BackgroundWrites:
    """A client that disconnects cancels the task streaming to it; what must still be
    written (its user message, its reply) runs as a task of its own here, which that
    cancellation cannot reach. Shutdown and tests await ``drain()``."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def drain(self) -> None:
        """Wait until every write started so far has finished (failed ones included)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
