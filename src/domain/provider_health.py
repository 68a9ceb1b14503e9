"""How a model has been doing lately, from its recent calls: the rules of the admin's
provider health view.

- A call is a stored reply or a stateless call that has ended. ``completed`` and
  ``blocked`` count as answered: a content filter is the provider working as designed.
  ``failed``, ``partial`` (cut mid-answer) and ``interrupted`` (the server stopped
  before the answer was complete: the user got none) count as failures.
- Not counted at all: replies still ``streaming`` (not ended), and replies the user
  stopped (the code ``cancelled``; stored ``partial``): neither says anything about the
  provider.
- Success rate: answered / calls; None with no calls.
- Latency percentiles (p50, p95, p99) of the answered calls, nearest-rank: the smallest
  latency with at least p% of the latencies at or below it; None with none.
- The last error is the newest failure's stored code and message; the message is cut
  to 200 characters after anything that looks like a credential (or is a fragment of a
  configured secret) is masked, so a key never shows, even half of one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.conversation import MessageStatus

ANSWERED = frozenset({MessageStatus.COMPLETED, MessageStatus.BLOCKED})
FAILURES = frozenset({MessageStatus.FAILED, MessageStatus.PARTIAL, MessageStatus.INTERRUPTED})
CANCELLED_BY_USER = "cancelled"
PERCENTILES = (50, 95, 99)
ERROR_MESSAGE_MAX_CHARS = 200
MASK = "***"
# Fragments of a configured secret this long or longer are masked wherever they appear
# (a message cut when it was stored may end with the first part of a key).
SECRET_FRAGMENT_CHARS = 8

# What credentials look like in providers' error messages: OpenAI-style ``sk-...`` keys
# (also masked ones, ``sk-abc****wxyz``), Google's ``AIza...``, bearer tokens, ``key=``
# query parameters, and any long run of letters and digits mixed, as random keys are.
_CREDENTIALS = re.compile(
    r"\bsk-[\w*-]{4,}"
    r"|\bAIza[\w-]{8,}"
    r"|bearer\s+\S+"
    r"|(?:api[_-]?key|key|token|secret)=[^\s&\"']+"
    r"|\b(?=[\w-]*\d)(?=[\w-]*[a-z])[\w-]{24,}",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True)
class RecentCall:
    status: MessageStatus
    latency_ms: int | None
    error_code: str | None
    error_message: str | None
    created_at: datetime

    @property
    def counted(self) -> bool:
        if self.error_code == CANCELLED_BY_USER:
            return False
        return self.status in ANSWERED or self.status in FAILURES

    @property
    def answered(self) -> bool:
        return self.status in ANSWERED


@dataclass(frozen=True, kw_only=True)
class LatencyPercentiles:
    p50: int
    p95: int
    p99: int


@dataclass(frozen=True, kw_only=True)
class LastError:
    code: str | None
    message: str | None
    at: datetime


@dataclass(frozen=True, kw_only=True)
class CallHealth:
    calls: int
    success_rate: float | None
    latency_ms: LatencyPercentiles | None
    last_error: LastError | None


def nearest_rank(ordered: Sequence[int], percentile: int) -> int:
    """The nearest-rank percentile of ``ordered`` (ascending, not empty), 0 < p <= 100."""
    if not ordered or not 0 < percentile <= 100:
        raise ValueError("a percentile of no values, or outside (0, 100]")
    rank = -(-percentile * len(ordered) // 100)  # ceil, in integers: no rounding surprises
    return ordered[rank - 1]


def latency_percentiles(latencies: Iterable[int]) -> LatencyPercentiles | None:
    ordered = sorted(latencies)
    if not ordered:
        return None
    p50, p95, p99 = (nearest_rank(ordered, p) for p in PERCENTILES)
    return LatencyPercentiles(p50=p50, p95=p95, p99=p99)


def masked(text: str, secrets: Collection[str] = ()) -> str:
    """``text`` with configured secrets (and any fragment of one of at least
    ``SECRET_FRAGMENT_CHARS``) and credential-like words replaced by ``MASK``."""
    text = _CREDENTIALS.sub(MASK, text)
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        for piece in _fragments(secret):
            start = text.find(piece)
            while start != -1:
                spans.append((start, start + len(piece)))
                start = text.find(piece, start + 1)
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    kept: list[str] = []
    position = 0
    for start, stop in merged:
        kept += [text[position:start], MASK]
        position = stop
    kept.append(text[position:])
    return "".join(kept)


def _fragments(secret: str) -> set[str]:
    if not secret:
        return set()
    if len(secret) <= SECRET_FRAGMENT_CHARS:
        return {secret}
    width = SECRET_FRAGMENT_CHARS
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


def sanitised_error_message(message: str | None, secrets: Collection[str] = ()) -> str | None:
    if message is None:
        return None
    return masked(message, secrets)[:ERROR_MESSAGE_MAX_CHARS]


def call_health(calls: Iterable[RecentCall], secrets: Collection[str] = ()) -> CallHealth:
    counted = [call for call in calls if call.counted]
    if not counted:
        return CallHealth(calls=0, success_rate=None, latency_ms=None, last_error=None)
    answered = [call for call in counted if call.answered]
    failures = [call for call in counted if not call.answered]
    last_error = None
    if failures:
        newest = max(failures, key=lambda call: call.created_at)
        last_error = LastError(
            code=newest.error_code,
            message=sanitised_error_message(newest.error_message, secrets),
            at=newest.created_at,
        )
    return CallHealth(
        calls=len(counted),
        success_rate=len(answered) / len(counted),
        latency_ms=latency_percentiles(
            call.latency_ms for call in answered if call.latency_ms is not None
        ),
        last_error=last_error,
    )
