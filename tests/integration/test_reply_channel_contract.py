"""The ReplyChannel contract, one suite for both adapters: in memory, and on Redis when
``PARLEY_TEST_REDIS_URL`` is set (CI sets it).

Each test asserts what a client that follows a reply -- or loses its connection and
comes back with the characters it has -- would notice: the text it ends up with is the
answer, nothing missing and nothing twice, and it learns when the reply has ended.
Reply ids are random, so runs against a shared Redis do not meet, and their keys are
deleted afterwards."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from adapters.streams.replies import KEY_PREFIX, MemoryReplyChannel, RedisReplyChannel
from application.ports.replies import ReplyChannel, ReplyDelta, ReplyEvent, ReplyFinished

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="PARLEY_TEST_REDIS_URL is not set")


def _new_id() -> int:
    return uuid.uuid4().int >> 80


class Adapter:
    """Makes channels of one kind (with the limits a test needs) and hands out reply
    ids, remembering them so their Redis keys can be deleted."""

    def __init__(self, redis: Redis | None) -> None:
        self.redis = redis
        self.ids: list[int] = []

    def channel(self, *, idle_seconds: float = 5.0, keep_seconds: float = 60.0) -> ReplyChannel:
        if self.redis is None:
            return MemoryReplyChannel(idle_seconds=idle_seconds, keep_seconds=keep_seconds)
        return RedisReplyChannel(self.redis, idle_seconds=idle_seconds, keep_seconds=keep_seconds)

    def reply_id(self) -> int:
        self.ids.append(_new_id())
        return self.ids[-1]


async def _delete_keys(redis: Redis, ids: list[int]) -> None:
    keys = [f"{KEY_PREFIX}{i}{suffix}" for i in ids for suffix in ("", ":cancel")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
async def adapter(request: pytest.FixtureRequest) -> AsyncIterator[Adapter]:
    if request.param == "memory":
        yield Adapter(None)
        return
    assert REDIS_URL is not None
    # As entrypoints/container.py makes it: no decode_responses, so replies are bytes.
    redis = Redis.from_url(REDIS_URL)
    made = Adapter(redis)
    try:
        yield made
    finally:
        await _delete_keys(redis, made.ids)
        await redis.aclose()


async def _publish_text(channel: ReplyChannel, reply_id: int, *parts: str) -> None:
    offset = 0
    for part in parts:
        await channel.publish(reply_id, ReplyDelta(offset=offset, text=part))
        offset += len(part)


async def _all(channel: ReplyChannel, reply_id: int, after: int = 0) -> list[ReplyEvent]:
    return [event async for event in channel.follow(reply_id, after)]


def _text(events: list[ReplyEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReplyDelta))


def _joined(events: list[ReplyEvent], after: int) -> bool:
    """Each delta starts where the client's text ends: no gap, no repeat."""
    have = after
    for event in events:
        if isinstance(event, ReplyDelta):
            if event.offset != have:
                return False
            have = event.end
    return True


async def test_a_follower_gets_the_backlog_then_live_deltas_then_the_end(
    adapter: Adapter,
) -> None:
    channel, reply = adapter.channel(), adapter.reply_id()
    await _publish_text(channel, reply, "Hel", "lo")

    events = channel.follow(reply, 0)
    assert await anext(events) == ReplyDelta(0, "Hel")
    assert await anext(events) == ReplyDelta(3, "lo")
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "nothing new was published yet"

    await channel.publish(reply, ReplyDelta(5, ", world"))
    assert await asyncio.wait_for(waiting, 2) == ReplyDelta(5, ", world")
    await channel.publish(reply, ReplyFinished())
    assert await asyncio.wait_for(anext(events), 2) == ReplyFinished()
    with pytest.raises(StopAsyncIteration):
        await anext(events)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (0, [ReplyDelta(0, "Hello, "), ReplyDelta(7, "world"), ReplyDelta(12, "!")]),
        (3, [ReplyDelta(3, "lo, "), ReplyDelta(7, "world"), ReplyDelta(12, "!")]),
        (7, [ReplyDelta(7, "world"), ReplyDelta(12, "!")]),
        (9, [ReplyDelta(9, "rld"), ReplyDelta(12, "!")]),
        (13, []),
        (50, []),
    ],
)
async def test_resuming_at_any_offset_gives_exactly_the_rest(
    adapter: Adapter, after: int, expected: list[ReplyDelta]
) -> None:
    channel, reply = adapter.channel(), adapter.reply_id()
    await _publish_text(channel, reply, "Hello, ", "world", "!")
    await channel.publish(reply, ReplyFinished())

    events = await _all(channel, reply, after)

    assert events == [*expected, ReplyFinished()]
    if after <= 13:
        assert "Hello, world!"[:after] + _text(events) == "Hello, world!"


