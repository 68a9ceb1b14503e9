"""A streamed reply's lifecycle as a state machine: ``streaming`` until it ends, once, as
completed, partial (a failure mid-answer, or cancelled), failed, blocked, or
interrupted (its writer died: the lease ran out). The rules under test are the
repository's (the in-memory fake mirrors the SQL statements) and the domain's
``MessageStatus.is_final``."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from domain.conversation import Message, MessageRole, MessageStatus, NewMessage
from tests.unit.in_memory import EPOCH, FakeUnitOfWork

LEASE = timedelta(seconds=15)
ENDINGS = [
    MessageStatus.COMPLETED,
    MessageStatus.PARTIAL,
    MessageStatus.FAILED,
    MessageStatus.BLOCKED,
]


class ReplyLifecycle(RuleBasedStateMachine):
    live = Bundle("live")  # replies whose writer still runs

    @initialize()
    def start_the_world(self) -> None:
        self.uow = FakeUnitOfWork()
        self.now = EPOCH
        self.conversation_id = self.uow.seed_conversation(1).id
        self.expected: dict[int, MessageStatus] = {}
        self.renewed_until: dict[int, datetime] = {}

    async def _in_uow(self, action: str, *args: object) -> object:
        async with self.uow as uow:
            result = await getattr(uow.messages, action)(*args)
            await uow.commit()
        return result

    def _stored(self) -> dict[int, Message]:
        return {
            m.id: m
            for m in self.uow.committed.messages_of(self.conversation_id)
            if m.role is MessageRole.ASSISTANT
        }

    @rule(target=live)
    def start_a_reply(self) -> int:
        reply = NewMessage(
            conversation_id=self.conversation_id,
            role=MessageRole.ASSISTANT,
            content="",
            created_at=self.now,
            status=MessageStatus.STREAMING,
        )
        stored = asyncio.run(self._in_uow("add_streaming", reply, self.now + LEASE))
        assert isinstance(stored, Message)
        self.expected[stored.id] = MessageStatus.STREAMING
        self.renewed_until[stored.id] = self.now + LEASE
        return stored.id

    @rule(reply_id=live, text=st.text(max_size=5))
    def the_writer_renews_its_lease(self, reply_id: int, text: str) -> None:
        asyncio.run(self._in_uow("renew_leases", {reply_id: text}, self.now + LEASE))
        if self.expected[reply_id] is MessageStatus.STREAMING:
            self.renewed_until[reply_id] = self.now + LEASE

    @rule(seconds=st.integers(min_value=1, max_value=20))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def a_worker_sweeps(self) -> None:
        asyncio.run(self._in_uow("interrupt_abandoned", self.now, "interrupted", "stopped"))
        for reply_id, status in self.expected.items():
            lapsed = self.renewed_until[reply_id] < self.now
            if status is MessageStatus.STREAMING and lapsed:
                self.expected[reply_id] = MessageStatus.INTERRUPTED

    @rule(reply_id=consumes(live), ending=st.sampled_from(ENDINGS), text=st.text(max_size=5))
    def the_writer_ends_it(self, reply_id: int, ending: MessageStatus, text: str) -> None:
        final = replace(self._stored()[reply_id], status=ending, content=text)
        stored = asyncio.run(self._in_uow("finish", final))
        was_streaming = self.expected[reply_id] is MessageStatus.STREAMING
        assert stored is was_streaming, "only a reply still streaming takes its ending"
        if was_streaming:
            self.expected[reply_id] = ending

    @rule(reply_id=consumes(live))
    def the_writer_dies(self, reply_id: int) -> None:
        """Its process is gone: nothing renews or finishes this reply any more."""

    @invariant()
    def every_reply_is_as_the_rules_say(self) -> None:
        stored = self._stored()
        assert {i: m.status for i, m in stored.items()} == self.expected
        for message in stored.values():
            assert message.status.is_final is (message.status is not MessageStatus.STREAMING)


ReplyLifecycle.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestReplyLifecycle = ReplyLifecycle.TestCase
