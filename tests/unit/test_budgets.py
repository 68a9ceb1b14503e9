"""Budgets and model access: the arithmetic, the periods, and what the use cases do with
them (reserve before a call, settle after), with in-memory fakes and an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.admin import (
    AdminUserRef,
    GetUserModels,
    SetUserBudget,
    SetUserBudgetRequest,
    SetUserModels,
    SetUserModelsRequest,
)
from application.budgets import (
    BudgetRules,
    GetOwnBudget,
    HeldReservations,
    ListModels,
    ListModelsRequest,
    Metering,
    OwnBudgetRequest,
    prompt_estimate,
)
from application.chat import SendMessage, SendMessageRequest, TurnRecorder
from application.errors import ProviderError
from application.ports import ChatRequest, ChatTurn, TokenUsage
from domain.budgets import (
    Budget,
    BudgetExceeded,
    Limit,
    Limits,
    ModelAccess,
    ModelNotAllowed,
    Period,
    PeriodSpend,
    Price,
    Spend,
    UserLimits,
    billed,
    check_fits,
    estimated_prompt_tokens,
    estimated_tokens,
    parse_amount,
)
from domain.errors import InvalidInput
from tests.unit.conftest import turn_preparation
from tests.unit.in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakeUnitOfWork,
)
from tests.unit.test_admin_use_cases import FakeAdminUnitOfWork

ALICE = 1
ZONES = [UTC, ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")]
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
limits = st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))


# ---- periods --------------------------------------------------------------------------------


@given(now=moments, zone=st.sampled_from(ZONES), period=st.sampled_from(Period))
def test_a_moment_is_inside_its_period_and_the_next_period_starts_where_it_ends(
    now: datetime, zone: ZoneInfo, period: Period
) -> None:
    start, end = period.start(now, zone), period.end(now, zone)
    assert start <= now < end
    assert period.start(end, zone) == end  # rollover: the reset instant opens the next one
    local = start.astimezone(zone)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    if period is Period.MONTH:
        assert local.day == 1


@given(now=moments, zone=st.sampled_from(ZONES))
def test_a_day_lies_within_its_month(now: datetime, zone: ZoneInfo) -> None:
    assert Period.MONTH.start(now, zone) <= Period.DAY.start(now, zone)
    assert Period.DAY.end(now, zone) <= Period.MONTH.end(now, zone)


def test_periods_follow_the_operators_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)  # 01:30 on 1 January in Shanghai
    assert Period.DAY.start(now, UTC) == datetime(2026, 12, 31, tzinfo=UTC)
    assert Period.DAY.start(now, shanghai) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert Period.MONTH.end(now, UTC) == datetime(2027, 1, 1, tzinfo=UTC)
    assert Period.MONTH.start(now, shanghai) == datetime(2026, 12, 31, 16, tzinfo=UTC)


# ---- money ----------------------------------------------------------------------------------


@given(
    prompt=st.integers(min_value=0, max_value=10**7),
    completion=st.integers(min_value=0, max_value=10**7),
    input_price=st.decimals(min_value=0, max_value=1000, places=3),
    output_price=st.decimals(min_value=0, max_value=1000, places=3),
)
def test_a_cost_is_exact_in_nano_units_and_never_rounded_down(
    prompt: int, completion: int, input_price: Decimal, output_price: Decimal
) -> None:
    price = Price(input_per_million=input_price, output_per_million=output_price)
    exact = (prompt * input_price + completion * output_price) / Decimal(1_000_000)
    nanos = price.cost(prompt, completion)
    assert Decimal(nanos) / 10**9 >= exact
    assert Decimal(nanos - 1) / 10**9 < exact or nanos == 0


def test_a_price_of_two_and_a_half_per_million_costs_2500_nanos_a_token() -> None:
    price = Price(input_per_million=Decimal("2.5"), output_per_million=Decimal(10))
    assert price.cost(1, 0) == 2_500
    assert price.cost(1_000_000, 1_000_000) == 12_500_000_000  # 12.50


@pytest.mark.parametrize("raw", ["-1", "abc", "NaN", "Infinity"])
def test_an_amount_must_be_a_finite_number_of_zero_or_more(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_amount("daily_cost", raw)
    assert "daily_cost" in refused.value.field_errors


def test_amounts_are_read_exactly() -> None:
    assert parse_amount("cost", "0.25") == 250_000_000
    assert parse_amount("cost", 0.1) == 100_000_000
    assert parse_amount("cost", None) is None
    assert parse_amount("cost", "") is None


# ---- reservation arithmetic -----------------------------------------------------------------


@given(
    tokens=limits,
    cost=limits,
    spent=st.integers(min_value=0, max_value=10**9),
    spent_cost=st.integers(min_value=0, max_value=10**9),
    estimate=st.integers(min_value=0, max_value=10**9),
    estimate_cost=st.integers(min_value=0, max_value=10**9),
    period=st.sampled_from(Period),
)
def test_a_call_is_admitted_exactly_when_its_estimate_fits_what_is_left(
    tokens: int | None,
    cost: int | None,
    spent: int,
    spent_cost: int,
    estimate: int,
    estimate_cost: int,
    period: Period,
) -> None:
    limit = Limit(tokens=tokens, cost_nanos=cost)
    budget = Budget(daily=limit) if period is Period.DAY else Budget(monthly=limit)
    used = PeriodSpend(day=Spend(spent, spent_cost), month=Spend(spent, spent_cost))
    now = datetime(2026, 12, 2, 15, tzinfo=UTC)
    fits = (tokens is None or spent + estimate <= tokens) and (
        cost is None or spent_cost + estimate_cost <= cost
    )
    if fits:
        check_fits(budget, used, Spend(estimate, estimate_cost), now, UTC)
        return
    with pytest.raises(BudgetExceeded) as refused:
        check_fits(budget, used, Spend(estimate, estimate_cost), now, UTC)
    assert refused.value.period is period
    assert refused.value.resets_at == period.end(now, UTC)
    assert refused.value.retry_after == int((refused.value.resets_at - now).total_seconds())


@given(
    limit=st.integers(min_value=0, max_value=10_000),
    estimates=st.lists(st.integers(min_value=0, max_value=2_000), max_size=60),
)
def test_reservations_one_after_another_never_hold_more_than_the_budget(
    limit: int, estimates: list[int]
) -> None:
    budget = Budget(daily=Limit(tokens=limit))
    now = datetime(2026, 12, 2, tzinfo=UTC)
    held = 0
    for estimate in estimates:
        try:
            check_fits(budget, PeriodSpend(Spend(held), Spend(held)), Spend(estimate), now, UTC)
        except BudgetExceeded:
            assert held + estimate > limit  # refused only when it would not fit
        else:
            held += estimate
        assert held <= limit


@given(text=st.text(max_size=300))
def test_the_estimate_is_at_least_a_quarter_token_a_character_and_a_token_for_non_ascii(
    text: str,
) -> None:
    tokens = estimated_tokens(text)
    assert tokens >= len(text) / 4
    assert tokens >= sum(1 for ch in text if ord(ch) >= 128)
    assert estimated_prompt_tokens([text]) == tokens + 4


def test_chinese_counts_a_token_a_character() -> None:
    assert estimated_tokens("你好世界") == 4
    assert estimated_tokens("hello world!") == 3


@given(
    reported=st.one_of(st.none(), st.builds(Spend, st.integers(0, 10**6), st.integers(0, 10**9))),
    answer=st.text(max_size=100),
    prompt=st.integers(min_value=0, max_value=10**5),
)
def test_what_a_call_is_billed(reported: Spend | None, answer: str, prompt: int) -> None:
    bill = billed(reported, prompt, answer, None)
    if reported is not None:
        assert bill == reported  # the provider's word
    elif not answer:
        assert bill == Spend()  # nothing produced, nothing billed
    else:
        assert bill.tokens == prompt + estimated_tokens(answer)  # what a broken stream made


def test_a_users_own_limits_come_before_the_defaults() -> None:
    default = Limits(budget=Budget(daily=Limit(tokens=100)), access=ModelAccess())
    assert Limits.of(None, default) == default
    own = Limits.of(UserLimits(allowed_models=frozenset({"a"})), default)
    assert own.budget == default.budget
    assert not own.access.permits("b")
    own_budget = Limits.of(UserLimits(budget=Budget()), default)
    assert own_budget.budget.unlimited
    assert own_budget.access.permits("b")


# ---- the use cases --------------------------------------------------------------------------


class World:
    """A user, a model priced at 1 per million in and 2 out, and a budget."""

    def __init__(self, budget: Budget, *, model: FakeChatModel | None = None) -> None:
        self.uow = FakeUnitOfWork()
        self.clock = FakeClock(datetime(2026, 12, 2, 23, 0, tzinfo=UTC))
        self.model = model or FakeChatModel(
            "Hi.", usage=TokenUsage(prompt_tokens=20, completion_tokens=10)
        )
        price = Price(input_per_million=Decimal(1), output_per_million=Decimal(2))
        self.catalog = FakeModelCatalog(("small", "large"), prices={"small": price})
        self.rules = BudgetRules(
            default=Limits(budget=budget, access=ModelAccess()), zone=UTC, lease_seconds=15
        )
        self.held = HeldReservations(self.rules)
        self.metering = Metering(self.rules, self.catalog, self.clock, self.held)
        prepare = turn_preparation(
            self.uow, self.catalog, self.clock, FakeImageInspector(), metering=self.metering
        )
        record = TurnRecorder(self.uow, self.clock, self.metering)
        self.send = SendMessage(prepare, record, self.model)
        self.user = self.uow.seed_user("alice")

    def says(self, text: str = "hello", model: str | None = "small") -> SendMessageRequest:
        return SendMessageRequest(
            owner_id=self.user.id, conversation_id=None, text=text, model=model
        )

    async def budget_left(self) -> int | None:
        status = await GetOwnBudget(self.uow, self.rules, self.clock)(
            OwnBudgetRequest(owner_id=self.user.id)
        )
        return status.periods[0].remaining_tokens


ESTIMATE = 2 + 4 + 1024  # "hello" + a message's overhead + the default max_tokens


async def test_a_call_that_does_not_fit_is_refused_before_the_model_and_stores_nothing() -> None:
    world = World(Budget(daily=Limit(tokens=ESTIMATE - 1)))

    with pytest.raises(BudgetExceeded) as refused:
        await world.send(world.says())

    assert world.model.requests == []
    assert world.uow.committed.messages == {}
    assert world.uow.committed.conversations == {}
    assert refused.value.resets_at == datetime(2026, 12, 3, tzinfo=UTC)
    assert refused.value.retry_after == 3600


async def test_a_reservation_is_committed_before_the_model_is_asked_and_settled_after() -> None:
    seen: list[dict[int, object]] = []
    world = World(Budget(daily=Limit(tokens=10_000)))
    world.model.on_request = lambda _: seen.append(dict(world.uow.committed.reservations))

    await world.send(world.says())

    assert [held.amount for held in seen[0].values()] == [  # type: ignore[attr-defined]
        Spend(ESTIMATE, ESTIMATE * 1_000 + 1024 * 1_000)  # 1 per million in, 2 out
    ]
    assert world.uow.committed.reservations == {}
    reply = max(world.uow.committed.messages.values(), key=lambda m: m.id)
    assert (reply.billed_tokens, reply.cost_nanos) == (30, 20 * 1_000 + 10 * 2_000)
    assert await world.budget_left() == 10_000 - 30
    assert world.held.live() == []


async def test_a_failed_call_is_billed_nothing_and_releases_its_reservation() -> None:
    world = World(
        Budget(daily=Limit(tokens=10_000)), model=FakeChatModel(error=ProviderError("down"))
    )

    with pytest.raises(ProviderError):
        await world.send(world.says())

    assert world.uow.committed.reservations == {}
    assert await world.budget_left() == 10_000


async def test_the_day_rolls_over_at_midnight_and_the_month_still_counts() -> None:
    # Each call reserves ESTIMATE and is billed 30.
    budget = Budget(daily=Limit(tokens=ESTIMATE + 29), monthly=Limit(tokens=ESTIMATE + 59))
    world = World(budget)
    await world.send(world.says())
    with pytest.raises(BudgetExceeded) as refused:
        await world.send(world.says())
    assert refused.value.period is Period.DAY

    world.clock.advance(hours=1)  # 00:00 on 3 December
    await world.send(world.says())
    world.clock.advance(days=1)
    with pytest.raises(BudgetExceeded) as refused:  # not for the day: for the month
        await world.send(world.says())
    assert refused.value.period is Period.MONTH
    assert refused.value.resets_at == datetime(2027, 1, 1, tzinfo=UTC)


async def test_a_reservation_whose_lease_ended_counts_no_more_and_is_dropped() -> None:
    world = World(Budget(daily=Limit(tokens=ESTIMATE)))
    async with world.uow as uow:  # a call of a process that died holds the whole budget
        await uow.spending.hold(
            world.user.id, Spend(ESTIMATE), world.clock.now(), world.clock.now() + timedelta(15)
        )
        await uow.commit()
    with pytest.raises(BudgetExceeded):
        await world.send(world.says())

    world.clock.advance(days=15, seconds=1)
    assert await world.metering.renew_leases(world.uow) == 1
    await world.send(world.says())
    assert world.uow.committed.reservations == {}


async def test_this_processes_reservations_are_renewed() -> None:
    world = World(Budget(daily=Limit(tokens=10_000)))
    call = ChatRequest(
        model="small", messages=[ChatTurn(role="user", content="hi")], temperature=1, max_tokens=5
    )
    async with world.uow as uow:
        reservation = await world.metering.reserve(
            uow, world.user.id, world.rules.default.budget, call
        )
        await uow.commit()
    assert reservation is not None
    world.clock.advance(seconds=10)
    await world.metering.renew_leases(world.uow)
    world.clock.advance(seconds=10)  # past the first lease, within the renewed one
    assert await world.metering.renew_leases(world.uow) == 0
    assert list(world.uow.committed.reservations) == [reservation.id]


async def test_no_budget_no_reservation() -> None:
    world = World(Budget())
    world.model.on_request = lambda _: None
    await world.send(world.says())
    assert world.uow.committed.reservations == {}
    assert await world.budget_left() is None


async def test_a_model_the_user_may_not_use_is_refused_before_the_model() -> None:
    world = World(Budget())
    async with world.uow as uow:
        await uow.spending.save_limits(
            world.user.id, UserLimits(allowed_models=frozenset({"small"})), world.clock.now()
        )
        await uow.commit()

    with pytest.raises(ModelNotAllowed):
        await world.send(world.says(model="large"))

    assert world.model.requests == []
    assert world.uow.committed.messages == {}
    await world.send(world.says(model="small"))
    assert world.model.requests[0].permitted_models == frozenset({"small"})  # no fallback out
    listed = await ListModels(world.uow, world.catalog, world.rules)(
        ListModelsRequest(owner_id=world.user.id)
    )
    assert [model.id for model in listed] == ["small"]


def test_the_prompt_estimate_counts_every_message_and_image() -> None:
    call = ChatRequest(
        model="m",
        messages=[
            ChatTurn(role="system", content="be brief"),
            ChatTurn(role="user", content="你好", image_url="data:image/png;base64,AA=="),
        ],
        temperature=1,
        max_tokens=10,
    )
    assert prompt_estimate(call) == (2 + 4) + (2 + 4) + 1_500


# ---- admins ---------------------------------------------------------------------------------


async def test_an_admin_sets_and_resets_a_budget_and_the_models_each_audited() -> None:
    uow = FakeAdminUnitOfWork()
    clock = FakeClock()
    admin = uow.seed_user("root", is_staff=True)
    alice = uow.seed_user("alice")
    rules = BudgetRules(
        default=Limits(budget=Budget(daily=Limit(tokens=100)), access=ModelAccess()), zone=UTC
    )
    mine = Budget(monthly=Limit(cost_nanos=5 * 10**9))

    status = await SetUserBudget(uow, rules, clock)(
        SetUserBudgetRequest(actor=admin, user_id=alice.id, budget=mine)
    )
    assert status.own
    assert [p.limit_cost_nanos for p in status.periods] == [None, 5 * 10**9]
    models = await SetUserModels(uow, rules, FakeModelCatalog(), clock)(
        SetUserModelsRequest(actor=admin, user_id=alice.id, allowed=frozenset({"fake-small"}))
    )
    assert (models.own, models.allowed) == (True, frozenset({"fake-small"}))
    async with uow:
        kept = await uow.spending.limits_of(alice.id)
    assert kept == UserLimits(budget=mine, allowed_models=frozenset({"fake-small"}))

    back = await SetUserBudget(uow, rules, clock)(
        SetUserBudgetRequest(actor=admin, user_id=alice.id, budget=None)
    )
    assert not back.own
    assert back.periods[0].limit_tokens == 100  # the default again; the models list stays
    assert (await GetUserModels(uow, rules)(AdminUserRef(actor=admin, user_id=alice.id))).own
    assert [row.action for row in uow.audit_rows] == ["user.budget", "user.models", "user.budget"]
    assert uow.audit_rows[0].details["monthly_cost_nanos"] == 5 * 10**9


async def test_an_admin_may_only_allow_configured_models() -> None:
    uow = FakeAdminUnitOfWork()
    admin = uow.seed_user("root", is_staff=True)
    with pytest.raises(InvalidInput) as refused:
        await SetUserModels(uow, BudgetRules(zone=UTC), FakeModelCatalog(), FakeClock())(
            SetUserModelsRequest(actor=admin, user_id=admin.id, allowed=frozenset({"gpt-9"}))
        )
    assert "allowed_models" in refused.value.field_errors
    assert uow.audit_rows == []
