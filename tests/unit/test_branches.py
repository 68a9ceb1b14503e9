"""Branches: regenerate, edit and resend, and switching the current branch, as a
stateful test against a model of the tree (the use cases over the in-memory fakes)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from application.branches import (
    ConversationTreeRequest,
    GetConversationTree,
    SwitchBranch,
    SwitchBranchRequest,
)
from application.budgets import BudgetRules, HeldReservations, Metering
from application.chat import SendMessage, SendMessageRequest, TurnRecorder
from domain.branches import ReplyInProgress, Rewrite, RewriteKind
from domain.conversation import ConversationStatus, MessageRole, MessageStatus
from domain.errors import ConversationClosed, InvalidInput, NotFound
from tests.unit.conftest import turn_preparation
from tests.unit.in_memory import (
    FakeChatModel,
    FakeClock,
    FakeImageInspector,
    FakeModelCatalog,
    FakeUnitOfWork,
)

ALICE, BOB = 1, 2


@dataclass
class Node:
    parent: int | None
    role: MessageRole
    text: str


class World:
    def __init__(self) -> None:
        self.uow = FakeUnitOfWork()
        self.clock = FakeClock()
        self.model = FakeChatModel()
        catalog = FakeModelCatalog(["fake-small"], default="fake-small")
        rules = BudgetRules(zone=UTC)
        metering = Metering(rules, catalog, self.clock, HeldReservations(rules))
        steps = turn_preparation(self.uow, catalog, self.clock, FakeImageInspector())
        self.send = SendMessage(steps, TurnRecorder(self.uow, self.clock, metering), self.model)
        self.switch = SwitchBranch(self.uow)
        self.tree = GetConversationTree(self.uow)
        self.uow.seed_user("alice")
        self.uow.seed_user("bob")
        self.conversation = self.uow.seed_conversation(ALICE).id

    def run(self, command: SendMessageRequest) -> tuple[int, int]:
        exchange = asyncio.run(self.send(command))
        return exchange.user_message.id, exchange.ai_message.id


class ConversationTree(RuleBasedStateMachine):
    """The model: every node with its parent, and the current leaf. The current branch
    is the path from the first message to the leaf; a switch goes to the newest message
    at or below the one chosen."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.nodes: dict[int, Node] = {}
        self.leaf: int | None = None
        self.turns = 0

    def _branch(self, leaf: int | None) -> list[int]:
        path = []
        while leaf is not None:
            path.append(leaf)
            leaf = self.nodes[leaf].parent
        return path[::-1]

    def _text(self) -> str:
        self.turns += 1
        return f"message {self.turns}"

    def _answered(self, parent: int | None, text: str, ids: tuple[int, int]) -> None:
        question, reply = ids
        if question not in self.nodes:
            self.nodes[question] = Node(parent, MessageRole.USER, text)
        self.nodes[reply] = Node(question, MessageRole.ASSISTANT, self.world.model.reply)
        self.leaf = reply
        # The model saw the new branch: every message up to the question, nothing else.
        seen = [turn.content for turn in self.world.model.requests[-1].messages]
        assert seen == [self.nodes[i].text for i in self._branch(question)]

    def _pick(self, index: int, role: MessageRole | None = None) -> int | None:
        chosen = sorted(i for i, n in self.nodes.items() if role is None or n.role is role)
        return chosen[index % len(chosen)] if chosen else None

    @rule()
    def send(self) -> None:
        text = self._text()
        command = SendMessageRequest(
            owner_id=ALICE, conversation_id=self.world.conversation, text=text
        )
        self._answered(self.leaf, text, self.world.run(command))

    @rule(index=st.integers(min_value=0))
    def regenerate(self, index: int) -> None:
        target = self._pick(index, MessageRole.ASSISTANT)
        if target is None:
            return
        question = self.nodes[target].parent
        rewrite = Rewrite(kind=RewriteKind.REGENERATE, message_id=target)
        command = SendMessageRequest(owner_id=ALICE, conversation_id=None, text="", rewrite=rewrite)
        ids = self.world.run(command)
        assert ids[0] == question
        self._answered(question, self.nodes[ids[0]].text, ids)

    @rule(index=st.integers(min_value=0))
    def edit(self, index: int) -> None:
        target = self._pick(index, MessageRole.USER)
        if target is None:
            return
        text = self._text()
        rewrite = Rewrite(kind=RewriteKind.EDIT, message_id=target)
        command = SendMessageRequest(
            owner_id=ALICE, conversation_id=None, text=text, rewrite=rewrite
        )
        self._answered(self.nodes[target].parent, text, self.world.run(command))

    @rule(index=st.integers(min_value=0))
    def switch(self, index: int) -> None:
        chosen = self._pick(index)
        if chosen is None:
            return
        below = {chosen}
        for node_id in sorted(self.nodes):
            if self.nodes[node_id].parent in below:
                below.add(node_id)
        self.leaf = max(below)
        newest = asyncio.run(
            self.world.switch(SwitchBranchRequest(owner_id=ALICE, message_id=chosen))
        )
        assert newest.id == self.leaf

    @rule(index=st.integers(min_value=0))
    def another_user_touches_nothing(self, index: int) -> None:
        target = self._pick(index)
        if target is None:
            return
        with pytest.raises(NotFound):
            asyncio.run(self.world.switch(SwitchBranchRequest(owner_id=BOB, message_id=target)))
        rewrite = Rewrite(kind=RewriteKind.EDIT, message_id=target)
        with pytest.raises(NotFound):
            self.world.run(
                SendMessageRequest(owner_id=BOB, conversation_id=None, text="x", rewrite=rewrite)
            )

    @invariant()
    def the_lists_show_the_current_branch(self) -> None:
        listed = self.world.uow.committed.messages_of(self.world.conversation)
        assert [m.id for m in listed] == self._branch(self.leaf)

    @invariant()
    def every_message_of_every_branch_is_kept_with_its_parent(self) -> None:
        page = asyncio.run(
            self.world.tree(
                ConversationTreeRequest(
                    owner_id=ALICE, conversation_id=self.world.conversation, limit=500
                )
            )
        )
        assert {n.message.id: n.message.parent_id for n in page.nodes} == {
            i: n.parent for i, n in self.nodes.items()
        }
        on_branch = set(self._branch(self.leaf))
        for node in page.nodes:
            assert node.message.on_branch == (node.message.id in on_branch)
            assert node.sibling_ids == sorted(
                i for i, n in self.nodes.items() if n.parent == node.message.parent_id
            )


