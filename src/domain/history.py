"""Which earlier messages the model gets to see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from domain.conversation import EarlierMessage, MessageRole, MessageStatus, NewMessage

# The new message is a NewMessage; the ones before it were read as EarlierMessage.
HistoryMessage = NewMessage | EarlierMessage
M = TypeVar("M", bound=HistoryMessage)


def fit_history(messages: Sequence[M], max_chars: int) -> list[M]:
    """Keep the newest messages whose contents fit in ``max_chars``, oldest first.

    ``messages`` is in chronological order. The newest message is always kept, even when
    it alone exceeds the budget: it is what the user just asked. Failed, blocked and empty
    replies are skipped, and so is a prompt whose answer was blocked: sent again, it would
    get every later turn blocked too.
    """
    usable = [
        message
        for message, answer in zip(messages, [*messages[1:], None], strict=False)
        if message.counts_as_history and not _blocked_prompt(message, answer)
    ]
    kept: list[M] = []
    used = 0
    for message in reversed(usable):
        used += len(message.content)
        if kept and used > max_chars:
            break
        kept.append(message)
    kept.reverse()
    return kept


def _blocked_prompt(message: HistoryMessage, answer: HistoryMessage | None) -> bool:
    return (
        message.role is MessageRole.USER
        and answer is not None
        and answer.status is MessageStatus.BLOCKED
    )
