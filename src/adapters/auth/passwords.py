"""argon2id password hashing, run off the event loop (each hash costs tens of ms)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2PasswordHasher:
    def __init__(self, *, time_cost: int = 2, memory_cost: int = 19_456, parallelism: int = 1):
        # Defaults are OWASP's argon2id minimum (19 MiB, t=2, p=1): strong, and cheap
        # enough that a login does not monopolise a small server's core.
        self._argon2 = Argon2(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self._decoy = self._argon2.hash("parley-decoy-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def burn_time(self, password: str) -> None:
        await asyncio.to_thread(self._verify, self._decoy, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._argon2.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
