"""Admin monitoring: who may watch, and the rules for what they ask to see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import InvalidInput, PermissionDenied
from domain.users import User

SEARCH_MAX_TERMS = 8
SEARCH_TERM_MAX_CHARS = 100


class CannotDeactivateSelf(PermissionDenied):
    code = "cannot_deactivate_self"
    default_message = "You cannot deactivate your own account."


def require_staff(user: User) -> None:
    """Only active staff members (``is_staff``) may use the admin API."""
    if not (user.is_staff and user.is_active):
        raise PermissionDenied("Only staff members can use the admin API.")


class AuditAction(StrEnum):
    CONVERSATION_VIEW = "conversation.view"
    CONVERSATION_CLOSE = "conversation.close"
    CONVERSATION_REOPEN = "conversation.reopen"
    USER_DEACTIVATE = "user.deactivate"
    USER_REACTIVATE = "user.reactivate"
    USER_BUDGET = "user.budget"
    USER_MODELS = "user.models"


def search_terms(text: str | None) -> tuple[str, ...]:
    """The words of a search, split on whitespace, duplicates (ignoring case) dropped.

    A conversation matches when its title, or one of its messages, contains every word
    (case-insensitive; a word may be part of a longer word, so Chinese text without
    spaces is found too). At most 8 words of at most 100 characters each."""
    if text is None:
        return ()
    terms: list[str] = []
    seen: set[str] = set()
    for word in text.split():
        if word.casefold() not in seen:
            seen.add(word.casefold())
            terms.append(word)
    problems = []
    if len(terms) > SEARCH_MAX_TERMS:
        problems.append(f"Use at most {SEARCH_MAX_TERMS} words.")
    if any(len(term) > SEARCH_TERM_MAX_CHARS for term in terms):
        problems.append(f"Each word has at most {SEARCH_TERM_MAX_CHARS} characters.")
    if problems:
        raise InvalidInput({"search": problems})
    return tuple(terms)


@dataclass(frozen=True, kw_only=True)
class TimeRange:
    """``start`` inclusive, ``end`` exclusive; ``None`` is unbounded."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ConversationStats:
    """What a conversation amounts to. An empty conversation has zero counts, no times
    and a duration of 0."""

    conversation_id: int
    message_count: int = 0
    user_messages: int = 0
    ai_messages: int = 0
    first_message_time: datetime | None = None
    last_message_time: datetime | None = None

    @property
    def duration_minutes(self) -> int:
        """Whole minutes from the first message to the last (rounded down)."""
        if self.first_message_time is None or self.last_message_time is None:
            return 0
        return int((self.last_message_time - self.first_message_time).total_seconds() // 60)


class UsageGrouping(StrEnum):
    """What a usage report is grouped by: any of these, each at most once. ``DAY`` is the
    UTC calendar date of the usage; a report grouped by it runs oldest day first."""

    USER = "user"
    MODEL = "model"
    DAY = "day"


DEFAULT_USAGE_GROUPING = frozenset({UsageGrouping.USER, UsageGrouping.MODEL})
