"""Where rate-limit state lives: in this process, or in Redis shared by all of them.

Both keep, per client, the times of the requests that passed within the last period
(the domain's sliding-window rule). The Redis variant runs the check-and-record as one
Lua script on Redis's own clock, so concurrent requests in different processes cannot
both take the last slot, and clocks of different machines do not matter."""

from __future__ import annotations

import time
import uuid
from collections import deque

from redis.asyncio import Redis

from domain.rate_limit import Decision, Rate, sliding_window

KEY_PREFIX = "parley:rate:"
_PRUNE_AT = 50_000


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._passed: dict[str, deque[float]] = {}

    async def hit(self, key: str, rate: Rate) -> Decision:
        # No await between reading and writing: atomic on the event loop.
        now = time.monotonic()
        passed = self._passed.setdefault(key, deque())
        while passed and passed[0] <= now - rate.period_seconds:
            passed.popleft()
        decision = sliding_window(rate, passed, now)
        if decision.allowed:
            passed.append(now)
        if len(self._passed) > _PRUNE_AT:
            self._passed = {k: v for k, v in self._passed.items() if v}
        return decision


# The same rule as domain.rate_limit.sliding_window, on a sorted set of pass times.
# Returns the window (ascending) as it was before this request, and Redis's time, so
# Python derives the Decision with the domain function from the same numbers.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local window = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
if #window / 2 < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], math.ceil(period * 1000) + 1000)
local scores = {}
for i = 2, #window, 2 do scores[#scores + 1] = window[i] end
return {tostring(now), scores}
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, key: str, rate: Rate) -> Decision:
        now, scores = await self._script(
            keys=[KEY_PREFIX + key],
            args=[rate.period_seconds, rate.requests, uuid.uuid4().hex],
        )
        return sliding_window(rate, [float(s) for s in scores], float(now))
