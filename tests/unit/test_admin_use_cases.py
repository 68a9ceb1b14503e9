"""Admin use cases over in-memory fakes: staff only, validation, audit in the same
transaction, the owner's active limit on reopen, deactivation, and capped search counts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Self, TypedDict

import pytest

from application.admin import (
    AdminConversationRef,
    AdminUserRef,
    CloseAnyConversation,
    DeactivateUser,
    GetAnyConversation,
    GetConversationStats,
    GetUserBudget,
    GetUserModels,
    ListAllConversations,
    ListAllConversationsRequest,
    ListAuditLog,
    ListAuditLogRequest,
    ListUsers,
    ListUsersRequest,
    ReactivateUser,
    ReopenAnyConversation,
    ReportUsage,
    ReportUsageRequest,
    SetUserBudget,
    SetUserBudgetRequest,
    SetUserModels,
    SetUserModelsRequest,
)
from application.admin_ports import (
    AuditCriteria,
    AuditEntry,
    AuditRecord,
    ConversationCriteria,
    OwnedConversation,
    UsageCriteria,
    UsageRow,
    UserSummary,
)
from application.authentication import Authenticate
from application.budgets import BudgetRules
from application.pagination import Page, PageRequest
from application.ports import RefreshTokenRecord
from domain.conversation import ConversationStatus, Message, MessageRole, MessageStatus
from domain.errors import (
    ActiveConversationLimit,
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from domain.model_calls import ModelCall
from domain.monitoring import CannotDeactivateSelf, ConversationStats, TimeRange, UsageGrouping
from domain.quota import QuotaPolicy
from domain.users import User
from tests.unit.in_memory import EPOCH, FakeClock, FakeModelCatalog, FakeUnitOfWork

RULES = BudgetRules(zone=UTC)

JANUARY, FEBRUARY = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)

CLOSED = ConversationStatus.CLOSED


class _Flags(TypedDict, total=False):
    is_staff: bool
    is_active: bool


class FakeAdminUnitOfWork(FakeUnitOfWork):
    """The shared fake plus the admin ports; audit rows roll back with everything else."""

    def __init__(self) -> None:
        super().__init__()
        self.audit_rows: list[AuditEntry] = []
        self._audit_snapshot: list[AuditEntry] = []
        self.admin = _Queries(self)
        self.activation = _Activation(self)
        self.audit = _Audit(self)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._audit_snapshot = copy.deepcopy(self.audit_rows)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        self.audit_rows = self._audit_snapshot

    async def commit(self) -> None:
        await super().commit()
        self._audit_snapshot = copy.deepcopy(self.audit_rows)


class _Queries:
    def __init__(self, uow: FakeAdminUnitOfWork) -> None:
        self._uow = uow

    def _owned(self, conversation_id: int) -> OwnedConversation:
        state = self._uow.state
        conversation = copy.copy(state.conversations[conversation_id])
        return OwnedConversation(
            conversation=conversation, owner_username=state.users[conversation.owner_id].username
        )

    def _matches(self, conversation_id: int, terms: tuple[str, ...]) -> bool:
        state = self._uow.state
        texts = [state.conversations[conversation_id].title] + [
            m.content for m in state.messages_of(conversation_id)
        ]
        return any(all(t.casefold() in text.casefold() for t in terms) for text in texts)

    async def conversations(
        self, criteria: ConversationCriteria, page: PageRequest, *, count_limit: int | None
    ) -> Page[OwnedConversation]:
        found = [
            c.id
            for c in sorted(self._uow.state.conversations.values(), key=lambda c: -c.id)
            if (criteria.owner_id is None or c.owner_id == criteria.owner_id)
            and (criteria.status is None or c.status is criteria.status)
            and self._matches(c.id, criteria.terms)
        ]
        total = len(found) if count_limit is None else min(len(found), count_limit)
        chosen = found[page.offset : page.offset + page.limit]
        return Page([self._owned(i) for i in chosen], total, page)

    async def conversation(self, conversation_id: int) -> OwnedConversation | None:
        if conversation_id not in self._uow.state.conversations:
            return None
        return self._owned(conversation_id)

    async def stats(self, conversation_id: int) -> ConversationStats | None:
        raise NotImplementedError  # exercised against real databases

    async def users(self, username: str | None, page: PageRequest) -> Page[UserSummary]:
        raise NotImplementedError

    async def user(self, user_id: int) -> UserSummary | None:
        user = self._uow.state.users.get(user_id)
        if user is None:
            return None
        return UserSummary(
            id=user.id,
            username=user.username,
            email=user.email,
            is_staff=user.is_staff,
            is_active=user.is_active,
            date_joined=user.date_joined,
            conversation_count=0,
            total_messages=0,
        )

    async def usage(self, criteria: UsageCriteria, page: PageRequest) -> Page[UsageRow]:
        """As the SQL adapter: assistant replies and stateless calls, grouped and sorted."""
        self.last_usage = criteria
        state = self._uow.state
        owners = {c.id: c.owner_id for c in state.conversations.values()}
        used: list[tuple[int, Message | ModelCall]] = [
            (owners[m.conversation_id], m)
            for m in state.messages.values()
            if m.role is MessageRole.ASSISTANT
        ]
        used += [(c.user_id, c) for c in state.model_calls]
        period = criteria.period
        sums: dict[tuple[Any, ...], list[int]] = {}
        for owner, record in used:
            when = record.created_at
            if (
                (period.start is not None and when < period.start)
                or (period.end is not None and when >= period.end)
                or criteria.model not in (None, record.model)
                or criteria.owner_id not in (None, owner)
            ):
                continue
            key = (
                when.astimezone(UTC).date() if criteria.by_day else None,
                owner if criteria.by_user else None,
                record.model if criteria.by_model else None,
            )
            total = sums.setdefault(key, [0, 0, 0, 0])
            amounts = (1, record.prompt_tokens, record.completion_tokens, record.cost_nanos)
            for index, amount in enumerate(amounts):
                total[index] += amount
        rows = [
            UsageRow(
                day=day,
                user_id=owner,
                username=None if owner is None else state.users[owner].username,
                model=model,
                requests=requests,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost_nanos=cost,
            )
            for (day, owner, model), (requests, prompt, completion, cost) in sums.items()
        ]

        def order(row: UsageRow) -> tuple[Any, ...]:
            keys = (row.user_id or 0, row.model is not None, row.model or "")
            if criteria.by_day:
                return (row.day, -row.total_tokens, *keys)
            return (-row.total_tokens, *keys)

        rows.sort(key=order)
        return Page(rows[page.offset : page.offset + page.limit], len(rows), page)


class _Activation:
    def __init__(self, uow: FakeAdminUnitOfWork) -> None:
        self._uow = uow

    async def set_active(self, user_id: int, active: bool) -> None:
        self._uow.state.users[user_id].is_active = active


class _Audit:
    def __init__(self, uow: FakeAdminUnitOfWork) -> None:
        self._uow = uow

    async def record(self, entry: AuditRecord) -> None:
        fields = {k: getattr(entry, k) for k in entry.__dataclass_fields__}
        self._uow.audit_rows.append(AuditEntry(id=len(self._uow.audit_rows) + 1, **fields))

    async def entries(self, criteria: AuditCriteria, page: PageRequest) -> Page[AuditEntry]:
        rows = [e for e in reversed(self._uow.audit_rows) if criteria.action in (None, e.action)]
        return Page(rows, len(rows), page)


@pytest.fixture
def uow() -> FakeAdminUnitOfWork:
    return FakeAdminUnitOfWork()


@pytest.fixture
def admin(uow: FakeAdminUnitOfWork) -> User:
    return uow.seed_user("root", is_staff=True)


@pytest.fixture
def alice(uow: FakeAdminUnitOfWork) -> User:
    return uow.seed_user("alice")


def _actions(uow: FakeAdminUnitOfWork) -> list[tuple[str, str, int | None]]:
    return [(e.action, e.target_type, e.target_id) for e in uow.audit_rows]


# ---- staff only ---------------------------------------------------------------------------


def _calls(uow: FakeAdminUnitOfWork, clock: FakeClock, actor: User) -> list[Callable[[], Any]]:
    page = PageRequest()
    ref = AdminConversationRef(actor=actor, conversation_id=1)
    user_ref = AdminUserRef(actor=actor, user_id=1)
    return [
        lambda: ListAllConversations(uow)(ListAllConversationsRequest(actor=actor), page),
        lambda: GetAnyConversation(uow, clock)(ref),
        lambda: CloseAnyConversation(uow, clock)(ref),
        lambda: ReopenAnyConversation(uow, QuotaPolicy(), clock)(ref),
        lambda: GetConversationStats(uow)(ref),
        lambda: ListUsers(uow, RULES, clock)(ListUsersRequest(actor=actor), page),
        lambda: DeactivateUser(uow, clock)(AdminUserRef(actor=actor, user_id=2)),
        lambda: ReactivateUser(uow, clock)(user_ref),
        lambda: ReportUsage(uow)(ReportUsageRequest(actor=actor), page),
        lambda: ListAuditLog(uow)(ListAuditLogRequest(actor=actor), page),
        lambda: GetUserBudget(uow, RULES, clock)(user_ref),
        lambda: SetUserBudget(uow, RULES, clock)(
            SetUserBudgetRequest(actor=actor, user_id=1, budget=None)
        ),
        lambda: GetUserModels(uow, RULES)(user_ref),
        lambda: SetUserModels(uow, RULES, FakeModelCatalog(), clock)(
            SetUserModelsRequest(actor=actor, user_id=1, allowed=None)
        ),
    ]


@pytest.mark.parametrize("index", range(14))
@pytest.mark.parametrize(
    "who", [{"is_staff": False}, {"is_staff": True, "is_active": False}], ids=["user", "inactive"]
)
async def test_only_active_staff_may_use_any_admin_use_case(
    uow: FakeAdminUnitOfWork, clock: FakeClock, index: int, who: _Flags
) -> None:
    actor = uow.seed_user("someone", **who)
    conversation = uow.seed_conversation(actor.id, status=CLOSED)
    with pytest.raises(PermissionDenied) as raised:
        await _calls(uow, clock, actor)[index]()
    assert raised.value.code == "permission_denied"
    assert uow.commits == 0
    assert uow.audit_rows == []
    assert uow.state.conversations[conversation.id].status is CLOSED
    assert uow.state.users[actor.id].is_active is who.get("is_active", True)


# ---- listing and search -------------------------------------------------------------------


async def test_unknown_username_gives_an_empty_page(
    uow: FakeAdminUnitOfWork, admin: User, alice: User
) -> None:
    uow.seed_conversation(alice.id)
    page = await ListAllConversations(uow)(
        ListAllConversationsRequest(actor=admin, username="nobody"), PageRequest()
    )
    assert (page.items, page.total, page.total_is_exact) == ([], 0, True)


async def test_filters_combine_and_owner_names_come_along(
    uow: FakeAdminUnitOfWork, admin: User, alice: User
) -> None:
    bob = uow.seed_user("bob")
    wanted = uow.seed_conversation(alice.id, status=CLOSED, title="Machine learning")
    uow.seed_conversation(alice.id, title="Machine learning")  # active
    uow.seed_conversation(bob.id, status=CLOSED, title="machine LEARNING")
    page = await ListAllConversations(uow)(
        ListAllConversationsRequest(
            actor=admin, username="alice", status=CLOSED, search="learning"
        ),
        PageRequest(),
    )
    assert [(c.conversation.id, c.owner_username) for c in page.items] == [(wanted.id, "alice")]


async def test_a_search_counts_up_to_200_or_just_past_the_page(
    uow: FakeAdminUnitOfWork, admin: User, alice: User
) -> None:
    for _ in range(230):
        conversation = uow.seed_conversation(alice.id, status=CLOSED)
        uow.seed_message(conversation.id, "a common word")
    search = ListAllConversationsRequest(actor=admin, search="common")
    first = await ListAllConversations(uow)(search, PageRequest(limit=50))
    assert (first.total, first.total_is_exact) == (201, False)
    deep = await ListAllConversations(uow)(search, PageRequest(limit=100, offset=200))
    assert (deep.total, deep.total_is_exact, len(deep.items)) == (230, True, 30)
    unsearched = await ListAllConversations(uow)(
        ListAllConversationsRequest(actor=admin), PageRequest()
    )
    assert (unsearched.total, unsearched.total_is_exact) == (230, True)


async def test_too_many_search_words_are_refused(uow: FakeAdminUnitOfWork, admin: User) -> None:
    with pytest.raises(InvalidInput) as raised:
        await ListAllConversations(uow)(
            ListAllConversationsRequest(actor=admin, search="a b c d e f g h i"), PageRequest()
        )
    assert list(raised.value.field_errors) == ["search"]


# ---- reading, closing and reopening are audited --------------------------------------------


async def test_reading_a_conversation_is_audited(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User, alice: User
) -> None:
    conversation = uow.seed_conversation(alice.id)
    uow.seed_message(conversation.id, "private")
    detail = await GetAnyConversation(uow, clock)(
        AdminConversationRef(actor=admin, conversation_id=conversation.id)
    )
    assert [m.content for m in detail.messages] == ["private"]
    assert detail.conversation.owner_username == "alice"
    (entry,) = uow.audit_rows
    assert (entry.actor_id, entry.actor_username, entry.action) == (
        admin.id,
        "root",
        "conversation.view",
    )
    assert entry.created_at == clock.now()
    assert entry.details == {"owner_id": alice.id}


async def test_close_is_audited_with_the_change(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User, alice: User
) -> None:
    conversation = uow.seed_conversation(alice.id)
    ref = AdminConversationRef(actor=admin, conversation_id=conversation.id)
    clock.advance(minutes=5)
    closed = await CloseAnyConversation(uow, clock)(ref)
    again = await CloseAnyConversation(uow, clock)(ref)

    stored = uow.committed.conversations[conversation.id]
    assert (stored.status, stored.updated_at) == (CLOSED, EPOCH + timedelta(minutes=5))
    assert closed.conversation.status is CLOSED
    assert again.conversation.status is CLOSED
    assert [(e.details["status_before"], e.details["status_after"]) for e in uow.audit_rows] == [
        ("active", "closed"),
        ("closed", "closed"),
    ]


async def test_reopen_respects_the_owners_limit_and_leaves_no_trace_when_refused(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User, alice: User
) -> None:
    closed = uow.seed_conversation(alice.id, status=CLOSED)
    for _ in range(2):
        uow.seed_conversation(alice.id)
    reopen = ReopenAnyConversation(uow, QuotaPolicy(max_active_conversations=2), clock)
    ref = AdminConversationRef(actor=admin, conversation_id=closed.id)

    with pytest.raises(ActiveConversationLimit) as raised:
        await reopen(ref)
    assert "alice already has 2 active conversations" in raised.value.message
    assert uow.committed.conversations[closed.id].status is CLOSED
    assert uow.audit_rows == []

    roomy = ReopenAnyConversation(uow, QuotaPolicy(max_active_conversations=3), clock)
    assert (await roomy(ref)).conversation.is_active
    assert _actions(uow) == [("conversation.reopen", "conversation", closed.id)]


async def test_unknown_conversations_are_not_found_and_not_audited(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User
) -> None:
    ref = AdminConversationRef(actor=admin, conversation_id=404)
    for use_case in (GetAnyConversation(uow, clock), CloseAnyConversation(uow, clock)):
        with pytest.raises(NotFound):
            await use_case(ref)
    assert uow.audit_rows == []


# ---- deactivation -------------------------------------------------------------------------


async def test_deactivation_revokes_everything_and_is_audited(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User, alice: User
) -> None:
    uow.state.refresh_tokens["jti-1"] = RefreshTokenRecord(
        jti="jti-1", user_id=alice.id, family_id="f", expires_at=EPOCH + timedelta(days=1)
    )
    async with uow:
        await uow.api_tokens.add(alice.id, "digest", EPOCH)
        await uow.commit()
    clock.advance(hours=1)

    summary = await DeactivateUser(uow, clock)(AdminUserRef(actor=admin, user_id=alice.id))

    state = uow.committed
    assert summary.is_active is False
    assert state.users[alice.id].is_active is False
    assert state.users[alice.id].credentials_valid_after == clock.now()
    assert state.refresh_tokens["jti-1"].revoked_at == clock.now()
    assert state.api_tokens == {}
    assert _actions(uow) == [("user.deactivate", "user", alice.id)]
    assert uow.audit_rows[0].details == {"username": "alice", "was_active": True}


async def test_a_deactivated_user_cannot_authenticate(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User, alice: User, tokens: Any, codec: Any
) -> None:
    access = tokens.issue(alice.id, "family").access
    authenticate = Authenticate(uow, tokens, codec)
    assert (await authenticate.with_access_token(access)).id == alice.id
    await DeactivateUser(uow, clock)(AdminUserRef(actor=admin, user_id=alice.id))
    with pytest.raises(AuthenticationFailed, match="inactive"):
        await authenticate.with_access_token(access)


async def test_admins_cannot_deactivate_themselves(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User
) -> None:
    with pytest.raises(CannotDeactivateSelf):
        await DeactivateUser(uow, clock)(AdminUserRef(actor=admin, user_id=admin.id))
    assert uow.committed.users[admin.id].is_active
    assert uow.audit_rows == []


async def test_reactivation_keeps_old_credentials_revoked(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User, alice: User
) -> None:
    ref = AdminUserRef(actor=admin, user_id=alice.id)
    await DeactivateUser(uow, clock)(ref)
    revoked_at = clock.now()
    clock.advance(minutes=1)
    summary = await ReactivateUser(uow, clock)(ref)
    assert summary.is_active
    assert uow.committed.users[alice.id].credentials_valid_after == revoked_at
    assert [a for a, _, _ in _actions(uow)] == ["user.deactivate", "user.reactivate"]
    assert uow.audit_rows[1].details == {"username": "alice", "was_active": False}

    with pytest.raises(NotFound):
        await ReactivateUser(uow, clock)(AdminUserRef(actor=admin, user_id=999))


# ---- usage --------------------------------------------------------------------------------


async def test_usage_criteria_follow_the_query(
    uow: FakeAdminUnitOfWork, admin: User, alice: User
) -> None:
    report = ReportUsage(uow)
    await report(
        ReportUsageRequest(
            actor=admin,
            period=TimeRange(start=JANUARY, end=FEBRUARY),
            username="alice",
            grouping=frozenset({UsageGrouping.MODEL}),
        ),
        PageRequest(),
    )
    criteria = uow.admin.last_usage
    assert criteria.owner_id == alice.id
    assert criteria.period == TimeRange(start=JANUARY, end=FEBRUARY)
    assert (criteria.by_user, criteria.by_model) == (False, True)
    nobody = await report(ReportUsageRequest(actor=admin, username="nobody"), PageRequest())
    assert nobody.total == 0


DAY_ONE, DAY_TWO = date(2025, 1, 1), date(2025, 1, 2)


def _two_days_of_usage(uow: FakeAdminUnitOfWork, alice: User, bob: User) -> None:
    """Day one: alice 300 tokens of big, 33 of fast; day two: 1010 of fast (alice and a
    call of bob's) and a failed big call of bob's."""
    chat = uow.seed_conversation(alice.id).id

    def reply(model: str, when: datetime, prompt: int, completion: int) -> None:
        uow.seed_message(
            chat,
            "answer",
            role=MessageRole.ASSISTANT,
            when=when,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
        )

    reply("fast", datetime(2025, 1, 1, 10, tzinfo=UTC), 10, 20)
    reply("big", datetime(2025, 1, 1, 23, 59, 59, tzinfo=UTC), 100, 200)
    # 01:00 in Beijing is still the first of January in UTC.
    reply("fast", datetime(2025, 1, 2, 1, tzinfo=timezone(timedelta(hours=8))), 1, 2)
    reply("fast", datetime(2025, 1, 2, tzinfo=UTC), 5, 5)
    uow.seed_message(chat, "question", when=datetime(2025, 1, 2, tzinfo=UTC), prompt_tokens=7)
    calls = [("fast", MessageStatus.COMPLETED, 1000), ("big", MessageStatus.FAILED, 0)]
    for model, status, prompt in calls:
        uow.state.model_calls.append(
            ModelCall(
                user_id=bob.id,
                model=model,
                provider="test",
                status=status,
                created_at=datetime(2025, 1, 2, 12, tzinfo=UTC),
                latency_ms=5,
                prompt_tokens=prompt,
            )
        )


def _by_day(page: Page[UsageRow]) -> list[tuple[Any, ...]]:
    return [(r.day, r.username, r.model, r.requests, r.total_tokens) for r in page.items]


async def test_usage_by_day_runs_oldest_day_first_then_most_tokens(
    uow: FakeAdminUnitOfWork, admin: User, alice: User
) -> None:
    _two_days_of_usage(uow, alice, uow.seed_user("bob"))
    report = ReportUsage(uow)
    day_model = frozenset({UsageGrouping.DAY, UsageGrouping.MODEL})
    per_day_and_model = await report(
        ReportUsageRequest(actor=admin, grouping=day_model), PageRequest()
    )
    assert uow.admin.last_usage.by_day
    # Day two's 1010 tokens come after day one's 300: the day orders before the tokens.
    assert _by_day(per_day_and_model) == [
        (DAY_ONE, None, "big", 1, 300),
        (DAY_ONE, None, "fast", 2, 33),
        (DAY_TWO, None, "fast", 2, 1010),
        (DAY_TWO, None, "big", 1, 0),
    ]
    per_day = await report(
        ReportUsageRequest(actor=admin, grouping=frozenset({UsageGrouping.DAY})), PageRequest()
    )
    assert _by_day(per_day) == [(DAY_ONE, None, None, 3, 333), (DAY_TWO, None, None, 3, 1010)]


async def test_usage_without_day_has_no_day_and_keeps_most_tokens_first(
    uow: FakeAdminUnitOfWork, admin: User, alice: User
) -> None:
    _two_days_of_usage(uow, alice, uow.seed_user("bob"))
    page = await ReportUsage(uow)(ReportUsageRequest(actor=admin), PageRequest())
    assert not uow.admin.last_usage.by_day
    assert _by_day(page) == [
        (None, "bob", "fast", 1, 1000),
        (None, "alice", "big", 1, 300),
        (None, "alice", "fast", 3, 43),
        (None, "bob", "big", 1, 0),
    ]


async def test_usage_by_day_keeps_filters_and_pages(
    uow: FakeAdminUnitOfWork, admin: User, alice: User
) -> None:
    _two_days_of_usage(uow, alice, uow.seed_user("bob"))
    report = ReportUsage(uow)
    second_day = TimeRange(start=datetime(2025, 1, 2, tzinfo=UTC))
    day_user = frozenset({UsageGrouping.DAY, UsageGrouping.USER})
    alices = await report(
        ReportUsageRequest(actor=admin, period=second_day, username="alice", grouping=day_user),
        PageRequest(),
    )
    assert _by_day(alices) == [(DAY_TWO, "alice", None, 1, 10)]
    fast = await report(
        ReportUsageRequest(actor=admin, model="fast", grouping=day_user), PageRequest()
    )
    assert _by_day(fast) == [
        (DAY_ONE, "alice", None, 2, 33),
        (DAY_TWO, "bob", None, 1, 1000),
        (DAY_TWO, "alice", None, 1, 10),
    ]
    every = frozenset(UsageGrouping)
    second = await report(
        ReportUsageRequest(actor=admin, grouping=every), PageRequest(limit=1, offset=1)
    )
    assert second.total == 5
    assert _by_day(second) == [(DAY_ONE, "alice", "fast", 2, 33)]


async def test_ids_no_database_can_hold_name_nothing(
    uow: FakeAdminUnitOfWork, clock: FakeClock, admin: User
) -> None:
    for huge in (2**31, 10**20, 0, -1):
        with pytest.raises(NotFound):
            await GetConversationStats(uow)(AdminConversationRef(actor=admin, conversation_id=huge))
        with pytest.raises(NotFound):
            await DeactivateUser(uow, clock)(AdminUserRef(actor=admin, user_id=huge))
    page = await ListAuditLog(uow)(
        ListAuditLogRequest(actor=admin, target_id=10**20), PageRequest()
    )
    assert (page.items, page.total) == ([], 0)
