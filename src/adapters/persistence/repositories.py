"""Repositories over one AsyncConnection, mapping rows to domain objects explicitly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.persistence import tables as t
from adapters.persistence.direct import DirectStatement
from adapters.persistence.search import owned_page
from adapters.persistence.spending import LIMIT_COLUMNS, limits_of_row
from application.admin_ports import ConversationCriteria
from application.pagination import Page, PageRequest
from application.ports import OwnerStanding, RefreshTokenRecord, TurnContext
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
from domain.errors import InvalidInput, UsernameTaken
from domain.model_calls import ModelCall
from domain.users import NewUser, User, username_key

# Primary keys are 32-bit INTEGER columns (PostgreSQL's limit; SQLite's is 64-bit). A
# larger or non-positive id names nothing; sending it to the driver would only overflow.
MAX_ID = 2_147_483_647


def storable(identifier: int) -> bool:
    return 0 < identifier <= MAX_ID


# Messages are read in this column order and built positionally, with the enums looked
# up in dicts: a chat request maps its whole history window (up to 49 rows), and mapping
# by name with Enum() calls was ~10% of its CPU (py-spy, bench/results).
_MESSAGE_COLUMNS = (
    t.messages.c.id,
    t.messages.c.conversation_id,
    t.messages.c.role,
    t.messages.c.content,
    t.messages.c.created_at,
    t.messages.c.status,
    t.messages.c.model,
    t.messages.c.provider,
    t.messages.c.image_url,
    t.messages.c.prompt_tokens,
    t.messages.c.completion_tokens,
    t.messages.c.finish_reason,
    t.messages.c.latency_ms,
    t.messages.c.error_code,
    t.messages.c.reasoning,
    t.messages.c.reasoning_tokens,
    t.messages.c.error_message,
    t.messages.c.billed_tokens,
    t.messages.c.cost_nanos,
    t.messages.c.parent_id,
    t.messages.c.on_branch,
)
_ROLES = {role.value: role for role in MessageRole}
_STATUSES = {status.value: status for status in MessageStatus}

# The statements of the chat path, built once: SQLAlchemy then derives each one's cache
# key once too, instead of constructing and hashing a new statement on every request
# (a measurable share of the chat path's CPU; bench/results).
_USER_BY_ID = select(t.users).where(t.users.c.id == bindparam("user_id"))
_USER_WITH_LOGIN = select(
    t.users,
    exists()
    .where(
        t.refresh_tokens.c.family_id == bindparam("family_id"),
        t.refresh_tokens.c.revoked_at.is_not(None),
    )
    .label("login_revoked"),
).where(t.users.c.id == bindparam("user_id"))
_CONVERSATION_WITH_SETTINGS = (
    select(
        t.conversations,
        t.chat_settings.c.id.label("settings_id"),
        t.chat_settings.c.ai_model,
        t.chat_settings.c.temperature,
        t.chat_settings.c.max_tokens,
        *LIMIT_COLUMNS,
        # The owner's standing, so that the turn confirms its caller with this read.
        t.users.c.is_active.label("owner_is_active"),
        t.users.c.credentials_valid_after.label("owner_credentials_valid_after"),
        exists()
        .where(
            t.refresh_tokens.c.family_id == bindparam("login_id"),
            t.refresh_tokens.c.revoked_at.is_not(None),
        )
        .label("login_revoked"),
    )
    .join(t.users, t.users.c.id == t.conversations.c.owner_id)
    .outerjoin(t.chat_settings, t.chat_settings.c.user_id == t.conversations.c.owner_id)
    .outerjoin(t.user_limits, t.user_limits.c.user_id == t.conversations.c.owner_id)
    .where(
        t.conversations.c.id == bindparam("conversation_id"),
        t.conversations.c.owner_id == bindparam("owner_id"),
    )
)
_TOUCH_CONVERSATION = (
    update(t.conversations)
    .where(
        t.conversations.c.id == bindparam("conversation_id"),
        t.conversations.c.updated_at < bindparam("when"),
    )
    .values(updated_at=bindparam("when"))
)
# Totals for X-Total-Count: stored counts kept by triggers (migration 0005), so a page
# costs the same however long the history or the list is.
_MESSAGE_COUNT = select(t.conversations.c.message_count, t.conversations.c.branched).where(
    t.conversations.c.id == bindparam("conversation_id")
)
_BRANCH_COUNT = (
    select(func.count())
    .select_from(t.messages)
    .where(t.messages.c.conversation_id == bindparam("conversation_id"), t.messages.c.on_branch)
)
_CONVERSATION_COUNT = select(t.users.c.conversation_count).where(
    t.users.c.id == bindparam("owner_id")
)
_INSERT_MESSAGE = t.messages.insert().returning(t.messages.c.id)
_MESSAGE_KEYS = (
    "conversation_id", "role", "content", "status", "model", "provider", "image_url",
    "prompt_tokens", "completion_tokens", "finish_reason", "latency_ms", "error_code",
    "created_at", "reasoning", "reasoning_tokens", "error_message", "image_data",
    "billed_tokens", "cost_nanos", "parent_id", "on_branch",
)  # fmt: skip
_STREAMING = MessageStatus.STREAMING.value
_RENEW_LEASE = (
    update(t.messages)
    .where(t.messages.c.id == bindparam("reply_id"), t.messages.c.status == _STREAMING)
    .values(content=bindparam("text"), lease_until=bindparam("lease"))
)
# Only the history the model sees needs the images' data; lists never load it.
_LATEST_MESSAGES = (
    select(*_MESSAGE_COLUMNS, t.messages.c.image_data)
    .where(t.messages.c.conversation_id == bindparam("conversation_id"), t.messages.c.on_branch)
    .order_by(t.messages.c.id.desc())
    .limit(bindparam("limit"))
)


_HISTORY = (
    select(
        t.messages.c.id,
        t.messages.c.role,
        t.messages.c.content,
        t.messages.c.status,
        t.messages.c.image_url,
        t.messages.c.image_data,
    )
    .where(t.messages.c.conversation_id == bindparam("conversation_id"), t.messages.c.on_branch)
    .order_by(t.messages.c.id.desc())
    .limit(bindparam("limit"))
)
_FINISHED_KEYS = (
    "content", "status", "model", "provider", "prompt_tokens", "completion_tokens",
    "finish_reason", "latency_ms", "error_code", "reasoning", "reasoning_tokens",
    "error_message", "billed_tokens", "cost_nanos",
)  # fmt: skip
_FINISH_REPLY = (
    update(t.messages)
    .where(t.messages.c.id == bindparam("reply_id"), t.messages.c.status == _STREAMING)
    .values({key: bindparam(f"new_{key}") for key in _FINISHED_KEYS} | {"lease_until": None})
)
# What every chat turn runs, past SQLAlchemy's execution layer on SQLite (see direct.py).
_TURN_CONTEXT = DirectStatement(_CONVERSATION_WITH_SETTINGS, named=True)
_TURN_HISTORY = DirectStatement(_HISTORY)
_STORE_MESSAGE = DirectStatement(_INSERT_MESSAGE, keys=_MESSAGE_KEYS)
_STORE_STREAMING_REPLY = DirectStatement(_INSERT_MESSAGE, keys=(*_MESSAGE_KEYS, "lease_until"))
_TOUCH = DirectStatement(_TOUCH_CONVERSATION)
_FINISH = DirectStatement(_FINISH_REPLY)


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        username=row.username,
        email=row.email,
        password_hash=row.password_hash,
        date_joined=row.date_joined,
        is_staff=row.is_staff,
        is_active=row.is_active,
        credentials_valid_after=row.credentials_valid_after,
    )


class SqlUsers:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, user: NewUser) -> User:
        try:
            async with self._db.begin_nested():  # a refusal leaves the transaction usable
                result = await self._db.execute(
                    t.users.insert()
                    .values(
                        username=user.username,
                        username_key=username_key(user.username),
                        email=user.email,
                        password_hash=user.password_hash,
                        is_staff=user.is_staff,
                        is_active=user.is_active,
                        date_joined=user.date_joined,
                        credentials_valid_after=user.credentials_valid_after,
                    )
                    .returning(t.users.c.id)
                )
        except IntegrityError:
            raise UsernameTaken() from None
        return user.stored_as(result.scalar_one())

    async def get(self, user_id: int) -> User | None:
        if not storable(user_id):
            return None
        row = (await self._db.execute(_USER_BY_ID, {"user_id": user_id})).first()
        return None if row is None else _user(row)

    async def get_with_login(self, user_id: int, family_id: str) -> tuple[User | None, bool]:
        if not storable(user_id):
            return None, False
        row = (
            await self._db.execute(_USER_WITH_LOGIN, {"user_id": user_id, "family_id": family_id})
        ).first()
        return (None, False) if row is None else (_user(row), bool(row.login_revoked))

    async def revoke_credentials(self, user_id: int, when: datetime) -> None:
        await self._db.execute(
            update(t.users).where(t.users.c.id == user_id).values(credentials_valid_after=when)
        )

    async def by_username(self, username: str) -> User | None:
        # The exact name first: accounts that collided before usernames were keyed
        # (migration 0008) keep their own.
        row = (
            await self._db.execute(
                select(t.users)
                .where(
                    (t.users.c.username == username)
                    | (t.users.c.username_key == username_key(username))
                )
                .order_by((t.users.c.username == username).desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _user(row)


def _conversation(row: Row[Any]) -> Conversation:
    return Conversation(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        model=row.model,
        status=ConversationStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
        pinned_at=row.pinned_at,
    )


class SqlConversations:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, conversation: NewConversation) -> Conversation:
        result = await self._db.execute(
            t.conversations.insert()
            .values(
                owner_id=conversation.owner_id,
                title=conversation.title,
                model=conversation.model,
                status=conversation.status.value,
                created_at=conversation.created_at,
                updated_at=conversation.updated_at,
                archived_at=conversation.archived_at,
                pinned_at=conversation.pinned_at,
            )
            .returning(t.conversations.c.id)
        )
        return conversation.stored_as(result.scalar_one())

    async def get_owned(self, conversation_id: int, owner_id: int) -> Conversation | None:
        if not storable(conversation_id):
            return None
        row = (
            await self._db.execute(
                select(t.conversations).where(
                    t.conversations.c.id == conversation_id,
                    t.conversations.c.owner_id == owner_id,
                )
            )
        ).first()
        return None if row is None else _conversation(row)

    async def for_turn(
        self, conversation_id: int, owner_id: int, *, login_id: str | None = None
    ) -> TurnContext | None:
        if not storable(conversation_id):
            return None
        rows = await _TURN_CONTEXT.rows(
            self._db,
            {"conversation_id": conversation_id, "owner_id": owner_id, "login_id": login_id},
        )
        if not rows:
            return None
        row = rows[0]
        settings = None
        if row.settings_id is not None:
            settings = UserChatSettings(
                id=row.settings_id,
                user_id=owner_id,
                settings=ChatSettings(
                    ai_model=row.ai_model, temperature=row.temperature, max_tokens=row.max_tokens
                ),
            )
        owner = OwnerStanding(
            is_active=bool(row.owner_is_active),
            credentials_valid_after=row.owner_credentials_valid_after,
            login_revoked=bool(row.login_revoked),
        )
        return TurnContext(
            conversation=_conversation(row),
            settings=settings,
            limits=limits_of_row(row),
            owner=owner,
        )

    async def save(self, conversation: Conversation) -> None:
        await self._db.execute(
            update(t.conversations)
            .where(t.conversations.c.id == conversation.id)
            .values(
                title=conversation.title,
                model=conversation.model,
                status=conversation.status.value,
                updated_at=conversation.updated_at,
                archived_at=conversation.archived_at,
                pinned_at=conversation.pinned_at,
            )
        )

    async def touch(self, conversation_id: int, when: datetime) -> None:
        await _TOUCH.run(self._db, {"conversation_id": conversation_id, "when": when})

    async def count_active_locked(self, owner_id: int) -> int:
        if self._db.dialect.name != "sqlite":
            # SQLite transactions here begin IMMEDIATE and are serialised already; other
            # databases serialise on the owner's row for the rest of the transaction.
            await self._db.execute(
                select(t.users.c.id).where(t.users.c.id == owner_id).with_for_update()
            )
        count = await self._db.scalar(
            select(func.count())
            .select_from(t.conversations)
            .where(
                t.conversations.c.owner_id == owner_id,
                t.conversations.c.status == ConversationStatus.ACTIVE.value,
                t.conversations.c.archived_at.is_(None),
            )
        )
        return int(count or 0)

    async def delete(self, conversation_id: int) -> None:
        # Messages go explicitly too, so nothing depends on the database enforcing
        # ON DELETE CASCADE (SQLite only does with foreign_keys=ON).
        await self._db.execute(
            t.messages.delete().where(t.messages.c.conversation_id == conversation_id)
        )
        await self._db.execute(
            t.conversations.delete().where(t.conversations.c.id == conversation_id)
        )

    async def list_owned(self, owner_id: int, page: PageRequest) -> Page[Conversation]:
        owned = t.conversations.c.owner_id == owner_id
        total = await self._db.scalar(_CONVERSATION_COUNT, {"owner_id": owner_id})
        rows = await self._db.execute(
            select(t.conversations)
            .where(owned)
            .order_by(t.conversations.c.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
        return Page([_conversation(r) for r in rows], int(total or 0), page)

    async def owned_after(self, owner_id: int, after_id: int, limit: int) -> list[Conversation]:
        rows = await self._db.execute(
            select(t.conversations)
            .where(t.conversations.c.owner_id == owner_id, t.conversations.c.id > after_id)
            .order_by(t.conversations.c.id)
            .limit(limit)
        )
        return [_conversation(r) for r in rows]

    async def find_owned(
        self, criteria: ConversationCriteria, page: PageRequest
    ) -> Page[Conversation]:
        rows, total = await owned_page(self._db, criteria, page)
        return Page([_conversation(r) for r in rows], total, page)


def _message(row: Sequence[Any]) -> Message:
    (
        id_,
        conversation_id,
        role,
        content,
        created_at,
        status,
        model,
        provider,
        image_url,
        prompt_tokens,
        completion_tokens,
        finish_reason,
        latency_ms,
        error_code,
        reasoning,
        reasoning_tokens,
        error_message,
        billed_tokens,
        cost_nanos,
        parent_id,
        on_branch,
        *image_data,
    ) = row
    return Message(
        conversation_id,
        _ROLES[role],
        content,
        created_at,
        _STATUSES[status],
        model,
        provider,
        image_url,
        prompt_tokens,
        completion_tokens,
        finish_reason,
        latency_ms,
        error_code,
        reasoning,
        reasoning_tokens,
        error_message,
        image_data[0] if image_data else None,
        billed_tokens,
        cost_nanos,
        parent_id,
        bool(on_branch),
        id=id_,
    )


def _message_values(message: NewMessage) -> dict[str, Any]:
    return {
        "conversation_id": message.conversation_id,
        "role": message.role.value,
        "content": message.content,
        "status": message.status.value,
        "model": message.model,
        "provider": message.provider,
        "image_url": message.image_url,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "finish_reason": message.finish_reason,
        "latency_ms": message.latency_ms,
        "error_code": message.error_code,
        "created_at": message.created_at,
        "reasoning": message.reasoning,
        "reasoning_tokens": message.reasoning_tokens,
        "error_message": message.error_message,
        "image_data": message.image_data,
        "billed_tokens": message.billed_tokens,
        "cost_nanos": message.cost_nanos,
        "parent_id": message.parent_id,
        "on_branch": message.on_branch,
    }


class SqlMessages:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, message: NewMessage) -> Message:
        [(id_,)] = await _STORE_MESSAGE.rows(self._db, _message_values(message))
        return message.stored_as(id_)

    async def add_streaming(self, reply: NewMessage, lease_until: datetime) -> Message:
        values = _message_values(reply) | {"lease_until": lease_until}
        [(id_,)] = await _STORE_STREAMING_REPLY.rows(self._db, values)
        return reply.stored_as(id_)

    async def finish(self, reply: Message) -> bool:
        values = {
            "reply_id": reply.id,
            "new_content": reply.content,
            "new_status": reply.status.value,
            "new_model": reply.model,
            "new_provider": reply.provider,
            "new_prompt_tokens": reply.prompt_tokens,
            "new_completion_tokens": reply.completion_tokens,
            "new_finish_reason": reply.finish_reason,
            "new_latency_ms": reply.latency_ms,
            "new_error_code": reply.error_code,
            "new_reasoning": reply.reasoning,
            "new_reasoning_tokens": reply.reasoning_tokens,
            "new_error_message": reply.error_message,
            "new_billed_tokens": reply.billed_tokens,
            "new_cost_nanos": reply.cost_nanos,
        }
        return await _FINISH.run(self._db, values) == 1

    async def renew_leases(self, texts: Mapping[int, str], lease_until: datetime) -> None:
        if texts:
            await self._db.execute(
                _RENEW_LEASE,
                [
                    {"reply_id": reply_id, "text": text, "lease": lease_until}
                    for reply_id, text in texts.items()
                ],
            )

    async def interrupt_abandoned(self, now: datetime, code: str, message: str) -> int:
        marked = await self._db.execute(
            update(t.messages)
            .where(
                t.messages.c.status == _STREAMING,
                or_(t.messages.c.lease_until.is_(None), t.messages.c.lease_until < now),
            )
            .values(
                status=MessageStatus.INTERRUPTED.value,
                error_code=code,
                error_message=message,
                lease_until=None,
            )
        )
        return marked.rowcount

    async def owned_reply(self, reply_id: int, owner_id: int) -> tuple[Message, Message] | None:
        if not storable(reply_id):
            return None
        reply = (
            await self._db.execute(
                select(*_MESSAGE_COLUMNS)
                .join(t.conversations, t.conversations.c.id == t.messages.c.conversation_id)
                .where(
                    t.messages.c.id == reply_id,
                    t.messages.c.role == MessageRole.ASSISTANT.value,
                    t.conversations.c.owner_id == owner_id,
                )
            )
        ).first()
        if reply is None:
            return None
        question = (
            await self._db.execute(
                select(*_MESSAGE_COLUMNS).where(
                    t.messages.c.id == reply.parent_id,
                    t.messages.c.role == MessageRole.USER.value,
                )
            )
        ).first()
        return None if question is None else (_message(question), _message(reply))

    async def list_page(self, conversation_id: int, page: PageRequest) -> Page[Message]:
        on_branch = (t.messages.c.conversation_id == conversation_id) & t.messages.c.on_branch
        total = await self._branch_length(conversation_id)
        rows = await self._db.execute(
            select(*_MESSAGE_COLUMNS)
            .where(on_branch)
            .order_by(t.messages.c.id)
            .limit(page.limit)
            .offset(page.offset)
        )
        return Page([_message(r) for r in rows], total, page)

    async def _branch_length(self, conversation_id: int) -> int:
        """The stored count, unless the conversation has branches: then its current
        branch is counted (bounded by the conversation's own messages)."""
        params = {"conversation_id": conversation_id}
        stored = (await self._db.execute(_MESSAGE_COUNT, params)).first()
        if stored is None:
            return 0
        if not stored.branched:
            return int(stored.message_count)
        return int(await self._db.scalar(_BRANCH_COUNT, params) or 0)

    async def list_for_owner(
        self, owner_id: int, conversation_id: int | None, page: PageRequest
    ) -> Page[Message]:
        owned = (t.conversations.c.owner_id == owner_id) & t.messages.c.on_branch
        if conversation_id is not None:
            owned = owned & (t.messages.c.conversation_id == conversation_id)
        joined = t.messages.join(
            t.conversations, t.messages.c.conversation_id == t.conversations.c.id
        )
        total = await self._db.scalar(select(func.count()).select_from(joined).where(owned))
        rows = await self._db.execute(
            select(*_MESSAGE_COLUMNS)
            .select_from(joined)
            .where(owned)
            .order_by(t.messages.c.id)
            .limit(page.limit)
            .offset(page.offset)
        )
        return Page([_message(r) for r in rows], int(total or 0), page)

    async def all_of(self, conversation_id: int) -> list[Message]:
        rows = await self._db.execute(
            select(*_MESSAGE_COLUMNS)
            .where(t.messages.c.conversation_id == conversation_id, t.messages.c.on_branch)
            .order_by(t.messages.c.id)
        )
        return [_message(r) for r in rows]

    async def latest(self, conversation_id: int, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        rows = await self._db.execute(
            _LATEST_MESSAGES, {"conversation_id": conversation_id, "limit": limit}
        )
        return [_message(r) for r in reversed(rows.all())]

    async def history(self, conversation_id: int, limit: int) -> list[EarlierMessage]:
        if limit <= 0:
            return []
        rows = await _TURN_HISTORY.rows(
            self._db, {"conversation_id": conversation_id, "limit": limit}
        )
        return [
            EarlierMessage(id_, _ROLES[role], content, _STATUSES[status], image_url, image_data)
            for id_, role, content, status, image_url, image_data in reversed(rows)
        ]

    async def owned(self, message_id: int, owner_id: int) -> Message | None:
        if not storable(message_id):
            return None
        row = (
            await self._db.execute(
                select(*_MESSAGE_COLUMNS)
                .join(t.conversations, t.conversations.c.id == t.messages.c.conversation_id)
                .where(t.messages.c.id == message_id, t.conversations.c.owner_id == owner_id)
            )
        ).first()
        return None if row is None else _message(row)

    async def tree(
        self, conversation_id: int, *, after_id: int = 0, limit: int | None = None
    ) -> list[Message]:
        query = (
            select(*_MESSAGE_COLUMNS)
            .where(t.messages.c.conversation_id == conversation_id, t.messages.c.id > after_id)
            .order_by(t.messages.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        return [_message(r) for r in await self._db.execute(query)]

    async def sibling_groups(
        self, conversation_id: int, parent_ids: Set[int | None]
    ) -> dict[int | None, list[int]]:
        parents = [p for p in parent_ids if p is not None]
        chosen = [t.messages.c.parent_id.in_(parents)] if parents else []
        if None in parent_ids:
            chosen.append(t.messages.c.parent_id.is_(None))
        groups: dict[int | None, list[int]] = {p: [] for p in parent_ids}
        if not chosen:
            return groups
        rows = await self._db.execute(
            select(t.messages.c.id, t.messages.c.parent_id)
            .where(t.messages.c.conversation_id == conversation_id, or_(*chosen))
            .order_by(t.messages.c.id)
        )
        for message_id, parent_id in rows:
            groups[parent_id].append(message_id)
        return groups

    async def switch_branch(self, conversation_id: int, leaf_id: int | None) -> None:
        of_conversation = t.messages.c.conversation_id == conversation_id
        if leaf_id is None:
            await self._db.execute(
                update(t.messages)
                .where(of_conversation, t.messages.c.on_branch)
                .values(on_branch=False)
            )
        else:
            on_path = t.messages.c.id.in_(select(_path_to(leaf_id).c.id))
            await self._db.execute(
                update(t.messages)
                .where(of_conversation, or_(t.messages.c.on_branch, on_path))
                .values(on_branch=on_path)
            )
        await self._db.execute(
            update(t.conversations)
            .where(t.conversations.c.id == conversation_id, ~t.conversations.c.branched)
            .values(branched=True)
        )

    async def newest_leaf_under(self, message_id: int) -> int:
        below = select(t.messages.c.id).where(t.messages.c.id == message_id).cte(recursive=True)
        child = t.messages.alias("child")
        below = below.union_all(select(child.c.id).where(child.c.parent_id == below.c.id))
        newest = await self._db.scalar(select(func.max(below.c.id)))
        return int(newest or message_id)

    async def add_tree(
        self, messages: Sequence[NewMessage], parents: Sequence[int | None]
    ) -> list[Message]:
        # One INSERT per message: each needs its parent's id, which the database gives.
        stored: list[Message] = []
        for message, parent in zip(messages, parents, strict=True):
            parent_id = None if parent is None else stored[parent].id
            values = _message_values(message) | {"parent_id": parent_id}
            result = await self._db.execute(_INSERT_MESSAGE, values)
            stored.append(replace(message, parent_id=parent_id).stored_as(result.scalar_one()))
        if len(set(parents)) < len(parents) and stored:
            await self._db.execute(
                update(t.conversations)
                .where(t.conversations.c.id == stored[0].conversation_id)
                .values(branched=True)
            )
        return stored


def _path_to(leaf_id: int) -> Any:
    """The ids from ``leaf_id`` up to its conversation's first message (recursive)."""
    path = (
        select(t.messages.c.id, t.messages.c.parent_id)
        .where(t.messages.c.id == leaf_id)
        .cte("branch_path", recursive=True)
    )
    parent = t.messages.alias("parent")
    return path.union_all(
        select(parent.c.id, parent.c.parent_id).where(parent.c.id == path.c.parent_id)
    )


def _settings(row: Row[Any]) -> UserChatSettings:
    return UserChatSettings(
        id=row.id,
        user_id=row.user_id,
        settings=ChatSettings(
            ai_model=row.ai_model, temperature=row.temperature, max_tokens=row.max_tokens
        ),
    )


class SqlChatSettings:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def for_user(self, user_id: int) -> UserChatSettings | None:
        row = (
            await self._db.execute(
                select(t.chat_settings).where(t.chat_settings.c.user_id == user_id)
            )
        ).first()
        return None if row is None else _settings(row)

    async def add(self, user_id: int, settings: ChatSettings) -> UserChatSettings:
        # A new user's first requests arrive together and each makes the defaults: the
        # first insert wins, the others read what it stored (a plain insert was a 500,
        # uq_chat_settings_user_id, on PostgreSQL).
        insert = sqlite_insert if self._db.dialect.name == "sqlite" else postgresql_insert
        result = await self._db.execute(
            insert(t.chat_settings)
            .values(user_id=user_id, **_settings_values(settings))
            .on_conflict_do_nothing(index_elements=[t.chat_settings.c.user_id])
            .returning(t.chat_settings.c.id)
        )
        stored_id = result.scalar_one_or_none()
        if stored_id is None:
            stored = await self.for_user(user_id)
            assert stored is not None, "the conflicting row is committed before DO NOTHING"
            return stored
        return UserChatSettings(id=stored_id, user_id=user_id, settings=settings)

    async def save(self, settings: UserChatSettings) -> None:
        await self._db.execute(
            update(t.chat_settings)
            .where(t.chat_settings.c.id == settings.id)
            .values(**_settings_values(settings.settings))
        )


def _settings_values(settings: ChatSettings) -> dict[str, Any]:
    return {
        "ai_model": settings.ai_model,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }


class SqlRefreshTokens:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, record: RefreshTokenRecord) -> None:
        await self._db.execute(
            t.refresh_tokens.insert().values(
                jti=record.jti,
                user_id=record.user_id,
                family_id=record.family_id,
                expires_at=record.expires_at,
            )
        )

    async def get(self, jti: str) -> RefreshTokenRecord | None:
        row = (
            await self._db.execute(select(t.refresh_tokens).where(t.refresh_tokens.c.jti == jti))
        ).first()
        if row is None:
            return None
        return RefreshTokenRecord(
            jti=row.jti,
            user_id=row.user_id,
            family_id=row.family_id,
            expires_at=row.expires_at,
            used_at=row.used_at,
            revoked_at=row.revoked_at,
        )

    async def mark_used(self, jti: str, when: datetime) -> bool:
        result = await self._db.execute(
            update(t.refresh_tokens)
            .where(t.refresh_tokens.c.jti == jti, t.refresh_tokens.c.used_at.is_(None))
            .values(used_at=when)
        )
        return bool(result.rowcount == 1)

    async def revoke_family(self, family_id: str, when: datetime) -> None:
        await self._db.execute(
            update(t.refresh_tokens)
            .where(
                t.refresh_tokens.c.family_id == family_id,
                t.refresh_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=when)
        )

    async def revoke_all_of(self, user_id: int, when: datetime) -> None:
        await self._db.execute(
            update(t.refresh_tokens)
            .where(
                t.refresh_tokens.c.user_id == user_id,
                t.refresh_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=when)
        )


class SqlExternalIdentities:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def user_id_for(self, provider: str, subject: str) -> int | None:
        user_id = await self._db.scalar(
            select(t.external_identities.c.user_id).where(
                t.external_identities.c.provider == provider,
                t.external_identities.c.subject == subject,
            )
        )
        return None if user_id is None else int(user_id)

    async def link(self, user_id: int, provider: str, subject: str, when: datetime) -> None:
        try:
            # A savepoint: on PostgreSQL a failed statement aborts the whole transaction,
            # so the refusal must leave the transaction usable, as it does on SQLite.
            async with self._db.begin_nested():
                await self._db.execute(
                    t.external_identities.insert().values(
                        user_id=user_id, provider=provider, subject=subject, created_at=when
                    )
                )
        except IntegrityError:
            raise InvalidInput({provider: ["This account is already linked to a user."]}) from None


class SqlApiTokens:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, user_id: int, token_digest: str, created_at: datetime) -> None:
        await self._db.execute(
            t.api_tokens.insert().values(
                user_id=user_id, token_digest=token_digest, created_at=created_at
            )
        )

    async def user_id_for(self, token_digest: str) -> int | None:
        user_id = await self._db.scalar(
            select(t.api_tokens.c.user_id).where(t.api_tokens.c.token_digest == token_digest)
        )
        return None if user_id is None else int(user_id)

    async def revoke(self, token_digest: str) -> None:
        await self._db.execute(
            t.api_tokens.delete().where(t.api_tokens.c.token_digest == token_digest)
        )

    async def revoke_all(self, user_id: int) -> None:
        await self._db.execute(t.api_tokens.delete().where(t.api_tokens.c.user_id == user_id))


class SqlModelCalls:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, call: ModelCall) -> None:
        await self._db.execute(
            t.model_calls.insert().values(
                user_id=call.user_id,
                model=call.model,
                provider=call.provider,
                status=call.status.value,
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
                reasoning_tokens=call.reasoning_tokens,
                finish_reason=call.finish_reason,
                latency_ms=call.latency_ms,
                error_code=call.error_code,
                created_at=call.created_at,
                billed_tokens=call.billed_tokens,
                cost_nanos=call.cost_nanos,
            )
        )