async def test_a_client_that_drops_mid_delta_and_resumes_live_loses_nothing(
    adapter: Adapter,
) -> None:
    channel, reply = adapter.channel(), adapter.reply_id()
    await _publish_text(channel, reply, "The quick ", "brown")

    # The client showed "The quick br" (it had only part of the second delta) and left.
    first = channel.follow(reply, 0)
    assert await anext(first) == ReplyDelta(0, "The quick ")
    shown = "The quick " + "br"

    resumed = channel.follow(reply, len(shown))
    assert await anext(resumed) == ReplyDelta(12, "own")
    rest = asyncio.ensure_future(_drain(resumed))
    await asyncio.sleep(0.05)
    await channel.publish(reply, ReplyDelta(15, " fox"))
    await channel.publish(reply, ReplyFinished())
    tail = await asyncio.wait_for(rest, 2)

    assert tail == [ReplyDelta(15, " fox"), ReplyFinished()]
    assert shown + "own" + _text(tail) == "The quick brown fox"
    assert [e async for e in first] == [
        ReplyDelta(10, "brown"),
        ReplyDelta(15, " fox"),
        ReplyFinished(),
    ]


async def _drain(events: AsyncIterator[ReplyEvent]) -> list[ReplyEvent]:
    return [event async for event in events]


async def test_a_follower_after_the_end_gets_the_whole_reply_and_the_end(
    adapter: Adapter,
) -> None:
    channel, reply = adapter.channel(), adapter.reply_id()
    await _publish_text(channel, reply, "a", "bc", "def")
    await channel.publish(reply, ReplyFinished())

    started = time.monotonic()
    events = await _all(channel, reply)

    assert events == [
        ReplyDelta(0, "a"),
        ReplyDelta(1, "bc"),
        ReplyDelta(3, "def"),
        ReplyFinished(),
    ]
    assert time.monotonic() - started < 1, "a finished reply is not waited on"


