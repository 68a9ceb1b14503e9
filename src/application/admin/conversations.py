"""Admins and every user's conversations: list, read, close, reopen, statistics."""

from __future__ import annotations

from application.admin.requests import (
    SEARCH_COUNT_LIMIT,
    AdminConversationDetail,
    AdminConversationRef,
    ListAllConversationsRequest,
)
from application.admin.steps import (
    UnknownUser,
    audit,
    audit_status_change,
    existing_id,
    owned_conversation,
    owner_id_of,
)
from application.admin_ports import (
    AdminUnitOfWork,
    ConversationCriteria,
    CountedPage,
    OwnedConversation,
)
from application.pagination import PageRequest
from application.ports import Clock
from domain.errors import ActiveConversationLimit, NotFound
from domain.monitoring import (
    AuditAction,
    ConversationStats,
    require_staff,
    search_terms,
)
from domain.quota import QuotaPolicy


class ListAllConversations:
    """Every user's conversations, newest first, one page at a time.

    Filters combine: ``username`` (exact; an unknown name matches nothing), ``status``
    (``active`` or ``closed``; anything else is 400) and ``search`` (words that must all
    appear in the title or in one message, case-insensitive, Chinese included). A search
    counts matches only up to 200 (or just past the requested page): beyond that,
    ``total`` is a lower bound and ``total_is_exact`` is False."""

    def __init__(self, uow: AdminUnitOfWork, count_limit: int = SEARCH_COUNT_LIMIT) -> None:
        self._uow = uow
        self._count_limit = count_limit

    async def __call__(
        self, query: ListAllConversationsRequest, page: PageRequest
    ) -> CountedPage[OwnedConversation]:
        require_staff(query.actor)
        terms = search_terms(query.search)
        limit = max(self._count_limit, page.offset + page.limit) + 1 if terms else None
        async with self._uow as uow:
            try:
                owner_id = await owner_id_of(uow, query.username)
            except UnknownUser:
                return CountedPage([], 0, page)
            criteria = ConversationCriteria(owner_id=owner_id, status=query.status, terms=terms)
            found = await uow.admin.conversations(criteria, page, count_limit=limit)
        exact = limit is None or found.total < limit
        return CountedPage(found.items, found.total, page, total_is_exact=exact)


class GetAnyConversation:
    """Any user's conversation with all its messages, oldest first (404 if none).
    Reading it is audited as ``conversation.view``."""

    def __init__(self, uow: AdminUnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: AdminConversationRef) -> AdminConversationDetail:
        require_staff(ref.actor)
        async with self._uow as uow:
            found = await owned_conversation(uow, ref.conversation_id)
            messages = await uow.messages.all_of(ref.conversation_id)
            await audit(
                uow,
                self._clock,
                ref.actor,
                AuditAction.CONVERSATION_VIEW,
                "conversation",
                ref.conversation_id,
                owner_id=found.conversation.owner_id,
            )
            await uow.commit()
        return AdminConversationDetail(conversation=found, messages=messages)


class CloseAnyConversation:
    """Close any user's conversation (idempotent); audited as ``conversation.close``
    with the status before and after."""

    def __init__(self, uow: AdminUnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: AdminConversationRef) -> OwnedConversation:
        require_staff(ref.actor)
        async with self._uow as uow:
            found = await owned_conversation(uow, ref.conversation_id)
            conversation = found.conversation
            before = conversation.status
            if conversation.is_active:
                conversation.close(self._clock.now())
                await uow.conversations.save(conversation)
            await audit_status_change(
                uow, self._clock, ref.actor, AuditAction.CONVERSATION_CLOSE, conversation, before
            )
            await uow.commit()
        return found


class ReopenAnyConversation:
    """Reopen any user's conversation (idempotent). The owner's active-conversation
    limit still holds, counted under the same lock as the owner's own requests: over
    the limit it is 409 and nothing changes. Audited as ``conversation.reopen``."""

    def __init__(self, uow: AdminUnitOfWork, policy: QuotaPolicy, clock: Clock) -> None:
        self._uow = uow
        self._policy = policy
        self._clock = clock

    async def __call__(self, ref: AdminConversationRef) -> OwnedConversation:
        require_staff(ref.actor)
        async with self._uow as uow:
            found = await owned_conversation(uow, ref.conversation_id)
            conversation = found.conversation
            before = conversation.status
            if not conversation.is_active:
                active = await uow.conversations.count_active_locked(conversation.owner_id)
                try:
                    conversation.reopen(
                        self._clock.now(), active_conversations=active, policy=self._policy
                    )
                except ActiveConversationLimit:
                    raise ActiveConversationLimit(
                        f"{found.owner_username} already has "
                        f"{self._policy.max_active_conversations} active conversations; "
                        "one must be closed before another is reopened."
                    ) from None
                await uow.conversations.save(conversation)
            await audit_status_change(
                uow, self._clock, ref.actor, AuditAction.CONVERSATION_REOPEN, conversation, before
            )
            await uow.commit()
        return found


class GetConversationStats:
    """Message counts (all, the user's, the AI's), first and last message times and the
    whole minutes between them, computed by the database. An empty conversation gives
    zeros and nulls; an unknown one is 404."""

    def __init__(self, uow: AdminUnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, ref: AdminConversationRef) -> ConversationStats:
        require_staff(ref.actor)
        async with self._uow as uow:
            stats = await uow.admin.stats(existing_id(ref.conversation_id, "Conversation"))
        if stats is None:
            raise NotFound("Conversation not found.")
        return stats
