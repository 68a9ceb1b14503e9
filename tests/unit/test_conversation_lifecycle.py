"""The conversation lifecycle for one user, as a Hypothesis state machine.

A plain model (a list of "is active" flags) runs beside the real ``Conversation``
objects; every step checks that the domain agrees with it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from domain.conversation import Conversation, ConversationStatus, NewConversation
from domain.errors import ActiveConversationLimit, ConversationClosed, TitleTooLong
from domain.quota import QuotaPolicy
from tests.unit.in_memory import EPOCH, FakeClock

OWNER = 7

picks = st.integers(min_value=0, max_value=1_000)


class ConversationLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.policy = QuotaPolicy()
        self.conversations: list[NewConversation] = []
        self.expected_active: list[bool] = []
        self.last_seen_updated_at: list[datetime] = []

    @initialize(maximum=st.integers(min_value=1, max_value=4))
    def set_policy(self, maximum: int) -> None:
        self.policy = QuotaPolicy(max_active_conversations=maximum)

    def _active_count(self) -> int:
        return sum(self.expected_active)

    def _pick(self, index: int) -> int:
        return index % len(self.conversations)

    @rule(seconds=st.integers(min_value=0, max_value=3_600))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    @rule(title=st.text(max_size=5))
    def start(self, title: str) -> None:
        now = self.clock.now()
        if self._active_count() < self.policy.max_active_conversations:
            conversation = Conversation.start(
                owner_id=OWNER,
                now=now,
                active_conversations=self._active_count(),
                policy=self.policy,
                title=title,
            )
            assert conversation.status is ConversationStatus.ACTIVE
            assert conversation.created_at == conversation.updated_at == now
            assert conversation.owner_id == OWNER
            self.conversations.append(conversation)
            self.expected_active.append(True)
            self.last_seen_updated_at.append(now)
        else:
            with pytest.raises(ActiveConversationLimit):
                Conversation.start(
                    owner_id=OWNER,
                    now=now,
                    active_conversations=self._active_count(),
                    policy=self.policy,
                    title=title,
                )

    @precondition(lambda self: self.conversations)
    @rule(index=picks)
    def close(self, index: int) -> None:
        i = self._pick(index)
        conversation = self.conversations[i]
        before = conversation.updated_at
        was_active = self.expected_active[i]
        conversation.close(self.clock.now())
        assert conversation.status is ConversationStatus.CLOSED
        if was_active:
            assert conversation.updated_at == self.clock.now()
        else:
            assert conversation.updated_at == before, "closing again changed the conversation"
        self.expected_active[i] = False

    @precondition(lambda self: self.conversations)
    @rule(index=picks)
    def reopen(self, index: int) -> None:
        i = self._pick(index)
        conversation = self.conversations[i]
        before = conversation.updated_at
        now = self.clock.now()
        if self.expected_active[i]:
            conversation.reopen(now, active_conversations=self._active_count(), policy=self.policy)
            assert conversation.is_active
            assert conversation.updated_at == before, "reopening an active one changed it"
        elif self._active_count() < self.policy.max_active_conversations:
            conversation.reopen(now, active_conversations=self._active_count(), policy=self.policy)
            assert conversation.is_active
            assert conversation.updated_at == now
            self.expected_active[i] = True
        else:
            with pytest.raises(ActiveConversationLimit):
                conversation.reopen(
                    now, active_conversations=self._active_count(), policy=self.policy
                )
            assert conversation.status is ConversationStatus.CLOSED
            assert conversation.updated_at == before

    @precondition(lambda self: self.conversations)
    @rule(index=picks)
    def send(self, index: int) -> None:
        i = self._pick(index)
        conversation = self.conversations[i]
        if self.expected_active[i]:
            conversation.ensure_accepts_messages()
            conversation.touch(self.clock.now())
        else:
            before = conversation.updated_at
            with pytest.raises(ConversationClosed):
                conversation.ensure_accepts_messages()
            assert conversation.updated_at == before

    @invariant()
    def domain_agrees_with_the_model(self) -> None:
        assert [c.is_active for c in self.conversations] == self.expected_active

    @invariant()
    def active_count_never_exceeds_the_limit(self) -> None:
        active = sum(c.status is ConversationStatus.ACTIVE for c in self.conversations)
        assert active <= self.policy.max_active_conversations

    @invariant()
    def closed_conversations_refuse_messages(self) -> None:
        for conversation in self.conversations:
            if conversation.status is ConversationStatus.CLOSED:
                with pytest.raises(ConversationClosed):
                    conversation.ensure_accepts_messages()

    @invariant()
    def updated_at_never_goes_backwards(self) -> None:
        for i, conversation in enumerate(self.conversations):
            assert conversation.updated_at >= conversation.created_at >= EPOCH
            assert conversation.updated_at >= self.last_seen_updated_at[i]
            assert conversation.updated_at <= self.clock.now()
            self.last_seen_updated_at[i] = conversation.updated_at


ConversationLifecycle.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None
)
TestConversationLifecycle = ConversationLifecycle.TestCase


def _started(policy: QuotaPolicy, clock: FakeClock, active: int = 0) -> NewConversation:
    return Conversation.start(
        owner_id=OWNER, now=clock.now(), active_conversations=active, policy=policy
    )


def test_start_keeps_a_title_of_200_characters_and_the_model() -> None:
    conversation = Conversation.start(
        owner_id=OWNER,
        now=EPOCH,
        active_conversations=0,
        policy=QuotaPolicy(),
        title="t" * 200,
        model="fake-large",
    )
    assert conversation.title == "t" * 200
    assert conversation.model == "fake-large"
    assert not hasattr(conversation, "id"), "its id comes when it is stored"


def test_start_refuses_a_title_over_200_characters_rather_than_cutting_it() -> None:
    with pytest.raises(TitleTooLong) as raised:
        Conversation.start(
            owner_id=OWNER,
            now=EPOCH,
            active_conversations=0,
            policy=QuotaPolicy(),
            title="t" * 201,
        )
    assert raised.value.field_errors == {
        "title": ["Ensure this field has no more than 200 characters."]
    }


def test_rename_keeps_the_title_and_touches() -> None:
    clock = FakeClock()
    conversation = _started(QuotaPolicy(), clock)
    conversation.rename("n" * 200, clock.advance(minutes=3))
    assert conversation.title == "n" * 200
    assert conversation.updated_at == EPOCH + timedelta(minutes=3)


def test_rename_refuses_a_title_over_200_characters_and_changes_nothing() -> None:
    clock = FakeClock()
    conversation = _started(QuotaPolicy(), clock)
    conversation.rename("before", clock.advance(minutes=1))
    with pytest.raises(TitleTooLong):
        conversation.rename("n" * 201, clock.advance(minutes=3))
    assert conversation.title == "before"
    assert conversation.updated_at == EPOCH + timedelta(minutes=1)


def test_reopen_at_the_limit_is_refused_and_changes_nothing() -> None:
    clock = FakeClock()
    policy = QuotaPolicy(max_active_conversations=2)
    conversation = _started(policy, clock)
    conversation.close(clock.advance(minutes=1))
    with pytest.raises(ActiveConversationLimit):
        conversation.reopen(clock.advance(minutes=1), active_conversations=2, policy=policy)
    assert conversation.status is ConversationStatus.CLOSED
    assert conversation.updated_at == EPOCH + timedelta(minutes=1)
    conversation.reopen(clock.now(), active_conversations=1, policy=policy)
    assert conversation.is_active
