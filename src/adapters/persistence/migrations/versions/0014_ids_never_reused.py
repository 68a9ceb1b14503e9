"""Ids are never handed out twice: SQLite tables whose rows are deleted get AUTOINCREMENT.

Without it SQLite gives a new row max(id) + 1, so deleting the newest conversation gave
its id, and its messages' ids, to the next ones. A reply's id names its stream and
cancel URLs and the text the reply channel keeps after it ends, so the next reply
(another user's too) streamed the deleted one's text; audit entries name ids too.
Rebuilt: ``conversations`` and ``messages`` (deleted together), ``budget_reservations``
(released and renewed by id, also by a process whose lease ended). ``api_tokens`` rows
are deleted too, but are found by digest: their ids are named nowhere. PostgreSQL's
sequences never hand an id out twice: nothing to do there.

SQLite can only add AUTOINCREMENT by rebuilding a table, done here by hand rather than
with ``batch_alter_table(recreate="always")``, which copies one table at a time and drops
its triggers. Every Parley connection enforces foreign keys (and the pragma cannot be
turned off inside the migration's transaction), so dropping the old ``conversations``
would cascade-delete the messages that refer to it. Instead every new table is built
first from the table's own stored CREATE TABLE (each column exactly as the earlier
migrations left it), the new ``messages`` referring to the new ``conversations``; the
old tables go children first, when nothing refers to them; the renames then point the
new foreign key at ``conversations``. Rows are copied with their ids, so
``sqlite_sequence`` starts at the highest id kept (for conversations, at least the
highest an audit entry names: one deleted earlier may be named there). Ids deleted
before this migration that nothing kept names (a deleted conversation's messages) are
unknown to the database and may be handed out once more; from here on, none is.

Every trigger and view is dropped before and re-created after from its stored SQL: the
rebuilt tables' own (search index of 0003, stored counts of 0005) go with the old
tables, and while they are gone SQLite refuses the renames if any other names them.
Indexes are re-created from their stored SQL too. The downgrade rebuilds the same way
without AUTOINCREMENT.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import re
from collections.abc import Callable

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# A parent before its children.
_REBUILT = ("conversations", "messages", "budget_reservations")
_AUTOINCREMENT_ID = "\n\tid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "
_PLAIN_ID = "\n\tid INTEGER NOT NULL, "
# The least value each table's sequence starts from, besides its highest id.
_SEQUENCE_FLOORS = {
    "conversations": "SELECT max(target_id) FROM audit_log WHERE target_type = 'conversation'",
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(_with_autoincrement)
        _seed_sequences()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(_without_autoincrement)
        names = ", ".join(f"'{table}'" for table in _REBUILT)
        op.execute(f"DELETE FROM sqlite_sequence WHERE name IN ({names})")  # noqa: S608


def _rebuild(definition: Callable[[str, str], str]) -> None:
    """Each table of ``_REBUILT`` again, as ``definition(stored CREATE TABLE, table)``
    gives it, with its rows, ids, indexes and every trigger and view."""
    bind = op.get_bind()
    schema = bind.exec_driver_sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).all()
    created = {name: sql for kind, name, _, sql in schema if kind == "table"}
    indexes = [sql for kind, _, table, sql in schema if kind == "index" and table in _REBUILT]
    dependents = [(kind, name, sql) for kind, name, _, sql in schema if kind in {"view", "trigger"}]

    for kind, name, _ in dependents:
        bind.exec_driver_sql(f'DROP {kind.upper()} "{name}"')
    for table in _REBUILT:
        new_table = _references_new_tables(definition(created[table], table))
        bind.exec_driver_sql(new_table)
        columns = ", ".join(
            f'"{row[1]}"' for row in bind.exec_driver_sql(f'PRAGMA table_info("{table}")')
        )
        bind.exec_driver_sql(
            f"INSERT INTO new_{table} ({columns}) SELECT {columns} FROM {table}"  # noqa: S608
        )
    for table in reversed(_REBUILT):
        bind.exec_driver_sql(f"DROP TABLE {table}")
    for table in _REBUILT:
        bind.exec_driver_sql(f"ALTER TABLE new_{table} RENAME TO {table}")
    for sql in indexes:
        bind.exec_driver_sql(sql)
    for kind in ("view", "trigger"):
        for dependent_kind, _, sql in dependents:
            if dependent_kind == kind:
                bind.exec_driver_sql(sql)

    stored = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    left = [name for name, sql in stored if any(f"new_{table}" in sql for table in _REBUILT)]
    if left:
        raise RuntimeError(f"the rebuild left references to its new tables in {left}")


def _with_autoincrement(stored: str, table: str) -> str:
    with_id = _replace_once(stored, _PLAIN_ID, _AUTOINCREMENT_ID, table)
    # AUTOINCREMENT is a column constraint; the named table-level primary key goes.
    return _replace_once(with_id, _primary_key(table), "", table)


def _without_autoincrement(stored: str, table: str) -> str:
    plain = _replace_once(stored, _AUTOINCREMENT_ID, _PLAIN_ID, table)
    # Back as migrations 0001 and 0012 made it: the named primary key before the foreign key.
    foreign_key = f"CONSTRAINT fk_{table}_"
    return _replace_once(plain, foreign_key, _primary_key(table) + foreign_key, table)


def _primary_key(table: str) -> str:
    return f"CONSTRAINT pk_{table} PRIMARY KEY (id), \n\t"


def _references_new_tables(definition: str) -> str:
    """``definition`` creating ``new_<table>``, its references to rebuilt tables to theirs."""
    renamed = re.sub(r'^CREATE TABLE "?(\w+)"?\s*\(', r"CREATE TABLE new_\1 (", definition)
    for parent in _REBUILT:
        renamed = re.sub(rf'REFERENCES "?{parent}"?\s*\(', f"REFERENCES new_{parent} (", renamed)
    return renamed


def _replace_once(stored: str, old: str, new: str, table: str) -> str:
    if stored.count(old) != 1:
        raise RuntimeError(f"{table}: unexpected stored schema, no single {old.strip()!r}")
    return stored.replace(old, new)


def _seed_sequences() -> None:
    """Rows were copied with their ids; no id at or below the highest kept (or named by
    an audit entry) is handed out again."""
    bind = op.get_bind()
    for table in _REBUILT:
        floor = _SEQUENCE_FLOORS.get(table, "SELECT 0")
        bind.exec_driver_sql(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")  # noqa: S608
        bind.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?, max("  # noqa: S608
            f"coalesce((SELECT max(id) FROM {table}), 0), coalesce(({floor}), 0))",
            (table,),
        )
