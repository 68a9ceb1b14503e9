"""Persistence ports for conversations and their messages (every branch of them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from application.pagination import Page, PageRequest
from domain.budgets import UserLimits
from domain.chat_settings import UserChatSettings
from domain.conversation import (
    Conversation,
    EarlierMessage,
    Message,
    NewConversation,
    NewMessage,
)

if TYPE_CHECKING:
    # admin_ports imports the ports, this module among them: the criteria the user's
    # list shares with the admin search are named for the type checker only.
    from application.admin_ports import ConversationCriteria


@dataclass(frozen=True, kw_only=True)
class OwnerStanding:
    """The owner's account as far as their credentials go, read with a turn's
    conversation so that a turn confirms its caller without a query of its own."""

    is_active: bool
    credentials_valid_after: datetime | None
    login_revoked: bool  # the login named to ``for_turn``; False when none was


@dataclass(frozen=True, kw_only=True)
class TurnContext:
    conversation: Conversation
    settings: UserChatSettings | None
    limits: UserLimits | None
    owner: OwnerStanding | None = None  # None: not read (a conversation just started)


class Conversations(Protocol):
    async def add(self, conversation: NewConversation) -> Conversation: ...

    async def get_owned(self, conversation_id: int, owner_id: int) -> Conversation | None:
        """The conversation if it exists and belongs to ``owner_id``; otherwise None."""
        ...

    async def for_turn(
        self, conversation_id: int, owner_id: int, *, login_id: str | None = None
    ) -> TurnContext | None:
        """The owner's conversation with the owner's chat settings, limits and standing
        (whether login ``login_id`` was revoked), in one query: what every chat turn
        reads first."""
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

    async def history(self, conversation_id: int, limit: int) -> list[EarlierMessage]:
        """``latest`` with only what a turn's history needs of each message."""
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
