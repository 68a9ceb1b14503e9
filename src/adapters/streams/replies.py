"""Where a reply's text travels while the model writes it: in this process, or in Redis
shared by all of them.

Both keep, per reply, the deltas in the order they were published and whether the reply
has finished; a follower reads what is there, then waits for more. Neither keeps a reply
for long, since the database has it once it ends: a finished reply stays ``keep_seconds``
(so a client that reconnects just after the end still gets it from here), a live one
only while its writer keeps publishing. The memory variant serves one process; the Redis
variant, a stream per reply, lets a client on any worker follow a reply that another
worker writes, and a cancel requested on one worker reach the writer on another.

What a follower gets is cut from the stored deltas by one rule for both
(``_from_offset``), so a client that reconnects with the ``n`` characters it has gets
exactly the rest: nothing twice, and never text that does not join what it has."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from application.ports.replies import ReplyDelta, ReplyEvent, ReplyFinished

KEY_PREFIX = "parley:reply:"
CANCEL_SUFFIX = ":cancel"
# Replies held (the memory variant's) at which abandoned ones are first looked for.
_PRUNE_AT = 1_000
# XREAD BLOCK waits at most this long at a time, so the idle limit is kept to the second
# without one long command holding a connection.
_BLOCK_MS = 1_000
# Entries read per XRANGE / XREAD: a long answer is thousands of them.
_PAGE = 500


async def _from_offset(
    events: AsyncGenerator[ReplyEvent, None], after: int
) -> AsyncIterator[ReplyEvent]:
    """``events`` (all of a reply's, from its first delta) as a follower that has the
    first ``after`` characters must get them: deltas it has already are skipped, the one
    it has part of is cut to start exactly at ``after``.

    If the next delta starts beyond what the follower has, the channel no longer holds
    the text between (the reply was forgotten while its writer still wrote, or the
    writer skipped some): the follow stops there, as for an unknown reply, and the
    caller reads the database, rather than hand the client text with a hole in it."""
    sent = max(after, 0)
    async with aclosing(events):
        async for event in events:
            if isinstance(event, ReplyFinished):
                yield event
                return
            if event.end <= sent:
                continue
            if event.offset > sent:
                return
            if event.offset < sent:
                event = ReplyDelta(offset=sent, text=event.text[sent - event.offset :])
            yield event
            sent = event.end


@dataclass(eq=False)
class _Reply:
    deltas: list[ReplyDelta] = field(default_factory=list)
    finished: bool = False
    cancelled: bool = False
    last_published: float = field(default_factory=time.monotonic)
    # Set (and replaced by a fresh one) on every publish: whoever waits on the old one
    # wakes and reads what is new.
    published: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0  # followers waiting on ``published``

    def wake_followers(self) -> None:
        self.published.set()
        self.published = asyncio.Event()


class MemoryReplyChannel:
    """For one server process. A finished reply is forgotten ``keep_seconds`` later (a
    timer on the event loop); a live one whose writer fell silent is dropped once
    nobody can be following it any more (``idle_seconds`` + ``keep_seconds``), looked
    for when many replies are held."""

    def __init__(self, idle_seconds: float = 300.0, keep_seconds: float = 600.0) -> None:
        self._idle = idle_seconds
        self._keep = keep_seconds
        self._replies: dict[int, _Reply] = {}
        self._prune_at = _PRUNE_AT
        # Cancels of replies not published yet (stop pressed before the first token),
        # with when they lapse, oldest first; the first publish takes its reply's over.
        self._early_cancels: dict[int, float] = {}

    async def publish(self, reply_id: int, event: ReplyEvent) -> None:
        # No await in here: atomic on the event loop, as followers read without a lock.
        now = time.monotonic()
        reply = self._replies.get(reply_id)
        if reply is None:
            if len(self._replies) >= self._prune_at:
                self._drop_abandoned(now)
                # Finished replies stay until their keep time is up, so the next look
                # waits until as many again are held: O(1) per reply, however many.
                self._prune_at = max(_PRUNE_AT, 2 * len(self._replies))
            cancelled = self._early_cancels.pop(reply_id, -math.inf) > now
            reply = self._replies[reply_id] = _Reply(cancelled=cancelled)
        if reply.finished:
            return
        if isinstance(event, ReplyFinished):
            reply.finished = True
            asyncio.get_running_loop().call_later(self._keep, self._forget, reply_id, reply)
        else:
            reply.deltas.append(event)
        reply.last_published = now
        if reply.waiting:
            reply.wake_followers()
            # Let them send it before the writer reads on: a burst of deltas already
            # received is read without suspending, so they would otherwise wait for the
            # whole reply to be read and stored (~1 ms of the first token's time).
            await asyncio.sleep(0)

    def follow(self, reply_id: int, after: int) -> AsyncIterator[ReplyEvent]:
        return _from_offset(self._events(reply_id), after)

    async def request_cancel(self, reply_id: int) -> None:
        reply = self._replies.get(reply_id)
        if reply is not None:
            reply.cancelled = True
            return
        now = time.monotonic()
        while self._early_cancels:
            oldest, lapses = next(iter(self._early_cancels.items()))
            if lapses > now:
                break
            del self._early_cancels[oldest]
        # A writer that has not published within the idle limit counts as dead.
        self._early_cancels.setdefault(reply_id, now + self._idle)

    async def cancel_requested(self, reply_id: int) -> bool:
        reply = self._replies.get(reply_id)
        if reply is not None:
            return reply.cancelled
        return self._early_cancels.get(reply_id, -math.inf) > time.monotonic()

    async def _events(self, reply_id: int) -> AsyncGenerator[ReplyEvent, None]:
        reply = self._replies.get(reply_id)
        if reply is None:
            return
        seen = 0
        while True:
            # Re-read the length after each yield: publishes happen while suspended.
            while seen < len(reply.deltas):
                seen += 1
                yield reply.deltas[seen - 1]
            if reply.finished:
                yield ReplyFinished()
                return
            # Taken with no await since the checks above, so no publish slips between.
            published = reply.published
            reply.waiting += 1
            try:
                async with asyncio.timeout(self._idle):
                    await published.wait()
            except TimeoutError:
                return
            finally:
                reply.waiting -= 1

    def _forget(self, reply_id: int, reply: _Reply) -> None:
        if self._replies.get(reply_id) is reply:
            del self._replies[reply_id]

    def _drop_abandoned(self, now: float) -> None:
        silent_since = now - self._idle - self._keep
        self._replies = {
            reply_id: reply
            for reply_id, reply in self._replies.items()
            if reply.finished or reply.last_published > silent_since
        }


def _key(reply_id: int) -> str:
    return f"{KEY_PREFIX}{reply_id}"


def _milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# Any: redis-py types a reply as one of several shapes (RESP2 or RESP3, decoded or
# not); these two take whichever comes.
def _event(fields: Any) -> ReplyEvent:
    named = {_text(name): _text(value) for name, value in fields.items()}
    if named.get("f") == "1":
        return ReplyFinished()
    return ReplyDelta(offset=int(named["o"]), text=named["t"])


def _xread_entries(response: Any) -> list[Any]:
    """The entries of XREAD's answer for one stream: RESP2 gives ``[[key, entries]]``,
    RESP3 ``{key: [entries]}`` or ``{key: entries}``."""
    if not response:
        return []
    if isinstance(response, dict):
        groups = list(response.values())
    else:
        groups = [entries for _key, entries in response]
    flat: list[Any] = []
    for group in groups:
        for item in group:
            flat.extend(item if isinstance(item, list) else [item])
    return flat


class RedisReplyChannel:
    """For several worker processes: a Redis stream per reply, ``parley:reply:{id}``,
    an entry per delta (fields ``o``, its offset, and ``t``, its text) and a last one
    with ``f`` = ``1`` when the reply has finished.

    Every publish sets the stream's expiry in the same transaction as its XADD: a live
    reply expires ``live_ttl_seconds`` after its last delta, so the stream of a writer
    that died vanishes by itself; a finished one ``keep_seconds`` after it ended. A
    cancel is a key of its own, ``parley:reply:{id}:cancel``, so it can be set before
    the writer's first delta; it lives ``live_ttl_seconds``, or as long as the finished
    reply. Works with a client that decodes responses and with one that does not."""

    def __init__(
        self,
        redis: Redis,
        idle_seconds: float = 300.0,
        keep_seconds: float = 600.0,
        live_ttl_seconds: float = 3600.0,
    ) -> None:
        self._redis = redis
        self._idle = idle_seconds
        self._keep_ms = _milliseconds(keep_seconds)
        self._live_ms = _milliseconds(live_ttl_seconds)

    async def publish(self, reply_id: int, event: ReplyEvent) -> None:
        key = _key(reply_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            if isinstance(event, ReplyFinished):
                pipe.xadd(key, {"f": "1"})
                pipe.pexpire(key, self._keep_ms)
                pipe.pexpire(key + CANCEL_SUFFIX, self._keep_ms)
            else:
                pipe.xadd(key, {"o": event.offset, "t": event.text})
                pipe.pexpire(key, self._live_ms)
            await pipe.execute()

    def follow(self, reply_id: int, after: int) -> AsyncIterator[ReplyEvent]:
        return _from_offset(self._events(_key(reply_id)), after)

    async def request_cancel(self, reply_id: int) -> None:
        await self._redis.set(_key(reply_id) + CANCEL_SUFFIX, "1", px=self._live_ms)

    async def cancel_requested(self, reply_id: int) -> bool:
        return bool(await self._redis.exists(_key(reply_id) + CANCEL_SUFFIX))

    async def _events(self, key: str) -> AsyncGenerator[ReplyEvent, None]:
        # The first page of the backlog by XRANGE: an empty one means no such stream.
        # XREAD from the last entry seen then reads the rest of the backlog at once and
        # afterwards waits for new entries.
        entries: list[Any] = list(await self._redis.xrange(key, count=_PAGE) or [])
        if not entries:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._idle
        last: bytes | str = entries[-1][0]
        while True:
            for entry_id, fields in entries:
                if entry_id is None or fields is None:
                    continue
                last = entry_id
                event = _event(fields)
                yield event
                if isinstance(event, ReplyFinished):
                    return
            if entries:
                deadline = loop.time() + self._idle
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            block = min(_BLOCK_MS, _milliseconds(remaining))
            response = await self._redis.xread({key: last}, count=_PAGE, block=block)
            entries = _xread_entries(response)
