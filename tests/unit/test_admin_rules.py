"""Admin monitoring rules in the domain: who may watch, search words, statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput, PermissionDenied
from domain.monitoring import ConversationStats, require_staff, search_terms
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
