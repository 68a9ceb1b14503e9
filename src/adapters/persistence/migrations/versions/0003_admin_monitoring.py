"""Admin monitoring: audit log, filter indexes, and the keyword search index.

SQLite: ``search_index``, a contentless FTS5 trigram table, filled from existing rows
and kept in step by triggers (see adapters/persistence/search.py for its rowids).
PostgreSQL: pg_trgm GIN indexes on message contents and conversation titles.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# A message's document has rowid (conversation_id << 32) | (message id & 0xFFFFFFFF); a
# title's has rowid conversation_id << 32. Contentless FTS5 deletes need the old text.
_SQLITE_TRIGGERS = {
    "search_index_message_insert": """
        AFTER INSERT ON messages BEGIN
            INSERT INTO search_index(rowid, search_index_body)
            VALUES ((new.conversation_id << 32) | (new.id & 4294967295), new.content);
        END""",
    "search_index_message_delete": """
        AFTER DELETE ON messages BEGIN
            INSERT INTO search_index(search_index, rowid, search_index_body)
            VALUES ('delete', (old.conversation_id << 32) | (old.id & 4294967295), old.content);
        END""",
    "search_index_message_update": """
        AFTER UPDATE OF conversation_id, content ON messages BEGIN
            INSERT INTO search_index(search_index, rowid, search_index_body)
            VALUES ('delete', (old.conversation_id << 32) | (old.id & 4294967295), old.content);
            INSERT INTO search_index(rowid, search_index_body)
            VALUES ((new.conversation_id << 32) | (new.id & 4294967295), new.content);
        END""",
    "search_index_title_insert": """
        AFTER INSERT ON conversations WHEN new.title <> '' BEGIN
            INSERT INTO search_index(rowid, search_index_body) VALUES (new.id << 32, new.title);
        END""",
    "search_index_title_delete": """
        AFTER DELETE ON conversations WHEN old.title <> '' BEGIN
            INSERT INTO search_index(search_index, rowid, search_index_body)
            VALUES ('delete', old.id << 32, old.title);
        END""",
    "search_index_title_update": """
        AFTER UPDATE OF title ON conversations WHEN old.title IS NOT new.title BEGIN
            INSERT INTO search_index(search_index, rowid, search_index_body)
            SELECT 'delete', old.id << 32, old.title WHERE old.title <> '';
            INSERT INTO search_index(rowid, search_index_body)
            SELECT new.id << 32, new.title WHERE new.title <> '';
        END""",
}


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_username", sa.String(length=150), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_audit_log_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_actor_username_id", "audit_log", ["actor_username", "id"])
    op.create_index("ix_audit_log_action_id", "audit_log", ["action", "id"])
    op.create_index(
        "ix_audit_log_target_type_target_id_id", "audit_log", ["target_type", "target_id", "id"]
    )
    op.create_index("ix_conversations_status_id", "conversations", ["status", "id"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index("ix_messages_model_created_at", "messages", ["model", "created_at"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_index USING fts5("
            "search_index_body, content='', tokenize='trigram')"
        )
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
        op.execute(
            "INSERT INTO search_index(rowid, search_index_body) "
            "SELECT (conversation_id << 32) | (id & 4294967295), content FROM messages"
        )
        op.execute(
            "INSERT INTO search_index(rowid, search_index_body) "
            "SELECT id << 32, title FROM conversations WHERE title <> ''"
        )
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_messages_content_trgm ON messages USING gin (content gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX ix_conversations_title_trgm ON conversations "
            "USING gin (title gin_trgm_ops)"
        )
        # Enough statistics for the planner to tell a rare word from a common one (the
        # default 100 misjudges mid-frequency words; 1000 costs ~4 ms of planning per search).
        op.execute("ALTER TABLE messages ALTER COLUMN content SET STATISTICS 300")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_index")
    elif dialect == "postgresql":
        op.execute("ALTER TABLE messages ALTER COLUMN content SET STATISTICS -1")
        op.execute("DROP INDEX IF EXISTS ix_conversations_title_trgm")
        op.execute("DROP INDEX IF EXISTS ix_messages_content_trgm")
        # pg_trgm stays installed: other schemas in the database may use it.
    op.drop_index("ix_messages_model_created_at", table_name="messages")
    op.drop_index("ix_messages_created_at", table_name="messages")
    op.drop_index("ix_conversations_status_id", table_name="conversations")
    op.drop_index("ix_audit_log_target_type_target_id_id", table_name="audit_log")
    op.drop_index("ix_audit_log_action_id", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_username_id", table_name="audit_log")
    op.drop_table("audit_log")