async def test_a_long_answer_of_many_small_deltas_arrives_whole(adapter: Adapter) -> None:
    # More deltas than the Redis variant reads at a time (a token each, as models send).
    channel, reply = adapter.channel(), adapter.reply_id()
    parts = [f"t{i} " for i in range(1_200)]
    full = "".join(parts)
    await _publish_text(channel, reply, *parts)
    await channel.publish(reply, ReplyFinished())

    for after in (0, len(full) // 2 + 1, len(full) - 1):
        events = await _all(channel, reply, after)
        assert events[-1] == ReplyFinished()
        assert _joined(events, after)
        assert full[:after] + _text(events) == full


async def test_an_unknown_reply_is_an_empty_stream_at_once(adapter: Adapter) -> None:
    channel = adapter.channel(idle_seconds=5)

    started = time.monotonic()
    assert await _all(channel, adapter.reply_id()) == []
    assert await _all(channel, adapter.reply_id(), 10) == []
    assert time.monotonic() - started < 1


async def test_a_silent_writer_ends_the_follow_without_the_end(adapter: Adapter) -> None:
    channel, reply = adapter.channel(idle_seconds=0.3), adapter.reply_id()
    await _publish_text(channel, reply, "half an ans")

    started = time.monotonic()
    events = await _all(channel, reply)
    waited = time.monotonic() - started

    assert events == [ReplyDelta(0, "half an ans")]
    assert 0.25 <= waited < 2


async def test_the_idle_limit_counts_from_the_last_delta(adapter: Adapter) -> None:
    channel, reply = adapter.channel(idle_seconds=0.4), adapter.reply_id()
    await _publish_text(channel, reply, "a")
    following = asyncio.ensure_future(_all(channel, reply))

    # Longer in all than the idle limit, but never silent that long.
    for offset, part in enumerate("bcd", start=1):
        await asyncio.sleep(0.2)
        await channel.publish(reply, ReplyDelta(offset, part))
    await channel.publish(reply, ReplyFinished())

    events = await asyncio.wait_for(following, 3)
    assert _text(events) == "abcd"
    assert events[-1] == ReplyFinished()


async def test_many_followers_at_once_each_see_every_event(adapter: Adapter) -> None:
    channel, reply = adapter.channel(), adapter.reply_id()
    parts = [f"w{i} " for i in range(30)]
    await _publish_text(channel, reply, parts[0])
    full = "".join(parts)

    afters = [0, 0, 0, 1, 2, 3, 7, 20]
    followers = [asyncio.ensure_future(_all(channel, reply, after)) for after in afters]
    await asyncio.sleep(0.05)
    offset = len(parts[0])
    for part in parts[1:]:
        await channel.publish(reply, ReplyDelta(offset, part))
        offset += len(part)
        await asyncio.sleep(0)
    await channel.publish(reply, ReplyFinished())

    results = await asyncio.wait_for(asyncio.gather(*followers), 5)
    for after, events in zip(afters, results, strict=True):
        assert events[-1] == ReplyFinished()
        assert _joined(events, after)
        assert full[:after] + _text(events) == full


async def test_cancel_reaches_only_its_own_reply(adapter: Adapter) -> None:
    channel = adapter.channel()
    live, other, not_started = adapter.reply_id(), adapter.reply_id(), adapter.reply_id()
    await _publish_text(channel, live, "x")
    await _publish_text(channel, other, "y")

    assert not await channel.cancel_requested(live)
    await channel.request_cancel(live)
    await channel.request_cancel(not_started)  # stop pressed before the first token

    assert await channel.cancel_requested(live)
    assert not await channel.cancel_requested(other)
    await _publish_text(channel, not_started, "z")
    assert await channel.cancel_requested(not_started)
    await channel.request_cancel(live)  # twice is the same as once
    assert await channel.cancel_requested(live)


async def test_a_finished_reply_is_forgotten_after_keep_seconds(adapter: Adapter) -> None:
    channel, reply = adapter.channel(keep_seconds=0.2), adapter.reply_id()
    await _publish_text(channel, reply, "done")
    await channel.request_cancel(reply)
    await channel.publish(reply, ReplyFinished())
    assert await _all(channel, reply) == [ReplyDelta(0, "done"), ReplyFinished()]

    await asyncio.sleep(0.4)

    assert await _all(channel, reply) == [], "the database has it now"
    assert not await channel.cancel_requested(reply)


async def test_text_that_does_not_join_what_the_client_has_is_not_sent(
    adapter: Adapter,
) -> None:
    # The channel holds only the end of an answer (its start was forgotten).
    channel, reply = adapter.channel(), adapter.reply_id()
    await channel.publish(reply, ReplyDelta(5, "world"))
    await channel.publish(reply, ReplyFinished())

    assert await _all(channel, reply, 0) == []
    assert await _all(channel, reply, 7) == [ReplyDelta(7, "rld"), ReplyFinished()]


async def test_memory_drops_a_reply_whose_writer_went_silent() -> None:
    channel = MemoryReplyChannel(idle_seconds=0.05, keep_seconds=0.05)
    abandoned = _new_id()
    await channel.publish(abandoned, ReplyDelta(0, "never finished"))
    await asyncio.sleep(0.15)

    # Many replies later the abandoned one is gone rather than held for ever.
    for reply in range(1_000):
        await channel.publish(reply, ReplyDelta(0, "x"))

    assert await _all(channel, abandoned) == []


async def test_memory_looks_for_abandoned_replies_less_often_the_more_it_holds() -> None:
    """Finished replies are held for their keep time (600 s by default: ~150,000 of them
    at a busy server's rate); looking through all of them on every new reply made each
    publish cost O(held), the server O(n^2)."""
    channel = MemoryReplyChannel()
    looks: list[int] = []
    # The cost is what is under test, and nothing public shows it: the look is counted.
    drop = channel._drop_abandoned  # noqa: SLF001

    def counted(now: float) -> None:
        looks.append(len(channel._replies))  # noqa: SLF001
        drop(now)

    channel._drop_abandoned = counted  # type: ignore[method-assign]  # noqa: SLF001
    for reply in range(20_000):
        await channel.publish(reply, ReplyDelta(0, "x"))
        await channel.publish(reply, ReplyFinished())

    assert len(looks) <= 8, looks[:20]  # at 1,000, 2,000, 4,000, ... held: amortised O(1)
    assert await _all(channel, 19_999) == [ReplyDelta(0, "x"), ReplyFinished()]


async def test_memory_a_waiting_follower_has_each_delta_before_the_writer_reads_on() -> None:
    """A writer reading a burst it has already received never suspends between deltas:
    followers must still get each one as it is published, not after the whole reply
    (and its storing) -- the first token's time."""
    channel = MemoryReplyChannel()
    reply = _new_id()
    await channel.publish(reply, ReplyDelta(0, ""))
    received: list[ReplyEvent] = []

    async def follow() -> None:
        async for event in channel.follow(reply, 0):
            received.append(event)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.01)  # it waits for the first text
    seen_by_then = []
    for n, text in enumerate(["a", "b", "c"]):
        await channel.publish(reply, ReplyDelta(n, text))
        seen_by_then.append(len(received))
    await channel.publish(reply, ReplyFinished())
    await follower

    assert seen_by_then == [1, 2, 3]  # each one as it is published
    assert received[-1] == ReplyFinished()


