"""Budgets and model access: what each reply and call is billed (``billed_tokens``,
``cost_nanos``), the reservations of calls in flight, and the limits admins set per user.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): the messages table keeps its count triggers.
    for table in ("messages", "model_calls"):
        op.add_column(
            table, sa.Column("billed_tokens", sa.BigInteger, nullable=False, server_default="0")
        )
        op.add_column(
            table, sa.Column("cost_nanos", sa.BigInteger, nullable=False, server_default="0")
        )
    # Earlier replies and calls are billed what the provider reported; they had no price.
    op.execute("UPDATE messages SET billed_tokens = prompt_tokens + completion_tokens")
    op.execute("UPDATE model_calls SET billed_tokens = prompt_tokens + completion_tokens")
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey(
                "users.id", ondelete="CASCADE", name="fk_budget_reservations_user_id_users"
            ),
            nullable=False,
        ),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_nanos", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budget_reservations"),
    )
    op.create_index(
        "ix_budget_reservations_user_id_lease_until",
        "budget_reservations",
        ["user_id", "lease_until"],
    )
    op.create_index("ix_budget_reservations_lease_until", "budget_reservations", ["lease_until"])
    op.create_table(
        "user_limits",
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_user_limits_user_id_users"),
            nullable=False,
        ),
        sa.Column("has_budget", sa.Boolean, nullable=False),
        sa.Column("daily_tokens", sa.BigInteger, nullable=True),
        sa.Column("daily_cost_nanos", sa.BigInteger, nullable=True),
        sa.Column("monthly_tokens", sa.BigInteger, nullable=True),
        sa.Column("monthly_cost_nanos", sa.BigInteger, nullable=True),
        sa.Column("allowed_models", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_limits"),
    )


def downgrade() -> None:
    op.drop_table("user_limits")
    op.drop_table("budget_reservations")
    for table in ("messages", "model_calls"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("cost_nanos")
            batch.drop_column("billed_tokens")
