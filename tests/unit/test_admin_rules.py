"""Admin monitoring rules in the domain: search words, status, time ranges, statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.conversation import ConversationStatus
from domain.errors import InvalidInput, PermissionDenied
from domain.monitoring import (
    ConversationStats,
    TimeRange,
    UsageGrouping,
    parse_grouping,
    parse_status,
    require_staff,
    search_terms,
)
from domain.users import User

T0 = datetime(2025, 1, 12, 10, 15, tzinfo=UTC)


def _user(*, is_staff: bool = False, is_active: bool = True) -> User:
    return User(
        id=1,
        username="u",
        email="u@example.com",
        password_hash="x",
        date_joined=T0,
        is_staff=is_staff,
        is_active=is_active,
    )


def test_only_active_staff_pass() -> None:
    require_staff(_user(is_staff=True))
    for flags in ({"is_staff": False}, {"is_staff": True, "is_active": False}):
        with pytest.raises(PermissionDenied):
            require_staff(_user(**flags))


def test_search_words_split_on_whitespace_without_case_duplicates() -> None:
    assert search_terms("  Machine  learning\tmachine 机器学习 ") == (
        "Machine",
        "learning",
        "机器学习",
    )
    assert search_terms(None) == ()
    assert search_terms("   ") == ()


def test_search_limits_are_reported_on_the_search_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        search_terms(" ".join(f"w{i}" for i in range(9)))
    assert list(raised.value.field_errors) == ["search"]
    with pytest.raises(InvalidInput):
        search_terms("x" * 101)
    assert search_terms("x" * 100) == ("x" * 100,)


def test_status_is_active_closed_or_nothing() -> None:
    assert parse_status("active") is ConversationStatus.ACTIVE
    assert parse_status(" closed ") is ConversationStatus.CLOSED
    assert parse_status("") is None
    with pytest.raises(InvalidInput) as raised:
        parse_status("ACTIVE")
    assert raised.value.field_errors == {"status": ['"ACTIVE" is not a valid choice.']}


def test_dates_cover_whole_days_and_instants_are_inclusive() -> None:
    days = TimeRange.parse("2025-01-01", "2025-01-31")
    assert days.start == datetime(2025, 1, 1, tzinfo=UTC)
    assert days.end == datetime(2025, 2, 1, tzinfo=UTC)  # exclusive bound
    instant = TimeRange.parse(None, "2025-01-31T12:00:00+08:00")
    assert instant.start is None
    assert instant.end == datetime(2025, 1, 31, 4, 0, 0, 1, tzinfo=UTC)
    naive = TimeRange.parse("2025-01-31T12:00:00", None)
    assert naive.start == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert TimeRange.parse("2025-01-31", "2025-01-31").end == datetime(2025, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "fields"),
    [
        ("2025-02-30", None, {"from"}),
        ("last week", "soon", {"from", "to"}),
        ("2025-02-02", "2025-02-01", {"to"}),
        ("2025-02-01T10:00:00Z", "2025-02-01T09:59:59Z", {"to"}),
    ],
)
def test_bad_ranges_name_the_failing_fields(start: str, end: str | None, fields: set[str]) -> None:
    with pytest.raises(InvalidInput) as raised:
        TimeRange.parse(start, end)
    assert set(raised.value.field_errors) == fields


def test_duration_is_whole_minutes_rounded_down() -> None:
    stats = ConversationStats(
        conversation_id=1,
        message_count=2,
        first_message_time=T0,
        last_message_time=T0 + timedelta(minutes=45, seconds=59, microseconds=999_999),
    )
    assert stats.duration_minutes == 45


def test_an_empty_conversation_has_zero_duration() -> None:
    assert ConversationStats(conversation_id=7).duration_minutes == 0


@given(
    first=st.datetimes(timezones=st.just(UTC)),
    gap=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
)
def test_duration_matches_the_gap(first: datetime, gap: timedelta) -> None:
    try:
        last = first + gap
    except OverflowError:
        return
    stats = ConversationStats(
        conversation_id=1, message_count=2, first_message_time=first, last_message_time=last
    )
    assert stats.duration_minutes == gap // timedelta(minutes=1)
    assert stats.duration_minutes >= 0


def test_grouping_defaults_to_both() -> None:
    assert parse_grouping(None) == {UsageGrouping.USER, UsageGrouping.MODEL}
    assert parse_grouping("model") == {UsageGrouping.MODEL}
    assert parse_grouping("user, model") == {UsageGrouping.USER, UsageGrouping.MODEL}
    for bad in ("day", ",", "user,day"):
        with pytest.raises(InvalidInput):
            parse_grouping(bad)


def test_offsets_other_than_utc_are_converted() -> None:
    tokyo = timezone(timedelta(hours=9))
    parsed = TimeRange.parse("2025-03-01T09:00:00+09:00", None)
    assert parsed.start == datetime(2025, 3, 1, 9, tzinfo=tokyo)
    assert parsed.start is not None
    assert parsed.start.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [(None, "9999-12-31", "to"), ("0001-01-01T00:00:00+05:00", None, "from")],
)
def test_dates_at_the_edge_of_the_calendar_are_invalid_input_not_a_crash(
    start: str | None, end: str | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        TimeRange.parse(start, end)
    assert set(raised.value.field_errors) == {field}
