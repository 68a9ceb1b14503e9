"""Persistence ports: the repositories and the unit of work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from application.pagination import Page, PageRequest
from domain.budgets import PeriodSpend, Spend, UserLimits
from domain.chat_settings import ChatSettings, UserChatSettings
from domain.conversation import Conversation, Message, NewConversation, NewMessage
from domain.model_calls import ModelCall
from domain.users import NewUser, User

if TYPE_CHECKING:
    # admin_ports imports this module: the criteria the user's list shares with the
    # admin search are named for the type checker only.
    from application.admin_ports import ConversationCriteria


class Users(Protocol):
    async def add(self, user: NewUser) -> User:
        """Store a new user, with its id; a taken username is InvalidInput."""
        ...

    async def revoke_credentials(self, user_id: int, when: datetime) -> None:
        """Set credentials_valid_after: tokens and sessions issued earlier stop working."""
        ...

    async def get(self, user_id: int) -> User | None: ...

    async def get_with_login(self, user_id: int, family_id: str) -> tuple[User | None, bool]:
        """The user, and whether the login (refresh-token family) ``family_id`` was revoked,
        in one query: what every request with an access token reads."""
        ...

    async def by_username(self, username: str) -> User | None: ...


@dataclass(frozen=True, kw_only=True)
class TurnContext:
    conversation: Conversation
    settings: UserChatSettings | None
    limits: UserLimits | None


class Conversations(Protocol):
    async def add(self, conversation: NewConversation) -> Conversation: ...

    async def get_owned(self, conversation_id: int, owner_id: int) -> Conversation | None:
        """The conversation if it exists and belongs to ``owner_id``; otherwise None."""
        ...

    async def for_turn(self, conversation_id: int, owner_id: int) -> TurnContext | None:
        """The owner's conversation with the owner's chat settings and limits, in one
        query: what every chat turn reads first."""
        ...

    async def save(self, conversation: Conversation) -> None:
        """Store title, model, status, updated_at, archived_at and pinned_at."""
        ...

    async def touch(self, conversation_id: int, when: datetime) -> None:
        """Move updated_at forward only, so a concurrent close is never undone."""
        ...

    async def count_active_locked(self, owner_id: int) -> int:
        """Count the owner's active conversations, serialising concurrent callers for
        the same owner until the transaction ends (the active limit depends on it)."""
        ...

    async def list_owned(self, owner_id: int, page: PageRequest) -> Page[Conversation]:
        """Newest first."""
        ...

    async def find_owned(
        self, criteria: ConversationCriteria, page: PageRequest
    ) -> Page[Conversation]:
        """The conversations of ``criteria.owner_id`` that meet every criterion (words
        by the search index), pinned first (most recently pinned first), then newest
        first; ``total`` counts every match exactly."""
        ...

    async def delete(self, conversation_id: int) -> None:
        """Delete a conversation and its messages."""
        ...

    async def owned_after(self, owner_id: int, after_id: int, limit: int) -> list[Conversation]:
        """The owner's next ``limit`` conversations with an id above ``after_id``, oldest
        first: what an export reads page by page."""
        ...


class Messages(Protocol):
    async def add(self, message: NewMessage) -> Message: ...

    async def add_streaming(self, reply: NewMessage, lease_until: datetime) -> Message:
        """Store a reply the server is starting to write, held by a lease until
        ``lease_until`` that its writer renews."""
        ...

    async def finish(self, reply: Message) -> bool:
        """Store a reply's final state if it is still ``streaming`` (one that was marked
        interrupted meanwhile stays so); whether it was."""
        ...

    async def renew_leases(self, texts: Mapping[int, str], lease_until: datetime) -> None:
        """Extend the leases of these replies being written, keeping their text so far."""
        ...

    async def interrupt_abandoned(self, now: datetime, code: str, message: str) -> int:
        """Mark ``interrupted`` every ``streaming`` reply whose lease ended before
        ``now``, with what text it has; how many."""
        ...

    async def owned_reply(self, reply_id: int, owner_id: int) -> tuple[Message, Message] | None:
        """The owner's reply (an assistant message) and the user message it answers."""
        ...

    async def list_page(self, conversation_id: int, page: PageRequest) -> Page[Message]:
        """The current branch, oldest first."""
        ...

    async def list_for_owner(
        self, owner_id: int, conversation_id: int | None, page: PageRequest
    ) -> Page[Message]:
        """The owner's messages on the current branches of their conversations (or of
        one), oldest first."""
        ...

    async def all_of(self, conversation_id: int) -> list[Message]:
        """The current branch, oldest first."""
        ...

    async def latest(self, conversation_id: int, limit: int) -> list[Message]:
        """The current branch's newest ``limit`` messages, returned oldest first: one
        bounded query."""
        ...

    async def owned(self, message_id: int, owner_id: int) -> Message | None:
        """The message if it is in one of ``owner_id``'s conversations; otherwise None."""
        ...

    async def tree(
        self, conversation_id: int, *, after_id: int = 0, limit: int | None = None
    ) -> list[Message]:
        """Every message of every branch with an id above ``after_id``, oldest first."""
        ...

    async def sibling_groups(
        self, conversation_id: int, parent_ids: Set[int | None]
    ) -> dict[int | None, list[int]]:
        """The ids of the children of each of these parents (None: the conversation's
        first messages), oldest first."""
        ...

    async def switch_branch(self, conversation_id: int, leaf_id: int | None) -> None:
        """Make the path from the conversation's first message to ``leaf_id`` its current
        branch, and every other message not (None: no message is on it)."""
        ...

    async def newest_leaf_under(self, message_id: int) -> int:
        """The newest message among ``message_id`` and its descendants."""
        ...

    async def add_tree(
        self, messages: Sequence[NewMessage], parents: Sequence[int | None]
    ) -> list[Message]:
        """Store one conversation's messages in this order (their ``parent_id`` is
        ignored): the parent of ``messages[i]`` is the one at index ``parents[i]``, an
        earlier one, or none. A conversation with more than one branch is marked
        branched. The stored messages, in order."""
        ...


