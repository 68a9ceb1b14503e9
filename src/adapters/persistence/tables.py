"""The schema, as SQLAlchemy Core tables. Domain objects are mapped to and from rows
explicitly in the repositories, so the domain never imports the ORM."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware UTC datetimes (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("email", String(254), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("is_staff", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("date_joined", UtcDateTime, nullable=False),
    # Tokens and sessions issued before this instant no longer authenticate
    # ("log out everywhere"); NULL means none has been revoked that way.
    Column("credentials_valid_after", UtcDateTime, nullable=True),
    # Kept exact by database triggers (migration 0005); never written by Parley.
    Column("conversation_count", Integer, nullable=False, server_default="0"),
    # The username as the rules compare them (domain.users.username_key): unique.
    Column("username_key", String(160), nullable=True),
    Index("ix_users_username_key", "username_key", unique=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False, default=""),
    Column("model", String(100), nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Kept exact by database triggers (migration 0005); never written by Parley.
    Column("message_count", Integer, nullable=False, server_default="0"),
    # The current branch may be shorter than message_count (migration 0013): once a
    # message was regenerated or edited, a list's total is counted, not stored.
    Column("branched", Boolean, nullable=False, server_default=text("false")),
    Column("archived_at", UtcDateTime, nullable=True),
    Column("pinned_at", UtcDateTime, nullable=True),
    Index("ix_conversations_owner_id_id", "owner_id", "id"),
    Index("ix_conversations_owner_id_status", "owner_id", "status"),
    # Ids are never handed out twice, deleted ones neither (migration 0014): a reply's id
    # names its stream and cancel URLs and the text the reply channel still keeps.
    sqlite_autoincrement=True,
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "conversation_id",
        Integer,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("model", String(100), nullable=True),
    Column("provider", String(50), nullable=True),
    Column("image_url", Text, nullable=True),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("finish_reason", String(50), nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("error_code", String(50), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reasoning", Text, nullable=True),
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),
    Column("error_message", String(500), nullable=True),
    Column("image_data", Text, nullable=True),
    # Until when the worker writing a ``streaming`` reply holds it (migration 0010); it
    # renews the lease, so a reply whose lease ended belongs to a process that died.
    Column("lease_until", UtcDateTime, nullable=True),
    # What the reply counts against its owner's budget (migration 0012), summed in SQL.
    Column("billed_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost_nanos", BigInteger, nullable=False, server_default="0"),
    # The message this one answers or follows (NULL: a first message), and whether it is
    # on the conversation's current branch (migration 0013).
    Column("parent_id", Integer, nullable=True),
    Column("on_branch", Boolean, nullable=False, server_default=text("true")),
    Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    Index("ix_messages_parent_id", "parent_id"),
    Index(
        "ix_messages_streaming",
        "lease_until",
        sqlite_where=text("status = 'streaming'"),
        postgresql_where=text("status = 'streaming'"),
    ),
    sqlite_autoincrement=True,  # as conversations
)

# Model calls no conversation keeps (the OpenAI-compatible endpoint's stateless calls,
# migration 0011): counted in usage beside the replies in ``messages``; no text.
model_calls = Table(
    "model_calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("model", String(100), nullable=False),
    Column("provider", String(50), nullable=True),
    Column("status", String(16), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("reasoning_tokens", Integer, nullable=False),
    Column("finish_reason", String(50), nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error_code", String(50), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("billed_tokens", BigInteger, nullable=False, server_default="0"),
    Column("cost_nanos", BigInteger, nullable=False, server_default="0"),
    Index("ix_model_calls_created_at", "created_at"),
    Index("ix_model_calls_user_id_created_at", "user_id", "created_at"),
)

# ---- budgets (migration 0012) -----------------------------------------------------------
# What calls in flight hold of their users' budgets, each leased by the process making
# the call (it renews the lease); one whose lease ended belongs to a process that died.
budget_reservations = Table(
    "budget_reservations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime, nullable=False),
    Index("ix_budget_reservations_user_id_lease_until", "user_id", "lease_until"),
    Index("ix_budget_reservations_lease_until", "lease_until"),
    # A reservation is released and renewed by id, also by a process whose lease ended:
    # that id must not have become another call's.
    sqlite_autoincrement=True,
)

# An admin's limits for one user; NULL limits are "no limit", ``has_budget`` false and
# NULL ``allowed_models`` (a JSON list) are "the default".
user_limits = Table(
    "user_limits",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("has_budget", Boolean, nullable=False),
    Column("daily_tokens", BigInteger, nullable=True),
    Column("daily_cost_nanos", BigInteger, nullable=True),
    Column("monthly_tokens", BigInteger, nullable=True),
    Column("monthly_cost_nanos", BigInteger, nullable=True),
    Column("allowed_models", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

chat_settings = Table(
    "chat_settings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("ai_model", String(100), nullable=False),
    Column("temperature", Float, nullable=False),
    Column("max_tokens", Integer, nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("family_id", String(64), nullable=False, index=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_digest", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_api_tokens_user_id", "user_id"),
)

external_identities = Table(
    "external_identities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("provider", "subject", name="uq_external_identities_provider_subject"),
    Index("ix_external_identities_user_id", "user_id"),
)

# ---- admin monitoring (migration 0003) ------------------------------------------------------
# Filters of the admin API, each backed by an index. Keyword search has its own
# dialect-specific index (adapters/persistence/search.py), outside this metadata.
Index("ix_conversations_status_id", conversations.c.status, conversations.c.id)
Index("ix_messages_created_at", messages.c.created_at)
Index("ix_messages_model_created_at", messages.c.model, messages.c.created_at)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    # The actor's name is kept too, so an entry still says who even if the account goes.
    Column("actor_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("actor_username", String(150), nullable=False),
    Column("action", String(50), nullable=False),
    Column("target_type", String(30), nullable=False),
    Column("target_id", Integer, nullable=True),
    Column("details", Text, nullable=False, default="{}"),  # a JSON object
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_audit_log_actor_username_id", "actor_username", "id"),
    Index("ix_audit_log_action_id", "action", "id"),
    Index("ix_audit_log_target_type_target_id_id", "target_type", "target_id", "id"),
)

# ---- idempotent requests (migration 0004) ---------------------------------------------------
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    # The first answer as the entry point recorded it (migration 0009); NULL while the
    # first request is still being answered.
    Column("answer", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # The request holding the key while it runs, and until when (migration 0007): it
    # renews the lease; a key whose lease ended with no answer belongs to a dead process.
    Column("holder", String(32), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
)
