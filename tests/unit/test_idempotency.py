"""Idempotency keys held by leases: a key outlives its request only while the request's
process is alive to renew it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from application.idempotency import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyWait,
    IdempotentRequests,
)
from application.ports import KeyHold
from tests.unit.in_memory import FakeClock, FakeIdempotencyStore

ALICE = 1
ANSWER = '{"status_code": 201, "body": {"ai_message": "hi"}}'
# Duplicates give up waiting at once; renewals come quickly in real time.
WAIT = IdempotencyWait(seconds=0.0, poll_seconds=0.0, lease_seconds=15, renew_seconds=0.01)


@pytest.fixture
def store() -> FakeIdempotencyStore:
    return FakeIdempotencyStore()


@pytest.fixture
def keys(store: FakeIdempotencyStore, clock: FakeClock) -> IdempotentRequests:
    return IdempotentRequests(store, clock, WAIT)


async def test_the_first_request_holds_the_key_and_its_answer_is_replayed(
    keys: IdempotentRequests,
) -> None:
    hold = await keys.reserve(ALICE, "k", "body")
    assert isinstance(hold, KeyHold)
    await keys.complete(hold, ANSWER)
    assert await keys.reserve(ALICE, "k", "body") == ANSWER


async def test_a_duplicate_of_a_running_request_gets_409_with_retry_after(
    keys: IdempotentRequests,
) -> None:
    assert isinstance(await keys.reserve(ALICE, "k", "body"), KeyHold)
    with pytest.raises(IdempotencyInProgress) as refused:
        await keys.reserve(ALICE, "k", "body")
    assert refused.value.retry_after == WAIT.lease_seconds


async def test_a_key_whose_holder_died_is_taken_over_once_its_lease_ends(
    keys: IdempotentRequests, clock: FakeClock
) -> None:
    dead = await keys.reserve(ALICE, "k", "body")  # its process dies: no renewal, no answer
    assert isinstance(dead, KeyHold)
    clock.advance(seconds=WAIT.lease_seconds + 1)
    retry = await keys.reserve(ALICE, "k", "body")
    assert isinstance(retry, KeyHold)
    # Of several retries arriving together, one runs the turn; the others wait for it.
    with pytest.raises(IdempotencyInProgress):
        await keys.reserve(ALICE, "k", "body")
    await keys.complete(retry, ANSWER)
    assert await keys.reserve(ALICE, "k", "body") == ANSWER


async def test_a_lapsed_key_is_not_taken_over_for_a_different_request(
    keys: IdempotentRequests, clock: FakeClock
) -> None:
    await keys.reserve(ALICE, "k", "body")
    clock.advance(seconds=WAIT.lease_seconds + 1)
    with pytest.raises(IdempotencyKeyReused):
        await keys.reserve(ALICE, "k", "another body")


async def test_a_live_request_keeps_its_key_however_long_it_runs(
    keys: IdempotentRequests, clock: FakeClock
) -> None:
    hold = await keys.reserve(ALICE, "k", "body")
    assert isinstance(hold, KeyHold)
    async with keys.holding(hold):
        for _ in range(4):  # a minute of a slow model, in steps shorter than a lease
            clock.advance(seconds=WAIT.lease_seconds - 1)
            await asyncio.sleep(WAIT.renew_seconds * 5)
            with pytest.raises(IdempotencyInProgress):
                await keys.reserve(ALICE, "k", "body")
        await keys.complete(hold, ANSWER)
    assert await keys.reserve(ALICE, "k", "body") == ANSWER


async def test_a_request_that_lost_its_key_stores_nothing_over_the_one_that_took_it(
    keys: IdempotentRequests, clock: FakeClock
) -> None:
    stalled = await keys.reserve(ALICE, "k", "body")
    clock.advance(seconds=WAIT.lease_seconds + 1)
    retry = await keys.reserve(ALICE, "k", "body")
    assert isinstance(stalled, KeyHold)
    assert isinstance(retry, KeyHold)
    await keys.complete(stalled, '{"status_code": 502}')
    await keys.release(stalled)
    await keys.complete(retry, ANSWER)
    assert await keys.reserve(ALICE, "k", "body") == ANSWER


async def test_keys_are_forgotten_after_a_day(keys: IdempotentRequests, clock: FakeClock) -> None:
    hold = await keys.reserve(ALICE, "k", "body")
    assert isinstance(hold, KeyHold)
    await keys.complete(hold, ANSWER)
    clock.advance(timedelta(hours=24, seconds=1))
    assert isinstance(await keys.reserve(ALICE, "k", "another body"), KeyHold)
