"""In-memory fakes for the application ports (fakes over mocks: tests assert on state).

``FakeUnitOfWork`` keeps every table in one ``FakeState``. Entering it snapshots the
state; ``commit()`` makes the current state the new snapshot; leaving it always restores
the snapshot, so anything not committed is rolled back. Repositories hand out copies, so
a use case that mutates an entity without saving it changes nothing, as with a database.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from application.admin_ports import ConversationCriteria
from application.pagination import Page, PageRequest
from application.ports import (
    AccessClaims,
    ApiTokens,
    ChatCompletion,
    ChatDelta,
    ChatRequest,
    ChatSettingsStore,
    Conversations,
    ExternalIdentities,
    FetchedImage,
    IdempotencyRecord,
    IssuedTokens,
    KeyHold,
    Messages,
    ModelCalls,
    ModelInfo,
    OwnerStanding,
    RefreshClaims,
    RefreshTokenRecord,
    RefreshTokens,
    Spending,
    SpendWindow,
    TokenUsage,
    TurnContext,
    Users,
)
from domain.budgets import PeriodSpend, Price, Spend, UserLimits
from domain.chat_settings import ChatSettings, UserChatSettings
from domain.conversation import (
    Conversation,
    ConversationStatus,
    EarlierMessage,
    Message,
    MessageRole,
    MessageStatus,
    NewConversation,
    NewMessage,
)
from domain.errors import AuthenticationFailed, InvalidInput, UsernameTaken
from domain.model_calls import ModelCall
from domain.users import NewUser, User, username_key

EPOCH = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

# ---- clock ---------------------------------------------------------------------------------


class FakeClock:
    """Time stands still until a test moves it; always timezone-aware UTC."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = _aware(when)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("FakeClock needs a timezone-aware datetime")
    return when.astimezone(UTC)


# ---- persistence ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiTokenRow:
    user_id: int
    token_digest: str
    created_at: datetime


@dataclass(frozen=True)
class HeldAmount:
    user_id: int
    amount: Spend
    lease_until: datetime


@dataclass
class FakeState:
    """Every table of the fake database. Keys are primary keys."""

    users: dict[int, User] = field(default_factory=dict)
    conversations: dict[int, Conversation] = field(default_factory=dict)
    messages: dict[int, Message] = field(default_factory=dict)
    chat_settings: dict[int, UserChatSettings] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshTokenRecord] = field(default_factory=dict)
    api_tokens: dict[str, ApiTokenRow] = field(default_factory=dict)
    identities: dict[tuple[str, str], int] = field(default_factory=dict)
    model_calls: list[ModelCall] = field(default_factory=list)
    # messages.lease_until of the replies being written
    reply_leases: dict[int, datetime] = field(default_factory=dict)
    user_limits: dict[int, UserLimits] = field(default_factory=dict)
    reservations: dict[int, HeldAmount] = field(default_factory=dict)
    # conversations.branched: the conversations whose current branch was ever switched
    branched: set[int] = field(default_factory=set)

    def messages_of(self, conversation_id: int) -> list[Message]:
        """The current branch, oldest first."""
        return [m for m in self.tree_of(conversation_id) if m.on_branch]

    def tree_of(self, conversation_id: int) -> list[Message]:
        """Every message of every branch, oldest first."""
        return [m for _, m in sorted(self.messages.items()) if m.conversation_id == conversation_id]

    def active_count(self, owner_id: int) -> int:
        return sum(
            1 for c in self.conversations.values() if c.owner_id == owner_id and c.counts_as_active
        )


class _Repository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    @property
    def _state(self) -> FakeState:
        if not self._uow.in_transaction:
            raise RuntimeError("repository used outside `async with uow`")
        return self._uow.state


