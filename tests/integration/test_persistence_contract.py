"""The persistence contract: what the ports in ``application/ports.py`` promise, checked
against the in-memory fakes the unit tests trust (``tests/unit/in_memory.py``) and
against the SQL adapters on SQLite and PostgreSQL, with no HTTP in between.

Every test runs once per backend ("fake", "sqlite", "postgresql"). The SQL unit of work
is built as the composition root builds it (``entrypoints/container.py``:
``SqlUnitOfWork(create_engine(database_url, ...))``) on a database migrated once per
session; tests keep out of each other's way by creating their own users. A promise the
SQL adapter breaks is a ``xfail(strict=True)`` on the SQL backends only, naming what is
wrong, so that the fix turns it into a failure to remove the mark."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest

from adapters.persistence.database import create_engine
from adapters.persistence.idempotency import SqlIdempotencyStore
from adapters.persistence.unit_of_work import SqlUnitOfWork
from application.pagination import PageRequest
from application.ports import (
    IdempotencyStore,
    KeyHold,
    OwnerStanding,
    RefreshTokenRecord,
    SpendWindow,
    TurnContext,
    UnitOfWork,
)
from domain.budgets import Budget, Limit, PeriodSpend, Spend, UserLimits
from domain.chat_settings import ChatSettings
from domain.conversation import (
    Conversation,
    ConversationStatus,
    Message,
    MessageRole,
    MessageStatus,
    NewConversation,
    NewMessage,
)
from domain.errors import InvalidInput, UsernameTaken
from domain.model_calls import ModelCall
from domain.users import NewUser, User
from tests.integration.servers import migrate, postgres_database
from tests.unit.in_memory import FakeIdempotencyStore, FakeUnitOfWork

POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")
NO_POSTGRES = (
    "PARLEY_TEST_POSTGRES_URL is not set "
    "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test; .ci/run sets it)"
)
# Microseconds and a zone other than UTC: both must come back as the same instant.
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


def backends(*, sql_xfail: str = "", postgresql_xfail: str = "") -> list[Any]:
    """The three backends; ``*_xfail`` names a promise the SQL adapter breaks there."""

    def xfail(reason: str) -> list[pytest.MarkDecorator]:
        return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []

    return [
        "fake",
        pytest.param("sqlite", marks=xfail(sql_xfail)),
        pytest.param(
            "postgresql",
            marks=[
                *xfail(sql_xfail or postgresql_xfail),
                pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES),
            ],
        ),
    ]


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('contract') / 'parley.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    with postgres_database(POSTGRES_URL) as url:
        migrate(url)
        yield url


@pytest.fixture(params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    """The word "fake", or the URL of a migrated database (resolved here, outside the
    event loop, as migrating runs a loop of its own)."""
    name: str = request.param
    return name if name == "fake" else str(request.getfixturevalue(f"{name}_url"))


@dataclass
class Persistence:
    """One backend: units of work over one store, and its idempotency store."""

    name: str
    uow: Callable[[], UnitOfWork]
    idempotency: IdempotencyStore


@pytest.fixture
async def db(backend: str) -> AsyncIterator[Persistence]:
    if backend == "fake":
        fake = FakeUnitOfWork()
        # One FakeUnitOfWork is the whole store: every "new" unit of work is that one.
        yield Persistence("fake", lambda: fake, FakeIdempotencyStore())
        return
    # As entrypoints/container.py builds them: one engine, a new SqlUnitOfWork per use.
    engine = create_engine(backend, pool_size=2, max_overflow=2)

    def sql_uow() -> UnitOfWork:
        # A cast, as mypy finds SqlUnitOfWork no UnitOfWork: the port's repositories are
        # mutable protocol attributes, so SqlUsers must be declared Users exactly.
        return cast("UnitOfWork", SqlUnitOfWork(engine))

    try:
        yield Persistence(engine.dialect.name, sql_uow, SqlIdempotencyStore(engine))
    finally:
        await engine.dispose()


# ---- building blocks ---------------------------------------------------------------------


def new_user(name: str | None = None, **overrides: Any) -> NewUser:
    username = name or f"user_{uuid.uuid4().hex[:10]}"
    values: dict[str, Any] = {
        "username": username,
        "email": f"{username}@example.com",
        "password_hash": "argon2:opaque",
        "date_joined": T0,
    }
    return NewUser(**(values | overrides))


def new_conversation(owner_id: int, when: datetime = T0, **overrides: Any) -> NewConversation:
    values: dict[str, Any] = {
        "owner_id": owner_id,
        "title": "",
        "model": None,
        "status": ConversationStatus.ACTIVE,
        "created_at": when,
        "updated_at": when,
    }
    return NewConversation(**(values | overrides))


def new_message(conversation_id: int, content: str = "hi", **overrides: Any) -> NewMessage:
    values: dict[str, Any] = {
        "conversation_id": conversation_id,
        "role": MessageRole.USER,
        "content": content,
        "created_at": T0,
    }
    return NewMessage(**(values | overrides))


def settings_of(model: str, temperature: float = 0.7) -> ChatSettings:
    return ChatSettings(ai_model=model, temperature=temperature, max_tokens=1024)


async def a_user(db: Persistence, name: str | None = None) -> int:
    async with db.uow() as uow:
        user = await uow.users.add(new_user(name))
        await uow.commit()
    return user.id


async def a_conversation(db: Persistence, owner_id: int, **overrides: Any) -> Conversation:
    async with db.uow() as uow:
        conversation = await uow.conversations.add(new_conversation(owner_id, **overrides))
        await uow.commit()
    return conversation


async def messages_in(db: Persistence, conversation_id: int, contents: list[str]) -> list[int]:
    ids = []
    async with db.uow() as uow:
        for n, content in enumerate(contents):
            when = T0 + timedelta(seconds=n)
            message = await uow.messages.add(new_message(conversation_id, content, created_at=when))
            ids.append(message.id)
        await uow.commit()
    return ids


async def logged_in(uow: UnitOfWork, user_id: int, *families: str) -> None:
    """A login (a refresh-token family named ``<family>-<user_id>``) per family."""
    for family in families:
        await uow.refresh_tokens.add(
            RefreshTokenRecord(
                jti=f"{family}-{user_id}",
                user_id=user_id,
                family_id=f"{family}-{user_id}",
                expires_at=T0 + timedelta(days=1),
            )
        )


def ids(items: list[Any]) -> list[int]:
    return [item.id for item in items]


# ---- the unit of work ----------------------------------------------------------------------


async def test_work_not_committed_is_rolled_back(db: Persistence) -> None:
    user = new_user()
    async with db.uow() as uow:
        user = await uow.users.add(user)

    async with db.uow() as uow:
        assert await uow.users.get(user.id) is None
        assert await uow.users.by_username(user.username) is None


async def test_committed_work_is_kept(db: Persistence) -> None:
    user = new_user()
    async with db.uow() as uow:
        user = await uow.users.add(user)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.users.get(user.id) == user


async def test_an_exception_rolls_back_and_passes_through(db: Persistence) -> None:
    added: list[User] = []

    async def add_then_fail() -> None:
        async with db.uow() as uow:
            added.append(await uow.users.add(new_user()))
            raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await add_then_fail()

    async with db.uow() as uow:
        assert await uow.users.get(added[0].id) is None


async def test_work_after_a_commit_is_rolled_back_unless_committed_again(
    db: Persistence,
) -> None:
    added: list[User] = []

    async def commit_twice_then_fail() -> None:
        async with db.uow() as uow:
            added.append(await uow.users.add(new_user()))
            await uow.commit()
            added.append(await uow.users.add(new_user()))
            await uow.commit()
            added.append(await uow.users.add(new_user()))
            raise LookupError("after two commits")

    with pytest.raises(LookupError):
        await commit_twice_then_fail()

    first, second, third = added
    async with db.uow() as uow:
        assert await uow.users.by_username(first.username) == first
        assert await uow.users.by_username(second.username) == second
        assert await uow.users.by_username(third.username) is None


async def test_a_transaction_reads_its_own_uncommitted_writes(db: Persistence) -> None:
    owner = await a_user(db)
    async with db.uow() as uow:
        conversation = await uow.conversations.add(new_conversation(owner, title="draft"))
        await uow.messages.add(new_message(conversation.id, "unsaved"))

        assert await uow.conversations.get_owned(conversation.id, owner) == conversation
        assert (await uow.conversations.list_owned(owner, PageRequest())).total == 1
        page = await uow.messages.list_page(conversation.id, PageRequest())
        assert ([m.content for m in page.items], page.total) == (["unsaved"], 1)
        assert await uow.conversations.count_active_locked(owner) == 1

    async with db.uow() as uow:
        assert await uow.conversations.get_owned(conversation.id, owner) is None
        assert (await uow.conversations.list_owned(owner, PageRequest())).total == 0
        assert (await uow.messages.list_page(conversation.id, PageRequest())).total == 0


async def test_a_read_after_a_rollback_returns_what_was_committed_before(
    db: Persistence,
) -> None:
    owner = await a_user(db)
    kept = await a_conversation(db, owner, title="kept", model="m1")
    [message_id] = await messages_in(db, kept.id, ["committed"])
    async with db.uow() as uow:
        await uow.chat_settings.add(owner, settings_of("m1"))
        await uow.commit()

    later = T0 + timedelta(hours=1)
    async with db.uow() as uow:
        changed = replace(kept, title="changed", model="m2")
        changed.close(later)
        await uow.conversations.save(changed)
        await uow.messages.add(new_message(kept.id, "rolled back"))
        settings = await uow.chat_settings.for_user(owner)
        assert settings is not None
        await uow.chat_settings.save(replace(settings, settings=settings_of("m2")))
        await uow.conversations.add(new_conversation(owner))
        assert await uow.conversations.get_owned(kept.id, owner) == changed

    async with db.uow() as uow:
        assert await uow.conversations.get_owned(kept.id, owner) == kept
        assert ids(await uow.messages.all_of(kept.id)) == [message_id]
        assert (await uow.messages.list_page(kept.id, PageRequest())).total == 1
        listed = await uow.conversations.list_owned(owner, PageRequest())
        assert (listed.items, listed.total) == ([kept], 1)
        assert await uow.conversations.count_active_locked(owner) == 1
        settings = await uow.chat_settings.for_user(owner)
        assert settings is not None
        assert settings.settings.ai_model == "m1"


async def test_changes_to_objects_are_stored_only_through_the_repositories(
    db: Persistence,
) -> None:
    user = new_user()
    owner = await a_user(db)
    conversation = await a_conversation(db, owner, title="as stored")

    async with db.uow() as uow:
        user = await uow.users.add(user)
        user.email = "changed-after-add@example.com"
        loaded = await uow.conversations.get_owned(conversation.id, owner)
        assert loaded is not None
        loaded.close(T0 + timedelta(hours=1))
        loaded.title = "changed, never saved"
        await uow.commit()

    async with db.uow() as uow:
        stored = await uow.users.by_username(user.username)
        assert stored is not None
        assert stored.email == f"{user.username}@example.com"
        assert await uow.conversations.get_owned(conversation.id, owner) == conversation


async def test_the_same_unit_of_work_can_be_entered_again_for_a_new_transaction(
    db: Persistence,
) -> None:
    uow = db.uow()
    first, second = new_user(), new_user()
    async with uow:
        first = await uow.users.add(first)
        await uow.commit()
    async with uow:
        assert await uow.users.by_username(first.username) == first
        second = await uow.users.add(second)
    async with uow:
        assert await uow.users.by_username(first.username) == first
        assert await uow.users.by_username(second.username) is None


async def test_entering_a_unit_of_work_inside_its_own_transaction_is_refused(
    db: Persistence,
) -> None:
    uow = db.uow()
    async with uow:
        with pytest.raises(RuntimeError, match="already in a transaction"):
            await uow.__aenter__()
        await uow.users.add(new_user())
        await uow.commit()
    async with uow:  # the refusal left it usable
        pass


async def test_commit_outside_a_transaction_is_refused(db: Persistence) -> None:
    uow = db.uow()
    with pytest.raises(RuntimeError, match="outside a transaction"):
        await uow.commit()
    async with uow:
        pass
    with pytest.raises(RuntimeError, match="outside a transaction"):
        await uow.commit()


# ---- the row mapping: every dataclass field round-trips ------------------------------------


def assert_no_field_left_at_its_default(entity: Any, *, besides: set[str]) -> None:
    """So that a field added to the dataclass fails here until the test sets it (and so
    checks that the positional mapping in repositories.py carries it)."""
    defaults = {f.name: f.default for f in fields(entity)}
    left = [n for n, d in defaults.items() if n not in besides and getattr(entity, n) == d]
    assert not left, f"give these fields a non-default value: {left}"


async def test_every_message_field_round_trips(db: Persistence) -> None:
    owner = await a_user(db)
    conversation = await a_conversation(db, owner)
    async with db.uow() as uow:
        question = await uow.messages.add(
            NewMessage(
                conversation_id=conversation.id,
                role=MessageRole.USER,
                content="the question",
                created_at=datetime(2024, 3, 1, 19, 59, tzinfo=BEIJING),
            )
        )
        await uow.commit()
    message = NewMessage(
        conversation_id=conversation.id,
        role=MessageRole.ASSISTANT,
        content="the answer",
        created_at=datetime(2024, 3, 1, 20, 0, 0, 654321, tzinfo=BEIJING),
        status=MessageStatus.PARTIAL,
        model="model-x",
        provider="provider-y",
        image_url="https://example.com/cat.png",
        prompt_tokens=11,
        completion_tokens=22,
        finish_reason="length",
        latency_ms=333,
        error_code="upstream_timeout",
        reasoning="thinking it over",
        reasoning_tokens=5,
        error_message="The provider said: slow down.",
        image_data="data:image/png;base64,iVBORw0KGgo=",
        billed_tokens=33,
        cost_nanos=123_456_789_012,
        parent_id=question.id,
    )
    # on_branch: a message off the current branch is in no list (the branch tests).
    assert_no_field_left_at_its_default(message, besides={"id", "conversation_id", "on_branch"})
    async with db.uow() as uow:
        message = await uow.messages.add(message)
        await uow.commit()
    # Lists never load the image's data; only the history sent to the model does.
    listed = replace(message, image_data=None)
    question = replace(question, image_data=None)

    async with db.uow() as uow:
        assert (await uow.messages.latest(conversation.id, 10))[1:] == [message]
        assert await uow.messages.all_of(conversation.id) == [question, listed]
        page = PageRequest()
        assert (await uow.messages.list_page(conversation.id, page)).items == [question, listed]
        assert (await uow.messages.list_for_owner(owner, None, page)).items == [question, listed]
        assert (await uow.messages.list_for_owner(owner, conversation.id, page)).items == [
            question,
            listed,
        ]
        [_, stored] = await uow.messages.all_of(conversation.id)
    # The instant is kept (to the microsecond), whatever zone it came in.
    assert stored.created_at == datetime(2024, 3, 1, 12, 0, 0, 654321, tzinfo=UTC)


async def test_every_role_and_status_round_trips(db: Persistence) -> None:
    owner = await a_user(db)
    conversation = await a_conversation(db, owner)
    kinds = [(role, status) for role in MessageRole for status in MessageStatus]
    async with db.uow() as uow:
        for role, status in kinds:
            await uow.messages.add(new_message(conversation.id, role=role, status=status))
        await uow.commit()

    async with db.uow() as uow:
        stored = await uow.messages.all_of(conversation.id)
    assert [(m.role, m.status) for m in stored] == kinds
    assert all(type(m.role) is MessageRole and type(m.status) is MessageStatus for m in stored)


async def test_a_message_with_only_the_required_fields_round_trips(db: Persistence) -> None:
    owner = await a_user(db)
    conversation = await a_conversation(db, owner)
    message = new_message(conversation.id, "")
    async with db.uow() as uow:
        message = await uow.messages.add(message)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.messages.latest(conversation.id, 1) == [message]
        assert await uow.messages.all_of(conversation.id) == [message]


async def test_every_conversation_field_round_trips(db: Persistence) -> None:
    owner = await a_user(db)
    conversation = new_conversation(
        owner,
        title="A title, with ünïcode",
        model="model-x",
        status=ConversationStatus.CLOSED,
        created_at=datetime(2024, 3, 1, 20, 0, 0, 1, tzinfo=BEIJING),
        updated_at=T0 + timedelta(days=1),
        pinned_at=T0 + timedelta(hours=1),
    )
    # An archived conversation is out of the default list: its own tests keep it.
    assert_no_field_left_at_its_default(conversation, besides={"id", "archived_at"})
    async with db.uow() as uow:
        conversation = await uow.conversations.add(conversation)
        await uow.commit()

    async with db.uow() as uow:
        stored = await uow.conversations.get_owned(conversation.id, owner)
        with_settings = await uow.conversations.for_turn(conversation.id, owner)
        listed = await uow.conversations.list_owned(owner, PageRequest())
    assert stored == conversation
    assert with_settings == TurnContext(
        conversation=conversation,
        settings=None,
        limits=None,
        owner=IN_GOOD_STANDING,
    )
    assert listed.items == [conversation]


async def test_every_user_field_round_trips(db: Persistence) -> None:
    user = new_user(
        f"Ünï_{uuid.uuid4().hex[:8]}",
        email="someone@example.org",
        password_hash="!unusable",
        date_joined=datetime(2024, 3, 1, 20, 0, 0, 42, tzinfo=BEIJING),
        is_staff=True,
        is_active=False,
    )
    revoked_at = T0 + timedelta(days=2, microseconds=7)
    async with db.uow() as uow:
        user = await uow.users.add(user)
        await uow.users.revoke_credentials(user.id, revoked_at)
        await uow.commit()
    user.credentials_valid_after = revoked_at
    assert_no_field_left_at_its_default(user, besides={"id"})

    async with db.uow() as uow:
        assert await uow.users.get(user.id) == user
        assert await uow.users.by_username(user.username) == user
        assert await uow.users.get_with_login(user.id, "no-such-login") == (user, False)


@pytest.mark.parametrize(
    "backend",
    backends(),
    indirect=True,
)
async def test_a_new_users_credentials_valid_after_is_stored_by_add(db: Persistence) -> None:
    user = new_user(credentials_valid_after=T0 + timedelta(hours=1))
    async with db.uow() as uow:
        user = await uow.users.add(user)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.users.get(user.id) == user


# ---- ordering and pagination ---------------------------------------------------------------


async def test_conversations_are_listed_newest_first_with_the_owners_total(
    db: Persistence,
) -> None:
    owner, other = await a_user(db), await a_user(db)
    created = []
    for n in range(5):
        status = ConversationStatus.CLOSED if n == 1 else ConversationStatus.ACTIVE
        when = T0 + timedelta(minutes=n)
        created.append(await a_conversation(db, owner, status=status, created_at=when))
        await a_conversation(db, other)
    newest_first = ids(created)[::-1]

    async with db.uow() as uow:
        pages = [
            await uow.conversations.list_owned(owner, PageRequest(limit=2, offset=offset))
            for offset in (0, 2, 4, 5, 50)
        ]
        assert [ids(p.items) for p in pages] == [
            newest_first[0:2],
            newest_first[2:4],
            newest_first[4:],
            [],
            [],
        ]
        assert {p.total for p in pages} == {5}
        assert await uow.conversations.count_active_locked(owner) == 4

        await uow.conversations.delete(created[2].id)
        after_delete = await uow.conversations.list_owned(owner, PageRequest())
        assert ids(after_delete.items) == [i for i in newest_first if i != created[2].id]
        assert after_delete.total == 4
        assert (await uow.conversations.list_owned(other, PageRequest())).total == 5


async def test_an_owner_with_no_conversations_has_an_empty_first_page(db: Persistence) -> None:
    owner = await a_user(db)
    async with db.uow() as uow:
        page = await uow.conversations.list_owned(owner, PageRequest())
    assert (page.items, page.total) == ([], 0)


async def test_messages_are_listed_oldest_first_with_the_conversations_total(
    db: Persistence,
) -> None:
    owner = await a_user(db)
    conversation, neighbour = await a_conversation(db, owner), await a_conversation(db, owner)
    contents = [f"m{n}" for n in range(7)]
    message_ids = await messages_in(db, conversation.id, contents)
    await messages_in(db, neighbour.id, ["elsewhere"])

    async with db.uow() as uow:
        pages = [
            await uow.messages.list_page(conversation.id, PageRequest(limit=3, offset=offset))
            for offset in (0, 3, 6, 7)
        ]
        assert [ids(p.items) for p in pages] == [
            message_ids[0:3],
            message_ids[3:6],
            message_ids[6:],
            [],
        ]
        assert {p.total for p in pages} == {7}
        assert ids(await uow.messages.all_of(conversation.id)) == message_ids
        # The newest ``limit``, returned oldest first.
        assert ids(await uow.messages.latest(conversation.id, 3)) == message_ids[-3:]
        assert ids(await uow.messages.latest(conversation.id, 100)) == message_ids
        assert await uow.messages.latest(conversation.id, 0) == []
        assert await uow.messages.latest(conversation.id, -1) == []
        # The history's view of the same messages: what the model is sent of each.
        earlier = await uow.messages.history(conversation.id, 3)
        latest = await uow.messages.latest(conversation.id, 3)
        assert [(m.id, m.role, m.content, m.status) for m in earlier] == [
            (m.id, m.role, m.content, m.status) for m in latest
        ]
        assert await uow.messages.history(conversation.id, 0) == []


async def test_an_owners_messages_across_conversations_oldest_first(db: Persistence) -> None:
    owner, other = await a_user(db), await a_user(db)
    first, second = await a_conversation(db, owner), await a_conversation(db, owner)
    theirs = await a_conversation(db, other)
    a = await messages_in(db, first.id, ["a1"])
    b = await messages_in(db, second.id, ["b1"])
    await messages_in(db, theirs.id, ["not yours"])
    a += await messages_in(db, first.id, ["a2", "a3"])

    async with db.uow() as uow:
        everything = await uow.messages.list_for_owner(owner, None, PageRequest())
        assert (ids(everything.items), everything.total) == (sorted(a + b), 4)
        paged = await uow.messages.list_for_owner(owner, None, PageRequest(limit=2, offset=1))
        assert (ids(paged.items), paged.total) == (sorted(a + b)[1:3], 4)
        one = await uow.messages.list_for_owner(owner, first.id, PageRequest(limit=2))
        assert (ids(one.items), one.total) == (a[:2], 3)
        not_theirs = await uow.messages.list_for_owner(owner, theirs.id, PageRequest())
        assert (not_theirs.items, not_theirs.total) == ([], 0)


async def test_deleting_a_conversation_deletes_its_messages_only(db: Persistence) -> None:
    owner = await a_user(db)
    doomed, kept = await a_conversation(db, owner), await a_conversation(db, owner)
    await messages_in(db, doomed.id, ["x", "y"])
    kept_ids = await messages_in(db, kept.id, ["z"])
    async with db.uow() as uow:
        await uow.conversations.delete(doomed.id)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.conversations.get_owned(doomed.id, owner) is None
        assert await uow.messages.all_of(doomed.id) == []
        gone = await uow.messages.list_page(doomed.id, PageRequest())
        assert (gone.items, gone.total) == ([], 0)
        left = await uow.messages.list_for_owner(owner, None, PageRequest())
        assert (ids(left.items), left.total) == (kept_ids, 1)
        assert (await uow.conversations.list_owned(owner, PageRequest())).total == 1


# ---- ownership -----------------------------------------------------------------------------


async def test_another_owners_conversation_is_none(db: Persistence) -> None:
    owner, other = await a_user(db), await a_user(db)
    conversation = await a_conversation(db, owner)
    async with db.uow() as uow:
        assert await uow.conversations.get_owned(conversation.id, other) is None
        assert await uow.conversations.for_turn(conversation.id, other) is None
        assert await uow.conversations.get_owned(conversation.id, owner) == conversation


@pytest.mark.parametrize("conversation_id", [0, -1, 2**31, 2**63, 10**30])
async def test_a_conversation_id_that_names_nothing_is_none(
    db: Persistence, conversation_id: int
) -> None:
    owner = await a_user(db)
    async with db.uow() as uow:
        assert await uow.conversations.get_owned(conversation_id, owner) is None
        assert await uow.conversations.for_turn(conversation_id, owner) is None


async def test_a_user_id_that_names_nothing_is_none(db: Persistence) -> None:
    async with db.uow() as uow:
        for user_id in (0, -1, 2**31, 2**63):
            assert await uow.users.get(user_id) is None
            assert (await uow.users.get_with_login(user_id, "any"))[0] is None


IN_GOOD_STANDING = OwnerStanding(is_active=True, credentials_valid_after=None, login_revoked=False)


async def test_a_turn_reads_the_owners_settings_and_limits_with_the_conversation(
    db: Persistence,
) -> None:
    owner, other = await a_user(db), await a_user(db)
    conversation = await a_conversation(db, owner)
    async with db.uow() as uow:
        assert await uow.conversations.for_turn(conversation.id, owner) == TurnContext(
            conversation=conversation, settings=None, limits=None, owner=IN_GOOD_STANDING
        )
        await uow.chat_settings.add(other, settings_of("theirs"))
        mine = await uow.chat_settings.add(owner, settings_of("mine", temperature=1.25))
        limits = UserLimits(
            budget=Budget(daily=Limit(tokens=5), monthly=Limit(cost_nanos=7)),
            allowed_models=frozenset({"a", "b"}),
        )
        await uow.spending.save_limits(owner, limits, T0)
        await uow.spending.save_limits(other, UserLimits(budget=Budget()), T0)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.conversations.for_turn(conversation.id, owner) == TurnContext(
            conversation=conversation, settings=mine, limits=limits, owner=IN_GOOD_STANDING
        )
        assert await uow.spending.limits_of(other) == UserLimits(budget=Budget())


# ---- spending: what budgets are checked against --------------------------------------------


async def test_spend_counts_billed_replies_calls_and_live_reservations(db: Persistence) -> None:
    owner, other = await a_user(db), await a_user(db)
    conversation = await a_conversation(db, owner)
    yesterday, today = T0 - timedelta(days=1), T0
    window = SpendWindow(
        month_start=T0 - timedelta(days=3), day_start=T0 - timedelta(hours=1), now=T0
    )
    async with db.uow() as uow:
        for when, tokens in ((yesterday, 100), (today, 20), (T0 - timedelta(days=40), 9999)):
            await uow.messages.add(
                NewMessage(
                    conversation_id=conversation.id,
                    role=MessageRole.ASSISTANT,
                    content="a",
                    created_at=when,
                    billed_tokens=tokens,
                    cost_nanos=tokens * 10,
                )
            )
        await uow.model_calls.add(
            ModelCall(
                user_id=owner,
                model="m",
                provider=None,
                status=MessageStatus.COMPLETED,
                created_at=today,
                latency_ms=1,
                billed_tokens=3,
                cost_nanos=30,
            )
        )
        live = await uow.spending.hold(owner, Spend(1000, 1), T0, T0 + timedelta(seconds=5))
        await uow.spending.hold(owner, Spend(50_000, 1), T0, T0)  # its lease has ended
        await uow.spending.hold(other, Spend(7, 7), T0, T0 + timedelta(seconds=5))
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.spending.spent_locked(owner, window) == PeriodSpend(
            day=Spend(20 + 3 + 1000, 200 + 30 + 1), month=Spend(120 + 3 + 1000, 1230 + 1)
        )
        assert (await uow.spending.spent_by_user([owner, other], window))[other] == PeriodSpend(
            day=Spend(7, 7), month=Spend(7, 7)
        )
        await uow.spending.renew([live], T0 + timedelta(minutes=1))
        assert await uow.spending.release_expired(T0 + timedelta(seconds=30)) == 2
        await uow.spending.release(live)
        await uow.commit()

    nobody = await a_user(db)
    async with db.uow() as uow:
        assert (await uow.spending.spent(owner, window)).day == Spend(23, 230)
        assert await uow.spending.spent(nobody, window) == PeriodSpend()
        assert await uow.spending.spent_by_user([nobody], window) == {}


# ---- conversations: what save, touch and the active count change ---------------------------


async def test_save_stores_title_model_status_and_updated_at_only(db: Persistence) -> None:
    owner, other = await a_user(db), await a_user(db)
    conversation = await a_conversation(db, owner)
    later = T0 + timedelta(hours=3)
    async with db.uow() as uow:
        await uow.conversations.save(
            replace(
                conversation,
                owner_id=other,
                title="renamed",
                model="model-z",
                status=ConversationStatus.CLOSED,
                created_at=later,
                updated_at=later,
            )
        )
        await uow.commit()

    expected = replace(
        conversation,
        title="renamed",
        model="model-z",
        status=ConversationStatus.CLOSED,
        updated_at=later,
    )
    async with db.uow() as uow:
        assert await uow.conversations.get_owned(conversation.id, owner) == expected
        assert await uow.conversations.count_active_locked(owner) == 0


async def test_touch_moves_updated_at_forward_only(db: Persistence) -> None:
    owner = await a_user(db)
    conversation = await a_conversation(db, owner, updated_at=T0 + timedelta(hours=1))
    async with db.uow() as uow:
        await uow.conversations.touch(conversation.id, T0)
        stored = await uow.conversations.get_owned(conversation.id, owner)
        assert stored is not None
        assert stored.updated_at == T0 + timedelta(hours=1)

        await uow.conversations.touch(conversation.id, T0 + timedelta(hours=2))
        stored = await uow.conversations.get_owned(conversation.id, owner)
        assert stored == replace(conversation, updated_at=T0 + timedelta(hours=2))
        await uow.conversations.touch(10**6, T0)  # names nothing: no error


# ---- users ---------------------------------------------------------------------------------


async def test_a_username_is_found_whatever_its_case_or_width(db: Persistence) -> None:
    tag = uuid.uuid4().hex[:8]
    user = new_user(f"alice_{tag}")
    async with db.uow() as uow:
        user = await uow.users.add(user)
        await uow.commit()
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "ALICE")

    async with db.uow() as uow:
        assert await uow.users.by_username(f"alice_{tag}") == user
        assert await uow.users.by_username(f"ALICE_{tag}") == user
        assert await uow.users.by_username(f"{full_width}_{tag}") == user
        assert await uow.users.by_username(f"alice_{tag}x") is None
        assert await uow.users.by_username(f"alic_{tag}") is None


async def test_a_username_taken_in_another_case_is_refused(db: Persistence) -> None:
    tag = uuid.uuid4().hex[:8]
    await a_user(db, f"Bob_{tag}")
    for taken in (f"Bob_{tag}", f"bOB_{tag}"):
        with pytest.raises(UsernameTaken) as refused:
            async with db.uow() as uow:
                await uow.users.add(new_user(taken))
        assert isinstance(refused.value, InvalidInput)
        assert "username" in refused.value.field_errors

    async with db.uow() as uow:
        found = await uow.users.by_username(f"BOB_{tag}")
    assert found is not None
    assert found.username == f"Bob_{tag}"


@pytest.mark.parametrize(
    "backend",
    backends(),
    indirect=True,
)
async def test_a_refused_write_leaves_the_transaction_usable(db: Persistence) -> None:
    """A domain error is the use case's to handle: it may try another name and commit."""
    taken = new_user()
    await a_user(db, taken.username)
    linked = await a_user(db)
    subject = f"openid-{uuid.uuid4().hex}"
    async with db.uow() as uow:
        await uow.identities.link(linked, "wechat", subject, T0)
        await uow.commit()

    instead = new_user()
    async with db.uow() as uow:
        with pytest.raises(UsernameTaken):
            await uow.users.add(new_user(taken.username.upper()))
        with pytest.raises(InvalidInput):
            await uow.identities.link(linked, "wechat", subject, T0)
        instead = await uow.users.add(instead)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.users.by_username(instead.username) == instead


