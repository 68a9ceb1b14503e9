"""Recording a turn: the user's message and the reply, whatever ended the turn."""

from __future__ import annotations

import time

from application.chat.turns import PreparedTurn, ReplyDraft
from application.ports import Clock, TokenUsage, UnitOfWork
from domain.conversation import Message, MessageRole


class TurnRecorder:
    """Stores what a turn produced: the user's message (if not stored yet) and the reply,
    the conversation's updated_at moved to the reply's time."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def store_user_message(self, turn: PreparedTurn) -> None:
        if turn.user_message_stored:
            return
        async with self._uow as uow:
            await uow.messages.add(turn.user_message)
            await uow.commit()
        turn.user_message_stored = True

    async def store_reply(self, turn: PreparedTurn, draft: ReplyDraft) -> Message:
        reply = self._reply(turn, draft)
        async with self._uow as uow:
            if not turn.user_message_stored:
                await uow.messages.add(turn.user_message)
            stored = await uow.messages.add(reply)
            await uow.conversations.touch(reply.conversation_id, reply.created_at)
            await uow.commit()
        turn.user_message_stored = True
        turn.conversation.touch(reply.created_at)
        return stored

    def _reply(self, turn: PreparedTurn, draft: ReplyDraft) -> Message:
        usage = draft.usage or TokenUsage()
        failure = draft.failure
        return Message(
            id=None,
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
        )
