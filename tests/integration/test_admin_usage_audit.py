"""Token usage per user and model over a date range, and the audit log of admin actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.admin_support import add_message, make_staff, start, word
from tests.integration.conftest import Account
from tests.integration.servers import RunningServer


@pytest.fixture(scope="module")
def staff(server: RunningServer) -> Account:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return make_staff(server, client)


def _usage(client: httpx.Client, staff: Account, **params: str | int) -> list[dict[str, Any]]:
    response = client.get("/api/admin/usage/", params=params, headers=staff.bearer)
    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == str(len(response.json()))
    rows: list[dict[str, Any]] = response.json()
    return rows


def _tokens(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["username"], r["model"], r["requests"], r["prompt_tokens"], r["completion_tokens"])
        for r in rows
    ]


def test_usage_is_aggregated_per_user_and_model_over_a_date_range(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account, bob: Account
) -> None:
    fast, big = word("fast-"), word("big-")
    a, b = start(client, alice), start(client, bob)

    def reply(conversation: int, model: str, when: datetime, prompt: int, completion: int) -> None:
        add_message(
            server,
            conversation,
            "answer",
            when,
            role="assistant",
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
        )

    march = datetime(2019, 3, 10, 12, 0, tzinfo=UTC)
    reply(a, fast, march, 10, 20)
    reply(a, fast, datetime(2019, 3, 31, 23, 59, 59, tzinfo=UTC), 1, 2)  # last second of 'to'
    reply(a, big, march, 100, 200)
    reply(b, fast, march, 5, 5)
    reply(a, fast, datetime(2019, 4, 1, tzinfo=UTC), 1000, 1000)  # the day after 'to'
    reply(a, fast, datetime(2019, 2, 28, 23, 59, 59, tzinfo=UTC), 1000, 1000)  # before 'from'
    add_message(server, a, "question", march, prompt_tokens=7)  # user messages are not usage
    add_message(server, a, "", march, role="assistant", model=fast, status="failed")

    march_only = {"from": "2019-03-01", "to": "2019-03-31"}
    assert _tokens(_usage(client, staff, **march_only, model=big)) == [
        (alice.username, big, 1, 100, 200)
    ]
    assert _tokens(_usage(client, staff, **march_only, model=fast)) == [
        (alice.username, fast, 3, 11, 22),  # a failed reply is a request with no tokens
        (bob.username, fast, 1, 5, 5),
    ]
    per_user = _usage(client, staff, **march_only, user=alice.username, group_by="user")
    assert _tokens(per_user) == [(alice.username, None, 4, 111, 222)]
    assert per_user[0]["user"] == alice.id
    assert per_user[0]["total_tokens"] == 333
    per_model = _usage(client, staff, **march_only, user=alice.username, group_by="model")
    assert _tokens(per_model) == [(None, big, 1, 100, 200), (None, fast, 3, 11, 22)]
    all_time = _usage(client, staff, user=alice.username, model=fast)
    assert _tokens(all_time) == [(alice.username, fast, 5, 2011, 2022)]
    instants = _usage(
        client,
        staff,
        model=fast,
        **{"from": "2019-03-10T12:00:00Z", "to": "2019-03-10T12:00:00Z"},
    )
    assert _tokens(instants) == [(alice.username, fast, 2, 10, 20), (bob.username, fast, 1, 5, 5)]
    assert _usage(client, staff, user="nobody_" + alice.username) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2019-02-30"}, "to"),
        ({"from": "2019-03-02", "to": "2019-03-01"}, "to"),
        ({"group_by": "week"}, "group_by"),
    ],
)
def test_bad_usage_parameters_are_field_errors(
    client: httpx.Client, staff: Account, params: dict[str, str], field: str
) -> None:
    response = client.get("/api/admin/usage/", params=params, headers=staff.bearer)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def _audit(client: httpx.Client, staff: Account, **params: str | int) -> list[dict[str, Any]]:
    response = client.get(
        "/api/admin/audit-log/", params={"actor": staff.username, **params}, headers=staff.bearer
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def test_every_admin_action_is_audited(
    server: RunningServer, client: httpx.Client, alice: Account
) -> None:
    admin = make_staff(server, client)  # a fresh admin: an empty audit trail
    before = datetime.now(UTC) - timedelta(seconds=1)
    conversation = start(client, alice)
    base = f"/api/admin/conversations/{conversation}"
    client.get(f"{base}/", headers=admin.bearer)
    client.post(f"{base}/close/", headers=admin.bearer)
    client.post(f"{base}/reopen/", headers=admin.bearer)
    client.post(f"/api/admin/users/{alice.id}/deactivate/", headers=admin.bearer)
    client.post(f"/api/admin/users/{alice.id}/reactivate/", headers=admin.bearer)
    # Reading lists, stats and usage changes nothing and is not an audited action.
    client.get("/api/admin/conversations/", headers=admin.bearer)
    client.get(f"{base}/stats/", headers=admin.bearer)
    after = datetime.now(UTC) + timedelta(seconds=1)

    entries = _audit(client, admin)
    assert [(e["action"], e["target_type"], e["target_id"]) for e in entries] == [
        ("user.reactivate", "user", alice.id),
        ("user.deactivate", "user", alice.id),
        ("conversation.reopen", "conversation", conversation),
        ("conversation.close", "conversation", conversation),
        ("conversation.view", "conversation", conversation),
    ]
    for entry in entries:
        assert entry["actor"] == admin.id
        assert entry["actor_username"] == admin.username
        when = datetime.fromisoformat(entry["created_at"].replace("Z", "+00:00"))
        assert before <= when <= after
    close = entries[3]
    assert close["details"] == {
        "owner_id": alice.id,
        "status_before": "active",
        "status_after": "closed",
    }
    assert entries[1]["details"] == {"username": alice.username, "was_active": True}

    closes = _audit(client, admin, action="conversation.close")
    assert [e["id"] for e in closes] == [close["id"]]
    about_alice = _audit(client, admin, target_type="user", target_id=alice.id)
    assert [e["action"] for e in about_alice] == ["user.reactivate", "user.deactivate"]


def test_refused_actions_leave_no_audit_entry(
    server: RunningServer, client: httpx.Client, bob: Account
) -> None:
    admin = make_staff(server, client)
    first = start(client, bob)
    client.post(f"/api/conversations/{first}/close/", headers=bob.bearer)
    for _ in range(10):
        start(client, bob)
    assert (
        client.post(f"/api/admin/conversations/{first}/reopen/", headers=admin.bearer).status_code
        == 409
    )
    assert (
        client.post("/api/admin/users/999999999/deactivate/", headers=admin.bearer).status_code
        == 404
    )
    assert (
        client.post(f"/api/admin/users/{admin.id}/deactivate/", headers=admin.bearer).status_code
        == 403
    )
    assert _audit(client, admin) == []
