"""Budgets and model access: how much a user may spend per day and per month, what a
call costs, and which models a user may use.

Money is counted in integer nano-units of the operator's currency (1e-9), so that sums
are exact in the database and here: a price has at most three decimals per million
tokens before it rounds (a price of 2.5 per million is 2,500 nano-units a token)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from enum import StrEnum

from domain.errors import DomainError, InvalidInput, PermissionDenied

NANOS_PER_UNIT = 1_000_000_000
_NANOS_PER_TOKEN_PER_MILLION = Decimal(NANOS_PER_UNIT) / Decimal(1_000_000)
# A message's wrapping as the providers count it (OpenAI documents ~3 tokens a message,
# plus 3 to prime the answer), and an image as a tile-based provider counts a large one.
MESSAGE_OVERHEAD_TOKENS = 4
IMAGE_TOKENS = 1_500


def nanos_of(amount: Decimal) -> int:
    """An amount of money in nano-units, rounded up (a budget is never overspent by
    rounding)."""
    return int((amount * NANOS_PER_UNIT).to_integral_value(rounding=ROUND_CEILING))


def amount_of(nanos: int) -> Decimal:
    """Nano-units as an amount of money, exactly."""
    return Decimal(nanos) / NANOS_PER_UNIT


def parse_amount(field: str, raw: object) -> int | None:
    """An amount of money an admin or operator wrote ("5", "0.25", 5, 0.25) in nano-units;
    None or "" for no limit; negative or malformed amounts are InvalidInput."""
    if raw is None or raw == "":
        return None
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidInput({field: ["Enter an amount such as 5 or 0.25."]}) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput({field: ["Enter an amount of 0 or more."]})
    return nanos_of(amount)


def parse_tokens(field: str, raw: object) -> int | None:
    """A number of tokens an admin or operator wrote; None or "" for no limit."""
    if raw is None or raw == "":
        return None
    try:
        tokens = int(str(raw))
    except ValueError:
        raise InvalidInput({field: ["Enter a whole number of tokens."]}) from None
    if tokens < 0:
        raise InvalidInput({field: ["Enter a number of tokens of 0 or more."]})
    return tokens


@dataclass(frozen=True, kw_only=True)
class Price:
    """What a model costs per million tokens: prompt (input) and completion (output,
    reasoning included, as the providers bill it)."""

    input_per_million: Decimal
    output_per_million: Decimal

    def __post_init__(self) -> None:
        if self.input_per_million < 0 or self.output_per_million < 0:
            raise ValueError("a price is 0 or more")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> int:
        """The cost in nano-units, rounded up to a whole nano-unit."""
        exact = (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) * _NANOS_PER_TOKEN_PER_MILLION
        return int(exact.to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class Spend:
    """Tokens and money (nano-units) spent, or to be spent."""

    tokens: int = 0
    cost_nanos: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.tokens + other.tokens, self.cost_nanos + other.cost_nanos)

    def __sub__(self, other: Spend) -> Spend:
        return Spend(self.tokens - other.tokens, self.cost_nanos - other.cost_nanos)


@dataclass(frozen=True, kw_only=True)
class Limit:
    """A period's limit: tokens and/or money (nano-units); None is no limit on it."""

    tokens: int | None = None
    cost_nanos: int | None = None

    def __post_init__(self) -> None:
        if (self.tokens is not None and self.tokens < 0) or (
            self.cost_nanos is not None and self.cost_nanos < 0
        ):
            raise ValueError("a limit is 0 or more")

    @property
    def unlimited(self) -> bool:
        return self.tokens is None and self.cost_nanos is None

    def fits(self, spent: Spend) -> bool:
        return (self.tokens is None or spent.tokens <= self.tokens) and (
            self.cost_nanos is None or spent.cost_nanos <= self.cost_nanos
        )

    def remaining(self, spent: Spend) -> Spend | None:
        """What is left (never below 0) on each limited part; None if unlimited. An
        unlimited part is reported as 0 left of nothing: callers show it as None."""
        if self.unlimited:
            return None
        return Spend(
            0 if self.tokens is None else max(0, self.tokens - spent.tokens),
            0 if self.cost_nanos is None else max(0, self.cost_nanos - spent.cost_nanos),
        )


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"

    def start(self, now: datetime, zone: tzinfo) -> datetime:
        """When the period containing ``now`` began, in ``zone`` (midnight of the day or
        of the month's first day), as an aware datetime."""
        local = now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Period.MONTH:
            midnight = midnight.replace(day=1)
        return _wall_clock(midnight, zone)

    def end(self, now: datetime, zone: tzinfo) -> datetime:
        """When the period containing ``now`` ends: the next period's start."""
        local = self.start(now, zone).astimezone(zone)
        if self is Period.DAY:
            following = local.replace(tzinfo=None) + timedelta(days=1)
        else:
            year, month = divmod(local.month, 12)
            following = local.replace(tzinfo=None, year=local.year + year, month=month + 1)
        return _wall_clock(following, zone)