@st.composite
def _split_text(draw: st.DrawFn) -> tuple[list[str], int]:
    text = draw(st.text(max_size=30))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8)))
    bounds = [0, *cuts, len(text)]
    parts = [text[a:b] for a, b in itertools.pairwise(bounds)]
    return parts, draw(st.integers(0, len(text)))


@given(split=_split_text())
@settings(max_examples=50, deadline=None, database=None)
def test_memory_any_split_and_any_resume_offset_give_the_text(
    split: tuple[list[str], int],
) -> None:
    parts, after = split
    text = "".join(parts)

    async def resume() -> list[ReplyEvent]:
        channel = MemoryReplyChannel(idle_seconds=1)
        reply = _new_id()
        await _publish_text(channel, reply, *parts)
        await channel.publish(reply, ReplyFinished())
        return await _all(channel, reply, after)

    events = asyncio.run(resume())
    assert events[-1] == ReplyFinished()
    assert _joined(events, after)
    assert text[:after] + _text(events) == text


@needs_redis
@pytest.mark.parametrize(
    "follower_client",
    [{}, {"decode_responses": True}, {"protocol": 3}],
    ids=["bytes", "decoded", "resp3"],
)
async def test_redis_a_follower_on_another_worker_sees_the_writer(
    follower_client: dict[str, Any],
) -> None:
    assert REDIS_URL is not None
    writer_redis = Redis.from_url(REDIS_URL)
    # The other worker's client may be set up otherwise (str replies, RESP3's shapes).
    follower_redis = Redis.from_url(REDIS_URL, **follower_client)
    reply = _new_id()
    try:
        writer = RedisReplyChannel(writer_redis)
        follower = RedisReplyChannel(follower_redis)
        await _publish_text(writer, reply, "Grüße, ")
        following = asyncio.ensure_future(_all(follower, reply, 2))
        await asyncio.sleep(0.05)
        await writer.publish(reply, ReplyDelta(7, "🌍"))
        await writer.publish(reply, ReplyFinished())

        events = await asyncio.wait_for(following, 3)
        assert events == [ReplyDelta(2, "üße, "), ReplyDelta(7, "🌍"), ReplyFinished()]

        await follower.request_cancel(reply)
        assert await writer.cancel_requested(reply)
    finally:
        await _delete_keys(writer_redis, [reply])
        await writer_redis.aclose()
        await follower_redis.aclose()


@needs_redis
async def test_redis_expiry_follows_the_reply() -> None:
    assert REDIS_URL is not None
    redis = Redis.from_url(REDIS_URL)
    reply = _new_id()
    key = f"{KEY_PREFIX}{reply}"
    try:
        channel = RedisReplyChannel(redis, keep_seconds=60, live_ttl_seconds=600)
        await channel.request_cancel(reply)
        await _publish_text(channel, reply, "live")
        assert 590_000 < await redis.pttl(key) <= 600_000, "a dead writer's stream vanishes"
        assert 590_000 < await redis.pttl(f"{key}:cancel") <= 600_000

        await channel.publish(reply, ReplyFinished())
        assert 50_000 < await redis.pttl(key) <= 60_000
        assert 50_000 < await redis.pttl(f"{key}:cancel") <= 60_000
    finally:
        await _delete_keys(redis, [reply])
        await redis.aclose()
