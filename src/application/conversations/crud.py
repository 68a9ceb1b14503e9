"""Use cases that start, list, read, change and delete a user's own conversations."""

from __future__ import annotations

from dataclasses import dataclass

from application.admin_ports import ConversationCriteria
from application.conversations.owned import ConversationRef, owned_conversation
from application.model_choice import unavailable_model
from application.pagination import Page, PageRequest
from application.ports import Clock, ModelCatalog, UnitOfWork
from domain.conversation import Conversation, Message, title_errors
from domain.errors import InvalidInput
from domain.monitoring import search_terms
from domain.quota import QuotaPolicy


@dataclass(frozen=True, kw_only=True)
class StartConversationRequest:
    owner_id: int
    title: str = ""
    model: str | None = None


@dataclass(frozen=True, kw_only=True)
class ConversationDetail:
    conversation: Conversation
    messages: list[Message]


class StartConversation:
    """Start an active conversation.

    A user has at most ``max_active_conversations`` active conversations (default 10);
    the count is taken under a lock, so parallel requests cannot overshoot it. A named
    model must be one the catalogue can serve. A title is at most 200 characters: a
    longer one is refused, never cut short."""

    def __init__(
        self, uow: UnitOfWork, policy: QuotaPolicy, clock: Clock, catalog: ModelCatalog
    ) -> None:
        self._uow = uow
        self._policy = policy
        self._clock = clock
        self._catalog = catalog

    async def __call__(self, command: StartConversationRequest) -> Conversation:
        errors = {
            **title_errors(command.title),
            **unavailable_model(self._catalog, "model", command.model),
        }
        if errors:
            raise InvalidInput(errors)
        async with self._uow as uow:
            active = await uow.conversations.count_active_locked(command.owner_id)
            conversation = Conversation.start(
                owner_id=command.owner_id,
                now=self._clock.now(),
                active_conversations=active,
                policy=self._policy,
                title=command.title,
                model=command.model,
            )
            conversation = await uow.conversations.add(conversation)
            await uow.commit()
        return conversation


@dataclass(frozen=True, kw_only=True)
class ListConversationsRequest:
    owner_id: int
    search: str | None = None
    archived: bool = False
    pinned: bool | None = None


class ListConversations:
    """The user's conversations, pinned first (the most recently pinned first), then
    newest first, one page at a time; ``total`` counts every match.

    ``archived`` False (the default) leaves archived conversations out, True lists only
    them; ``pinned`` True lists only pinned ones, False only the others. ``search``:
    words that must all appear in the title or in one message (any branch: the same
    index and rules as the admin search; case-insensitive, Chinese included; at most 8
    words of 100 characters). Only the user's own conversations are ever found."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(
        self, query: ListConversationsRequest, page: PageRequest
    ) -> Page[Conversation]:
        criteria = ConversationCriteria(
            owner_id=query.owner_id,
            terms=search_terms(query.search),
            archived=query.archived,
            pinned=query.pinned,
        )
        async with self._uow as uow:
            return await uow.conversations.find_owned(criteria, page)


class GetConversation:
    """One of the user's conversations with its messages, oldest first.

    Another user's conversation is reported as not found, never as forbidden."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, ref: ConversationRef) -> ConversationDetail:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            messages = await uow.messages.all_of(conversation.id)
        return ConversationDetail(conversation=conversation, messages=messages)


@dataclass(frozen=True, kw_only=True)
class UpdateConversationRequest:
    owner_id: int
    conversation_id: int
    title: str | None = None
    model: str | None = None
    status: str | None = None


class UpdateConversation:
    """Rename a conversation, change its model, or close/reopen it via ``status``.

    The model must be one the catalogue can serve; ``status`` is "active" or "closed",
    and reopening respects the active-conversation limit; a title is at most 200
    characters (a longer one is refused, never cut short). Every failing field is
    reported and nothing is saved."""

    def __init__(
        self, uow: UnitOfWork, policy: QuotaPolicy, clock: Clock, catalog: ModelCatalog
    ) -> None:
        self._uow = uow
        self._policy = policy
        self._clock = clock
        self._catalog = catalog

    async def __call__(self, changes: UpdateConversationRequest) -> Conversation:
        errors = title_errors(changes.title) if changes.title is not None else {}
        errors |= unavailable_model(self._catalog, "model", changes.model)
        if changes.status is not None and changes.status not in ("active", "closed"):
            errors["status"] = ['Must be "active" or "closed".']
        if errors:
            raise InvalidInput(errors)
        now = self._clock.now()
        async with self._uow as uow:
            conversation = await owned_conversation(
                uow,
                ConversationRef(owner_id=changes.owner_id, conversation_id=changes.conversation_id),
            )
            if changes.title is not None:
                conversation.rename(changes.title, now)
            if changes.model is not None:
                conversation.model = changes.model
                conversation.touch(now)
            if changes.status == "closed":
                conversation.close(now)
            elif changes.status == "active" and not conversation.is_active:
                active = await uow.conversations.count_active_locked(changes.owner_id)
                conversation.reopen(now, active_conversations=active, policy=self._policy)
            await uow.conversations.save(conversation)
            await uow.commit()
        return conversation


class DeleteConversation:
    """Delete one of the user's conversations with all its messages; it no longer counts
    toward the active limit. Another user's conversation is not found."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, ref: ConversationRef) -> None:
        async with self._uow as uow:
            conversation = await owned_conversation(uow, ref)
            await uow.conversations.delete(conversation.id)
            await uow.commit()
