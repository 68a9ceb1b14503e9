"""Keyword search over conversations: titles and message contents, by index.

SQLite: ``search_index``, a contentless FTS5 table with the trigram tokenizer (so any
substring of 3+ characters is found, Chinese without spaces included). Triggers created
by migration 0003 keep it in step with every write to ``messages`` and
``conversations.title``, whatever code path or cascade makes it. A document's rowid is
``conversation_id << 32 | message_id`` (low half 0 for the title), so the index yields
matches grouped by conversation, newest conversation first: the first page of a search
for a common word stops after a few hundred postings instead of reading them all.
Message ids must stay below 2**32.

PostgreSQL: pg_trgm GIN indexes on ``messages.content`` and ``conversations.title``
(maintained by PostgreSQL itself), with a larger statistics target on ``content`` so the
planner knows a rare word from a common one. Title and message matches are separate
branches, each newest-first and limited, then merged: each branch keeps its best plan
(index lookup for rare words, a newest-first walk for common ones).

Words shorter than 3 characters cannot use a trigram index on either database; they are
still matched, by checking candidates (SQLite: the documents the longer words found) or
by walking conversations newest first. That is fast for common short words and slow for
rare ones on large databases.

Case: FTS5 folds Unicode case; SQLite's LIKE (short words) folds ASCII only; PostgreSQL
folds case for words that have it (see ``_contains``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    and_,
    case,
    column,
    exists,
    func,
    or_,
    select,
    table,
    text,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.persistence import tables as t
from application.admin_ports import ConversationCriteria
from application.pagination import PageRequest

SEARCH_TABLE = "search_index"
POSTGRES_SEARCH_INDEXES = frozenset({"ix_messages_content_trgm", "ix_conversations_title_trgm"})
TRIGRAM = 3
_LOW_HALF = 0xFFFFFFFF

_fts = table(SEARCH_TABLE, column("rowid", Integer), column(SEARCH_TABLE))
_c = t.conversations
_m = t.messages


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic ``include_object`` hook: the search index is created by hand in migration
    0003 and is not part of ``tables.metadata``, so schema comparisons skip it."""
    if name is None:
        return True
    if type_ == "table" and (name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_")):
        return False
    return not (type_ == "index" and name in POSTGRES_SEARCH_INDEXES)


def matching_ids(
    dialect: str, criteria: ConversationCriteria, *, limit: int | None, offset: int = 0
) -> Select[Any]:
    """Ids of the conversations that match, newest first, ``offset``..``offset+limit``
    (``limit`` None: all of them)."""
    indexed = [term for term in criteria.terms if len(term) >= TRIGRAM]
    if dialect == "sqlite" and indexed:
        short = [term for term in criteria.terms if len(term) < TRIGRAM]
        if criteria.owner_id is not None:
            stmt = _sqlite_per_conversation(criteria, indexed, short)
        else:
            stmt = _sqlite_stream(criteria, indexed, short)
        return stmt.limit(limit).offset(offset)
    merged = _branches(criteria, None if limit is None else offset + limit, dialect)
    return select(merged.c.id).order_by(merged.c.id.desc()).limit(limit).offset(offset)


def count_matching(
    dialect: str, criteria: ConversationCriteria, *, limit: int | None
) -> Select[Any]:
    """How many conversations match, counting no further than ``limit`` (if given)."""
    ids = matching_ids(dialect, criteria, limit=limit).subquery()
    return select(func.count()).select_from(ids)


def criteria_filters(criteria: ConversationCriteria) -> list[ColumnElement[bool]]:
    """The criteria other than the words, on ``conversations`` (searches and plain lists
    alike)."""
    found: list[ColumnElement[bool]] = []
    if criteria.owner_id is not None:
        found.append(_c.c.owner_id == criteria.owner_id)
    if criteria.status is not None:
        found.append(_c.c.status == criteria.status.value)
    if criteria.archived is not None:
        found.append(
            _c.c.archived_at.is_not(None) if criteria.archived else _c.c.archived_at.is_(None)
        )
    if criteria.pinned is not None:
        found.append(_c.c.pinned_at.is_not(None) if criteria.pinned else _c.c.pinned_at.is_(None))
    return found


def _pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(text: Any, term: str, dialect: str) -> ColumnElement[bool]:
    """Case-insensitive substring test, as cheap per row as each database allows.

    SQLite's LIKE folds ASCII case exactly as its lower() does. On PostgreSQL a word
    without cased letters (Chinese) needs no folding, so plain LIKE is the same test, and
    otherwise a case-insensitive regular expression with the ``***=`` prefix (the rest is
    a literal string) matches exactly what ILIKE would at half its cost per row. pg_trgm
    indexes all three."""
    if dialect == "sqlite" or term.lower() == term.upper():
        return text.like(_pattern(term), escape="\\")  # type: ignore[no-any-return]
    return text.regexp_match("***=" + term, flags="i")  # type: ignore[no-any-return]


def _branches(criteria: ConversationCriteria, k: int | None, dialect: str) -> Any:
    """The newest ``k`` conversations matching in a message, and the newest ``k``
    matching in the title, merged (the newest ``k`` of the union are among them)."""
    filters = criteria_filters(criteria)
    in_message = exists().where(
        _m.c.conversation_id == _c.c.id,
        *(_contains(_m.c.content, w, dialect) for w in criteria.terms),
    )
    by_message = (
        select(_c.c.id).where(*filters, in_message).order_by(_c.c.id.desc()).limit(k).subquery()
    )
    by_title = (
        select(_c.c.id)
        .where(*filters, *(_contains(_c.c.title, w, dialect) for w in criteria.terms))
        .order_by(_c.c.id.desc())
        .limit(k)
        .subquery()
    )
    return union(select(by_message.c.id), select(by_title.c.id)).subquery()


def _fts_query(terms: list[str]) -> str:
    """Each word as an FTS5 phrase (a substring, with trigrams), all required."""
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _conversation_of_document() -> ColumnElement[int]:
    return _fts.c.rowid.op(">>", return_type=Integer)(32)


def _document_has(short: list[str], title_of_document: Any) -> list[ColumnElement[bool]]:
    """Words the trigram index cannot look up, checked on the matched document itself:
    the title (low half of the rowid 0) or the message the rowid names."""
    if not short:
        return []
    message_id = _fts.c.rowid.op("&", return_type=Integer)(_LOW_HALF)
    in_title = and_(message_id == 0, title_of_document(short))
    in_message = exists().where(
        _m.c.id == message_id, *(_contains(_m.c.content, w, "sqlite") for w in short)
    )
    return [or_(in_title, in_message)]


def _sqlite_stream(
    criteria: ConversationCriteria, indexed: list[str], short: list[str]
) -> Select[Any]:
    """Postings in descending rowid order are grouped by conversation, newest first."""
    conversation_id = _conversation_of_document()

    def title_has(words: list[str]) -> ColumnElement[bool]:
        return exists().where(
            _c.c.id == conversation_id, *(_contains(_c.c.title, w, "sqlite") for w in words)
        )

    conversation_ok = exists().where(_c.c.id == conversation_id, *criteria_filters(criteria))
    return (
        select(conversation_id.label("id"))
        .where(
            _fts.c[SEARCH_TABLE].match(_fts_query(indexed)),
            conversation_ok,
            *_document_has(short, title_has),
        )
        .distinct()
        .order_by(_fts.c.rowid.desc())
    )


def _sqlite_per_conversation(
    criteria: ConversationCriteria, indexed: list[str], short: list[str]
) -> Select[Any]:
    """One user's conversations, each probed in its own rowid range of the index."""
    first = _c.c.id.op("<<", return_type=Integer)(32)
    in_conversation = exists().where(
        _fts.c[SEARCH_TABLE].match(_fts_query(indexed)),
        _fts.c.rowid >= first,
        _fts.c.rowid <= first + _LOW_HALF,
        *_document_has(
            short, lambda words: and_(*(_contains(_c.c.title, w, "sqlite") for w in words))
        ),
    )
    return (
        select(_c.c.id).where(*criteria_filters(criteria), in_conversation).order_by(_c.c.id.desc())
    )


async def owned_page(
    db: AsyncConnection, criteria: ConversationCriteria, page: PageRequest
) -> tuple[list[Row[Any]], int]:
    """One user's conversations that meet ``criteria`` (rows of ``conversations``),
    pinned first (the most recently pinned first), then newest first, and how many
    match in all, exactly: one user's matches are few enough to count them all."""
    dialect = db.dialect.name
    if criteria.terms:
        if dialect == "postgresql":
            # As the admin search does: plan for these words (see admin_queries).
            await db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        hits = matching_ids(dialect, criteria, limit=None).subquery()
        source: Any = _c.join(hits, hits.c.id == _c.c.id)
        where: list[ColumnElement[bool]] = []
    else:
        source, where = _c, criteria_filters(criteria)
    unpinned = case((_c.c.pinned_at.is_(None), 1), else_=0)
    rows = (
        await db.execute(
            select(_c, func.count().over().label("total"))
            .select_from(source)
            .where(*where)
            .order_by(unpinned, _c.c.pinned_at.desc(), _c.c.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
    ).all()
    if rows:
        return list(rows), int(rows[0].total)
    if page.offset == 0:
        return [], 0
    total = await db.scalar(select(func.count()).select_from(source).where(*where))
    return [], int(total or 0)  # past the last page: counted on its own


# Refill the SQLite index from the tables (what migration 0003 does, for bulk loads that
# bypass the triggers).
SQLITE_REBUILD = (
    "INSERT INTO search_index(search_index) VALUES ('delete-all')",
    "INSERT INTO search_index(rowid, search_index_body) "
    "SELECT (conversation_id << 32) | (id & 4294967295), content FROM messages",
    "INSERT INTO search_index(rowid, search_index_body) "
    "SELECT id << 32, title FROM conversations WHERE title <> ''",
    "INSERT INTO search_index(search_index) VALUES ('optimize')",
)
