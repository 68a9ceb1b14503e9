"""One account per username whatever its case or width: ``users.username_key``, unique.

The key is the username NFKC-normalised and case-folded (``domain.users.username_key``),
so "ADMIN", and "admin" in full-width letters, are taken once "admin" is. Accounts made
before this that already collide keep working under their exact names: the later ones
get a key suffixed with their id, which no new username can take.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("username_key", sa.String(length=160), nullable=True))
    users = sa.table("users", sa.column("id"), sa.column("username"), sa.column("username_key"))
    connection = op.get_bind()
    taken: set[str] = set()
    for user_id, username in connection.execute(
        sa.select(users.c.id, users.c.username).order_by(users.c.id)
    ):
        key = unicodedata.normalize("NFKC", username).casefold()  # as on 2026-12-01
        if key in taken:
            key = f"{key}#{user_id}"  # "#" is not allowed in usernames
        taken.add(key)
        connection.execute(users.update().where(users.c.id == user_id).values(username_key=key))
    op.create_index("ix_users_username_key", "users", ["username_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_username_key", table_name="users")
    op.drop_column("users", "username_key")
