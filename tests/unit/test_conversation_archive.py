"""Archive, unarchive, pin and unpin a user's conversations, and the list that filters and
orders by them: the domain rules as a Hypothesis state machine, the use cases on fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from application.conversations import (
    ArchiveConversation,
    ConversationRef,
    ListConversations,
    ListConversationsRequest,
    PinConversation,
    ReopenConversation,
    StartConversation,
    StartConversationRequest,
    UnarchiveConversation,
    UnpinConversation,
)
from application.pagination import Page, PageRequest
from domain.conversation import Conversation, ConversationStatus, NewConversation
from domain.errors import (
    ActiveConversationLimit,
    ConversationArchived,
    ConversationClosed,
    InvalidInput,
    NotFound,
)
from domain.quota import QuotaPolicy
from tests.unit.in_memory import EPOCH, FakeClock, FakeModelCatalog, FakeUnitOfWork

OWNER = 7
ALICE, BOB = 1, 2
picks = st.integers(min_value=0, max_value=1_000)


class ArchiveLifecycle(RuleBasedStateMachine):
    """A model of each conversation's (active, archived, pinned) beside the real ones."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.policy = QuotaPolicy()
        self.conversations: list[NewConversation] = []
        self.model: list[dict[str, bool]] = []

    @initialize(maximum=st.integers(min_value=1, max_value=3))
    def set_policy(self, maximum: int) -> None:
        self.policy = QuotaPolicy(max_active_conversations=maximum)

    def _counted(self) -> int:
        return sum(m["active"] and not m["archived"] for m in self.model)

    def _room(self) -> bool:
        return self._counted() < self.policy.max_active_conversations

    def _pick(self, index: int) -> tuple[NewConversation, dict[str, bool]]:
        i = index % len(self.conversations)
        return self.conversations[i], self.model[i]

    @rule(seconds=st.integers(min_value=1, max_value=3_600))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    @rule()
    def start(self) -> None:
        def started() -> NewConversation:
            return Conversation.start(
                owner_id=OWNER,
                now=self.clock.now(),
                active_conversations=self._counted(),
                policy=self.policy,
            )

        if self._room():
            self.conversations.append(started())
            self.model.append({"active": True, "archived": False, "pinned": False})
        else:
            with pytest.raises(ActiveConversationLimit):
                started()

    @precondition(lambda self: self.conversations)
    @rule(index=picks)
    def close(self, index: int) -> None:
        conversation, model = self._pick(index)
        conversation.close(self.clock.now())
        model["active"] = False

    @precondition(lambda self: self.conversations)
    @rule(index=picks)
    def reopen(self, index: int) -> None:
        conversation, model = self._pick(index)
        now, counted = self.clock.now(), self._counted()
        if model["active"] or model["archived"] or self._room():
            conversation.reopen(now, active_conversations=counted, policy=self.policy)
            model["active"] = True
        else:
            with pytest.raises(ActiveConversationLimit):
                conversation.reopen(now, active_conversations=counted, policy=self.policy)

    @precondition(lambda self: self.conversations)
    @rule(index=picks)
    def archive(self, index: int) -> None:
        conversation, model = self._pick(index)
        first = conversation.archived_at
        conversation.archive(self.clock.now())
        assert conversation.archived_at == (first or self.clock.now())
        model["archived"] = True

    @precondition(lambda self: self.conversations)
    @rule(index=picks)
    def unarchive(self, index: int) -> None:
        conversation, model = self._pick(index)
        now, counted = self.clock.now(), self._counted()
        if not model["archived"] or not model["active"] or self._room():
            conversation.unarchive(now, active_conversations=counted, policy=self.policy)
            model["archived"] = False
        else:
            with pytest.raises(ActiveConversationLimit):
                conversation.unarchive(now, active_conversations=counted, policy=self.policy)
            assert conversation.is_archived, "a refused unarchive changed it"

    @precondition(lambda self: self.conversations)
    @rule(index=picks, on=st.booleans())
    def pin(self, index: int, on: bool) -> None:
        conversation, model = self._pick(index)
        first = conversation.pinned_at
        if on:
            conversation.pin(self.clock.now())
            assert conversation.pinned_at == (first or self.clock.now())
        else:
            conversation.unpin(self.clock.now())
        model["pinned"] = on

    @invariant()
    def domain_agrees_with_the_model(self) -> None:
        seen = [
            {"active": c.is_active, "archived": c.is_archived, "pinned": c.is_pinned}
            for c in self.conversations
        ]
        assert seen == self.model

    @invariant()
    def the_active_count_never_exceeds_the_limit(self) -> None:
        counted = sum(c.counts_as_active for c in self.conversations)
        assert counted <= self.policy.max_active_conversations

    @invariant()
    def only_counted_conversations_take_messages(self) -> None:
        for conversation in self.conversations:
            if conversation.counts_as_active:
                conversation.ensure_accepts_messages()
            else:
                with pytest.raises((ConversationClosed, ConversationArchived)):
                    conversation.ensure_accepts_messages()


ArchiveLifecycle.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestArchiveLifecycle = ArchiveLifecycle.TestCase


def test_an_archived_active_conversation_refuses_messages_with_its_own_code() -> None:
    conversation = Conversation.start(
        owner_id=OWNER, now=EPOCH, active_conversations=0, policy=QuotaPolicy()
    )
    conversation.archive(EPOCH + timedelta(minutes=1))
    with pytest.raises(ConversationArchived) as raised:
        conversation.ensure_accepts_messages()
    assert raised.value.code == "conversation_archived"
    assert conversation.updated_at == conversation.archived_at == EPOCH + timedelta(minutes=1)


