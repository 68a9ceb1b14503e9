"""The admin ports over SQL. Every count, statistic and search runs in the database; a
page is chosen by id first and only then are its rows (and their counts) fetched."""

from __future__ import annotations

import json
from typing import Any, Self

from sqlalchemy import (
    Date,
    Row,
    case,
    cast,
    func,
    literal_column,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.persistence import tables as t
from adapters.persistence.search import count_matching, criteria_filters, matching_ids
from adapters.persistence.unit_of_work import SqlUnitOfWork
from application.admin_ports import (
    AuditCriteria,
    AuditEntry,
    AuditRecord,
    ConversationCriteria,
    OwnedConversation,
    UsageCriteria,
    UsageRow,
    UserSummary,
)
from application.pagination import Page, PageRequest
from domain.conversation import Conversation, ConversationStatus, MessageRole
from domain.monitoring import ConversationStats

_c = t.conversations
_m = t.messages
_u = t.users


def _owned(row: Row[Any]) -> OwnedConversation:
    return OwnedConversation(
        conversation=Conversation(
            id=row.id,
            owner_id=row.owner_id,
            title=row.title,
            model=row.model,
            status=ConversationStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
            archived_at=row.archived_at,
            pinned_at=row.pinned_at,
        ),
        owner_username=row.username,
    )


def _summary(row: Any) -> UserSummary:
    return UserSummary(
        id=row.id,
        username=row.username,
        email=row.email,
        is_staff=row.is_staff,
        is_active=row.is_active,
        date_joined=row.date_joined,
        conversation_count=int(row.conversation_count),
        total_messages=int(row.total_messages),
    )


class SqlAdminQueries:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @property
    def _dialect(self) -> str:
        return self._db.dialect.name

    async def conversations(
        self, criteria: ConversationCriteria, page: PageRequest, *, count_limit: int | None
    ) -> Page[OwnedConversation]:
        if criteria.terms:
            ids, total = await self._search(criteria, page, count_limit)
        else:
            filters = criteria_filters(criteria)
            chosen = select(_c.c.id).where(*filters).order_by(_c.c.id.desc())
            count = select(func.count()).select_from(_c).where(*filters)
            if count_limit is not None:
                limited = select(_c.c.id).where(*filters).limit(count_limit).subquery()
                count = select(func.count()).select_from(limited)
            ids = list(await self._db.scalars(chosen.limit(page.limit).offset(page.offset)))
            total = int(await self._db.scalar(count) or 0)
        return Page(await self._owned_by_ids(ids), total, page)

    async def _search(
        self, criteria: ConversationCriteria, page: PageRequest, count_limit: int | None
    ) -> tuple[list[int], int]:
        """One query: the newest ``count_limit`` matches, counted by the database, of
        which only the requested page comes back."""
        if self._dialect == "postgresql":
            # Plan each search for its own words: a generic plan cannot tell a rare word
            # (index lookup) from a common one (newest-first walk).
            await self._db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        hits = matching_ids(self._dialect, criteria, limit=count_limit).subquery()
        rows = (
            await self._db.execute(
                select(hits.c.id, func.count().over().label("total"))
                .order_by(hits.c.id.desc())
                .limit(page.limit)
                .offset(page.offset)
            )
        ).all()
        if rows:
            return [int(row.id) for row in rows], int(rows[0].total)
        if page.offset == 0:
            return [], 0
        total = await self._db.scalar(
            count_matching(self._dialect, criteria, limit=count_limit)
        )  # past the last page: count on its own
        return [], int(total or 0)

    async def _owned_by_ids(self, ids: list[int]) -> list[OwnedConversation]:
        if not ids:
            return []
        rows = await self._db.execute(
            select(_c, _u.c.username)
            .join(_u, _u.c.id == _c.c.owner_id)
            .where(_c.c.id.in_(ids))
            .order_by(_c.c.id.desc())
        )
        return [_owned(row) for row in rows]

    async def conversation(self, conversation_id: int) -> OwnedConversation | None:
        found = await self._owned_by_ids([conversation_id])
        return found[0] if found else None

    async def stats(self, conversation_id: int) -> ConversationStats | None:
        of_conversation = _m.c.conversation_id == _c.c.id

        def aggregate(expression: Any) -> Any:
            return select(expression).where(of_conversation).scalar_subquery()

        def role_count(role: MessageRole) -> Any:
            return aggregate(
                func.coalesce(func.sum(case((_m.c.role == role.value, 1), else_=0)), 0)
            )

        row = (
            await self._db.execute(
                select(
                    _c.c.id,
                    aggregate(func.count()).label("message_count"),
                    role_count(MessageRole.USER).label("user_messages"),
                    role_count(MessageRole.ASSISTANT).label("ai_messages"),
                    aggregate(func.min(_m.c.created_at)).label("first_message_time"),
                    aggregate(func.max(_m.c.created_at)).label("last_message_time"),
                ).where(_c.c.id == conversation_id)
            )
        ).first()
        if row is None:
            return None
        return ConversationStats(
            conversation_id=row.id,
            message_count=int(row.message_count),
            user_messages=int(row.user_messages),
            ai_messages=int(row.ai_messages),
            first_message_time=row.first_message_time,
            last_message_time=row.last_message_time,
        )

    async def users(self, username: str | None, page: PageRequest) -> Page[UserSummary]:
        filters = [] if username is None else [_u.c.username == username]
        total = await self._db.scalar(select(func.count()).select_from(_u).where(*filters))
        ids = (
            select(_u.c.id)
            .where(*filters)
            .order_by(_u.c.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
        return Page(await self._summaries(ids), int(total or 0), page)

    async def user(self, user_id: int) -> UserSummary | None:
        found = await self._summaries(select(_u.c.id).where(_u.c.id == user_id))
        return found[0] if found else None

    async def _summaries(self, ids: Any) -> list[UserSummary]:
        chosen = ids.subquery()
        conversation_count = select(func.count()).where(_c.c.owner_id == _u.c.id).scalar_subquery()
        total_messages = (
            select(func.count())
            .select_from(_m.join(_c, _c.c.id == _m.c.conversation_id))
            .where(_c.c.owner_id == _u.c.id)
            .scalar_subquery()
        )
        rows = await self._db.execute(
            select(
                _u.c.id,
                _u.c.username,
                _u.c.email,
                _u.c.is_staff,
                _u.c.is_active,
                _u.c.date_joined,
                conversation_count.label("conversation_count"),
                total_messages.label("total_messages"),
            )
            .join(chosen, chosen.c.id == _u.c.id)
            .order_by(_u.c.id.desc())
        )
        return [_summary(row) for row in rows]

    async def usage(self, criteria: UsageCriteria, page: PageRequest) -> Page[UsageRow]:
        used = _usage_records(criteria).subquery()
        keys: list[Any] = []
        if criteria.by_day:
            keys.append(_utc_day(self._dialect, used.c.created_at).label("day"))
        if criteria.by_user:
            keys += [used.c.user_id.label("user_id"), _u.c.username.label("username")]
        if criteria.by_model:
            keys.append(used.c.model.label("model"))
        prompt = func.coalesce(func.sum(used.c.prompt_tokens), 0)
        completion = func.coalesce(func.sum(used.c.completion_tokens), 0)
        grouped = (
            select(
                *keys,
                func.count().label("requests"),
                prompt.label("prompt_tokens"),
                completion.label("completion_tokens"),
                func.coalesce(func.sum(used.c.cost_nanos), 0).label("cost_nanos"),
            )
            .select_from(used.join(_u, _u.c.id == used.c.user_id))
            .group_by(*keys)
        )
        total = await self._db.scalar(select(func.count()).select_from(grouped.subquery()))
        most_tokens = (prompt + completion).desc()
        order = [keys[0], most_tokens, *keys[1:]] if criteria.by_day else [most_tokens, *keys]
        rows = await self._db.execute(
            grouped.order_by(*order).limit(page.limit).offset(page.offset)
        )
        items = [
            UsageRow(
                user_id=row.user_id if criteria.by_user else None,
                username=row.username if criteria.by_user else None,
                model=row.model if criteria.by_model else None,
                requests=int(row.requests),
                prompt_tokens=int(row.prompt_tokens),
                completion_tokens=int(row.completion_tokens),
                cost_nanos=int(row.cost_nanos),
                day=row.day if criteria.by_day else None,
            )
            for row in rows
        ]
        return Page(items, int(total or 0), page)


def _utc_day(dialect: str, created_at: Any) -> Any:
    """The UTC calendar date of a ``UtcDateTime`` column, as a ``date``."""
    if dialect == "postgresql":
        # timestamptz: its date depends on the session's TimeZone unless converted. The
        # zone is a literal, not a parameter, so that GROUP BY and the select list are
        # the same expression to PostgreSQL.
        return cast(func.timezone(literal_column("'UTC'"), created_at), Date)
    # SQLite holds UTC as naive text ("2026-12-02 23:59:59.000000"); date() is its day.
    return func.date(created_at, type_=Date)


def _usage_records(criteria: UsageCriteria) -> Any:
    """What was used, one row per model call: the replies stored in conversations and
    the calls no conversation keeps, within the criteria."""
    calls = t.model_calls
    replies = select(
        _c.c.owner_id.label("user_id"),
        _m.c.model,
        _m.c.prompt_tokens,
        _m.c.completion_tokens,
        _m.c.cost_nanos,
    ).select_from(_m.join(_c, _c.c.id == _m.c.conversation_id))
    replies = replies.where(_m.c.role == MessageRole.ASSISTANT.value)
    stateless = select(
        calls.c.user_id,
        calls.c.model,
        calls.c.prompt_tokens,
        calls.c.completion_tokens,
        calls.c.cost_nanos,
    )
    if criteria.by_day:
        replies = replies.add_columns(_m.c.created_at)
        stateless = stateless.add_columns(calls.c.created_at)
    replies = replies.where(*_usage_filters(criteria, _m.c.created_at, _m.c.model, _c.c.owner_id))
    stateless = stateless.where(
        *_usage_filters(criteria, calls.c.created_at, calls.c.model, calls.c.user_id)
    )
    return union_all(replies, stateless)


def _usage_filters(criteria: UsageCriteria, created_at: Any, model: Any, owner: Any) -> list[Any]:
    filters = []
    if criteria.period.start is not None:
        filters.append(created_at >= criteria.period.start)
    if criteria.period.end is not None:
        filters.append(created_at < criteria.period.end)
    if criteria.model is not None:
        filters.append(model == criteria.model)
    if criteria.owner_id is not None:
        filters.append(owner == criteria.owner_id)
    return filters


class SqlUserActivation:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def set_active(self, user_id: int, active: bool) -> None:
        await self._db.execute(update(_u).where(_u.c.id == user_id).values(is_active=active))


class SqlAuditLog:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def record(self, entry: AuditRecord) -> None:
        await self._db.execute(
            t.audit_log.insert().values(
                actor_id=entry.actor_id,
                actor_username=entry.actor_username,
                action=entry.action,
                target_type=entry.target_type,
                target_id=entry.target_id,
                details=json.dumps(dict(entry.details), ensure_ascii=False, sort_keys=True),
                created_at=entry.created_at,
            )
        )

    async def entries(self, criteria: AuditCriteria, page: PageRequest) -> Page[AuditEntry]:
        log = t.audit_log
        filters = []
        if criteria.actor_username is not None:
            filters.append(log.c.actor_username == criteria.actor_username)
        if criteria.action is not None:
            filters.append(log.c.action == criteria.action)
        if criteria.target_type is not None:
            filters.append(log.c.target_type == criteria.target_type)
        if criteria.target_id is not None:
            filters.append(log.c.target_id == criteria.target_id)
        total = await self._db.scalar(select(func.count()).select_from(log).where(*filters))
        rows = await self._db.execute(
            select(log)
            .where(*filters)
            .order_by(log.c.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
        items = [
            AuditEntry(
                id=row.id,
                actor_id=row.actor_id,
                actor_username=row.actor_username,
                action=row.action,
                target_type=row.target_type,
                target_id=row.target_id,
                details=json.loads(row.details),
                created_at=row.created_at,
            )
            for row in rows
        ]
        return Page(items, int(total or 0), page)


class SqlAdminUnitOfWork(SqlUnitOfWork):
    """The SQL unit of work plus the admin ports, all on one connection/transaction."""

    admin: SqlAdminQueries
    activation: SqlUserActivation
    audit: SqlAuditLog

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        connection = self._connection
        assert connection is not None
        self.admin = SqlAdminQueries(connection)
        self.activation = SqlUserActivation(connection)
        self.audit = SqlAuditLog(connection)
        return self