async def test_get_with_login_says_whether_that_login_was_revoked(db: Persistence) -> None:
    user_id = await a_user(db)
    async with db.uow() as uow:
        await logged_in(uow, user_id, "login-a", "login-b")
        await uow.commit()
    async with db.uow() as uow:
        user, revoked = await uow.users.get_with_login(user_id, f"login-a-{user_id}")
        assert user is not None
        assert user.id == user_id
        assert revoked is False
        await uow.refresh_tokens.revoke_family(f"login-a-{user_id}", T0)
        await uow.commit()

    async with db.uow() as uow:
        assert (await uow.users.get_with_login(user_id, f"login-a-{user_id}"))[1] is True
        assert (await uow.users.get_with_login(user_id, f"login-b-{user_id}"))[1] is False


async def test_a_turn_reads_its_owners_standing_and_login_with_the_conversation(
    db: Persistence,
) -> None:
    owner = await a_user(db)
    conversation = await a_conversation(db, owner)
    async with db.uow() as uow:
        await logged_in(uow, owner, "kept", "revoked")
        await uow.refresh_tokens.revoke_family(f"revoked-{owner}", T0)
        signed_out = T0 + timedelta(hours=3, microseconds=5)
        await uow.users.revoke_credentials(owner, signed_out)
        await uow.commit()

    async def standing(login_id: str | None) -> OwnerStanding | None:
        async with db.uow() as uow:
            found = await uow.conversations.for_turn(conversation.id, owner, login_id=login_id)
        assert found is not None
        return found.owner

    expected = OwnerStanding(
        is_active=True, credentials_valid_after=signed_out, login_revoked=False
    )
    assert await standing(None) == expected
    assert await standing(f"kept-{owner}") == expected
    assert await standing(f"revoked-{owner}") == replace(expected, login_revoked=True)


