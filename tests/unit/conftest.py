"""Unit fixtures: the use cases wired to in-memory fakes. No network, no database."""

from __future__ import annotations

from datetime import UTC

import pytest

from adapters.auth.api_tokens import Sha256ApiTokenCodec
from adapters.streams.replies import MemoryReplyChannel
from application.budgets import BudgetRules, HeldReservations, Metering
from application.chat import Generations, HistoryBudget, ReplyLease, TurnPreparation, TurnRecorder
from application.chat_settings import SettingsDefaults
from domain.quota import QuotaPolicy
from tests.unit.in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakePasswordHasher,
    FakeTokenIssuer,
    FakeUnitOfWork,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def hasher() -> FakePasswordHasher:
    return FakePasswordHasher()


@pytest.fixture
def tokens(clock: FakeClock) -> FakeTokenIssuer:
    return FakeTokenIssuer(clock)


@pytest.fixture
def codec() -> Sha256ApiTokenCodec:
    return Sha256ApiTokenCodec()


@pytest.fixture
def catalog() -> FakeModelCatalog:
    return FakeModelCatalog(
        ["fake-small", "fake-large", "fake-vision"],
        default="fake-small",
        with_images=["fake-vision"],
    )


@pytest.fixture
def images() -> FakeImageInspector:
    return FakeImageInspector()


@pytest.fixture
def chat_model() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
def policy() -> QuotaPolicy:
    return QuotaPolicy()


def metering_for(
    catalog: FakeModelCatalog, clock: FakeClock, rules: BudgetRules | None = None
) -> Metering:
    """The metering of calls (no budget, every model, unless ``rules`` say otherwise)."""
    rules = rules or BudgetRules(zone=UTC)
    return Metering(rules, catalog, clock, HeldReservations(rules))


def turn_preparation(
    uow: FakeUnitOfWork,
    catalog: FakeModelCatalog,
    clock: FakeClock,
    images: FakeImageInspector,
    *,
    budget: HistoryBudget | None = None,
    policy: QuotaPolicy | None = None,
    defaults: SettingsDefaults | None = None,
    metering: Metering | None = None,
) -> TurnPreparation:
    return TurnPreparation(
        uow,
        catalog,
        policy or QuotaPolicy(),
        clock,
        budget or HistoryBudget(),
        defaults or SettingsDefaults(),
        images,
        metering or metering_for(catalog, clock),
    )


@pytest.fixture
def recorder(uow: FakeUnitOfWork, clock: FakeClock, catalog: FakeModelCatalog) -> TurnRecorder:
    return TurnRecorder(uow, clock, metering_for(catalog, clock))


@pytest.fixture
def generations(uow: FakeUnitOfWork, clock: FakeClock) -> Generations:
    return Generations(uow, clock, ReplyLease())


@pytest.fixture
def channel() -> MemoryReplyChannel:
    return MemoryReplyChannel(idle_seconds=5)
