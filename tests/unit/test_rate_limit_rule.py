"""The sliding-window rate-limit rule: never more than the limit in any window."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rate_limit import Rate, sliding_window


def _run(rate: Rate, times: list[float]) -> list[bool]:
    passed: list[float] = []
    allowed = []
    for now in times:
        decision = sliding_window(rate, passed, now)
        if decision.allowed:
            passed.append(now)
        allowed.append(decision.allowed)
    return allowed


@pytest.mark.parametrize(
    ("text", "requests", "period"),
    [("60/minute", 60, 60), ("1000/hour", 1000, 3600), ("5 / second", 5, 1), ("2/days", 2, 86400)],
)
def test_rates_parse(text: str, requests: int, period: float) -> None:
    assert Rate.parse(text) == Rate(requests, period)


@pytest.mark.parametrize("text", ["", "60", "0/minute", "ten/minute", "60/fortnight"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


@given(
    requests=st.integers(1, 30),
    gaps=st.lists(
        st.one_of(st.just(0.0), st.floats(0, 0.5), st.floats(0, 20)), min_size=1, max_size=200
    ),
)
@settings(max_examples=200, deadline=None)
def test_no_window_of_one_period_ever_admits_more_than_the_limit(
    requests: int, gaps: list[float]
) -> None:
    rate = Rate(requests, 10.0)
    times, now = [], 0.0
    for gap in gaps:
        now += gap
        times.append(now)
    allowed_times = [t for t, ok in zip(times, _run(rate, times), strict=True) if ok]
    for start in allowed_times:
        inside = [t for t in allowed_times if start <= t < start + rate.period_seconds]
        assert len(inside) <= requests


@given(requests=st.integers(1, 30), gaps=st.lists(st.floats(0, 20), min_size=1, max_size=100))
@settings(max_examples=100, deadline=None)
def test_a_refused_request_passes_exactly_when_told(requests: int, gaps: list[float]) -> None:
    rate = Rate(requests, 10.0)
    passed: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        decision = sliding_window(rate, passed, now)
        if decision.allowed:
            passed.append(now)
            continue
        assert not sliding_window(rate, passed, now + decision.retry_after - 1e-6).allowed
        assert sliding_window(rate, passed, now + decision.retry_after + 1e-6).allowed


def test_the_limit_then_429_until_the_window_moves() -> None:
    rate = Rate(60, 60.0)
    times = [float(n) / 10 for n in range(61)]  # 61 requests in six seconds
    assert _run(rate, times) == [True] * 60 + [False]


def test_a_window_edge_cannot_double_the_limit() -> None:
    rate = Rate(60, 60.0)
    times = [59.9] * 60 + [60.1] * 60
    assert sum(_run(rate, times)) == 60


def test_steady_pace_after_a_burst_is_still_refused_within_the_period() -> None:
    rate = Rate(60, 60.0)
    times = [0.0] * 60 + [float(s) for s in range(1, 60)]
    assert sum(_run(rate, times)) == 60


def test_remaining_counts_down() -> None:
    rate = Rate(3, 60.0)
    passed: list[float] = []
    seen = []
    for _ in range(3):
        decision = sliding_window(rate, passed, 0.0)
        passed.append(0.0)
        seen.append(decision.remaining)
    assert seen == [2, 1, 0]
