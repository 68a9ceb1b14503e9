"""Branches: a turn on an earlier message (regenerate a reply, edit a message of the
user's) starts a new branch beside the old one, which stays."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.conversation import Message, MessageRole
from domain.errors import DomainError, InvalidInput


class ReplyInProgress(DomainError):
    code = "reply_in_progress"
    default_message = (
        "This reply is still being written; stop it or wait for it before regenerating it."
    )


class RewriteKind(StrEnum):
    REGENERATE = "regenerate"
    EDIT = "edit"


@dataclass(frozen=True, kw_only=True)
class Rewrite:
    """A turn on ``message_id`` rather than after the conversation's newest message:
    regenerate that reply (a new sibling reply to the same question), or edit that user
    message (a new sibling message with the turn's text, and its reply)."""

    kind: RewriteKind
    message_id: int

    def branch_point(self, target: Message) -> int | None:
        """Where the new branch leaves the tree: the target's parent, whose path from the
        first message is all the model sees. Only an assistant reply that has ended can
        be regenerated (one being written is 409 ``reply_in_progress``); only a message
        the user wrote can be edited."""
        if self.kind is RewriteKind.REGENERATE:
            if target.role is not MessageRole.ASSISTANT or target.parent_id is None:
                raise InvalidInput(
                    {"message_id": ["Only a reply can be regenerated; edit your message instead."]}
                )
            if not target.status.is_final:
                raise ReplyInProgress()
        elif target.role is not MessageRole.USER:
            raise InvalidInput(
                {"message_id": ["Only a message you wrote can be edited; regenerate a reply."]}
            )
        return target.parent_id