# ---- chat settings -------------------------------------------------------------------------


async def test_a_second_first_settings_get_the_firsts(db: Persistence) -> None:
    """What a request that lost the race to store a new user's defaults sees."""
    user_id = await a_user(db)
    async with db.uow() as uow:
        first = await uow.chat_settings.add(user_id, settings_of("first"))
        again = await uow.chat_settings.add(user_id, settings_of("same transaction"))
        assert again == first
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.chat_settings.add(user_id, settings_of("later")) == first
        assert await uow.chat_settings.for_user(user_id) == first


async def test_saved_settings_are_read_back(db: Persistence) -> None:
    user_id, other = await a_user(db), await a_user(db)
    async with db.uow() as uow:
        assert await uow.chat_settings.for_user(user_id) is None
        stored = await uow.chat_settings.add(user_id, settings_of("before"))
        theirs = await uow.chat_settings.add(other, settings_of("theirs"))
        await uow.commit()
    changed = replace(stored, settings=settings_of("after", temperature=2.0))
    async with db.uow() as uow:
        await uow.chat_settings.save(changed)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.chat_settings.for_user(user_id) == changed
        assert await uow.chat_settings.for_user(other) == theirs


# ---- refresh tokens, API tokens, external identities ---------------------------------------


def refresh_record(user_id: int, jti: str, family: str) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        jti=jti, user_id=user_id, family_id=family, expires_at=T0 + timedelta(days=7)
    )


