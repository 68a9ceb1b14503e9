"""Naming one of a user's conversations, and finding it for its owner only: another
user's conversation is not found, never forbidden."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import UnitOfWork
from domain.conversation import Conversation
from domain.errors import NotFound


@dataclass(frozen=True, kw_only=True)
class ConversationRef:
    owner_id: int
    conversation_id: int


async def owned_conversation(uow: UnitOfWork, ref: ConversationRef) -> Conversation:
    conversation = await uow.conversations.get_owned(ref.conversation_id, ref.owner_id)
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation
