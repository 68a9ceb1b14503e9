"""The admin API's query strings, read into what the admin use cases take.

The parameter names (``user``, ``from``, ``to``, ``group_by``...) are this dialect's, so
the field errors that name them are made here; the core gets typed values."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from litestar.params import QueryParameter

from domain.conversation import ConversationStatus
from domain.errors import InvalidInput
from domain.monitoring import DEFAULT_USAGE_GROUPING, TimeRange, UsageGrouping
from entrypoints.http.schema_docs import QUERY_DAY_OR_INSTANT

# ``from`` and ``to`` of a report's period (read with ``period``), as handlers declare them.
PeriodStart = Annotated[
    str | None,
    QueryParameter(
        name="from",
        description="First day (YYYY-MM-DD) or ISO 8601 instant, inclusive.",
        schema_extra=QUERY_DAY_OR_INSTANT,
    ),
]
PeriodEnd = Annotated[
    str | None,
    QueryParameter(
        name="to",
        description="Last day (YYYY-MM-DD) or ISO 8601 instant, inclusive; not before `from`.",
        schema_extra=QUERY_DAY_OR_INSTANT,
    ),
]


def text_filter(value: str | None, field: str) -> str | None:
    """A text filter, or None when blank. NUL cannot be stored, so it cannot be asked for."""
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise InvalidInput({field: ["Null characters are not allowed."]})
    return value.strip()


def status_filter(value: str | None) -> ConversationStatus | None:
    """``active`` or ``closed``; blank means no filter."""
    if value is None or not value.strip():
        return None
    try:
        return ConversationStatus(value.strip())
    except ValueError:
        raise InvalidInput({"status": [f'"{value}" is not a valid choice.']}) from None


def period(start: str | None, end: str | None) -> TimeRange:
    """``from`` and ``to``: inclusive dates (``2025-01-31``) or ISO 8601 datetimes; a date
    as ``to`` covers that whole day. Times without an offset are UTC."""
    errors: dict[str, list[str]] = {}
    lower = _instant(start, "from", errors, end_of_day=False)
    upper = _instant(end, "to", errors, end_of_day=True)
    if lower is not None and upper is not None and upper <= lower:
        errors["to"] = ["Must not be before from."]
    if errors:
        raise InvalidInput(errors)
    return TimeRange(start=lower, end=upper)


def _instant(
    value: str | None, field: str, errors: dict[str, list[str]], *, end_of_day: bool
) -> datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            instant = datetime.combine(day, time(), UTC)
            return instant + timedelta(days=1) if end_of_day else instant
        parsed = datetime.fromisoformat(text)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        # An inclusive upper instant becomes the exclusive bound just after it.
        return parsed + timedelta(microseconds=1) if end_of_day else parsed
    except ValueError:
        errors[field] = ["Use a date (YYYY-MM-DD) or an ISO 8601 datetime."]
    except OverflowError:  # 9999-12-31 as "to", or year 1 moved to UTC
        errors[field] = ["The date is out of range."]
    return None


def grouping(value: str | None) -> frozenset[UsageGrouping]:
    """Any of ``user``, ``model`` and ``day``, comma separated in any order, each at most
    once; ``user,model`` when blank."""
    if value is None or not value.strip():
        return DEFAULT_USAGE_GROUPING
    try:
        keys = [UsageGrouping(p.strip()) for p in value.split(",") if p.strip()]
    except ValueError:
        keys = []
    if not keys or len(set(keys)) != len(keys):
        raise InvalidInput(
            {"group_by": ['Use "user", "model" and "day", each at most once, e.g. "day,model".']}
        )
    return frozenset(keys)
