"""MarkInterruptedTurns: a turn whose process died gets a failed reply saying so; a turn
that may still be running, on any worker, is left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.interrupted_turns import (
    MarkInterruptedTurns,
    MarkInterruptedTurnsRequest,
    TurnBound,
)
from domain.conversation import MessageRole, MessageStatus
from tests.unit.in_memory import EPOCH, FakeClock, FakeUnansweredTurns, FakeUnitOfWork

ALICE = 1
BOUND = TurnBound(seconds=165)


@pytest.fixture
def mark(uow: FakeUnitOfWork, clock: FakeClock) -> MarkInterruptedTurns:
    return MarkInterruptedTurns(FakeUnansweredTurns(uow), clock, BOUND)


def _shown(uow: FakeUnitOfWork, conversation_id: int) -> list[tuple[str, str, str | None]]:
    return [
        (m.role.value, m.status.value, m.error_code)
        for m in uow.committed.messages_of(conversation_id)
    ]


async def test_a_message_left_without_a_reply_gets_an_interrupted_reply(
    uow: FakeUnitOfWork, clock: FakeClock, mark: MarkInterruptedTurns
) -> None:
    lost = uow.seed_conversation(ALICE).id
    assert lost is not None
    uow.seed_message(lost, "hello", when=EPOCH)
    clock.set(EPOCH + timedelta(seconds=BOUND.seconds + 1))

    marked = await mark(MarkInterruptedTurnsRequest())

    assert marked.marked == 1
    assert _shown(uow, lost) == [
        ("user", "completed", None),
        ("assistant", "failed", "interrupted"),
    ]
    reply = uow.committed.messages_of(lost)[-1]
    assert reply.content == ""
    assert reply.error_message is not None
    assert "send the message again" in reply.error_message


async def test_a_turn_that_may_still_be_running_is_left_alone(
    uow: FakeUnitOfWork, clock: FakeClock, mark: MarkInterruptedTurns
) -> None:
    running = uow.seed_conversation(ALICE).id
    assert running is not None
    uow.seed_message(running, "still thinking", when=EPOCH)
    clock.set(EPOCH + timedelta(seconds=BOUND.seconds - 1))  # e.g. on another worker

    assert (await mark(MarkInterruptedTurnsRequest())).marked == 0
    assert _shown(uow, running) == [("user", "completed", None)]


async def test_answered_turns_and_conversations_that_moved_on_are_left_alone(
    uow: FakeUnitOfWork, clock: FakeClock, mark: MarkInterruptedTurns
) -> None:
    answered = uow.seed_conversation(ALICE).id
    moved_on = uow.seed_conversation(ALICE).id
    assert answered is not None
    assert moved_on is not None
    uow.seed_message(answered, "hi", when=EPOCH)
    uow.seed_message(answered, "hello!", role=MessageRole.ASSISTANT, when=EPOCH)
    uow.seed_message(moved_on, "lost", when=EPOCH)
    uow.seed_message(moved_on, "sent again", when=EPOCH)
    uow.seed_message(moved_on, "ok", role=MessageRole.ASSISTANT, when=EPOCH)
    clock.set(EPOCH + timedelta(hours=1))

    assert (await mark(MarkInterruptedTurnsRequest())).marked == 0
    assert len(uow.committed.messages) == 5


async def test_each_lost_turn_is_marked_once_across_runs_and_workers(
    uow: FakeUnitOfWork, clock: FakeClock, mark: MarkInterruptedTurns
) -> None:
    lost = uow.seed_conversation(ALICE).id
    assert lost is not None
    uow.seed_message(lost, "hello", when=EPOCH)
    clock.set(EPOCH + timedelta(hours=1))
    other_worker = MarkInterruptedTurns(FakeUnansweredTurns(uow), clock, BOUND)

    first = await mark(MarkInterruptedTurnsRequest())
    again = await mark(MarkInterruptedTurnsRequest(sent_after=None))
    beside = await other_worker(MarkInterruptedTurnsRequest())

    assert (first.marked, again.marked, beside.marked) == (1, 0, 0)
    assert [m.status for m in uow.committed.messages_of(lost)] == [
        MessageStatus.COMPLETED,
        MessageStatus.FAILED,
    ]


async def test_a_later_run_looks_at_what_was_sent_since_the_last_one_looked(
    uow: FakeUnitOfWork, clock: FakeClock, mark: MarkInterruptedTurns
) -> None:
    clock.set(EPOCH + timedelta(seconds=BOUND.seconds))
    first = await mark(MarkInterruptedTurnsRequest())  # at start-up: nothing yet
    assert first.sent_before == EPOCH
    lost = uow.seed_conversation(ALICE).id
    assert lost is not None
    uow.seed_message(lost, "sent as the process died", when=clock.now())
    clock.advance(seconds=BOUND.seconds + 1)

    later = await mark(MarkInterruptedTurnsRequest(sent_after=first.sent_before))

    assert later.marked == 1
    assert _shown(uow, lost)[-1] == ("assistant", "failed", "interrupted")
