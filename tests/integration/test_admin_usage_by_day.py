"""Admin usage grouped by UTC day (the admin page's chart): daily totals, oldest day first,
combined with the other groupings, the filters and pagination, over HTTP on SQLite and
PostgreSQL. Every test uses models or accounts of its own, as the server is shared."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.persistence import tables as t
from adapters.persistence.admin_queries import SqlAdminQueries
from adapters.persistence.database import create_engine
from application.admin_ports import UsageCriteria
from application.pagination import PageRequest
from domain.monitoring import TimeRange
from tests.integration.admin_support import add_message, make_staff, start, word
from tests.integration.conftest import Account
from tests.integration.servers import RunningServer

DAY_ONE = datetime(2026, 12, 1, tzinfo=UTC)
DAY_TWO = DAY_ONE + timedelta(days=1)
DAY_THREE = DAY_TWO + timedelta(days=1)
BAD_GROUP_BY = {"group_by": ['Use "user", "model" and "day", each at most once, e.g. "day,model".']}


@pytest.fixture(scope="module")
def staff(server: RunningServer) -> Account:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return make_staff(server, client)


def _get(client: httpx.Client, staff: Account, **params: str | int) -> httpx.Response:
    response = client.get("/api/admin/usage/", params=params, headers=staff.bearer)
    assert response.status_code == 200, response.text
    return response


def _usage(client: httpx.Client, staff: Account, **params: str | int) -> list[dict[str, Any]]:
    response = _get(client, staff, **params)
    assert response.headers["X-Total-Count"] == str(len(response.json()))
    rows: list[dict[str, Any]] = response.json()
    return rows


def _days(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["day"], r["username"], r["model"], r["requests"], r["total_tokens"]) for r in rows]


def _reply(
    server: RunningServer,
    conversation: int,
    model: str,
    when: datetime,
    prompt: int,
    completion: int,
    status: str = "completed",
) -> None:
    add_message(
        server,
        conversation,
        "answer",
        when,
        role="assistant",
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        status=status,
    )


def _call(server: RunningServer, user_id: int, model: str, when: datetime, prompt: int) -> None:
    """A call of the OpenAI-compatible endpoint that no conversation keeps."""

    async def run() -> None:
        engine = create_engine(server.settings.database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    t.model_calls.insert().values(
                        user_id=user_id,
                        model=model,
                        provider="test",
                        status="completed",
                        prompt_tokens=prompt,
                        completion_tokens=0,
                        reasoning_tokens=0,
                        latency_ms=5,
                        created_at=when,
                    )
                )
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_usage_by_day_gives_daily_totals_oldest_day_first(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account
) -> None:
    fast, big = word("fast-"), word("big-")
    chat = start(client, alice)
    _reply(server, chat, big, DAY_ONE + timedelta(hours=12), 100, 200)
    _reply(server, chat, fast, DAY_ONE + timedelta(hours=20), 10, 20)  # day two in Beijing
    _reply(server, chat, fast, DAY_TWO - timedelta(microseconds=1), 1, 2)
    _reply(server, chat, fast, DAY_TWO, 500, 500)
    _reply(server, chat, big, DAY_TWO + timedelta(hours=1), 0, 0, status="failed")
    _call(server, alice.id, fast, DAY_TWO + timedelta(hours=12), 1000)
    add_message(server, chat, "question", DAY_TWO, prompt_tokens=7)  # not usage
    one, two = "2026-12-01", "2026-12-02"
    me = alice.username

    per_day = _usage(client, staff, user=me, group_by="day")
    assert _days(per_day) == [(one, None, None, 3, 333), (two, None, None, 3, 2000)]
    assert per_day[0]["user"] is None
    assert [r["prompt_tokens"] for r in per_day] == [111, 1500]
    # Day two's 2000 tokens come after day one's 300: the day orders before the tokens.
    day_model = [(one, None, big, 1, 300), (one, None, fast, 2, 33)]
    day_model += [(two, None, fast, 2, 2000), (two, None, big, 1, 0)]
    assert _days(_usage(client, staff, user=me, group_by="day,model")) == day_model
    assert _days(_usage(client, staff, user=me, group_by=" model , day")) == day_model
    per_user = _usage(client, staff, user=me, group_by="user,day")
    assert _days(per_user) == [(one, me, None, 3, 333), (two, me, None, 3, 2000)]
    assert {r["user"] for r in per_user} == {alice.id}
    everything = _usage(client, staff, user=me, group_by="day,user,model")
    assert [(r["day"], r["model"]) for r in everything] == [(d, m) for d, _, m, _, _ in day_model]
    # Without day: no day, and most tokens first over the whole period, as before.
    assert _days(_usage(client, staff, user=me)) == [
        (None, me, fast, 4, 2033),
        (None, me, big, 2, 300),
    ]


def test_usage_by_day_keeps_the_filters_and_pages(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account, bob: Account
) -> None:
    model, other = word("m-"), word("other-")
    a, b = start(client, alice), start(client, bob)
    for day, alices, bobs in ((DAY_ONE, 10, 20), (DAY_TWO, 40, 30), (DAY_THREE, 5, 0)):
        _reply(server, a, model, day + timedelta(hours=9), alices, 0)
        if bobs:
            _reply(server, b, model, day + timedelta(hours=9), bobs, 0)
    _reply(server, a, other, DAY_TWO, 999, 0)
    pair = (alice.username, bob.username)

    by_day_user = _usage(client, staff, model=model, group_by="day,user")
    assert _days(by_day_user) == [
        ("2026-12-01", pair[1], None, 1, 20),
        ("2026-12-01", pair[0], None, 1, 10),
        ("2026-12-02", pair[0], None, 1, 40),
        ("2026-12-02", pair[1], None, 1, 30),
        ("2026-12-03", pair[0], None, 1, 5),
    ]
    second_day = {"from": "2026-12-02", "to": "2026-12-02"}
    assert _days(_usage(client, staff, model=model, group_by="day", **second_day)) == [
        ("2026-12-02", None, None, 2, 70)
    ]
    from_noon = {"from": "2026-12-01T12:00:00Z"}
    assert _days(_usage(client, staff, user=bob.username, group_by="day", **from_noon)) == [
        ("2026-12-02", None, None, 1, 30)
    ]
    assert _days(_usage(client, staff, user=alice.username, model=model, group_by="day")) == [
        ("2026-12-01", None, None, 1, 10),
        ("2026-12-02", None, None, 1, 40),
        ("2026-12-03", None, None, 1, 5),
    ]

    page = _get(client, staff, model=model, group_by="day,user", limit=2, offset=2)
    assert page.headers["X-Total-Count"] == "5"
    assert _days(page.json()) == _days(by_day_user[2:4])
    assert 'rel="next"' in page.headers["Link"]
    assert 'rel="prev"' in page.headers["Link"]


@pytest.mark.parametrize("value", ["week", "day,day", "user;day", "Day", ","])
def test_a_bad_group_by_names_the_keys(client: httpx.Client, staff: Account, value: str) -> None:
    response = client.get("/api/admin/usage/", params={"group_by": value}, headers=staff.bearer)
    assert response.status_code == 400
    assert response.json() == BAD_GROUP_BY


def test_the_day_is_the_utc_date_whatever_the_database_session_zone(
    server: RunningServer, client: httpx.Client, alice: Account
) -> None:
    """The app's PostgreSQL sessions run in UTC here, so over HTTP ``created_at::date``
    would look right too; a session in Beijing tells the two apart. SQLite has no
    session zone and must give the same days."""
    model = word("tz-")
    chat = start(client, alice)
    late = DAY_ONE + timedelta(hours=20)  # 04:00 on the second in Beijing

    async def run() -> list[tuple[Any, ...]]:
        engine = create_engine(server.settings.database_url)
        try:
            async with engine.connect() as connection, connection.begin() as transaction:
                if connection.dialect.name == "postgresql":
                    await connection.exec_driver_sql("SET LOCAL TIME ZONE 'Asia/Shanghai'")
                for when, tokens in ((late, 1), (DAY_TWO + timedelta(hours=20), 2)):
                    await connection.execute(
                        t.messages.insert().values(
                            conversation_id=chat,
                            role="assistant",
                            content="answer",
                            status="completed",
                            model=model,
                            prompt_tokens=tokens,
                            completion_tokens=0,
                            created_at=when,
                        )
                    )
                criteria = UsageCriteria(
                    period=TimeRange(), model=model, by_user=False, by_model=False, by_day=True
                )
                page = await SqlAdminQueries(connection).usage(criteria, PageRequest())
                await transaction.rollback()
                return [(row.day, row.total_tokens) for row in page.items]
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == [(DAY_ONE.date(), 1), (DAY_TWO.date(), 2)]
