"""Short-lived, single-use OAuth login states.

Litestar's stores offer get and delete but no atomic take, and two callbacks racing
with one state must not both succeed; hence these two small adapters: an in-process
dict (one server) and Redis GETDEL (several servers share logins)."""

from __future__ import annotations

import asyncio
import json
import time

from redis.asyncio import Redis

from application.ports import PendingLogin

KEY_PREFIX = "parley:oauth-state:"


def _dump(pending: PendingLogin) -> str:
    return json.dumps({"binding": pending.binding_digest, "link": pending.link_user_id})


def _load(raw: str | bytes) -> PendingLogin:
    data = json.loads(raw)
    return PendingLogin(binding_digest=data["binding"], link_user_id=data["link"])


class MemoryOAuthStates:
    def __init__(self) -> None:
        self._states: dict[str, tuple[float, str]] = {}
        self._lock = asyncio.Lock()

    async def put(self, state: str, pending: PendingLogin, ttl_seconds: int) -> None:
        async with self._lock:
            now = time.monotonic()
            self._states = {k: v for k, v in self._states.items() if v[0] > now}
            self._states[state] = (now + ttl_seconds, _dump(pending))

    async def take(self, state: str) -> PendingLogin | None:
        async with self._lock:
            entry = self._states.pop(state, None)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return _load(entry[1])


class RedisOAuthStates:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, state: str, pending: PendingLogin, ttl_seconds: int) -> None:
        await self._redis.set(KEY_PREFIX + state, _dump(pending), ex=ttl_seconds)

    async def take(self, state: str) -> PendingLogin | None:
        raw = await self._redis.getdel(KEY_PREFIX + state)
        return None if raw is None else _load(raw)
