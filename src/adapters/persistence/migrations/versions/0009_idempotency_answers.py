"""An idempotency key keeps its first answer as one opaque ``answer`` string.

Before, the table held an HTTP status and body, which made the core's store port speak
HTTP. Now the entry point records what it needs to replay (the HTTP edge: the status and
the JSON body, as a JSON object) and the core keeps it as given. Answers kept before
this are carried over in the same form, so a retry within their 24 hours still replays.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The JSON object the HTTP edge records (entrypoints.http.idempotency.RecordedResponse),
# built in SQL: the body is JSON already and is embedded as it is.
_TO_ANSWERS = {
    "postgresql": "UPDATE idempotency_keys SET answer = json_build_object("
    "'status_code', status_code, 'body', response_body::json)::text"
    " WHERE status_code IS NOT NULL",
    "sqlite": "UPDATE idempotency_keys SET answer = json_object("
    "'status_code', status_code, 'body', json(response_body))"
    " WHERE status_code IS NOT NULL",
}
_FROM_ANSWERS = {
    "postgresql": "UPDATE idempotency_keys SET"
    " status_code = (answer::json ->> 'status_code')::integer,"
    " response_body = (answer::json -> 'body')::text WHERE answer IS NOT NULL",
    "sqlite": "UPDATE idempotency_keys SET status_code = json_extract(answer, '$.status_code'),"
    " response_body = json_extract(answer, '$.body') WHERE answer IS NOT NULL",
}


# Plain ALTER TABLE on both databases (no batch copy on SQLite), as in 0006.
def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("answer", sa.Text(), nullable=True))
    op.execute(_TO_ANSWERS[op.get_bind().dialect.name])
    for column in ("response_body", "status_code"):
        op.drop_column("idempotency_keys", column)


def downgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("status_code", sa.Integer(), nullable=True))
    op.add_column("idempotency_keys", sa.Column("response_body", sa.Text(), nullable=True))
    op.execute(_FROM_ANSWERS[op.get_bind().dialect.name])
    op.drop_column("idempotency_keys", "answer")