class FakeUsers(_Repository):
    async def add(self, user: NewUser) -> User:
        key = username_key(user.username)
        if any(username_key(u.username) == key for u in self._state.users.values()):
            raise UsernameTaken()
        stored = user.stored_as(self._uow.next_id("users"))
        self._state.users[stored.id] = copy.copy(stored)
        return stored

    async def get(self, user_id: int) -> User | None:
        user = self._state.users.get(user_id)
        return None if user is None else copy.copy(user)

    async def get_with_login(self, user_id: int, family_id: str) -> tuple[User | None, bool]:
        revoked = any(
            r.family_id == family_id and r.revoked_at is not None
            for r in self._state.refresh_tokens.values()
        )
        return await self.get(user_id), revoked

    async def by_username(self, username: str) -> User | None:
        users = self._state.users.values()
        found = next((u for u in users if u.username == username), None) or next(
            (u for u in users if username_key(u.username) == username_key(username)), None
        )
        return None if found is None else copy.copy(found)

    async def revoke_credentials(self, user_id: int, when: datetime) -> None:
        stored = self._state.users[user_id]
        self._state.users[user_id] = replace(stored, credentials_valid_after=when)


_NEVER = datetime.min.replace(tzinfo=UTC)


class FakeConversations(_Repository):
    async def add(self, conversation: NewConversation) -> Conversation:
        stored = conversation.stored_as(self._uow.next_id("conversations"))
        self._state.conversations[stored.id] = copy.copy(stored)
        return stored

    async def get_owned(self, conversation_id: int, owner_id: int) -> Conversation | None:
        found = self._state.conversations.get(conversation_id)
        if found is None or found.owner_id != owner_id:
            return None
        return copy.copy(found)

    async def for_turn(
        self, conversation_id: int, owner_id: int, *, login_id: str | None = None
    ) -> TurnContext | None:
        conversation = await self.get_owned(conversation_id, owner_id)
        if conversation is None:
            return None
        found = next((s for s in self._state.chat_settings.values() if s.user_id == owner_id), None)
        user = self._state.users.get(owner_id)
        revoked = login_id is not None and any(
            r.family_id == login_id and r.revoked_at is not None
            for r in self._state.refresh_tokens.values()
        )
        return TurnContext(
            conversation=conversation,
            settings=None if found is None else copy.copy(found),
            limits=self._state.user_limits.get(owner_id),
            owner=None
            if user is None
            else OwnerStanding(
                is_active=user.is_active,
                credentials_valid_after=user.credentials_valid_after,
                login_revoked=revoked,
            ),
        )

    async def save(self, conversation: Conversation) -> None:
        stored = self._state.conversations[conversation.id]
        self._state.conversations[conversation.id] = replace(
            stored,
            title=conversation.title,
            model=conversation.model,
            status=conversation.status,
            updated_at=conversation.updated_at,
            archived_at=conversation.archived_at,
            pinned_at=conversation.pinned_at,
        )

    async def touch(self, conversation_id: int, when: datetime) -> None:
        stored = self._state.conversations.get(conversation_id)
        if stored is not None and stored.updated_at < when:
            self._state.conversations[conversation_id] = replace(stored, updated_at=when)

    async def count_active_locked(self, owner_id: int) -> int:
        return self._state.active_count(owner_id)

    async def list_owned(self, owner_id: int, page: PageRequest) -> Page[Conversation]:
        owned = [
            copy.copy(c)
            for _, c in sorted(self._state.conversations.items(), reverse=True)
            if c.owner_id == owner_id
        ]
        return Page(owned[page.offset : page.offset + page.limit], len(owned), page)

    async def find_owned(
        self, criteria: ConversationCriteria, page: PageRequest
    ) -> Page[Conversation]:
        found = [
            copy.copy(c)
            for _, c in sorted(self._state.conversations.items(), reverse=True)
            if c.owner_id == criteria.owner_id and self._meets(c, criteria)
        ]
        # Pinned first, the most recently pinned first; the sort is stable, so ties (and
        # every unpinned one) stay newest first.
        found.sort(key=lambda c: c.pinned_at or _NEVER, reverse=True)
        return Page(found[page.offset : page.offset + page.limit], len(found), page)

    def _meets(self, conversation: Conversation, criteria: ConversationCriteria) -> bool:
        if criteria.status is not None and conversation.status is not criteria.status:
            return False
        if criteria.archived is not None and conversation.is_archived != criteria.archived:
            return False
        if criteria.pinned is not None and conversation.is_pinned != criteria.pinned:
            return False
        if not criteria.terms:
            return True
        words = [w.casefold() for w in criteria.terms]
        documents = [conversation.title] + [m.content for m in self._state.tree_of(conversation.id)]
        return any(all(w in text.casefold() for w in words) for text in documents)

    async def owned_after(self, owner_id: int, after_id: int, limit: int) -> list[Conversation]:
        owned = [
            copy.copy(c)
            for _, c in sorted(self._state.conversations.items())
            if c.owner_id == owner_id and c.id > after_id
        ]
        return owned[:limit]

    async def delete(self, conversation_id: int) -> None:
        self._state.conversations.pop(conversation_id, None)
        for message_id, message in list(self._state.messages.items()):
            if message.conversation_id == conversation_id:
                del self._state.messages[message_id]


