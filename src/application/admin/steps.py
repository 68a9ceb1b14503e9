"""Steps the admin use cases share: filters, lookups and the audit entry."""

from __future__ import annotations

from application.admin_ports import (
    AdminUnitOfWork,
    AuditRecord,
    AuditValue,
    OwnedConversation,
)
from application.ports import Clock
from domain.conversation import Conversation, ConversationStatus
from domain.errors import NotFound
from domain.monitoring import (
    AuditAction,
)
from domain.users import User

IDS = range(1, 2**31)


def existing_id(object_id: int, what: str) -> int:
    if object_id not in IDS:
        raise NotFound(f"{what} not found.")
    return object_id


class UnknownUser(Exception):
    """A username filter naming nobody: the answer is an empty page."""


async def owner_id_of(uow: AdminUnitOfWork, username: str | None) -> int | None:
    if username is None:
        return None
    user = await uow.users.by_username(username)
    if user is None:
        raise UnknownUser()
    return user.id


async def audit(
    uow: AdminUnitOfWork,
    clock: Clock,
    actor: User,
    action: AuditAction,
    target_type: str,
    target_id: int,
    **details: AuditValue,
) -> None:
    await uow.audit.record(
        AuditRecord(
            actor_id=actor.id,
            actor_username=actor.username,
            action=action.value,
            target_type=target_type,
            target_id=target_id,
            created_at=clock.now(),
            details=details,
        )
    )


async def owned_conversation(uow: AdminUnitOfWork, conversation_id: int) -> OwnedConversation:
    found = await uow.admin.conversation(existing_id(conversation_id, "Conversation"))
    if found is None:
        raise NotFound("Conversation not found.")
    return found


async def audit_status_change(
    uow: AdminUnitOfWork,
    clock: Clock,
    actor: User,
    action: AuditAction,
    conversation: Conversation,
    before: ConversationStatus,
) -> None:
    """Audit an admin's close or reopen, with the status before and after (the same when
    the action changed nothing: it is idempotent, and still audited)."""
    await audit(
        uow,
        clock,
        actor,
        action,
        "conversation",
        conversation.id,
        owner_id=conversation.owner_id,
        status_before=before.value,
        status_after=conversation.status.value,
    )
