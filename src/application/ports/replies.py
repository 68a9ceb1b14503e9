"""Where a streamed reply's text goes while the model writes it, so that any client --
the one that asked, or one that reconnects, on this worker or another -- can follow it.

The text is addressed by character offsets: a delta says where in the answer it starts,
so a client that has ``n`` characters asks for what comes after ``n``. The database
keeps the whole answer once the reply has ended; the channel only carries it while it
is being written (and a little after)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ReplyDelta:
    """``text`` of the answer, starting ``offset`` characters into it."""

    offset: int
    text: str

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


@dataclass(frozen=True)
class ReplyFinished:
    """The reply has ended and is stored in its final state: read it from the database."""


ReplyEvent = ReplyDelta | ReplyFinished


class ReplyChannel(Protocol):
    """One per reply id. A channel that knows nothing of a reply (never published here,
    or forgotten since) follows it as an empty stream: the caller then reads the reply
    from the database."""

    async def publish(self, reply_id: int, event: ReplyEvent) -> None:
        """Append ``event``. Deltas come in order, each starting where the last ended; a
        ``ReplyFinished`` is the last event, after which the channel keeps the reply
        only for a while (the database has it)."""
        ...

    def follow(self, reply_id: int, after: int) -> AsyncIterator[ReplyEvent]:
        """The deltas that end after ``after`` characters, the first one cut to start
        exactly there (so nothing is sent twice), then each new one as it is
        published, then ``ReplyFinished``, and stop. Stops at once, with nothing, if the
        channel knows nothing of the reply; stops without ``ReplyFinished`` when nothing
        new was published for the channel's idle limit (its writer may have died)."""
        ...

    async def request_cancel(self, reply_id: int) -> None:
        """Ask whoever writes the reply, on any worker, to stop it."""
        ...

    async def cancel_requested(self, reply_id: int) -> bool:
        """Whether ``request_cancel`` was called for this reply."""
        ...