class ChatSettingsStore(Protocol):
    async def for_user(self, user_id: int) -> UserChatSettings | None: ...

    async def add(self, user_id: int, settings: ChatSettings) -> UserChatSettings:
        """Store the user's first settings; if a concurrent request stored some first,
        return those instead."""
        ...

    async def save(self, settings: UserChatSettings) -> None: ...


@dataclass(frozen=True)
class RefreshTokenRecord:
    jti: str
    user_id: int
    family_id: str
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class RefreshTokens(Protocol):
    async def add(self, record: RefreshTokenRecord) -> None: ...

    async def get(self, jti: str) -> RefreshTokenRecord | None: ...

    async def mark_used(self, jti: str, when: datetime) -> bool:
        """Mark an unused token used; False if it was already used (a concurrent refresh)."""
        ...

    async def revoke_family(self, family_id: str, when: datetime) -> None: ...

    async def revoke_all_of(self, user_id: int, when: datetime) -> None: ...


class ApiTokens(Protocol):
    async def add(self, user_id: int, token_digest: str, created_at: datetime) -> None: ...

    async def user_id_for(self, token_digest: str) -> int | None: ...

    async def revoke(self, token_digest: str) -> None: ...

    async def revoke_all(self, user_id: int) -> None: ...


class ExternalIdentities(Protocol):
    async def user_id_for(self, provider: str, subject: str) -> int | None: ...

    async def link(self, user_id: int, provider: str, subject: str, when: datetime) -> None:
        """A subject already linked (to anyone) is InvalidInput."""
        ...


class ModelCalls(Protocol):
    async def add(self, call: ModelCall) -> None:
        """Record a call no conversation keeps; it counts in usage reports."""
        ...


@dataclass(frozen=True, kw_only=True)
class SpendWindow:
    """The periods a spend is counted in: since ``month_start``, and of that since
    ``day_start``; reservations held at ``now`` count in both."""

    month_start: datetime
    day_start: datetime
    now: datetime


class Spending(Protocol):
    """What users spend (the replies' and calls' billed tokens and cost), what is reserved
    for calls in flight, and the limits admins set per user."""

    async def limits_of(self, user_id: int) -> UserLimits | None: ...

    async def save_limits(self, user_id: int, limits: UserLimits, when: datetime) -> None: ...

    async def spent(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        """Billed spend in the window plus the reservations still held."""
        ...

    async def spent_by_user(
        self, user_ids: Sequence[int], window: SpendWindow
    ) -> dict[int, PeriodSpend]:
        """``spent`` of each user, in one query (users who spent nothing are absent)."""
        ...

    async def spent_locked(self, user_id: int, window: SpendWindow) -> PeriodSpend:
        """``spent``, serialising concurrent callers for the same user until the
        transaction ends (a reservation depends on it)."""
        ...

    async def hold(self, user_id: int, amount: Spend, now: datetime, lease_until: datetime) -> int:
        """Reserve ``amount`` until ``lease_until`` (renewable); the reservation's id."""
        ...

    async def release(self, reservation_id: int) -> None: ...

    async def renew(self, reservation_ids: Sequence[int], lease_until: datetime) -> None: ...

    async def release_expired(self, now: datetime) -> int:
        """Drop the reservations whose lease ended (their process died); how many."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Rolls back on exit unless ``commit()`` was called.

    Can be entered again after it exits, starting a new transaction."""

    @property
    def users(self) -> Users: ...

    @property
    def conversations(self) -> Conversations: ...

    @property
    def messages(self) -> Messages: ...

    @property
    def chat_settings(self) -> ChatSettingsStore: ...

    @property
    def refresh_tokens(self) -> RefreshTokens: ...

    @property
    def api_tokens(self) -> ApiTokens: ...

    @property
    def identities(self) -> ExternalIdentities: ...

    @property
    def model_calls(self) -> ModelCalls: ...

    @property
    def spending(self) -> Spending: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class DatabaseProbe(Protocol):
    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        ...
