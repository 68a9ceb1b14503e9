"""Rate limits and the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.rate_limit import Decision, Rate


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate) -> Decision:
        """Count one request for ``key`` against ``rate`` and say whether it may pass."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
