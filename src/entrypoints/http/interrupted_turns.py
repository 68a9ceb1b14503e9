"""Marking interrupted turns in the background of a serving process: once at start-up,
then once per turn bound, each run looking at what was sent since the last one looked
(see ``MarkInterruptedTurns``). A crash's turns are marked by the restarted process one
bound after it starts; a worker that dies beside live ones is covered by theirs."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from litestar import Litestar

from application.interrupted_turns import MarkInterruptedTurnsRequest
from entrypoints.container import Container

log = logging.getLogger("parley.interrupted_turns")


async def _keep_marking(container: Container) -> None:
    every = container.turn_bound().seconds
    sent_after = None
    while True:
        try:
            marked = await container.mark_interrupted_turns()(
                MarkInterruptedTurnsRequest(sent_after=sent_after)
            )
        except Exception:
            log.exception("could not mark interrupted turns; trying again later")
        else:
            sent_after = marked.sent_before
            if marked.marked:
                log.warning("marked %d turns interrupted by a stopped process", marked.marked)
        await asyncio.sleep(every)


async def _keep_replies_leased(container: Container) -> None:
    """Renew the leases of the replies this process writes and of the budget
    reservations it holds; mark the replies whose writer died (their lease ended) and
    drop such reservations: at start-up, then every renewal."""
    every = container.reply_lease().renew_seconds
    while True:
        try:
            await container.generations().renew_leases()
            marked = await container.mark_interrupted_replies()()
            dropped = await container.metering().renew_leases(container.uow())
        except Exception:
            log.exception("could not renew reply leases; trying again soon")
        else:
            if marked:
                log.warning("marked %d replies interrupted by a stopped process", marked)
            if dropped:
                log.warning("released %d budget reservations of a stopped process", dropped)
        await asyncio.sleep(every)


def mark_interrupted_turns(app: Litestar, container: Container) -> None:
    """Run the marking (and the streamed replies' leases) while ``app`` serves."""
    running: list[asyncio.Task[None]] = []

    async def start() -> None:
        running.append(asyncio.ensure_future(_keep_marking(container)))
        running.append(asyncio.ensure_future(_keep_replies_leased(container)))

    async def stop() -> None:  # before the engine is disposed: shutdown hooks run last first
        for task in running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
