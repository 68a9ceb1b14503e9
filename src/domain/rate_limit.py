"""Request rate limits as an exact sliding window.

"60 per minute" means: in any window of 60 seconds, at most 60 requests pass. A fixed
window (reset at each minute) would let 60 through just before the edge and 60 more just
after it; a token bucket or GCRA with a full burst lets the burst and then the steady
pace through in the same minute. Keeping the times of the requests that passed in the
last period, and admitting one only while fewer than the limit remain, is exact."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class Rate:
    requests: int
    period_seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.period_seconds <= 0:
            raise ValueError("a rate needs at least one request per positive period")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"60/minute"``, ``"1000/hour"``, ``"5/second"``, ``"10000/day"``."""
        match = _RATE.match(text.lower())
        if match is None:
            raise ValueError(f"not a rate: {text!r} (use e.g. 60/minute)")
        return cls(int(match.group(1)), _UNITS[match.group(2)])

    def __str__(self) -> str:
        return f"{self.requests} per {self.period_seconds:g}s"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int  # requests still allowed in the current window after this one
    retry_after: float  # seconds until a request would pass (0 when allowed)
    reset_after: float  # seconds until the window is empty again


def sliding_window(rate: Rate, passed: Sequence[float], now: float) -> Decision:
    """Decide a request at ``now`` given when earlier requests passed (ascending)."""
    window_start = now - rate.period_seconds
    live = [t for t in passed if t > window_start]
    if len(live) >= rate.requests:
        # The request that must leave the window before another fits.
        blocking = live[len(live) - rate.requests]
        return Decision(
            allowed=False,
            limit=rate.requests,
            remaining=0,
            retry_after=blocking + rate.period_seconds - now,
            reset_after=live[-1] + rate.period_seconds - now,
        )
    return Decision(
        allowed=True,
        limit=rate.requests,
        remaining=rate.requests - len(live) - 1,
        retry_after=0.0,
        reset_after=(live[0] if live else now) + rate.period_seconds - now,
    )
