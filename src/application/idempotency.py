"""Idempotent requests: a client that retries with the same ``Idempotency-Key`` gets the
first answer again, and the model is not asked twice.

A key belongs to one user. The first request with it reserves it; its answer is kept
once the request has started work (a reply, or a provider failure after the message was
stored). A request refused before any work (invalid input, a closed conversation, a
rate limit) keeps nothing, so the client may fix it and retry with the same key. A
duplicate that arrives while the first is still running waits for its answer. Reusing a
key for a different request is refused. Keys are kept for 24 hours.

A key is held by a lease that the request renews while it runs. A process that dies
(``kill -9``, a lost machine) renews nothing, so its keys come free once their leases
end: a retry then runs the turn -- one retry, however many arrive at once -- or, if the
first request had finished, gets its answer. A live request, on any worker, keeps its
key however long it runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from application.ports import Clock, IdempotencyStore, KeyHold
from domain.errors import DomainError, InvalidInput

KEY_MAX_CHARS = 255
KEEP_FOR = timedelta(hours=24)

log = logging.getLogger("parley.idempotency")


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used for a different request."


class IdempotencyInProgress(DomainError):
    code = "idempotency_in_progress"
    default_message = "A request with this Idempotency-Key is still being processed."

    def __init__(self, *, retry_after: float) -> None:
        super().__init__()
        self.retry_after = retry_after


@dataclass(frozen=True, kw_only=True)
class IdempotencyWait:
    """``seconds``: how long a duplicate waits for the first answer. ``lease_seconds``:
    how long a key outlives the last sign of life of its request, renewed every
    ``renew_seconds`` (several renewals fit in a lease, so one slow write loses nothing)."""

    seconds: float = 60.0
    poll_seconds: float = 0.05
    lease_seconds: float = 15.0
    renew_seconds: float = 5.0


class IdempotentRequests:
    def __init__(self, store: IdempotencyStore, clock: Clock, wait: IdempotencyWait) -> None:
        self._store = store
        self._clock = clock
        self._wait = wait
        self._lease = timedelta(seconds=wait.lease_seconds)

    async def reserve(self, user_id: int, key: str, fingerprint: str) -> KeyHold | str:
        """The hold on the key if this request may run now; otherwise the first answer,
        as ``complete`` was given it."""
        if not key or len(key) > KEY_MAX_CHARS or not key.isprintable():
            raise InvalidInput(
                {"Idempotency-Key": [f"Use 1 to {KEY_MAX_CHARS} printable characters."]}
            )
        hold = KeyHold(user_id=user_id, key=key, holder=secrets.token_hex(16))
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._wait.seconds
        while True:
            now = self._clock.now()
            existing = await self._store.claim(
                hold, fingerprint, now, now + self._lease, now - KEEP_FOR
            )
            if existing is None:
                return hold
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            if existing.answer is not None:
                return existing.answer
            if loop.time() >= give_up:
                raise IdempotencyInProgress(retry_after=self._wait.lease_seconds)
            await asyncio.sleep(self._wait.poll_seconds)

    @contextlib.asynccontextmanager
    async def holding(self, hold: KeyHold) -> AsyncIterator[None]:
        """Renew the lease on the key while the block runs."""
        renewing = asyncio.ensure_future(self._renew(hold))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew(self, hold: KeyHold) -> None:
        while True:
            await asyncio.sleep(self._wait.renew_seconds)
            try:
                if not await self._store.renew(hold, self._clock.now() + self._lease):
                    return  # taken over: this request had stopped renewing for a lease
            except Exception:  # the next renewal may succeed; the lease has room for it
                log.warning("could not renew the lease of an Idempotency-Key", exc_info=True)

    async def complete(self, hold: KeyHold, answer: str) -> None:
        """Keep ``answer`` (whatever the entry point needs to replay it) for the retries."""
        await self._store.complete(hold, answer)

    async def release(self, hold: KeyHold) -> None:
        await self._store.release(hold)