def _wall_clock(moment: datetime, zone: tzinfo) -> datetime:
    """A wall-clock time in ``zone`` (midnight exists in every zone Parley cares about;
    where a transition skips it, zoneinfo resolves it to the instant after)."""
    return moment.replace(tzinfo=zone)


@dataclass(frozen=True, kw_only=True)
class Budget:
    """A user's limits per day and per month (the periods of the operator's zone)."""

    daily: Limit = Limit()
    monthly: Limit = Limit()

    @property
    def unlimited(self) -> bool:
        return self.daily.unlimited and self.monthly.unlimited

    def limit(self, period: Period) -> Limit:
        return self.daily if period is Period.DAY else self.monthly


@dataclass(frozen=True)
class PeriodSpend:
    """What a user has spent (and holds reserved) in this day and this month."""

    day: Spend = Spend()
    month: Spend = Spend()

    def of(self, period: Period) -> Spend:
        return self.day if period is Period.DAY else self.month


class BudgetExceeded(DomainError):
    """A call whose reservation does not fit the user's budget: refused before it is
    made. ``resets_at``: when the period that refuses it ends."""

    code = "budget_exceeded"

    def __init__(self, period: Period, resets_at: datetime, now: datetime) -> None:
        self.period = period
        self.resets_at = resets_at
        self.retry_after = max(1, math.ceil((resets_at - now).total_seconds()))
        word = "daily" if period is Period.DAY else "monthly"
        super().__init__(
            f"Your {word} budget does not cover this request; it resets at {utc_text(resets_at)}."
        )


def utc_text(moment: datetime) -> str:
    """An instant as ISO 8601 in UTC with a ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_fits(
    budget: Budget, spent: PeriodSpend, estimate: Spend, now: datetime, zone: tzinfo
) -> None:
    """Refuse (``BudgetExceeded``) a call whose estimate, added to what is spent and
    reserved, goes over a limit; the day is checked before the month."""
    for period in Period:
        if not budget.limit(period).fits(spent.of(period) + estimate):
            raise BudgetExceeded(period, period.end(now, zone), now)


def estimated_tokens(text: str) -> int:
    """A generous count of the tokens a text costs: a quarter token per ASCII character
    (OpenAI's rule of thumb for English) and a whole token per other character (Chinese
    runs at about one per character in the providers' tokenisers)."""
    # Counted in C: every turn estimates the whole history it sends.
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def estimated_prompt_tokens(texts: Iterable[str], images: int = 0) -> int:
    """The tokens a prompt of these messages is estimated to cost."""
    return sum(estimated_tokens(text) + MESSAGE_OVERHEAD_TOKENS for text in texts) + (
        images * IMAGE_TOKENS
    )


def billed(reported: Spend | None, prompt_estimate: int, answer: str, price: Price | None) -> Spend:
    """What a call is billed when it ends: the provider's reported usage; a call that
    wrote text but reported none (a stream stopped or broken midway) its estimated
    prompt and the text it produced; a call that produced nothing, nothing."""
    if reported is not None:
        return reported
    if not answer:
        return Spend()
    completion = estimated_tokens(answer)
    cost = 0 if price is None else price.cost(prompt_estimate, completion)
    return Spend(prompt_estimate + completion, cost)


def charge(prompt_tokens: int, completion_tokens: int, price: Price | None) -> Spend:
    """The spend of reported usage at a price (no price: tokens only)."""
    cost = 0 if price is None else price.cost(prompt_tokens, completion_tokens)
    return Spend(prompt_tokens + completion_tokens, cost)


class ModelNotAllowed(PermissionDenied):
    code = "model_not_allowed"
    default_message = "You may not use this model."


@dataclass(frozen=True)
class ModelAccess:
    """The models a user may use: ``allowed`` ids, or None for every model."""

    allowed: frozenset[str] | None = None

    def permits(self, model_id: str) -> bool:
        return self.allowed is None or model_id in self.allowed

    def require(self, model_id: str) -> None:
        if not self.permits(model_id):
            raise ModelNotAllowed(f'You may not use the model "{model_id}".')


@dataclass(frozen=True, kw_only=True)
class UserLimits:
    """An admin's settings for one user; None is "the default for everyone"."""

    budget: Budget | None = None
    allowed_models: frozenset[str] | None = None


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What applies to a user: their own settings, else the defaults."""

    budget: Budget
    access: ModelAccess

    @classmethod
    def of(cls, own: UserLimits | None, default: Limits) -> Limits:
        if own is None:
            return default
        return cls(
            budget=default.budget if own.budget is None else own.budget,
            access=default.access
            if own.allowed_models is None
            else ModelAccess(own.allowed_models),
        )