TestConversationTree = ConversationTree.TestCase
TestConversationTree.settings = settings(max_examples=60, stateful_step_count=12, deadline=None)


def _world_with_a_turn() -> tuple[World, int, int]:
    world = World()
    question, reply = world.run(
        SendMessageRequest(owner_id=ALICE, conversation_id=world.conversation, text="hello")
    )
    return world, question, reply


def test_a_user_message_cannot_be_regenerated_nor_a_reply_edited() -> None:
    world, question, reply = _world_with_a_turn()
    for kind, target in ((RewriteKind.REGENERATE, question), (RewriteKind.EDIT, reply)):
        rewrite = Rewrite(kind=kind, message_id=target)
        with pytest.raises(InvalidInput) as refused:
            world.run(
                SendMessageRequest(owner_id=ALICE, conversation_id=None, text="x", rewrite=rewrite)
            )
        assert list(refused.value.field_errors) == ["message_id"]
    assert len(world.uow.state.messages) == 2
    assert len(world.model.requests) == 1


def test_a_reply_being_written_cannot_be_regenerated() -> None:
    world, _, reply = _world_with_a_turn()
    world.uow.state.messages[reply].status = MessageStatus.STREAMING
    rewrite = Rewrite(kind=RewriteKind.REGENERATE, message_id=reply)
    with pytest.raises(ReplyInProgress):
        world.run(
            SendMessageRequest(owner_id=ALICE, conversation_id=None, text="", rewrite=rewrite)
        )
    assert all(m.on_branch for m in world.uow.state.messages.values())


def test_a_closed_conversation_takes_no_regenerated_reply_and_keeps_its_branch() -> None:
    world, _, reply = _world_with_a_turn()
    conversation = world.uow.state.conversations[world.conversation]
    conversation.status = ConversationStatus.CLOSED
    rewrite = Rewrite(kind=RewriteKind.REGENERATE, message_id=reply)
    with pytest.raises(ConversationClosed):
        world.run(
            SendMessageRequest(owner_id=ALICE, conversation_id=None, text="", rewrite=rewrite)
        )
    assert all(m.on_branch for m in world.uow.state.messages.values())
    assert len(world.uow.state.messages) == 2


def test_an_edit_is_checked_like_a_message() -> None:
    world, question, _ = _world_with_a_turn()
    rewrite = Rewrite(kind=RewriteKind.EDIT, message_id=question)
    with pytest.raises(InvalidInput):
        world.run(
            SendMessageRequest(owner_id=ALICE, conversation_id=None, text="", rewrite=rewrite)
        )
    assert all(m.on_branch for m in world.uow.state.messages.values())


def test_the_tree_is_paged_by_id() -> None:
    world, *_ = _world_with_a_turn()
    for n in range(3):
        world.run(
            SendMessageRequest(owner_id=ALICE, conversation_id=world.conversation, text=f"{n}")
        )
    seen: list[int] = []
    after = 0
    while True:
        page = asyncio.run(
            world.tree(
                ConversationTreeRequest(
                    owner_id=ALICE, conversation_id=world.conversation, after_id=after, limit=3
                )
            )
        )
        seen += [n.message.id for n in page.nodes]
        if page.next_after_id is None:
            break
        after = page.next_after_id
    assert seen == sorted(world.uow.state.messages)
    with pytest.raises(NotFound):
        asyncio.run(
            world.tree(ConversationTreeRequest(owner_id=BOB, conversation_id=world.conversation))
        )
