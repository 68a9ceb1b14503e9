"""The admin API's query strings: what each parameter accepts, and the field errors that
name the parameter a client got wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.conversation import ConversationStatus
from domain.errors import InvalidInput
from domain.monitoring import UsageGrouping
from entrypoints.http.api.admin_filters import grouping, period, status_filter, text_filter


def test_text_filters_are_trimmed_blank_is_none_and_nul_is_refused() -> None:
    assert text_filter(" alice ", "user") == "alice"
    assert text_filter("  ", "user") is None
    assert text_filter(None, "user") is None
    with pytest.raises(InvalidInput) as raised:
        text_filter("al\x00ice", "user")
    assert raised.value.field_errors == {"user": ["Null characters are not allowed."]}


def test_status_is_active_closed_or_nothing() -> None:
    assert status_filter("active") is ConversationStatus.ACTIVE
    assert status_filter(" closed ") is ConversationStatus.CLOSED
    assert status_filter("") is None
    with pytest.raises(InvalidInput) as raised:
        status_filter("ACTIVE")
    assert raised.value.field_errors == {"status": ['"ACTIVE" is not a valid choice.']}


def test_dates_cover_whole_days_and_instants_are_inclusive() -> None:
    days = period("2025-01-01", "2025-01-31")
    assert days.start == datetime(2025, 1, 1, tzinfo=UTC)
    assert days.end == datetime(2025, 2, 1, tzinfo=UTC)  # exclusive bound
    instant = period(None, "2025-01-31T12:00:00+08:00")
    assert instant.start is None
    assert instant.end == datetime(2025, 1, 31, 4, 0, 0, 1, tzinfo=UTC)
    naive = period("2025-01-31T12:00:00", None)
    assert naive.start == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert period("2025-01-31", "2025-01-31").end == datetime(2025, 2, 1, tzinfo=UTC)


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
        period(start, end)
    assert set(raised.value.field_errors) == fields


def test_grouping_defaults_to_both() -> None:
    assert grouping(None) == {UsageGrouping.USER, UsageGrouping.MODEL}
    assert grouping("model") == {UsageGrouping.MODEL}
    assert grouping("user, model") == {UsageGrouping.USER, UsageGrouping.MODEL}
    assert grouping("day") == {UsageGrouping.DAY}
    assert (
        grouping("model,day") == grouping("day,model") == {UsageGrouping.DAY, UsageGrouping.MODEL}
    )
    assert grouping(" model , day , user ") == set(UsageGrouping)
    for bad in ("week", ",", "user;model", "user,user", "day,model,day", "Day"):
        with pytest.raises(InvalidInput) as raised:
            grouping(bad)
        assert raised.value.field_errors == {
            "group_by": ['Use "user", "model" and "day", each at most once, e.g. "day,model".']
        }


def test_offsets_other_than_utc_are_converted() -> None:
    tokyo = timezone(timedelta(hours=9))
    parsed = period("2025-03-01T09:00:00+09:00", None)
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
        period(start, end)
    assert set(raised.value.field_errors) == {field}
