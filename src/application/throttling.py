"""Who may send how many requests."""

from __future__ import annotations

from dataclasses import dataclass

from application.errors import RateLimited
from application.ports import RateLimiter
from domain.rate_limit import Decision, Rate

# Which limit refused a request (RateLimited.limit): what an operator's dashboard counts.
REQUESTS = "requests"
CREDENTIALS = "credentials"


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    per_client: Rate  # per authenticated user; per address for anonymous requests
    credentials: Rate  # login, registration, token and WeChat callbacks


class Throttle:
    """Requests per authenticated user, per client address when anonymous, and a
    stricter limit per username and per address on endpoints that take credentials
    (against password guessing). Over a limit: RateLimited (429) with when to retry."""

    def __init__(self, limiter: RateLimiter, limits: RateLimits) -> None:
        self._limiter = limiter
        self._limits = limits

    async def user(self, user_id: int) -> Decision:
        return await self._check(f"user:{user_id}", self._limits.per_client, REQUESTS)

    async def address(self, address: str) -> Decision:
        return await self._check(f"ip:{address}", self._limits.per_client, REQUESTS)

    async def credentials(self, username: str, address: str) -> None:
        rate = self._limits.credentials
        await self._check(f"login-ip:{address}", rate, CREDENTIALS)
        if username:
            await self._check(f"login-user:{username.casefold()}", rate, CREDENTIALS)

    async def _check(self, key: str, rate: Rate, limit: str) -> Decision:
        decision = await self._limiter.hit(key, rate)
        if not decision.allowed:
            raise RateLimited(decision, limit=limit)
        return decision