# ---- use cases on the fakes -------------------------------------------------------------------


def _ref(conversation: Conversation, owner_id: int = ALICE) -> ConversationRef:
    return ConversationRef(owner_id=owner_id, conversation_id=conversation.id)


async def _listing(
    uow: FakeUnitOfWork,
    owner_id: int = ALICE,
    *,
    search: str | None = None,
    archived: bool = False,
    pinned: bool | None = None,
) -> Page[Conversation]:
    query = ListConversationsRequest(
        owner_id=owner_id, search=search, archived=archived, pinned=pinned
    )
    return await ListConversations(uow)(query, PageRequest())


async def _ids(
    uow: FakeUnitOfWork,
    owner_id: int = ALICE,
    *,
    search: str | None = None,
    archived: bool = False,
    pinned: bool | None = None,
) -> list[int]:
    found = await _listing(uow, owner_id, search=search, archived=archived, pinned=pinned)
    return [c.id for c in found.items]


async def test_archive_takes_it_out_of_the_default_list_and_frees_an_active_slot(
    uow: FakeUnitOfWork, clock: FakeClock, catalog: FakeModelCatalog
) -> None:
    policy = QuotaPolicy(max_active_conversations=1)
    start = StartConversation(uow, policy, clock, catalog)
    first = await start(StartConversationRequest(owner_id=ALICE))

    archived = await ArchiveConversation(uow, clock)(_ref(first))
    second = await start(StartConversationRequest(owner_id=ALICE))

    assert archived.archived_at == clock.now()
    assert await _ids(uow) == [second.id]
    assert await _ids(uow, archived=True) == [first.id]
    assert (await _listing(uow)).total == 1


async def test_unarchiving_an_active_one_needs_room_and_a_closed_one_does_not(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    policy = QuotaPolicy(max_active_conversations=1)
    active, closed = (
        uow.seed_conversation(ALICE),
        uow.seed_conversation(ALICE, status=ConversationStatus.CLOSED),
    )
    archive, unarchive = ArchiveConversation(uow, clock), UnarchiveConversation(uow, policy, clock)
    await archive(_ref(active))
    await archive(_ref(closed))
    uow.seed_conversation(ALICE)  # takes the one active slot

    with pytest.raises(ActiveConversationLimit):
        await unarchive(_ref(active))
    assert uow.state.conversations[active.id].is_archived, "nothing changed"
    assert (await unarchive(_ref(closed))).archived_at is None
    # Reopening the archived one needs no room: it does not count until unarchived.
    await archive(_ref(closed))
    reopened = await ReopenConversation(uow, policy, clock)(_ref(closed))
    assert reopened.is_active
    assert reopened.is_archived
    assert uow.state.active_count(ALICE) == 1


async def test_archive_and_pin_are_idempotent_and_keep_the_first_time(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    conversation = uow.seed_conversation(ALICE)
    archive, pin = ArchiveConversation(uow, clock), PinConversation(uow, clock)
    first_archive, first_pin = await archive(_ref(conversation)), await pin(_ref(conversation))
    clock.advance(minutes=5)

    assert (await archive(_ref(conversation))).archived_at == first_archive.archived_at
    assert (await pin(_ref(conversation))).pinned_at == first_pin.pinned_at
    assert (await UnpinConversation(uow, clock)(_ref(conversation))).pinned_at is None
    assert (await UnpinConversation(uow, clock)(_ref(conversation))).pinned_at is None


async def test_another_users_conversation_is_not_found(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    bobs = uow.seed_conversation(BOB)
    policy = QuotaPolicy()
    for use_case in (
        ArchiveConversation(uow, clock),
        UnarchiveConversation(uow, policy, clock),
        PinConversation(uow, clock),
        UnpinConversation(uow, clock),
    ):
        with pytest.raises(NotFound):
            await use_case(_ref(bobs, owner_id=ALICE))
    assert not uow.state.conversations[bobs.id].is_archived


async def test_pinned_come_first_latest_pinned_first_then_newest(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    a, b, c, d = (uow.seed_conversation(ALICE, when=EPOCH + timedelta(minutes=i)) for i in range(4))
    pin = PinConversation(uow, clock)
    await pin(_ref(a))
    clock.advance(minutes=1)
    await pin(_ref(c))

    assert await _ids(uow) == [c.id, a.id, d.id, b.id]
    assert await _ids(uow, pinned=True) == [c.id, a.id]
    assert await _ids(uow, pinned=False) == [d.id, b.id]


async def test_search_finds_title_or_message_words_of_the_owner_only(
    uow: FakeUnitOfWork,
) -> None:
    titled = uow.seed_conversation(ALICE, title="Trip to Kyoto")
    chinese = uow.seed_conversation(ALICE)
    uow.seed_message(chinese.id, "我们明天去北京看长城")
    uow.seed_conversation(ALICE, title="Groceries")
    bobs = uow.seed_conversation(BOB, title="kyoto too")

    assert await _ids(uow, search="kyoto") == [titled.id]
    assert await _ids(uow, search="北京 长城") == [chinese.id]
    assert await _ids(uow, search="北京 kyoto") == []
    assert await _ids(uow, BOB, search="KYOTO") == [bobs.id]


async def test_a_search_of_too_many_words_is_refused(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InvalidInput) as raised:
        await _listing(uow, search=" ".join(f"w{i}" for i in range(9)))
    assert "search" in raised.value.field_errors
