"""Start, close, reopen and list a user's conversations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.conversations import (
    CloseConversation,
    ConversationRef,
    GetConversation,
    ListConversations,
    ListConversationsRequest,
    ListMessages,
    ReopenConversation,
    StartConversation,
    StartConversationRequest,
)
from application.pagination import PageRequest
from domain.conversation import ConversationStatus, MessageRole
from domain.errors import ActiveConversationLimit, InvalidInput, NotFound
from domain.quota import QuotaPolicy
from tests.unit.in_memory import EPOCH, FakeClock, FakeModelCatalog, FakeUnitOfWork

ALICE, BOB = 1, 2
CLOSED = ConversationStatus.CLOSED


@pytest.fixture
def start(
    uow: FakeUnitOfWork, policy: QuotaPolicy, clock: FakeClock, catalog: FakeModelCatalog
) -> StartConversation:
    return StartConversation(uow, policy, clock, catalog)


@pytest.fixture
def close(uow: FakeUnitOfWork, clock: FakeClock) -> CloseConversation:
    return CloseConversation(uow, clock)


@pytest.fixture
def reopen(uow: FakeUnitOfWork, policy: QuotaPolicy, clock: FakeClock) -> ReopenConversation:
    return ReopenConversation(uow, policy, clock)


def owned_by(uow: FakeUnitOfWork, owner_id: int) -> list[int]:
    return [key for key, c in uow.state.conversations.items() if c.owner_id == owner_id]


# ---- StartConversation -----------------------------------------------------------------------


async def test_start_stores_an_active_conversation(
    start: StartConversation, uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    conversation = await start(
        StartConversationRequest(owner_id=ALICE, title="Plans", model="fake-large")
    )

    stored = uow.state.conversations[conversation.id]
    assert (stored.owner_id, stored.title, stored.model, stored.status) == (
        ALICE,
        "Plans",
        "fake-large",
        ConversationStatus.ACTIVE,
    )
    assert stored.created_at == stored.updated_at == clock.now()
    assert uow.commits == 1


async def test_the_tenth_active_conversation_is_allowed_and_the_eleventh_refused(
    start: StartConversation, uow: FakeUnitOfWork
) -> None:
    for _ in range(10):
        await start(StartConversationRequest(owner_id=ALICE))
    assert uow.state.active_count(ALICE) == 10

    with pytest.raises(ActiveConversationLimit):
        await start(StartConversationRequest(owner_id=ALICE))

    assert len(uow.state.conversations) == 10
    assert uow.commits == 10


async def test_closed_conversations_do_not_count_towards_the_limit(
    start: StartConversation, uow: FakeUnitOfWork
) -> None:
    for _ in range(9):
        uow.seed_conversation(ALICE)
    for _ in range(5):
        uow.seed_conversation(ALICE, status=CLOSED)

    await start(StartConversationRequest(owner_id=ALICE))

    assert uow.state.active_count(ALICE) == 10
    with pytest.raises(ActiveConversationLimit):
        await start(StartConversationRequest(owner_id=ALICE))
    assert len(owned_by(uow, ALICE)) == 15


async def test_other_users_conversations_do_not_count(
    start: StartConversation, uow: FakeUnitOfWork
) -> None:
    for _ in range(10):
        uow.seed_conversation(BOB)

    await start(StartConversationRequest(owner_id=ALICE))

    assert len(owned_by(uow, ALICE)) == 1


async def test_start_refuses_an_unavailable_model_and_stores_nothing(
    start: StartConversation, uow: FakeUnitOfWork
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await start(StartConversationRequest(owner_id=ALICE, model="no-such-model"))

    assert set(raised.value.field_errors) == {"model"}
    assert uow.state.conversations == {}


async def test_start_honours_a_custom_policy(
    uow: FakeUnitOfWork, clock: FakeClock, catalog: FakeModelCatalog
) -> None:
    start = StartConversation(uow, QuotaPolicy(max_active_conversations=2), clock, catalog)
    await start(StartConversationRequest(owner_id=ALICE))
    await start(StartConversationRequest(owner_id=ALICE))
    with pytest.raises(ActiveConversationLimit):
        await start(StartConversationRequest(owner_id=ALICE))
    assert len(uow.state.conversations) == 2


# ---- Close / Reopen ------------------------------------------------------------------------


async def test_close_stores_the_closed_status_and_is_idempotent(
    close: CloseConversation, uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    conversation = uow.seed_conversation(ALICE)
    ref = ConversationRef(owner_id=ALICE, conversation_id=conversation.id)
    closed_at = clock.advance(minutes=1)

    first = await close(ref)
    clock.advance(minutes=1)
    second = await close(ref)

    stored = uow.state.conversations[conversation.id]
    assert stored.status is CLOSED
    assert stored.updated_at == closed_at
    assert first.status is second.status is CLOSED
    assert second.updated_at == closed_at


async def test_reopen_makes_a_closed_conversation_active_and_is_idempotent(
    reopen: ReopenConversation, uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    conversation = uow.seed_conversation(ALICE, status=CLOSED)
    ref = ConversationRef(owner_id=ALICE, conversation_id=conversation.id)
    reopened_at = clock.advance(minutes=1)

    await reopen(ref)
    clock.advance(minutes=1)
    again = await reopen(ref)

    stored = uow.state.conversations[conversation.id]
    assert stored.status is ConversationStatus.ACTIVE
    assert stored.updated_at == reopened_at
    assert again.is_active
    assert again.updated_at == reopened_at


async def test_reopen_over_the_limit_is_refused_and_nothing_changes(
    reopen: ReopenConversation, uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    for _ in range(10):
        uow.seed_conversation(ALICE)
    closed = uow.seed_conversation(ALICE, status=CLOSED)
    clock.advance(hours=1)

    with pytest.raises(ActiveConversationLimit):
        await reopen(ConversationRef(owner_id=ALICE, conversation_id=closed.id))

    stored = uow.state.conversations[closed.id]
    assert stored.status is CLOSED
    assert stored.updated_at == EPOCH
    assert uow.state.active_count(ALICE) == 10


async def test_reopen_is_allowed_again_once_another_is_closed(
    reopen: ReopenConversation, close: CloseConversation, uow: FakeUnitOfWork
) -> None:
    active = [uow.seed_conversation(ALICE) for _ in range(10)]
    closed = uow.seed_conversation(ALICE, status=CLOSED)

    await close(ConversationRef(owner_id=ALICE, conversation_id=active[0].id))
    await reopen(ConversationRef(owner_id=ALICE, conversation_id=closed.id))

    assert uow.state.conversations[closed.id].is_active
    assert uow.state.active_count(ALICE) == 10


@pytest.mark.parametrize("status", list(ConversationStatus))
async def test_another_users_conversation_is_not_found_and_untouched(
    close: CloseConversation,
    reopen: ReopenConversation,
    uow: FakeUnitOfWork,
    clock: FakeClock,
    status: ConversationStatus,
) -> None:
    bobs = uow.seed_conversation(BOB, status=status)
    ref = ConversationRef(owner_id=ALICE, conversation_id=bobs.id)
    clock.advance(minutes=1)

    with pytest.raises(NotFound):
        await close(ref)
    with pytest.raises(NotFound):
        await reopen(ref)
    with pytest.raises(NotFound):
        await close(ConversationRef(owner_id=ALICE, conversation_id=999))

    assert uow.state.conversations[bobs.id] == bobs
    assert uow.commits == 0


# ---- Get / List ------------------------------------------------------------------------------


async def test_get_conversation_returns_its_messages_oldest_first(uow: FakeUnitOfWork) -> None:
    conversation = uow.seed_conversation(ALICE)
    other = uow.seed_conversation(ALICE)
    uow.seed_message(conversation.id, "first")
    uow.seed_message(other.id, "elsewhere")
    uow.seed_message(conversation.id, "second", role=MessageRole.ASSISTANT)

    detail = await GetConversation(uow)(
        ConversationRef(owner_id=ALICE, conversation_id=conversation.id)
    )

    assert detail.conversation.id == conversation.id
    assert [m.content for m in detail.messages] == ["first", "second"]
    with pytest.raises(NotFound):
        await GetConversation(uow)(ConversationRef(owner_id=BOB, conversation_id=conversation.id))


async def test_list_conversations_pages_newest_first_with_the_total(uow: FakeUnitOfWork) -> None:
    alices = [uow.seed_conversation(ALICE, when=EPOCH + timedelta(minutes=i)) for i in range(7)]
    for _ in range(3):
        uow.seed_conversation(BOB)
    newest_first = [c.id for c in reversed(alices)]
    list_conversations = ListConversations(uow)

    first = await list_conversations(
        ListConversationsRequest(owner_id=ALICE), PageRequest(limit=3, offset=0)
    )
    middle = await list_conversations(
        ListConversationsRequest(owner_id=ALICE), PageRequest(limit=3, offset=3)
    )
    last = await list_conversations(
        ListConversationsRequest(owner_id=ALICE), PageRequest(limit=3, offset=6)
    )
    beyond = await list_conversations(
        ListConversationsRequest(owner_id=ALICE), PageRequest(limit=3, offset=9)
    )

    assert [p.total for p in (first, middle, last, beyond)] == [7, 7, 7, 7]
    assert [c.id for c in first.items + middle.items + last.items] == newest_first
    assert beyond.items == []
    assert (
        await list_conversations(ListConversationsRequest(owner_id=BOB), PageRequest())
    ).total == 3
    assert (
        await list_conversations(ListConversationsRequest(owner_id=99), PageRequest())
    ).total == 0


async def test_list_messages_pages_oldest_first_with_the_total(uow: FakeUnitOfWork) -> None:
    conversation = uow.seed_conversation(ALICE)
    for i in range(5):
        uow.seed_message(conversation.id, f"m{i}")
    elsewhere = uow.seed_conversation(ALICE)
    uow.seed_message(elsewhere.id, "not here")
    ref = ConversationRef(owner_id=ALICE, conversation_id=conversation.id)
    list_messages = ListMessages(uow)

    first = await list_messages(ref, PageRequest(limit=2))
    rest = await list_messages(ref, PageRequest(limit=10, offset=2))

    assert (first.total, rest.total) == (5, 5)
    assert [m.content for m in first.items + rest.items] == [f"m{i}" for i in range(5)]
    assert rest.request == PageRequest(limit=10, offset=2)


async def test_list_messages_of_another_users_conversation_is_not_found(
    uow: FakeUnitOfWork,
) -> None:
    bobs = uow.seed_conversation(BOB)
    uow.seed_message(bobs.id, "private")

    with pytest.raises(NotFound):
        await ListMessages(uow)(
            ConversationRef(owner_id=ALICE, conversation_id=bobs.id), PageRequest()
        )


def test_a_page_request_reports_every_bad_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        PageRequest(limit=0, offset=-1)
    assert set(raised.value.field_errors) == {"limit", "offset"}
    with pytest.raises(InvalidInput):
        PageRequest(limit=501)
    assert PageRequest(limit=500).limit == 500
    assert PageRequest() == PageRequest(limit=50, offset=0)
