"""Cool-down of a model whose provider keeps failing, as LiteLLM's router does.

A model's calls (one route's attempt after its retries are spent) either succeed or fail.
Only failures that are the provider's fault count: rate limits (429), 5xx and
unavailable, timeouts, connection and transport errors -- the retryable kinds. A refused
request (400/401/403/404), a spent quota, a malformed answer or a content filter says
nothing about whether the provider is up, so it neither counts nor resets the count.

After ``failures`` consecutive counted failures the model cools down for ``seconds``;
a success resets the count. The router skips a cooling model in a fallback chain while
another route of the chain remains, and tries it anyway when every route is cooling (a
cool-down never refuses a request on its own). When the cool-down ends the model is
half-open: the next calls are tried normally, and one more failure cools it again at
once, since the count was not reset by anything but a success.

The state lives in this worker process: each worker learns on its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from adapters.llm.upstream import RETRYABLE, UpstreamFailure

MonotonicClock = Callable[[], float]


def counts_against_provider(failure: UpstreamFailure) -> bool:
    return failure.kind in RETRYABLE


@dataclass
class _ModelState:
    consecutive_failures: int = 0
    cooling_until: float | None = None


class Cooldowns:
    """Per public model id. ``failures`` 0 turns cool-downs off."""

    def __init__(
        self, *, failures: int, seconds: float, clock: MonotonicClock = time.monotonic
    ) -> None:
        if failures < 0 or seconds < 0:
            raise ValueError("cool-down failures and seconds must be 0 or more")
        self._threshold = failures
        self._seconds = seconds
        self._clock = clock
        self._models: dict[str, _ModelState] = {}

    @property
    def enabled(self) -> bool:
        return self._threshold > 0 and self._seconds > 0

    def is_cooling(self, model: str) -> bool:
        state = self._models.get(model)
        return (
            state is not None
            and state.cooling_until is not None
            and self._clock() < state.cooling_until
        )

    def succeeded(self, model: str) -> None:
        self._models.pop(model, None)

    def failed(self, model: str, failure: UpstreamFailure) -> bool:
        """Record a failed call; True when it starts a cool-down."""
        if not self.enabled or not counts_against_provider(failure):
            return False
        state = self._models.setdefault(model, _ModelState())
        state.consecutive_failures += 1
        if state.consecutive_failures < self._threshold:
            return False
        # Failing while cooling (every route of a chain was cooling, so it was tried
        # anyway) or half-open: the cool-down starts again from now.
        state.cooling_until = self._clock() + self._seconds
        return True

    def remaining(self) -> dict[str, float]:
        """Seconds of cool-down left, for each model cooling now."""
        now = self._clock()
        return {
            model: state.cooling_until - now
            for model, state in self._models.items()
            if state.cooling_until is not None and now < state.cooling_until
        }
