"""Stored counts: messages per conversation, conversations per user.

``X-Total-Count`` of a conversation's history and of a user's conversation list was a
``count(*)`` over every row, so a page of a long conversation cost time in proportion to
the whole of it. The counts now live on the parent rows, kept exact by triggers in the
same transaction as each insert and delete (whoever writes: Parley, the admin tools or
an operator's SQL), and filled from existing rows here.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.persistence.counts import RECOUNT

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = {
    "count_messages_insert": """
        AFTER INSERT ON messages BEGIN
            UPDATE conversations SET message_count = message_count + 1
            WHERE id = new.conversation_id;
        END""",
    "count_messages_delete": """
        AFTER DELETE ON messages BEGIN
            UPDATE conversations SET message_count = message_count - 1
            WHERE id = old.conversation_id;
        END""",
    "count_conversations_insert": """
        AFTER INSERT ON conversations BEGIN
            UPDATE users SET conversation_count = conversation_count + 1
            WHERE id = new.owner_id;
        END""",
    "count_conversations_delete": """
        AFTER DELETE ON conversations BEGIN
            UPDATE users SET conversation_count = conversation_count - 1
            WHERE id = old.owner_id;
        END""",
}

_POSTGRESQL_FUNCTIONS = {
    "parley_count_messages": ("messages", "conversations", "message_count", "conversation_id"),
    "parley_count_conversations": ("conversations", "users", "conversation_count", "owner_id"),
}


def _postgresql_function(parent: str, column: str, key: str) -> str:
    # Names from the constant table above, never from input.
    return f"""
        RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE {parent} SET {column} = {column} + 1 WHERE id = NEW.{key};
            ELSE
                UPDATE {parent} SET {column} = {column} - 1 WHERE id = OLD.{key};
            END IF;
            RETURN NULL;
        END $$"""  # noqa: S608


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("message_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "users",
        sa.Column("conversation_count", sa.Integer(), nullable=False, server_default="0"),
    )
    for statement in RECOUNT:
        op.execute(statement)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    elif dialect == "postgresql":
        for function, (table, parent, column, key) in _POSTGRESQL_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {function}() {_postgresql_function(parent, column, key)}")
            op.execute(
                f"CREATE TRIGGER {function} AFTER INSERT OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        for function, (table, *_rest) in _POSTGRESQL_FUNCTIONS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    # Plain ALTER TABLE (SQLite 3.35+): a batch copy of the table would lose its triggers.
    op.execute("ALTER TABLE users DROP COLUMN conversation_count")
    op.execute("ALTER TABLE conversations DROP COLUMN message_count")