async def test_a_refresh_token_is_used_once(db: Persistence) -> None:
    user_id = await a_user(db)
    jti = f"jti-{uuid.uuid4().hex}"
    record = refresh_record(user_id, jti, f"fam-{jti}")
    async with db.uow() as uow:
        await uow.refresh_tokens.add(record)
        await uow.commit()

    used_at = T0 + timedelta(minutes=5)
    async with db.uow() as uow:
        assert await uow.refresh_tokens.get(jti) == record
        assert await uow.refresh_tokens.get(f"{jti}-unknown") is None
        assert await uow.refresh_tokens.mark_used(jti, used_at) is True
        assert await uow.refresh_tokens.mark_used(jti, used_at + timedelta(seconds=1)) is False
        assert await uow.refresh_tokens.mark_used(f"{jti}-unknown", used_at) is False
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.refresh_tokens.get(jti) == replace(record, used_at=used_at)


async def test_marking_a_token_used_is_rolled_back_with_its_transaction(
    db: Persistence,
) -> None:
    user_id = await a_user(db)
    jti = f"jti-{uuid.uuid4().hex}"
    async with db.uow() as uow:
        await uow.refresh_tokens.add(refresh_record(user_id, jti, f"fam-{jti}"))
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.refresh_tokens.mark_used(jti, T0) is True

    async with db.uow() as uow:
        assert await uow.refresh_tokens.mark_used(jti, T0) is True


