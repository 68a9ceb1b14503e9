"""Recording a turn: the user's message and the reply, whatever ended the turn."""

from __future__ import annotations

import time
from dataclasses import replace

from application.budgets import Metering
from application.chat.turns import PreparedTurn, ReplyDraft, StoredTurn
from application.ports import Clock, TokenUsage, UnitOfWork
from domain.conversation import Message, MessageRole, NewMessage


class TurnRecorder:
    """Stores what a turn produced: the user's message (if not stored yet) and the reply,
    the conversation's updated_at moved to the reply's time."""

    def __init__(self, uow: UnitOfWork, clock: Clock, metering: Metering) -> None:
        self._uow = uow
        self._clock = clock
        self._metering = metering

    async def store_user_message(self, turn: PreparedTurn) -> None:
        if turn.stored_user_message is not None:
            return
        async with self._uow as uow:
            turn.stored_user_message = await uow.messages.add(turn.user_message)
            await uow.commit()

    async def store_reply(self, turn: PreparedTurn, draft: ReplyDraft) -> StoredTurn:
        """Store the reply with what it is billed, settling the turn's reservation."""
        reply = self._reply(turn, draft)
        try:
            async with self._uow as uow:
                question = turn.stored_user_message or await uow.messages.add(turn.user_message)
                reply.parent_id = question.id
                stored = await uow.messages.add(reply)
                await uow.conversations.touch(reply.conversation_id, reply.created_at)
                await self._metering.settle(uow, turn.reservation)
                await uow.commit()
        finally:
            self._metering.settled(turn.reservation)
        turn.stored_user_message = question
        turn.conversation.touch(reply.created_at)
        return StoredTurn(user_message=question, reply=stored)

    async def finish_reply(
        self, turn: PreparedTurn, reply: Message, draft: ReplyDraft
    ) -> Message | None:
        """Store how a streamed reply ended, unless it was marked interrupted meanwhile
        (then this worker had lost its lease, and the reply stays as marked: None)."""
        final = replace(
            self._reply(turn, draft).stored_as(reply.id),
            created_at=reply.created_at,
            parent_id=reply.parent_id,
            on_branch=reply.on_branch,
        )
        try:
            async with self._uow as uow:
                stored = await uow.messages.finish(final)
                if stored:
                    await uow.conversations.touch(reply.conversation_id, self._clock.now())
                await self._metering.settle(uow, turn.reservation)
                await uow.commit()
        finally:
            self._metering.settled(turn.reservation)
        return final if stored else None

    def _reply(self, turn: PreparedTurn, draft: ReplyDraft) -> NewMessage:
        usage = draft.usage or TokenUsage()
        failure = draft.failure
        bill = self._metering.bill(turn.request, draft.model, draft.usage, draft.text)
        return NewMessage(
            conversation_id=turn.user_message.conversation_id,
            role=MessageRole.ASSISTANT,
            content=draft.text,
            created_at=self._clock.now(),
            status=draft.status,
            model=draft.model or turn.request.model,
            provider=draft.provider,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            finish_reason=draft.finish_reason,
            latency_ms=round((time.perf_counter() - draft.started) * 1000),
            error_code=None if failure is None else failure.code,
            error_message=None if failure is None else failure.message[:500],
            reasoning=draft.reasoning or None,
            reasoning_tokens=usage.reasoning_tokens,
            billed_tokens=bill.tokens,
            cost_nanos=bill.cost_nanos,
        )