class FakeMessages(_Repository):
    async def add(self, message: NewMessage) -> Message:
        stored = message.stored_as(self._uow.next_id("messages"))
        self._state.messages[stored.id] = copy.copy(stored)
        return stored

    async def add_streaming(self, reply: NewMessage, lease_until: datetime) -> Message:
        stored = await self.add(reply)
        self._state.reply_leases[stored.id] = lease_until
        return stored

    async def finish(self, reply: Message) -> bool:
        current = self._state.messages.get(reply.id)
        if current is None or current.status is not MessageStatus.STREAMING:
            return False
        self._state.messages[reply.id] = copy.copy(reply)
        self._state.reply_leases.pop(reply.id, None)
        return True

    async def renew_leases(self, texts: Mapping[int, str], lease_until: datetime) -> None:
        for reply_id, text in texts.items():
            current = self._state.messages.get(reply_id)
            if current is not None and current.status is MessageStatus.STREAMING:
                current.content = text
                self._state.reply_leases[reply_id] = lease_until

    async def interrupt_abandoned(self, now: datetime, code: str, message: str) -> int:
        marked = 0
        for reply_id, current in self._state.messages.items():
            lease = self._state.reply_leases.get(reply_id)
            if current.status is MessageStatus.STREAMING and (lease is None or lease < now):
                current.status = MessageStatus.INTERRUPTED
                current.error_code, current.error_message = code, message
                self._state.reply_leases.pop(reply_id, None)
                marked += 1
        return marked

    async def owned_reply(self, reply_id: int, owner_id: int) -> tuple[Message, Message] | None:
        reply = self._state.messages.get(reply_id)
        if reply is None or reply.role is not MessageRole.ASSISTANT:
            return None
        conversation = self._state.conversations.get(reply.conversation_id)
        if conversation is None or conversation.owner_id != owner_id:
            return None
        question = self._state.messages.get(reply.parent_id or 0)
        if question is None or question.role is not MessageRole.USER:
            return None
        return copy.copy(question), copy.copy(reply)

    async def list_page(self, conversation_id: int, page: PageRequest) -> Page[Message]:
        messages = await self.all_of(conversation_id)
        return Page(messages[page.offset : page.offset + page.limit], len(messages), page)

    async def all_of(self, conversation_id: int) -> list[Message]:
        return [_listed(m) for m in self._state.messages_of(conversation_id)]

    async def list_for_owner(
        self, owner_id: int, conversation_id: int | None, page: PageRequest
    ) -> Page[Message]:
        owned = {i for i, c in self._state.conversations.items() if c.owner_id == owner_id}
        found = [
            _listed(m)
            for _, m in sorted(self._state.messages.items())
            if m.conversation_id in owned
            and m.on_branch
            and (conversation_id is None or m.conversation_id == conversation_id)
        ]
        return Page(found[page.offset : page.offset + page.limit], len(found), page)

    async def latest(self, conversation_id: int, limit: int) -> list[Message]:
        """The only read that carries ``image_data``, as with the SQL adapter."""
        if limit <= 0:
            return []
        return [copy.copy(m) for m in self._state.messages_of(conversation_id)[-limit:]]

    async def history(self, conversation_id: int, limit: int) -> list[EarlierMessage]:
        return [
            EarlierMessage(m.id, m.role, m.content, m.status, m.image_url, m.image_data)
            for m in await self.latest(conversation_id, limit)
        ]

    async def owned(self, message_id: int, owner_id: int) -> Message | None:
        message = self._state.messages.get(message_id)
        if message is None:
            return None
        conversation = self._state.conversations.get(message.conversation_id)
        if conversation is None or conversation.owner_id != owner_id:
            return None
        return _listed(message)

    async def tree(
        self, conversation_id: int, *, after_id: int = 0, limit: int | None = None
    ) -> list[Message]:
        found = [_listed(m) for m in self._state.tree_of(conversation_id) if m.id > after_id]
        return found if limit is None else found[:limit]

    async def sibling_groups(
        self, conversation_id: int, parent_ids: Set[int | None]
    ) -> dict[int | None, list[int]]:
        groups: dict[int | None, list[int]] = {p: [] for p in parent_ids}
        for message in self._state.tree_of(conversation_id):
            if message.parent_id in groups:
                groups[message.parent_id].append(message.id)
        return groups

    async def switch_branch(self, conversation_id: int, leaf_id: int | None) -> None:
        path: set[int] = set()
        while leaf_id is not None:
            path.add(leaf_id)
            leaf_id = self._state.messages[leaf_id].parent_id
        for message in self._state.tree_of(conversation_id):
            message.on_branch = message.id in path
        self._state.branched.add(conversation_id)

    async def newest_leaf_under(self, message_id: int) -> int:
        below = {message_id}
        for message_id_, message in sorted(self._state.messages.items()):
            if message.parent_id in below:
                below.add(message_id_)
        return max(below)

    async def add_tree(
        self, messages: Sequence[NewMessage], parents: Sequence[int | None]
    ) -> list[Message]:
        stored: list[Message] = []
        for message, parent in zip(messages, parents, strict=True):
            parent_id = None if parent is None else stored[parent].id
            stored.append(await self.add(replace(message, parent_id=parent_id)))
        if len(set(parents)) < len(parents) and stored:
            self._state.branched.add(stored[0].conversation_id)
        return stored