async def test_revoking_a_family_or_a_user_keeps_the_first_revocation(db: Persistence) -> None:
    alice, bob = await a_user(db), await a_user(db)
    tag = uuid.uuid4().hex[:8]
    records = {
        "a1": refresh_record(alice, f"a1-{tag}", f"fa-{tag}"),
        "a2": refresh_record(alice, f"a2-{tag}", f"fa-{tag}"),
        "a3": refresh_record(alice, f"a3-{tag}", f"fb-{tag}"),
        "b1": refresh_record(bob, f"b1-{tag}", f"fc-{tag}"),
    }
    first, second, third = (T0 + timedelta(hours=n) for n in (1, 2, 3))
    async with db.uow() as uow:
        for record in records.values():
            await uow.refresh_tokens.add(record)
        await uow.refresh_tokens.revoke_family(f"fa-{tag}", first)
        await uow.refresh_tokens.revoke_family(f"fa-{tag}", second)
        await uow.refresh_tokens.revoke_all_of(alice, third)
        await uow.commit()

    async with db.uow() as uow:
        revoked = {
            name: (await uow.refresh_tokens.get(record.jti)) for name, record in records.items()
        }
    assert {name: r.revoked_at if r else "missing" for name, r in revoked.items()} == {
        "a1": first,
        "a2": first,
        "a3": third,
        "b1": None,
    }


