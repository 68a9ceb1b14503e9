"""Unit fixtures: the use cases wired to in-memory fakes. No network, no database."""

from __future__ import annotations

import pytest
from in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakePasswordHasher,
    FakeTokenIssuer,
    FakeUnitOfWork,
)

from adapters.auth.api_tokens import Sha256ApiTokenCodec
from domain.quota import QuotaPolicy


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