def _listed(message: Message) -> Message:
    """A message as the lists return it: without the image's data (the SQL adapter never
    loads it outside ``latest``; a use case that needs it must not pass on the fake alone)."""
    return replace(message, image_data=None)


class FakeChatSettingsStore(_Repository):
    async def for_user(self, user_id: int) -> UserChatSettings | None:
        found = next((s for s in self._state.chat_settings.values() if s.user_id == user_id), None)
        return None if found is None else copy.copy(found)

    async def add(self, user_id: int, settings: ChatSettings) -> UserChatSettings:
        # The port: when some were stored first (a concurrent request's), those are the
        # user's settings, and ``add`` returns them.
        stored = await self.for_user(user_id)
        if stored is not None:
            return stored
        fresh = UserChatSettings(
            id=self._uow.next_id("chat_settings"), user_id=user_id, settings=settings
        )
        self._state.chat_settings[fresh.id] = copy.copy(fresh)
        return fresh

    async def save(self, settings: UserChatSettings) -> None:
        if settings.id not in self._state.chat_settings:
            raise RuntimeError(f"no chat settings with id {settings.id}")
        self._state.chat_settings[settings.id] = copy.copy(settings)


class FakeRefreshTokens(_Repository):
    async def add(self, record: RefreshTokenRecord) -> None:
        if record.jti in self._state.refresh_tokens:
            raise RuntimeError(f"duplicate jti {record.jti}")
        self._state.refresh_tokens[record.jti] = record

    async def get(self, jti: str) -> RefreshTokenRecord | None:
        return self._state.refresh_tokens.get(jti)

    async def mark_used(self, jti: str, when: datetime) -> bool:
        record = self._state.refresh_tokens.get(jti)
        if record is None or record.used_at is not None:
            return False
        self._state.refresh_tokens[jti] = replace(record, used_at=when)
        return True

    async def revoke_family(self, family_id: str, when: datetime) -> None:
        for jti, record in list(self._state.refresh_tokens.items()):
            if record.family_id == family_id and record.revoked_at is None:
                self._state.refresh_tokens[jti] = replace(record, revoked_at=when)

    async def revoke_all_of(self, user_id: int, when: datetime) -> None:
        for jti, record in list(self._state.refresh_tokens.items()):
            if record.user_id == user_id and record.revoked_at is None:
                self._state.refresh_tokens[jti] = replace(record, revoked_at=when)


