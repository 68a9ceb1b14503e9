"""Use cases that read a user's messages, of one conversation or of all of them."""

from __future__ import annotations

from dataclasses import dataclass

from application.conversations.owned import ConversationRef, owned_conversation
from application.pagination import Page, PageRequest
from application.ports import UnitOfWork
from domain.conversation import Message


class ListMessages:
    """A conversation's messages, oldest first, one page at a time."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, ref: ConversationRef, page: PageRequest) -> Page[Message]:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            return await uow.messages.list_page(conversation.id, page)


@dataclass(frozen=True, kw_only=True)
class MessageQuery:
    owner_id: int
    conversation_id: int | None = None


class ListUserMessages:
    """The user's messages across all conversations, or one of them, oldest first."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, query: MessageQuery, page: PageRequest) -> Page[Message]:
        async with self._uow as uow:
            if query.conversation_id is not None:
                await owned_conversation(
                    uow,
                    ConversationRef(owner_id=query.owner_id, conversation_id=query.conversation_id),
                )
            return await uow.messages.list_for_owner(query.owner_id, query.conversation_id, page)
