"""The replies this process is writing. A streamed reply's generation belongs to the
server, not to the request that asked for it: a client that disconnects, or several
that follow it, change nothing about it. Each live reply holds a lease in the database
that this process renews; a reply whose lease ran out belongs to a process that died
(``MarkInterruptedReplies``)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.ports import Clock, UnitOfWork
from domain.conversation import Message

log = logging.getLogger("parley.generations")
# Finished turns kept for this process's followers: a reply is followed just as it ends.
_FINISHED_KEPT = 1_000


@dataclass(frozen=True, kw_only=True)
class ReplyLease:
    """How long a live reply's lease lasts, and how often it is renewed (several
    renewals fit in a lease, so one slow write loses nothing)."""

    seconds: float = 15.0
    renew_seconds: float = 5.0


class Generation:
    """One reply being written: the text so far (kept with each lease renewal, so a
    crash loses at most one renewal's worth), and why it was stopped, if it was."""

    def __init__(self, reply_id: int) -> None:
        self.reply_id = reply_id
        self.parts: list[str] = []
        self.stopped_because: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._ended = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def runs_as(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def ended(self) -> None:
        """The model is done with: what is left is storing the reply, which no stop may
        cut short (the answer would be lost with the rolled-back write)."""
        self._ended = True

    def stop(self, because: str) -> None:
        if self._task is not None and self.stopped_because is None and not self._ended:
            self.stopped_because = because
            self._task.cancel()


class Generations:
    def __init__(self, uow: UnitOfWork, clock: Clock, lease: ReplyLease) -> None:
        self._uow = uow
        self._clock = clock
        self._lease = lease
        self._running: dict[int, tuple[Generation, asyncio.Task[None]]] = {}
        # The turns this process just finished, by reply id: a follower here that saw the
        # reply end reads it from this instead of the database.
        self._finished: OrderedDict[int, tuple[Message, Message]] = OrderedDict()

    def lease_until(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self._lease.seconds)

    def start(self, generation: Generation, write: Callable[[Generation], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await write(generation)
            except Exception:  # its lease runs out, and the reply is marked interrupted
                log.exception("could not store reply %d", generation.reply_id)

        task = asyncio.ensure_future(run())
        generation.runs_as(task)
        self._running[generation.reply_id] = (generation, task)
        task.add_done_callback(lambda _: self._running.pop(generation.reply_id, None))

    def keep_finished(self, user_message: Message, reply: Message) -> None:
        self._finished[reply.id] = (user_message, reply)
        while len(self._finished) > _FINISHED_KEPT:
            self._finished.popitem(last=False)

    def finished(self, reply_id: int) -> tuple[Message, Message] | None:
        """The stored turn of a reply this process finished lately, if it did."""
        return self._finished.get(reply_id)

    def stop(self, reply_id: int, because: str) -> bool:
        """Stop the reply if this process writes it; whether it does."""
        running = self._running.get(reply_id)
        if running is None:
            return False
        running[0].stop(because)
        return True

    async def renew_leases(self) -> None:
        """Extend every live reply's lease, keeping its text so far."""
        if not self._running:
            return
        texts = {reply_id: generation.text for reply_id, (generation, _) in self._running.items()}
        async with self._uow as uow:
            await uow.messages.renew_leases(texts, self.lease_until())
            await uow.commit()

    async def stop_all(self, because: str) -> None:
        """At shutdown: stop every reply (each is stored as it stands) and wait."""
        running = list(self._running.values())
        for generation, _ in running:
            generation.stop(because)
        await asyncio.gather(*(task for _, task in running), return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every reply started so far has been written (tests use this)."""
        while self._running:
            await asyncio.gather(*(t for _, t in self._running.values()), return_exceptions=True)
