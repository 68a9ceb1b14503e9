"""The rules of the provider health view: success rate, nearest-rank latency
percentiles, the last error (never a key), and the staff-only use case over fakes."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.admin import GetProviderHealth, GetProviderHealthRequest
from domain.conversation import MessageStatus
from domain.errors import PermissionDenied
from domain.provider_health import (
    ERROR_MESSAGE_MAX_CHARS,
    RecentCall,
    call_health,
    latency_percentiles,
    masked,
    nearest_rank,
    sanitised_error_message,
)
from domain.users import User
from tests.unit.in_memory import FakeClock, FakeModelCatalog

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = "sk-live-0123456789abcdefXYZ"
ODD_KEY = "hunter2-is-my-provider-password"


def _call(
    status: MessageStatus,
    latency_ms: int | None = 100,
    *,
    at: int = 0,
    code: str | None = None,
    message: str | None = None,
) -> RecentCall:
    return RecentCall(
        status=status,
        latency_ms=latency_ms,
        error_code=code,
        error_message=message,
        created_at=T0 + timedelta(seconds=at),
    )


# ---- percentiles ---------------------------------------------------------------------


def test_nearest_rank_on_a_known_list() -> None:
    # The textbook example (Wikipedia, "Percentile", nearest-rank method).
    ordered = [15, 20, 35, 40, 50]
    assert [nearest_rank(ordered, p) for p in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]


def test_a_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="percentile"):
        nearest_rank([], 50)
    with pytest.raises(ValueError, match="percentile"):
        nearest_rank([1], 0)


@given(
    latencies=st.lists(st.integers(0, 120_000), min_size=1, max_size=300),
    percentile=st.integers(1, 100),
)
@settings(max_examples=300, deadline=None)
def test_nearest_rank_is_the_smallest_value_with_p_percent_at_or_below(
    latencies: list[int], percentile: int
) -> None:
    ordered = sorted(latencies)
    value = nearest_rank(ordered, percentile)
    assert value in latencies
    at_or_below = sum(1 for latency in latencies if latency <= value)
    below = sum(1 for latency in latencies if latency < value)
    assert at_or_below * 100 >= percentile * len(latencies)
    assert below * 100 < percentile * len(latencies)
    assert value == ordered[math.ceil(percentile * len(ordered) / 100) - 1]


@given(st.lists(st.integers(0, 120_000), min_size=1, max_size=300))
@settings(max_examples=200, deadline=None)
def test_the_percentiles_are_ordered_and_within_the_latencies(latencies: list[int]) -> None:
    percentiles = latency_percentiles(latencies)
    assert percentiles is not None
    assert min(latencies) <= percentiles.p50 <= percentiles.p95 <= percentiles.p99
    assert percentiles.p99 <= max(latencies)


# ---- success rate and latency --------------------------------------------------------

statuses = st.sampled_from(list(MessageStatus))
codes = st.sampled_from([None, "provider_error", "provider_unavailable", "cancelled"])


@given(
    st.lists(st.tuples(statuses, st.one_of(st.none(), st.integers(0, 60_000)), codes), max_size=80)
)
@settings(max_examples=300, deadline=None)
def test_the_rate_counts_answered_calls_among_ended_ones(
    rows: list[tuple[MessageStatus, int | None, str | None]],
) -> None:
    calls = [
        _call(status, latency, at=i, code=code) for i, (status, latency, code) in enumerate(rows)
    ]
    health = call_health(calls)
    answered = [
        c
        for c in calls
        if c.status in (MessageStatus.COMPLETED, MessageStatus.BLOCKED)
        and c.error_code != "cancelled"
    ]
    failed = [
        c
        for c in calls
        if c.status in (MessageStatus.FAILED, MessageStatus.PARTIAL, MessageStatus.INTERRUPTED)
        and c.error_code != "cancelled"
    ]
    assert health.calls == len(answered) + len(failed)
    if health.calls == 0:
        assert health.success_rate is None
    else:
        assert health.success_rate == len(answered) / health.calls
        assert 0 <= health.success_rate <= 1
    answered_latencies = [c.latency_ms for c in answered if c.latency_ms is not None]
    assert health.latency_ms == latency_percentiles(answered_latencies)
    if failed:
        assert health.last_error is not None
        assert health.last_error.at == max(c.created_at for c in failed)
    else:
        assert health.last_error is None


def test_no_calls_give_zero_and_nulls() -> None:
    health = call_health([_call(MessageStatus.STREAMING)])
    assert (health.calls, health.success_rate, health.latency_ms, health.last_error) == (
        0,
        None,
        None,
        None,
    )


def test_a_blocked_reply_is_answered_and_a_cancelled_one_is_not_counted() -> None:
    health = call_health(
        [
            _call(MessageStatus.COMPLETED, 100),
            _call(MessageStatus.BLOCKED, 300),
            _call(MessageStatus.PARTIAL, 50, code="cancelled"),
            _call(MessageStatus.PARTIAL, 900, code="provider_error"),
        ]
    )
    assert health.calls == 3
    assert health.success_rate == pytest.approx(2 / 3)
    assert health.latency_ms is not None
    assert (health.latency_ms.p50, health.latency_ms.p99) == (100, 300)  # not the failure's


def test_the_last_error_is_the_newest_failure() -> None:
    health = call_health(
        [
            _call(MessageStatus.FAILED, at=5, code="provider_timeout", message="late"),
            _call(MessageStatus.FAILED, at=9, code="provider_error", message="newest"),
            _call(MessageStatus.COMPLETED, at=20),
            _call(MessageStatus.FAILED, at=1, code="provider_auth", message="oldest"),
        ]
    )
    assert health.last_error is not None
    assert (health.last_error.code, health.last_error.message) == ("provider_error", "newest")
    assert health.last_error.at == T0 + timedelta(seconds=9)


# ---- no key ever shows -----------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        f"Model provider OpenAI: HTTP 401 invalid_api_key: Incorrect API key provided: {KEY}",
        f"Internal error, key={KEY}",
        "Incorrect API key provided: sk-liv****fXYZ. You can find your API key in settings.",
        "API key not valid: AIzaSyD-0123456789abcdefghij",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc",
        f"{'x' * 190} {KEY}",  # the key straddles the 200-character cut
        f"a message cut when it was stored, ending in {KEY[:12]}",
    ],
)
def test_credentials_are_masked_before_the_message_is_cut(message: str) -> None:
    shown = sanitised_error_message(message, [KEY])
    assert shown is not None
    assert len(shown) <= ERROR_MESSAGE_MAX_CHARS
    for piece in ("0123456789", "sk-liv", "AIzaSyD", "eyJhbGci", KEY[:12]):
        assert piece not in shown


def test_a_configured_secret_is_masked_even_when_it_looks_like_words() -> None:
    shown = masked(f"denied for {ODD_KEY}, and again: {ODD_KEY[5:20]}", [ODD_KEY])
    assert "hunter2" not in shown
    assert ODD_KEY[5:20] not in shown
    assert shown.startswith("denied for ***")


def test_ordinary_words_are_left_alone() -> None:
    text = "Model provider OpenAI: HTTP 503 service_unavailable: The server is overloaded."
    assert masked(text, [KEY]) == text


@given(
    prefix=st.text(max_size=250),
    suffix=st.text(max_size=250),
    key=st.text(
        alphabet=st.characters(categories=["L", "N"], max_codepoint=127), min_size=8, max_size=60
    ),
)
@settings(max_examples=300, deadline=None)
def test_no_configured_key_survives_whatever_surrounds_it(
    prefix: str, suffix: str, key: str
) -> None:
    shown = sanitised_error_message(prefix + key + suffix, [key])
    assert shown is not None
    assert len(shown) <= ERROR_MESSAGE_MAX_CHARS
    assert key not in shown


# ---- the use case ----------------------------------------------------------------------


class FakeRecentCalls:
    def __init__(self, calls: Mapping[str, Sequence[RecentCall]]) -> None:
        self.calls = calls
        self.asked: list[tuple[tuple[str, ...], datetime, int]] = []

    async def recent(
        self, models: Collection[str], since: datetime, per_model: int
    ) -> Mapping[str, Sequence[RecentCall]]:
        self.asked.append((tuple(models), since, per_model))
        return {model: list(self.calls.get(model, ()))[:per_model] for model in models}


class FixedCooldowns:
    def __init__(self, remaining: Mapping[str, float]) -> None:
        self._remaining = dict(remaining)

    def remaining(self) -> Mapping[str, float]:
        return self._remaining


def _user(*, staff: bool) -> User:
    return User(
        id=1,
        username="admin",
        email="a@example.com",
        password_hash="x",
        date_joined=T0,
        is_staff=staff,
    )


async def test_every_configured_model_is_shown_with_its_health_and_cool_down() -> None:
    clock = FakeClock(T0)
    calls = FakeRecentCalls(
        {
            "fake-small": [
                _call(MessageStatus.COMPLETED, 120),
                _call(MessageStatus.FAILED, at=-30, code="provider_error", message=f"key {KEY}"),
            ]
        }
    )
    use_case = GetProviderHealth(
        calls,
        FixedCooldowns({"fake-small": 12.5}),
        FakeModelCatalog(["fake-small", "fake-large"]),
        clock,
        secrets=[KEY],
    )
    report = await use_case(GetProviderHealthRequest(actor=_user(staff=True)))

    assert calls.asked == [(("fake-small", "fake-large"), T0 - timedelta(hours=1), 500)]
    assert report.window == timedelta(hours=1)
    assert [p.provider for p in report.providers] == ["fake-provider"]
    small, large = report.providers[0].models
    assert (small.model, small.health.calls, small.health.success_rate) == ("fake-small", 2, 0.5)
    assert small.health.last_error is not None
    assert small.health.last_error.message is not None
    assert KEY not in small.health.last_error.message
    assert (small.cooling_down, small.cooldown_until) == (True, T0 + timedelta(seconds=12.5))
    assert (large.model, large.health.calls, large.health.success_rate) == ("fake-large", 0, None)
    assert (large.cooling_down, large.cooldown_until) == (False, None)


async def test_only_staff_see_provider_health() -> None:
    use_case = GetProviderHealth(
        FakeRecentCalls({}), FixedCooldowns({}), FakeModelCatalog(), FakeClock(T0)
    )
    with pytest.raises(PermissionDenied):
        await use_case(GetProviderHealthRequest(actor=_user(staff=False)))
