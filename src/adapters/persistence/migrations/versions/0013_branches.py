"""Conversations as trees, archived and pinned ones.

Each message gets its parent (``parent_id``: the message it answers or follows; NULL for
a conversation's first) and ``on_branch``: whether it is on the conversation's current
branch, which is what the documented list endpoints show. Every existing message
follows the one before it in its conversation and is on the current branch, so each
conversation becomes a single-branch tree with nothing lost. ``branched`` says a
conversation's current branch may be shorter than its stored ``message_count``.
``archived_at`` and ``pinned_at`` say when the owner archived or pinned it.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (no batch copy on SQLite, which would drop the
# count triggers of 0005), as in 0006 and 0010.
def upgrade() -> None:
    op.add_column(
        "messages",
        # No foreign key: a parent is always of the same conversation, and messages are
        # only ever deleted with their whole conversation, so no parent id is left
        # dangling; and SQLite can drop a plain column in place (a batch copy would lose
        # the count triggers of 0005).
        sa.Column("parent_id", sa.Integer, nullable=True),
    )
    op.add_column(
        "messages",
        sa.Column("on_branch", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.execute(
        "UPDATE messages SET parent_id = (SELECT max(earlier.id) FROM messages earlier "
        "WHERE earlier.conversation_id = messages.conversation_id "
        "AND earlier.id < messages.id)"
    )
    op.create_index("ix_messages_parent_id", "messages", ["parent_id"])
    op.add_column(
        "conversations",
        sa.Column("branched", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "conversations", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "conversations", sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # The earlier schema knows one list per conversation: the current branch is kept,
    # the other branches go (their stored counts with them, by the triggers of 0005).
    op.execute("DELETE FROM messages WHERE NOT on_branch")
    for column in ("pinned_at", "archived_at", "branched"):
        op.drop_column("conversations", column)
    op.drop_index("ix_messages_parent_id", table_name="messages")
    op.drop_column("messages", "on_branch")
    op.drop_column("messages", "parent_id")
