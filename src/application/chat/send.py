"""Sending a message and storing the model's whole answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from application.chat.preparation import TurnPreparation
from application.chat.recording import TurnRecorder
from application.chat.turns import ReplyDraft, SendMessageRequest, status_after, unusable_answer
from application.errors import ModelFailure
from application.ports import ChatModel
from domain.conversation import Conversation, Message, MessageStatus


@dataclass(frozen=True, kw_only=True)
class Exchange:
    conversation: Conversation
    user_message: Message
    ai_message: Message


class SendMessage:
    """Send a message in one of the user's conversations and store the model's answer.

    The rules of ``TurnPreparation`` hold (400/404/409/503 before anything is stored).
    The user's message is committed before the model is called, so a provider failure
    never loses it: the failure is stored as a failed reply with the provider's words
    and reported as 502/503/504. A blocked answer is stored ``blocked`` and reported as
    ``content_filtered``; an answer with no text as ``empty_reply``. The model sees the
    conversation's newest messages within the history budget and the user's settings."""

    def __init__(self, prepare: TurnPreparation, record: TurnRecorder, model: ChatModel) -> None:
        self._prepare = prepare
        self._record = record
        self._model = model

    async def __call__(self, command: SendMessageRequest) -> Exchange:
        turn = await self._prepare.storing_the_message(command)
        started = time.perf_counter()
        try:
            completion = await self._model.complete(turn.request)
        except ModelFailure as failure:
            failed = ReplyDraft(
                text="", started=started, status=MessageStatus.FAILED, failure=failure
            )
            await self._record.store_reply(turn, failed)
            raise
        unusable = unusable_answer(completion.text, completion.finish_reason)
        stored = await self._record.store_reply(
            turn,
            ReplyDraft(
                text=completion.text,
                started=started,
                status=(
                    MessageStatus.COMPLETED
                    if unusable is None
                    else status_after(unusable, completion.text)
                ),
                model=completion.model,
                provider=completion.provider,
                usage=completion.usage,  # billed, answer or not
                finish_reason=completion.finish_reason,
                failure=unusable,
                reasoning=completion.reasoning,
            ),
        )
        if unusable is not None:
            raise unusable
        return Exchange(
            conversation=turn.conversation,
            user_message=stored.user_message,
            ai_message=stored.reply,
        )
