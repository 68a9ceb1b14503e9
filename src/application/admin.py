"""Admin monitoring use cases: every user's conversations, statistics, accounts, token
usage and the audit log. Every one of them is for active staff only (403 otherwise);
every change an admin makes, and every conversation an admin reads, is audited in the
same transaction as the action itself."""

from __future__ import annotations

from dataclasses import dataclass

from application.admin_ports import (
    AdminUnitOfWork,
    AuditCriteria,
    AuditEntry,
    AuditRecord,
    AuditValue,
    ConversationCriteria,
    CountedPage,
    OwnedConversation,
    UsageCriteria,
    UsageRow,
    UserSummary,
)
from application.pagination import Page, PageRequest
from application.ports import Clock
from domain.conversation import Message
from domain.errors import ActiveConversationLimit, InvalidInput, NotFound
from domain.monitoring import (
    AuditAction,
    CannotDeactivateSelf,
    ConversationStats,
    TimeRange,
    UsageGrouping,
    parse_grouping,
    parse_status,
    require_staff,
    search_terms,
)
from domain.quota import QuotaPolicy
from domain.users import User

SEARCH_COUNT_LIMIT = 200


@dataclass(frozen=True, kw_only=True)
class ListAllConversationsRequest:
    actor: User
    username: str | None = None
    status: str | None = None
    search: str | None = None


@dataclass(frozen=True, kw_only=True)
class AdminConversationRef:
    actor: User
    conversation_id: int


@dataclass(frozen=True, kw_only=True)
class AdminConversationDetail:
    conversation: OwnedConversation
    messages: list[Message]


@dataclass(frozen=True, kw_only=True)
class ListUsersRequest:
    actor: User
    username: str | None = None


@dataclass(frozen=True, kw_only=True)
class AdminUserRef:
    actor: User
    user_id: int


@dataclass(frozen=True, kw_only=True)
class ReportUsageRequest:
    actor: User
    start: str | None = None
    end: str | None = None
    username: str | None = None
    model: str | None = None
    group_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class ListAuditLogRequest:
    actor: User
    actor_username: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: int | None = None


# Ids are 32-bit integers on every database Parley runs on; any other number names nothing.
_IDS = range(1, 2**31)


def _given(value: str | None, field: str) -> str | None:
    """A text filter, or None when blank. NUL cannot be stored, so it cannot be asked for."""
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise InvalidInput({field: ["Null characters are not allowed."]})
    return value.strip()


def _existing(object_id: int, what: str) -> int:
    if object_id not in _IDS:
        raise NotFound(f"{what} not found.")
    return object_id


class _UnknownUser(Exception):
    """A username filter naming nobody: the answer is an empty page."""


async def _owner_id(uow: AdminUnitOfWork, username: str | None) -> int | None:
    if username is None:
        return None
    user = await uow.users.by_username(username)
    if user is None or user.id is None:
        raise _UnknownUser()
    return user.id


async def _audit(
    uow: AdminUnitOfWork,
    clock: Clock,
    actor: User,
    action: AuditAction,
    target_type: str,
    target_id: int,
    **details: AuditValue,
) -> None:
    assert actor.id is not None
    await uow.audit.record(
        AuditRecord(
            actor_id=actor.id,
            actor_username=actor.username,
            action=action.value,
            target_type=target_type,
            target_id=target_id,
            created_at=clock.now(),
            details=details,
        )
    )


