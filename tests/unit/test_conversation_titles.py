"""Titles: at most 200 characters, refused beyond (never cut short); a title made from
the first message is made to fit, so sending a long first message still works."""

from __future__ import annotations

import pytest

from application.chat import SendMessage, SendMessageRequest, TurnRecorder
from application.conversations import (
    StartConversation,
    StartConversationRequest,
    UpdateConversation,
    UpdateConversationRequest,
)
from domain.errors import InvalidInput
from domain.quota import QuotaPolicy
from tests.unit.conftest import metering_for, turn_preparation
from tests.unit.in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakeUnitOfWork,
)

ALICE = 1
TOO_LONG = "t" * 201
LIMIT_MESSAGE = "Ensure this field has no more than 200 characters."


@pytest.fixture
def start(
    uow: FakeUnitOfWork, policy: QuotaPolicy, clock: FakeClock, catalog: FakeModelCatalog
) -> StartConversation:
    return StartConversation(uow, policy, clock, catalog)


@pytest.fixture
def update(
    uow: FakeUnitOfWork, policy: QuotaPolicy, clock: FakeClock, catalog: FakeModelCatalog
) -> UpdateConversation:
    return UpdateConversation(uow, policy, clock, catalog)


async def test_a_title_of_200_characters_is_kept_whole(
    start: StartConversation, uow: FakeUnitOfWork
) -> None:
    conversation = await start(StartConversationRequest(owner_id=ALICE, title="t" * 200))

    assert uow.state.conversations[conversation.id].title == "t" * 200


async def test_starting_with_a_title_over_200_characters_is_refused_and_stores_nothing(
    start: StartConversation, uow: FakeUnitOfWork
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await start(StartConversationRequest(owner_id=ALICE, title=TOO_LONG))

    assert raised.value.field_errors == {"title": [LIMIT_MESSAGE]}
    assert uow.state.conversations == {}
    assert uow.commits == 0


async def test_a_long_title_and_an_unknown_model_are_reported_together(
    start: StartConversation, update: UpdateConversation, uow: FakeUnitOfWork
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await start(StartConversationRequest(owner_id=ALICE, title=TOO_LONG, model="no-such-model"))
    assert set(raised.value.field_errors) == {"title", "model"}

    conversation = uow.seed_conversation(ALICE, title="before")
    with pytest.raises(InvalidInput) as raised:
        await update(
            UpdateConversationRequest(
                owner_id=ALICE,
                conversation_id=conversation.id,
                title=TOO_LONG,
                model="no-such-model",
                status="archived",
            )
        )
    assert set(raised.value.field_errors) == {"title", "model", "status"}


async def test_renaming_over_200_characters_is_refused_and_changes_nothing(
    update: UpdateConversation, uow: FakeUnitOfWork
) -> None:
    conversation = uow.seed_conversation(ALICE, title="before")

    with pytest.raises(InvalidInput) as raised:
        await update(
            UpdateConversationRequest(
                owner_id=ALICE, conversation_id=conversation.id, title=TOO_LONG, status="closed"
            )
        )

    assert raised.value.field_errors == {"title": [LIMIT_MESSAGE]}
    stored = uow.state.conversations[conversation.id]
    assert (stored.title, stored.is_active) == ("before", True)
    assert uow.commits == 0


async def test_renaming_to_200_characters_is_stored(
    update: UpdateConversation, uow: FakeUnitOfWork
) -> None:
    conversation = uow.seed_conversation(ALICE, title="before")

    await update(
        UpdateConversationRequest(owner_id=ALICE, conversation_id=conversation.id, title="n" * 200)
    )

    assert uow.state.conversations[conversation.id].title == "n" * 200


async def test_a_first_message_of_4000_characters_starts_a_conversation_titled_to_fit(
    uow: FakeUnitOfWork,
    chat_model: FakeChatModel,
    catalog: FakeModelCatalog,
    clock: FakeClock,
    images: FakeImageInspector,
) -> None:
    send = SendMessage(
        turn_preparation(uow, catalog, clock, images),
        TurnRecorder(uow, clock, metering_for(catalog, clock)),
        chat_model,
    )

    exchange = await send(
        SendMessageRequest(owner_id=ALICE, conversation_id=None, text="word " * 800)
    )

    title = uow.state.conversations[exchange.conversation.id].title
    assert 0 < len(title) <= 50
    assert title.startswith("word word")
