"""Idempotency keys held by leases: the request holding a key, and until when.

A key reserved by a process that died stayed "in progress" for its 24 hours; now a key
whose lease has ended, with no answer, can be taken over by a retry. Keys reserved
before this migration have no lease, so any left stuck by an earlier crash come free.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (no batch copy on SQLite), as in 0006.
def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("holder", sa.String(length=32), nullable=True))
    op.add_column(
        "idempotency_keys", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    for column in ("lease_until", "holder"):
        op.drop_column("idempotency_keys", column)
