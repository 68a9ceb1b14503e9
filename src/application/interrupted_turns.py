"""Turns lost with the process that ran them: a user's message is stored before the
model is asked, so a process that dies mid-turn (``kill -9``, a lost machine) leaves the
message with no reply. ``MarkInterruptedTurns`` gives each such message a failed reply
saying so, instead of silence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from application.errors import ModelFailure
from application.ports import Clock
from domain.conversation import Message, MessageRole, MessageStatus, NewMessage


class TurnInterrupted(ModelFailure):
    code = "interrupted"
    default_message = "The server stopped before this answer was written; send the message again."


class UnansweredTurns(Protocol):
    async def unanswered(self, sent_after: datetime | None, sent_before: datetime) -> list[Message]:
        """User messages sent after ``sent_after`` (None: ever) and before ``sent_before``
        that are the last message of their conversation, oldest first."""
        ...

    async def answer(self, question: Message, reply: NewMessage) -> bool:
        """Store ``reply`` if nothing follows ``question`` yet (checked in the same
        transaction, against other processes doing the same); whether it was stored."""
        ...


@dataclass(frozen=True, kw_only=True)
class TurnBound:
    """The longest a live turn takes from storing the user's message to storing the
    reply: the provider deadline, a wait for a database connection and one write."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class MarkInterruptedTurnsRequest:
    """``sent_after``: the ``sent_before`` of the previous run (None the first time):
    what was sent before it was looked at then."""

    sent_after: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class MarkedTurns:
    marked: int
    sent_before: datetime


class MarkInterruptedTurns:
    """Give every interrupted turn a failed reply with the code ``interrupted``.

    Rules: a turn is interrupted when its user message is the last of its conversation
    and older than the turn bound -- a live turn, in this process or in any other worker,
    has stored its reply (completed or failed) by then, so only a turn whose process
    died is marked. The reply is stored once, whichever workers run this at the same
    time; a conversation that moved on (a later message) is left as it is."""

    def __init__(self, turns: UnansweredTurns, clock: Clock, bound: TurnBound) -> None:
        self._turns = turns
        self._clock = clock
        self._bound = timedelta(seconds=bound.seconds)

    async def __call__(self, command: MarkInterruptedTurnsRequest) -> MarkedTurns:
        now = self._clock.now()
        sent_before = now - self._bound
        marked = 0
        failure = TurnInterrupted()
        for question in await self._turns.unanswered(command.sent_after, sent_before):
            reply = NewMessage(
                conversation_id=question.conversation_id,
                role=MessageRole.ASSISTANT,
                content="",
                created_at=now,
                status=MessageStatus.FAILED,
                model=question.model,
                error_code=failure.code,
                error_message=failure.message,
                parent_id=question.id,
                on_branch=question.on_branch,
            )
            marked += await self._turns.answer(question, reply)
        return MarkedTurns(marked=marked, sent_before=sent_before)
