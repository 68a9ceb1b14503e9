"""Which earlier messages the model gets to see."""

from __future__ import annotations

from collections.abc import Sequence

from domain.conversation import Message


def fit_history(messages: Sequence[Message], max_chars: int) -> list[Message]:
    """Keep the newest messages whose contents fit in ``max_chars``, oldest first.

    ``messages`` is in chronological order. The newest message is always kept, even when
    it alone exceeds the budget: it is what the user just asked. Failed replies are skipped.
    """
    usable = [m for m in messages if m.counts_as_history]
    kept: list[Message] = []
    used = 0
    for message in reversed(usable):
        used += len(message.content)
        if kept and used > max_chars:
            break
        kept.append(message)
    kept.reverse()
    return kept
