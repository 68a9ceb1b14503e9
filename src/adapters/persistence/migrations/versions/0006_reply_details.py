"""What a reply carries beyond its text: the model's reasoning (kept apart from the
answer) and its token count, the provider's own words when it failed, and the image a
user sent as the providers take it (fetched once, when it was sent).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (no batch copy on SQLite): a copied table would
# lose the message-count triggers of migration 0005.
def upgrade() -> None:
    op.add_column("messages", sa.Column("reasoning", sa.Text(), nullable=True))
    op.add_column(
        "messages",
        sa.Column("reasoning_tokens", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("messages", sa.Column("error_message", sa.String(length=500), nullable=True))
    op.add_column("messages", sa.Column("image_data", sa.Text(), nullable=True))


def downgrade() -> None:
    for column in ("image_data", "error_message", "reasoning_tokens", "reasoning"):
        op.drop_column("messages", column)
