"""The fakes keep the promises of the ports the other tests rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.conversation import ConversationStatus
from domain.users import NewUser
from tests.unit.in_memory import EPOCH, FakeClock, FakeUnitOfWork


def _user(name: str) -> NewUser:
    return NewUser(username=name, email=f"{name}@example.com", password_hash="x", date_joined=EPOCH)


async def test_uncommitted_work_is_rolled_back(uow: FakeUnitOfWork) -> None:
    async with uow:
        await uow.users.add(_user("alice"))

    assert uow.state.users == {}
    assert uow.commits == 0


async def test_committed_work_survives_an_exception_raised_after_commit(
    uow: FakeUnitOfWork,
) -> None:
    async def commit_then_fail() -> None:
        async with uow:
            await uow.users.add(_user("alice"))
            await uow.commit()
            await uow.users.add(_user("bob"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await commit_then_fail()

    assert [u.username for u in uow.state.users.values()] == ["alice"]
    assert uow.commits == 1


async def test_entities_are_copies_so_unsaved_changes_are_not_stored(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    conversation = uow.seed_conversation(owner_id=1)
    async with uow:
        loaded = await uow.conversations.get_owned(conversation.id, 1)
        assert loaded is not None
        loaded.close(clock.advance(minutes=1))
        await uow.commit()

    assert uow.state.conversations[conversation.id].status is ConversationStatus.ACTIVE


async def test_committed_view_hides_the_open_transaction(uow: FakeUnitOfWork) -> None:
    async with uow:
        await uow.users.add(_user("alice"))
        assert uow.committed.users == {}
        assert len(uow.state.users) == 1


async def test_repositories_refuse_use_outside_a_transaction(uow: FakeUnitOfWork) -> None:
    with pytest.raises(RuntimeError):
        await uow.users.get(1)


def test_clock_is_utc_aware_and_only_moves_when_told() -> None:
    clock = FakeClock()
    first = clock.now()
    assert first.tzinfo is not None
    assert first.utcoffset() == timedelta(0)
    assert clock.now() == first
    assert clock.advance(seconds=30) == first + timedelta(seconds=30)
    clock.set(datetime(2030, 5, 1, tzinfo=UTC))
    assert clock.now() == datetime(2030, 5, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2030, 5, 1))  # noqa: DTZ001 (the naive datetime it refuses)
