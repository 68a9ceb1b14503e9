"""Replies written by the server: a ``streaming`` reply's lease (``messages.lease_until``).

A streamed reply is stored from its start with status ``streaming``; the worker writing
it renews the lease, so a reply whose lease ended belongs to a process that died and is
marked ``interrupted``. The partial index holds only the replies being written.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_STREAMING = sa.text("status = 'streaming'")


# Plain ALTER TABLE on both databases (no batch copy on SQLite), as in 0006.
def upgrade() -> None:
    op.add_column("messages", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_messages_streaming",
        "messages",
        ["lease_until"],
        sqlite_where=_STREAMING,
        postgresql_where=_STREAMING,
    )


def downgrade() -> None:
    # A reply still being written when the schema goes back is one that was cut short.
    op.execute(
        "UPDATE messages SET status = 'interrupted', error_code = 'interrupted' "
        "WHERE status = 'streaming'"
    )
    op.drop_index("ix_messages_streaming", table_name="messages")
    op.drop_column("messages", "lease_until")
