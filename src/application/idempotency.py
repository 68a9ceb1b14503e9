"""Idempotent requests: a client that retries with the same ``Idempotency-Key`` gets the
first answer again, and the model is not asked twice.

A key belongs to one user. The first request with it reserves it; its answer is kept
once the request has started work (a reply, or a provider failure after the message was
stored). A request refused before any work (invalid input, a closed conversation, a
rate limit) keeps nothing, so the client may fix it and retry with the same key. A
duplicate that arrives while the first is still running waits for its answer. Reusing a
key for a different request is refused. Keys are kept for 24 hours."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from application.ports import Clock, IdempotencyStore, StoredResponse
from domain.errors import DomainError, InvalidInput

KEY_MAX_CHARS = 255
KEEP_FOR = timedelta(hours=24)


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used for a different request."


class IdempotencyInProgress(DomainError):
    code = "idempotency_in_progress"
    default_message = "A request with this Idempotency-Key is still being processed."


@dataclass(frozen=True, kw_only=True)
class IdempotencyWait:
    seconds: float = 60.0
    poll_seconds: float = 0.05


class IdempotentRequests:
    def __init__(self, store: IdempotencyStore, clock: Clock, wait: IdempotencyWait) -> None:
        self._store = store
        self._clock = clock
        self._wait = wait

    async def reserve(self, user_id: int, key: str, fingerprint: str) -> StoredResponse | None:
        """None when this request owns the key now; otherwise the first answer."""
        if not key or len(key) > KEY_MAX_CHARS or not key.isprintable():
            raise InvalidInput(
                {"Idempotency-Key": [f"Use 1 to {KEY_MAX_CHARS} printable characters."]}
            )
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._wait.seconds
        while True:
            existing = await self._store.claim(
                user_id, key, fingerprint, self._clock.now(), self._clock.now() - KEEP_FOR
            )
            if existing is None:
                return None
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            if existing.response is not None:
                return existing.response
            if loop.time() >= give_up:
                raise IdempotencyInProgress()
            await asyncio.sleep(self._wait.poll_seconds)

    async def complete(self, user_id: int, key: str, response: StoredResponse) -> None:
        await self._store.complete(user_id, key, response)

    async def release(self, user_id: int, key: str) -> None:
        await self._store.release(user_id, key)