class FakeExternalIdentities(_Repository):
    async def user_id_for(self, provider: str, subject: str) -> int | None:
        return self._state.identities.get((provider, subject))

    async def link(self, user_id: int, provider: str, subject: str, when: datetime) -> None:
        if (provider, subject) in self._state.identities:
            raise InvalidInput({provider: ["This account is already linked to a user."]})
        self._state.identities[(provider, subject)] = user_id


class FakeApiTokens(_Repository):
    async def add(self, user_id: int, token_digest: str, created_at: datetime) -> None:
        self._state.api_tokens[token_digest] = ApiTokenRow(user_id, token_digest, created_at)

    async def user_id_for(self, token_digest: str) -> int | None:
        row = self._state.api_tokens.get(token_digest)
        return None if row is None else row.user_id

    async def revoke(self, token_digest: str) -> None:
        self._state.api_tokens.pop(token_digest, None)

    async def revoke_all(self, user_id: int) -> None:
        for digest, row in list(self._state.api_tokens.items()):
            if row.user_id == user_id:
                del self._state.api_tokens[digest]


class FakeModelCalls(_Repository):
    async def add(self, call: ModelCall) -> None:
        self._state.model_calls.append(call)


class FakeSpending(_Repository):
    async def limits_of(self, user_id: int) -> UserLimits | None:
        return self._state.user_limits.get(user_id)

    async def save_limits(self, user_id: int, limits: UserLimits, when: datetime) -> None:
        self._state.user_limits[user_id] = limits

    async def spent(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        state = self._state
        owned = {c.id for c in state.conversations.values() if c.owner_id == user_id}
        billed = [
            (m.created_at, Spend(m.billed_tokens, m.cost_nanos))
            for m in state.messages.values()
            if m.conversation_id in owned and m.role is MessageRole.ASSISTANT
        ]
        billed += [
            (c.created_at, Spend(c.billed_tokens, c.cost_nanos))
            for c in state.model_calls
            if c.user_id == user_id
        ]
        held = Spend()
        for reservation in state.reservations.values():
            if reservation.user_id == user_id and reservation.lease_until > window.now:
                held += reservation.amount
        day, month = held, held
        for when, spend in billed:
            if when >= window.month_start:
                month += spend
            if when >= window.day_start:
                day += spend
        return PeriodSpend(day=day, month=month)

    async def spent_by_user(
        self, user_ids: Sequence[int], window: SpendWindow
    ) -> dict[int, PeriodSpend]:
        spent = {user_id: await self.spent(user_id, window) for user_id in user_ids}
        return {user_id: spend for user_id, spend in spent.items() if spend != PeriodSpend()}

    async def spent_locked(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        return await self.spent(user_id, window)

    async def hold(self, user_id: int, amount: Spend, now: datetime, lease_until: datetime) -> int:
        reservation_id = self._uow.next_id("budget_reservations")
        self._state.reservations[reservation_id] = HeldAmount(user_id, amount, lease_until)
        return reservation_id

    async def release(self, reservation_id: int) -> None:
        self._state.reservations.pop(reservation_id, None)

    async def renew(self, reservation_ids: Sequence[int], lease_until: datetime) -> None:
        for reservation_id in reservation_ids:
            if held := self._state.reservations.get(reservation_id):
                self._state.reservations[reservation_id] = replace(held, lease_until=lease_until)

    async def release_expired(self, now: datetime) -> int:
        expired = [i for i, held in self._state.reservations.items() if held.lease_until <= now]
        for reservation_id in expired:
            del self._state.reservations[reservation_id]
        return len(expired)


class FakeUnitOfWork:
    """Rolls back on exit unless ``commit()`` was called; counts ``commits``.

    ``state`` is the live data; outside a transaction it is exactly what was committed.
    ``committed`` is the committed data even while a transaction is open."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.commits = 0
        self._snapshot: FakeState | None = None
        self._ids: dict[str, itertools.count[int]] = {}
        self.users: Users = FakeUsers(self)
        self.conversations: Conversations = FakeConversations(self)
        self.messages: Messages = FakeMessages(self)
        self.chat_settings: ChatSettingsStore = FakeChatSettingsStore(self)
        self.refresh_tokens: RefreshTokens = FakeRefreshTokens(self)
        self.api_tokens: ApiTokens = FakeApiTokens(self)
        self.identities: ExternalIdentities = FakeExternalIdentities(self)
        self.model_calls: ModelCalls = FakeModelCalls(self)
        self.spending: Spending = FakeSpending(self)

    @property
    def in_transaction(self) -> bool:
        return self._snapshot is not None

    @property
    def committed(self) -> FakeState:
        return self._snapshot if self._snapshot is not None else self.state

    def next_id(self, table: str) -> int:
        """Like a database sequence: ids are never reused, even after a rollback."""
        return next(self._ids.setdefault(table, itertools.count(1)))

    async def __aenter__(self) -> Self:
        if self.in_transaction:
            raise RuntimeError("this unit of work is already in a transaction")
        self._snapshot = copy.deepcopy(self.state)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        snapshot, self._snapshot = self._snapshot, None
        assert snapshot is not None
        self.state = snapshot

    async def commit(self) -> None:
        if not self.in_transaction:
            raise RuntimeError("commit outside a transaction")
        self._snapshot = copy.deepcopy(self.state)
        self.commits += 1

    # -- seeding: writes committed rows directly, without counting as a commit ----------

    def _seeding(self) -> FakeState:
        if self.in_transaction:
            raise RuntimeError("seed outside a transaction")
        return self.state

    def seed_user(
        self,
        username: str = "alice",
        *,
        password_hash: str = "hashed:unusable",
        email: str | None = None,
        is_active: bool = True,
        is_staff: bool = False,
        date_joined: datetime = EPOCH,
    ) -> User:
        user = User(
            id=self.next_id("users"),
            username=username,
            email=email or f"{username}@example.com",
            password_hash=password_hash,
            date_joined=date_joined,
            is_staff=is_staff,
            is_active=is_active,
        )
        self._seeding().users[user.id] = copy.copy(user)
        return user

    def seed_conversation(
        self,
        owner_id: int,
        *,
        status: ConversationStatus = ConversationStatus.ACTIVE,
        title: str = "",
        model: str | None = None,
        when: datetime = EPOCH,
    ) -> Conversation:
        conversation = Conversation(
            id=self.next_id("conversations"),
            owner_id=owner_id,
            title=title,
            model=model,
            status=status,
            created_at=when,
            updated_at=when,
        )
        self._seeding().conversations[conversation.id] = copy.copy(conversation)
        return conversation

    def seed_message(
        self,
        conversation_id: int,
        content: str,
        *,
        role: MessageRole = MessageRole.USER,
        when: datetime = EPOCH,
        **fields: Any,
    ) -> Message:
        if "parent_id" not in fields:  # it follows the current branch, as a send does
            branch = self._seeding().messages_of(conversation_id)
            fields["parent_id"] = branch[-1].id if branch else None
        message = Message(
            id=self.next_id("messages"),
            conversation_id=conversation_id,
            role=role,
            content=content,
            created_at=when,
            **fields,
        )
        self._seeding().messages[message.id] = copy.copy(message)
        return message

    def seed_chat_settings(self, user_id: int, settings: ChatSettings) -> UserChatSettings:
        stored = UserChatSettings(
            id=self.next_id("chat_settings"), user_id=user_id, settings=settings
        )
        self._seeding().chat_settings[stored.id] = copy.copy(stored)
        return stored


# ---- the model -----------------------------------------------------------------------------


class FakeChatModel:
    """Records every request; answers ``reply`` or raises ``error`` when one is set.

    ``on_request`` runs with each request before the answer, to look at the world as
    the model sees it."""

    def __init__(
        self,
        reply: str = "Hello from the model.",
        *,
        error: Exception | None = None,
        provider: str = "fake-provider",
        usage: TokenUsage | None = None,
        on_request: Callable[[ChatRequest], None] | None = None,
        finish_reason: str = "stop",
        reasoning: str = "",
    ) -> None:
        self.reply = reply
        self.finish_reason = finish_reason
        self.reasoning = reasoning
        self.error = error
        self.provider = provider
        self.usage = usage or TokenUsage(prompt_tokens=11, completion_tokens=7)
        self.on_request = on_request
        self.requests: list[ChatRequest] = []

    def _receive(self, request: ChatRequest) -> None:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        if self.error is not None:
            raise self.error

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        self._receive(request)
        return ChatCompletion(
            text=self.reply,
            model=request.model,
            provider=self.provider,
            usage=self.usage,
            finish_reason=self.finish_reason,
            reasoning=self.reasoning,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        self._receive(request)
        if self.reasoning:
            yield ChatDelta(reasoning=self.reasoning)
        for index, word in enumerate(self.reply.split(" ") if self.reply else []):
            yield ChatDelta(text=word if index == 0 else " " + word)
        yield ChatDelta(
            usage=self.usage,
            finish_reason=self.finish_reason,
            model=request.model,
            provider=self.provider,
        )


class FakeModelCatalog:
    def __init__(
        self,
        models: Iterable[str] = ("fake-small", "fake-large"),
        default: str = "",
        *,
        with_images: Iterable[str] = (),
        with_tools: Iterable[str] = (),
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        takes_images, takes_tools = set(with_images), set(with_tools)
        prices = prices or {}
        self._models = {
            model_id: ModelInfo(
                id=model_id,
                name=model_id.title(),
                provider="fake-provider",
                supports_images=model_id in takes_images,
                supports_tools=model_id in takes_tools,
                price=prices.get(model_id),
            )
            for model_id in models
        }
        self._default = default or next(iter(self._models))

    @property
    def default_model(self) -> str:
        return self._default

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def available(self) -> list[ModelInfo]:
        return list(self._models.values())

    def withdraw(self, model_id: str) -> None:
        """The model stops being servable (its provider was unconfigured, say)."""
        del self._models[model_id]


class FakeImageInspector:
    """Accepts every image reference except those in ``refused``; an http(s) URL "fetches"
    as a PNG (or the type named in ``types``), a data: URI is its own data."""

    def __init__(self, refused: Iterable[str] = (), types: dict[str, str] | None = None) -> None:
        self.refused = set(refused)
        self.types = types or {}
        self.fetched: list[str] = []

    async def fetch(self, image_url: str) -> FetchedImage:
        if image_url in self.refused:
            raise InvalidInput({"image_url": ["This image cannot be used."]})
        self.fetched.append(image_url)
        if image_url.startswith("data:"):
            return FetchedImage(mime_type=image_url[5:].partition(";")[0], data_uri=image_url)
        mime = self.types.get(image_url, "image/png")
        return FetchedImage(mime_type=mime, data_uri=f"data:{mime};base64,ZmV0Y2hlZA==")


# ---- identity ------------------------------------------------------------------------------


def fake_hash(password: str) -> str:
    """What ``FakePasswordHasher`` stores for ``password``: cheap, deterministic, opaque."""
    return "hashed:" + hashlib.sha256(password.encode()).hexdigest()[:16]


class FakePasswordHasher:
    async def hash(self, password: str) -> str:
        return fake_hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == fake_hash(password)

    async def burn_time(self, password: str) -> None:
        return None


class FakeTokenIssuer:
    """Readable tokens: ``access~<user>~<n>`` and ``refresh~<user>~<jti>~<family>``.

    Anything else, or an expired refresh token, is ``AuthenticationFailed``."""

    def __init__(self, clock: FakeClock, *, refresh_ttl: timedelta = timedelta(days=1)) -> None:
        self._clock = clock
        self._refresh_ttl = refresh_ttl
        self._serial = itertools.count(1)
        self._expiries: dict[str, datetime] = {}
        self._issued: dict[str, datetime] = {}
        self._families: dict[str, str] = {}

    def issue(self, user_id: int, family_id: str) -> IssuedTokens:
        n = next(self._serial)
        jti = f"jti{n}"
        expires = self._clock.now() + self._refresh_ttl
        self._expiries[jti] = expires
        self._issued[str(n)] = self._clock.now()
        self._families[str(n)] = family_id
        return IssuedTokens(
            access=f"access~{user_id}~{n}",
            refresh=f"refresh~{user_id}~{jti}~{family_id}",
            refresh_jti=jti,
            refresh_expires_at=expires,
        )

    def access_user_id(self, token: str) -> int:
        return self.access_claims(token).user_id

    def access_claims(self, token: str) -> AccessClaims:
        parts = token.split("~")
        if len(parts) != 3 or parts[0] != "access" or parts[2] not in self._issued:
            raise AuthenticationFailed("Given token not valid for any token type")
        return AccessClaims(
            user_id=int(parts[1]),
            issued_at=self._issued[parts[2]],
            family_id=self._families.get(parts[2]),
        )

    def refresh_claims(self, token: str) -> RefreshClaims:
        parts = token.split("~")
        if len(parts) != 4 or parts[0] != "refresh" or not parts[1].isdigit():
            raise AuthenticationFailed("Token is invalid or expired.")
        _, user_id, jti, family_id = parts
        expires = self._expiries.get(jti)
        if expires is None or self._clock.now() >= expires:
            raise AuthenticationFailed("Token is invalid or expired.")
        return RefreshClaims(user_id=int(user_id), jti=jti, family_id=family_id)

    def new_family_id(self) -> str:
        return f"family{next(self._serial)}"


# ---- idempotency keys ----------------------------------------------------------------------


@dataclass
class KeyRow:
    fingerprint: str
    created_at: datetime
    holder: str | None
    lease_until: datetime | None
    answer: str | None = None


class FakeIdempotencyStore:
    """The database table's rules: one row per (user, key); a lease taken over only when
    it ended with no answer; complete/renew/release only by the current holder."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], KeyRow] = {}

    async def claim(
        self,
        hold: KeyHold,
        fingerprint: str,
        now: datetime,
        lease_until: datetime,
        expired_before: datetime,
    ) -> IdempotencyRecord | None:
        at = (hold.user_id, hold.key)
        row = self.rows.get(at)
        if row is not None and row.created_at < expired_before:
            del self.rows[at]
            row = None
        if row is None:
            self.rows[at] = KeyRow(fingerprint, now, hold.holder, lease_until)
            return None
        lapsed = row.lease_until is None or row.lease_until < now
        if row.fingerprint == fingerprint and row.answer is None and lapsed:
            row.holder, row.lease_until = hold.holder, lease_until
            return None
        return IdempotencyRecord(fingerprint=row.fingerprint, answer=row.answer)

    def _held(self, hold: KeyHold) -> KeyRow | None:
        row = self.rows.get((hold.user_id, hold.key))
        return row if row is not None and row.holder == hold.holder else None

    async def renew(self, hold: KeyHold, lease_until: datetime) -> bool:
        row = self._held(hold)
        if row is None or row.answer is not None:
            return False
        row.lease_until = lease_until
        return True

    async def complete(self, hold: KeyHold, answer: str) -> None:
        row = self._held(hold)
        if row is not None and row.answer is None:
            row.answer, row.lease_until = answer, None

    async def release(self, hold: KeyHold) -> None:
        if self._held(hold) is not None:
            del self.rows[(hold.user_id, hold.key)]


# ---- interrupted turns ---------------------------------------------------------------------


class FakeUnansweredTurns:
    """``UnansweredTurns`` over a FakeUnitOfWork's committed messages."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def unanswered(self, sent_after: datetime | None, sent_before: datetime) -> list[Message]:
        async with self._uow as uow:
            last_of: dict[int, Message] = {}
            for _, message in sorted(uow.state.messages.items()):
                last_of[message.conversation_id] = message
            return [
                copy.copy(m)
                for m in sorted(last_of.values(), key=lambda m: m.id)
                if m.role is MessageRole.USER
                and m.created_at < sent_before
                and (sent_after is None or m.created_at >= sent_after)
            ]

    async def answer(self, question: Message, reply: NewMessage) -> bool:
        async with self._uow as uow:
            if question.conversation_id not in uow.state.conversations or any(
                m.conversation_id == question.conversation_id and m.id > question.id
                for m in uow.state.messages.values()
            ):
                return False
            await uow.messages.add(reply)
            await uow.commit()
        return True