async def test_api_tokens_name_their_user_until_revoked(db: Persistence) -> None:
    alice, bob = await a_user(db), await a_user(db)
    tag = uuid.uuid4().hex
    async with db.uow() as uow:
        for digest, owner in (("a1", alice), ("a2", alice), ("a3", alice), ("b1", bob)):
            await uow.api_tokens.add(owner, f"{digest}-{tag}", T0)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.api_tokens.user_id_for(f"a1-{tag}") == alice
        assert await uow.api_tokens.user_id_for(f"b1-{tag}") == bob
        assert await uow.api_tokens.user_id_for(f"zz-{tag}") is None
        await uow.api_tokens.revoke(f"a1-{tag}")
        await uow.api_tokens.revoke(f"zz-{tag}")  # unknown: no error
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.api_tokens.user_id_for(f"a1-{tag}") is None
        assert await uow.api_tokens.user_id_for(f"a2-{tag}") == alice
        await uow.api_tokens.revoke_all(alice)
        await uow.commit()

    async with db.uow() as uow:
        assert await uow.api_tokens.user_id_for(f"a2-{tag}") is None
        assert await uow.api_tokens.user_id_for(f"a3-{tag}") is None
        assert await uow.api_tokens.user_id_for(f"b1-{tag}") == bob


async def test_an_external_identity_links_to_one_user(db: Persistence) -> None:
    alice, bob = await a_user(db), await a_user(db)
    subject = f"openid-{uuid.uuid4().hex}"
    async with db.uow() as uow:
        assert await uow.identities.user_id_for("wechat", subject) is None
        await uow.identities.link(alice, "wechat", subject, T0)
        await uow.identities.link(bob, "other", subject, T0)  # another provider's subject
        await uow.commit()

    for anyone in (alice, bob):
        with pytest.raises(InvalidInput) as refused:
            async with db.uow() as uow:
                await uow.identities.link(anyone, "wechat", subject, T0)
        assert "wechat" in refused.value.field_errors
    async with db.uow() as uow:
        assert await uow.identities.user_id_for("wechat", subject) == alice
        assert await uow.identities.user_id_for("other", subject) == bob


