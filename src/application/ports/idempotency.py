"""The store behind Idempotency-Key retries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class IdempotencyRecord:
    fingerprint: str
    # The first request's answer as its entry point recorded it, opaque to the core (the
    # HTTP edge keeps a status and a body); None while the first request is running.
    answer: str | None


@dataclass(frozen=True, kw_only=True)
class KeyHold:
    """A request's hold on its key: ``holder`` is a random id of that one request."""

    user_id: int
    key: str
    holder: str


class IdempotencyStore(Protocol):
    """Keys held by leases: a request holds its key until ``lease_until`` and renews the
    lease while it runs, so a key whose holder died (a crashed process) comes free."""

    async def claim(
        self,
        hold: KeyHold,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
        expired_before: datetime,
    ) -> IdempotencyRecord | None:
        """Reserve the key for ``hold`` (None) -- also when it is held for the same
        fingerprint with no answer and a lease that ended before ``now`` -- or return the
        record of whoever holds it. A record created before ``expired_before`` is
        forgotten first."""
        ...

    async def renew(self, hold: KeyHold, lease_until: datetime) -> bool:
        """Extend the lease; False if ``hold`` no longer holds the key."""
        ...

    async def complete(self, hold: KeyHold, answer: str) -> None:
        """Keep the answer, if ``hold`` still holds the key."""
        ...

    async def release(self, hold: KeyHold) -> None:
        """Forget the key, if ``hold`` still holds it."""
        ...