async def _conversation(uow: AdminUnitOfWork, conversation_id: int) -> OwnedConversation:
    found = await uow.admin.conversation(_existing(conversation_id, "Conversation"))
    if found is None:
        raise NotFound("Conversation not found.")
    return found


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
        status = parse_status(query.status)
        terms = search_terms(_given(query.search, "search"))
        username = _given(query.username, "user")
        limit = max(self._count_limit, page.offset + page.limit) + 1 if terms else None
        async with self._uow as uow:
            try:
                owner_id = await _owner_id(uow, username)
            except _UnknownUser:
                return CountedPage([], 0, page)
            criteria = ConversationCriteria(owner_id=owner_id, status=status, terms=terms)
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
            found = await _conversation(uow, ref.conversation_id)
            messages = await uow.messages.all_of(ref.conversation_id)
            await _audit(
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
            found = await _conversation(uow, ref.conversation_id)
            conversation = found.conversation
            before = conversation.status
            if conversation.is_active:
                conversation.close(self._clock.now())
                await uow.conversations.save(conversation)
            await _audit(
                uow,
                self._clock,
                ref.actor,
                AuditAction.CONVERSATION_CLOSE,
                "conversation",
                ref.conversation_id,
                owner_id=conversation.owner_id,
                status_before=before.value,
                status_after=conversation.status.value,
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
            found = await _conversation(uow, ref.conversation_id)
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
            await _audit(
                uow,
                self._clock,
                ref.actor,
                AuditAction.CONVERSATION_REOPEN,
                "conversation",
                ref.conversation_id,
                owner_id=conversation.owner_id,
                status_before=before.value,
                status_after=conversation.status.value,
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
            stats = await uow.admin.stats(_existing(ref.conversation_id, "Conversation"))
        if stats is None:
            raise NotFound("Conversation not found.")
        return stats


class ListUsers:
    """Every account, newest first, with its conversation and message counts;
    ``username`` filters by exact name."""

    def __init__(self, uow: AdminUnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, query: ListUsersRequest, page: PageRequest) -> Page[UserSummary]:
        require_staff(query.actor)
        username = _given(query.username, "username")
        async with self._uow as uow:
            return await uow.admin.users(username, page)


class DeactivateUser:
    """Deactivate an account. Its access tokens, API tokens and browser sessions stop
    working at once; refresh and API tokens are revoked for good, so reactivating does
    not bring them back. Admins cannot deactivate themselves (403). Idempotent; audited
    as ``user.deactivate``."""

    def __init__(self, uow: AdminUnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: AdminUserRef) -> UserSummary:
        require_staff(ref.actor)
        if ref.user_id == ref.actor.id:
            raise CannotDeactivateSelf()
        now = self._clock.now()
        async with self._uow as uow:
            user = await uow.users.get(_existing(ref.user_id, "User"))
            if user is None:
                raise NotFound("User not found.")
            await uow.activation.set_active(ref.user_id, False)
            await uow.users.revoke_credentials(ref.user_id, now)
            await uow.refresh_tokens.revoke_all_of(ref.user_id, now)
            await uow.api_tokens.revoke_all(ref.user_id)
            await _audit(
                uow,
                self._clock,
                ref.actor,
                AuditAction.USER_DEACTIVATE,
                "user",
                ref.user_id,
                username=user.username,
                was_active=user.is_active,
            )
            summary = await uow.admin.user(ref.user_id)
            await uow.commit()
        assert summary is not None
        return summary


class ReactivateUser:
    """Let a deactivated account sign in again (with its password: earlier tokens stay
    revoked). Idempotent; audited as ``user.reactivate``."""

    def __init__(self, uow: AdminUnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def __call__(self, ref: AdminUserRef) -> UserSummary:
        require_staff(ref.actor)
        async with self._uow as uow:
            user = await uow.users.get(_existing(ref.user_id, "User"))
            if user is None:
                raise NotFound("User not found.")
            await uow.activation.set_active(ref.user_id, True)
            await _audit(
                uow,
                self._clock,
                ref.actor,
                AuditAction.USER_REACTIVATE,
                "user",
                ref.user_id,
                username=user.username,
                was_active=user.is_active,
            )
            summary = await uow.admin.user(ref.user_id)
            await uow.commit()
        assert summary is not None
        return summary


class ReportUsage:
    """Token usage of the models' replies (failed replies count as requests with their
    tokens, usually 0), grouped by user, by model or both (the default), most tokens
    first. ``from``/``to`` are inclusive dates or datetimes (400 when malformed or
    reversed); ``user`` (exact username) and ``model`` narrow it down."""

    def __init__(self, uow: AdminUnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, query: ReportUsageRequest, page: PageRequest) -> Page[UsageRow]:
        require_staff(query.actor)
        period = TimeRange.parse(query.start, query.end)
        grouping = parse_grouping(query.group_by)
        username, model = _given(query.username, "user"), _given(query.model, "model")
        async with self._uow as uow:
            try:
                owner_id = await _owner_id(uow, username)
            except _UnknownUser:
                return Page([], 0, page)
            criteria = UsageCriteria(
                period=period,
                owner_id=owner_id,
                model=model,
                by_user=UsageGrouping.USER in grouping,
                by_model=UsageGrouping.MODEL in grouping,
            )
            return await uow.admin.usage(criteria, page)


class ListAuditLog:
    """The audit log, newest first: who did what to which conversation or user, when.
    Filters (exact) combine: actor username, action, target type and id."""

    def __init__(self, uow: AdminUnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, query: ListAuditLogRequest, page: PageRequest) -> Page[AuditEntry]:
        require_staff(query.actor)
        criteria = AuditCriteria(
            actor_username=_given(query.actor_username, "actor"),
            action=_given(query.action, "action"),
            target_type=_given(query.target_type, "target_type"),
            target_id=query.target_id,
        )
        if query.target_id is not None and query.target_id not in _IDS:
            return Page([], 0, page)
        async with self._uow as uow:
            return await uow.audit.entries(criteria, page)