# ---- idempotency keys: leases --------------------------------------------------------------

LEASE = timedelta(seconds=30)
FORGET = timedelta(days=1)


async def claim(
    db: Persistence, hold: KeyHold, fingerprint: str, now: datetime
) -> tuple[str, str | None] | None:
    record = await db.idempotency.claim(hold, fingerprint, now, now + LEASE, now - FORGET)
    if record is None:
        return None
    return record.fingerprint, record.answer


async def test_an_idempotency_key_is_held_answered_and_released(db: Persistence) -> None:
    user_id = await a_user(db)
    key = f"key-{uuid.uuid4().hex}"
    first, second = KeyHold(user_id=user_id, key=key, holder="h1"), replace_holder(key, user_id)

    assert await claim(db, first, "fp", T0) is None
    # Held and unanswered: whoever comes next learns the fingerprint, and waits.
    assert await claim(db, second, "fp", T0 + timedelta(seconds=1)) == ("fp", None)
    assert await claim(db, second, "other", T0 + timedelta(seconds=1)) == ("fp", None)
    assert await db.idempotency.renew(first, T0 + 2 * LEASE) is True
    assert await db.idempotency.renew(second, T0 + 2 * LEASE) is False

    await db.idempotency.complete(second, "500 not mine")
    await db.idempotency.complete(first, '201 {"id": 1}')
    assert await claim(db, second, "fp", T0 + timedelta(seconds=2)) == ("fp", '201 {"id": 1}')
    assert await db.idempotency.renew(first, T0 + 3 * LEASE) is False  # answered: no lease
    await db.idempotency.complete(first, "500 again")
    assert await claim(db, second, "fp", T0 + timedelta(seconds=3)) == ("fp", '201 {"id": 1}')

    await db.idempotency.release(second)  # not the holder: nothing happens
    assert await claim(db, second, "fp", T0 + timedelta(seconds=4)) == ("fp", '201 {"id": 1}')
    await db.idempotency.release(first)
    assert await claim(db, second, "new", T0 + timedelta(seconds=5)) is None


