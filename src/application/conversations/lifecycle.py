"""Use cases that move a user's conversation through its lifecycle: close and reopen,
archive and unarchive, pin and unpin. Each is idempotent."""

from __future__ import annotations

from application.conversations.owned import ConversationRef, owned_conversation
from application.ports import Clock, UnitOfWork
from domain.conversation import Conversation
from domain.quota import QuotaPolicy


class CloseConversation:
    """Close a conversation: it keeps its messages and takes no new ones. Idempotent."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: ConversationRef) -> Conversation:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            if conversation.is_active:
                conversation.close(self._clock.now())
                await uow.conversations.save(conversation)
                await uow.commit()
        return conversation


class ReopenConversation:
    """Make a closed conversation active again, within the active-conversation limit.
    Idempotent: reopening an active conversation changes nothing."""

    def __init__(self, uow: UnitOfWork, policy: QuotaPolicy, clock: Clock) -> None:
        self._uow = uow
        self._policy = policy
        self._clock = clock

    async def __call__(self, ref: ConversationRef) -> Conversation:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            if not conversation.is_active:
                active = await uow.conversations.count_active_locked(ref.owner_id)
                conversation.reopen(
                    self._clock.now(), active_conversations=active, policy=self._policy
                )
                await uow.conversations.save(conversation)
                await uow.commit()
        return conversation


class ArchiveConversation:
    """Archive a conversation: out of the default list, and not counted as active (so
    another may be started in its place); it takes no messages until unarchived.
    Idempotent."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: ConversationRef) -> Conversation:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            if not conversation.is_archived:
                conversation.archive(self._clock.now())
                await uow.conversations.save(conversation)
                await uow.commit()
        return conversation


class UnarchiveConversation:
    """Bring an archived conversation back to the default list. An active one counts as
    active again, so it needs room under the active-conversation limit (409 otherwise,
    as reopening); a closed one needs none. Idempotent."""

    def __init__(self, uow: UnitOfWork, policy: QuotaPolicy, clock: Clock) -> None:
        self._uow = uow
        self._policy = policy
        self._clock = clock

    async def __call__(self, ref: ConversationRef) -> Conversation:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            if conversation.is_archived:
                active = await uow.conversations.count_active_locked(ref.owner_id)
                conversation.unarchive(
                    self._clock.now(), active_conversations=active, policy=self._policy
                )
                await uow.conversations.save(conversation)
                await uow.commit()
        return conversation


class PinConversation:
    """Pin a conversation: first in the user's lists, the most recently pinned first.
    Idempotent: pinning a pinned one keeps its place."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: ConversationRef) -> Conversation:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            if not conversation.is_pinned:
                conversation.pin(self._clock.now())
                await uow.conversations.save(conversation)
                await uow.commit()
        return conversation


class UnpinConversation:
    """Unpin a conversation: back among the others, newest first. Idempotent."""

    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: ConversationRef) -> Conversation:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            if conversation.is_pinned:
                conversation.unpin(self._clock.now())
                await uow.conversations.save(conversation)
                await uow.commit()
        return conversation