def replace_holder(key: str, user_id: int) -> KeyHold:
    return KeyHold(user_id=user_id, key=key, holder="h2")


async def test_a_key_whose_lease_ended_unanswered_is_taken_over(db: Persistence) -> None:
    user_id = await a_user(db)
    key = f"key-{uuid.uuid4().hex}"
    dead, retry = KeyHold(user_id=user_id, key=key, holder="h1"), replace_holder(key, user_id)
    assert await claim(db, dead, "fp", T0) is None

    after_lease = T0 + LEASE + timedelta(seconds=1)
    assert await claim(db, retry, "different", after_lease) == ("fp", None)
    assert await claim(db, retry, "fp", after_lease) is None
    assert await db.idempotency.renew(dead, after_lease + LEASE) is False
    await db.idempotency.complete(dead, "200 late")
    await db.idempotency.release(dead)
    assert await db.idempotency.renew(retry, after_lease + LEASE) is True
    await db.idempotency.complete(retry, "200 retried")
    assert await claim(db, dead, "fp", after_lease + 2 * LEASE) == ("fp", "200 retried")


async def test_an_answered_key_is_forgotten_once_expired(db: Persistence) -> None:
    user_id, other = await a_user(db), await a_user(db)
    key = f"key-{uuid.uuid4().hex}"
    hold = KeyHold(user_id=user_id, key=key, holder="h1")
    assert await claim(db, hold, "fp", T0) is None
    await db.idempotency.complete(hold, "200 old")
    # The same key of another user is another key.
    assert await claim(db, KeyHold(user_id=other, key=key, holder="h3"), "x", T0) is None

    later = T0 + FORGET + timedelta(seconds=1)
    assert await claim(db, replace_holder(key, user_id), "new", later) is None


# ---- branches ------------------------------------------------------------------------------


async def test_a_switched_branch_is_what_the_lists_and_the_history_read(db: Persistence) -> None:
    owner, other = await a_user(db), await a_user(db)
    conversation = await a_conversation(db, owner)
    made: dict[str, int] = {}

    async def add(name: str, parent: str | None, role: MessageRole) -> None:
        async with db.uow() as uow:
            message = await uow.messages.add(
                new_message(
                    conversation.id,
                    name,
                    role=role,
                    parent_id=None if parent is None else made[parent],
                )
            )
            await uow.commit()
        made[name] = message.id

    user, assistant = MessageRole.USER, MessageRole.ASSISTANT
    await add("u1", None, user)
    await add("r1", "u1", assistant)
    await add("u2", "r1", user)
    await add("r2", "u2", assistant)
    async with db.uow() as uow:  # regenerate r2: its parent becomes the leaf, then r2b
        await uow.messages.switch_branch(conversation.id, made["u2"])
        await uow.commit()
    await add("r2b", "u2", assistant)
    async with db.uow() as uow:  # edit u2: the branch ends at r1, then u2b and its reply
        await uow.messages.switch_branch(conversation.id, made["r1"])
        await uow.commit()
    await add("u2b", "r1", user)
    await add("r3", "u2b", assistant)

    def names(messages: list[Message]) -> list[str]:
        return [m.content for m in messages]

    async with db.uow() as uow:
        assert names(await uow.messages.all_of(conversation.id)) == ["u1", "r1", "u2b", "r3"]
        assert names(await uow.messages.latest(conversation.id, 2)) == ["u2b", "r3"]
        page = await uow.messages.list_page(conversation.id, PageRequest(limit=3))
        assert (names(page.items), page.total) == (["u1", "r1", "u2b"], 4)
        mine = await uow.messages.list_for_owner(owner, conversation.id, PageRequest())
        assert (names(mine.items), mine.total) == (["u1", "r1", "u2b", "r3"], 4)
        tree = await uow.messages.tree(conversation.id)
        assert names(tree) == ["u1", "r1", "u2", "r2", "r2b", "u2b", "r3"]
        assert [m.on_branch for m in tree] == [True, True, False, False, False, True, True]
        assert [m.parent_id for m in tree][:3] == [None, made["u1"], made["r1"]]
        assert names(await uow.messages.tree(conversation.id, after_id=made["r2"], limit=2)) == [
            "r2b",
            "u2b",
        ]
        groups = await uow.messages.sibling_groups(conversation.id, {None, made["r1"], made["u2"]})
        assert groups == {
            None: [made["u1"]],
            made["r1"]: [made["u2"], made["u2b"]],
            made["u2"]: [made["r2"], made["r2b"]],
        }
        assert await uow.messages.newest_leaf_under(made["u2"]) == made["r2b"]
        assert await uow.messages.newest_leaf_under(made["r3"]) == made["r3"]
        assert await uow.messages.newest_leaf_under(made["u1"]) == made["r3"]
        assert (await uow.messages.owned(made["r2"], owner) or new_message(0)).content == "r2"
        assert await uow.messages.owned(made["r2"], other) is None

        await uow.messages.switch_branch(conversation.id, made["r2"])
        await uow.commit()
    async with db.uow() as uow:
        assert names(await uow.messages.all_of(conversation.id)) == ["u1", "r1", "u2", "r2"]
        assert (await uow.messages.list_page(conversation.id, PageRequest())).total == 4
        await uow.messages.switch_branch(conversation.id, None)
        assert await uow.messages.all_of(conversation.id) == []
        assert (await uow.messages.list_page(conversation.id, PageRequest())).total == 0
        # Rolled back: the branch is as committed.
    async with db.uow() as uow:
        assert names(await uow.messages.latest(conversation.id, 10)) == ["u1", "r1", "u2", "r2"]
        await uow.conversations.delete(conversation.id)
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.messages.tree(conversation.id) == []
