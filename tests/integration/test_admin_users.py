"""Admin view of accounts: the users list with its counts, deactivation and
reactivation (and what a deactivated user can no longer do)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.integration.admin_support import add_message, make_staff, start
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer


@pytest.fixture(scope="module")
def staff(server: RunningServer) -> Account:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return make_staff(server, client)


def _users(client: httpx.Client, staff: Account, **params: str | int) -> httpx.Response:
    response = client.get("/api/admin/users/", params=params, headers=staff.bearer)
    assert response.status_code == 200, response.text
    return response


def test_users_list_counts_conversations_and_messages(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account, bob: Account
) -> None:
    first, second = start(client, alice), start(client, alice)
    at = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    for conversation, count in ((first, 2), (second, 1)):
        for n in range(count):
            add_message(server, conversation, f"message {n}", at)

    listing = _users(client, staff, username=alice.username)
    assert listing.headers["X-Total-Count"] == "1"
    (row,) = listing.json()
    assert row["id"] == alice.id
    assert row["username"] == alice.username
    assert row["email"] == alice.email
    assert (row["is_staff"], row["is_active"]) == (False, True)
    assert row["date_joined"].endswith("Z")
    assert (row["conversation_count"], row["total_messages"]) == (2, 3)
    assert "password" not in str(row)

    newest = _users(client, staff, limit=2).json()
    assert [u["id"] for u in newest] == [bob.id, alice.id]  # newest first
    assert (newest[0]["conversation_count"], newest[0]["total_messages"]) == (0, 0)
    assert _users(client, staff, username="nobody_" + alice.username).json() == []
    assert int(_users(client, staff).headers["X-Total-Count"]) >= 3


def test_a_deactivated_user_is_locked_out_at_once(
    server: RunningServer, client: httpx.Client, staff: Account
) -> None:
    carol = register(client, "carol")
    api_token = client.post(
        "/api/auth/token/", json={"username": carol.username, "password": carol.password}
    ).json()["token"]
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        assert (
            browser.post(
                "/api/auth/session/", json={"username": carol.username, "password": carol.password}
            ).status_code
            == 200
        )
        assert browser.get("/api/conversations/").status_code == 200

        deactivated = client.post(f"/api/admin/users/{carol.id}/deactivate/", headers=staff.bearer)
        assert deactivated.status_code == 200
        assert deactivated.json()["is_active"] is False
        assert deactivated.json()["username"] == carol.username

        assert client.get("/api/conversations/", headers=carol.bearer).status_code == 401
        token_header = {"Authorization": f"Token {api_token}"}
        assert client.get("/api/conversations/", headers=token_header).status_code == 401
        assert browser.get("/api/conversations/").status_code == 401
    refresh = client.post("/api/v1/token/refresh/", json={"refresh": carol.refresh})
    assert refresh.status_code == 401
    credentials = {"username": carol.username, "password": carol.password}
    assert client.post("/api/v1/login/", json=credentials).status_code == 401
    assert _users(client, staff, username=carol.username).json()[0]["is_active"] is False

    reactivated = client.post(f"/api/admin/users/{carol.id}/reactivate/", headers=staff.bearer)
    assert reactivated.status_code == 200
    assert reactivated.json()["is_active"] is True
    # What was issued before stays revoked; signing in again works.
    assert client.get("/api/conversations/", headers=carol.bearer).status_code == 401
    assert client.get("/api/conversations/", headers=token_header).status_code == 401
    again = client.post("/api/v1/login/", json=credentials)
    assert again.status_code == 200
    fresh = {"Authorization": f"Bearer {again.json()['access']}"}
    assert client.get("/api/conversations/", headers=fresh).status_code == 200


def test_deactivation_is_idempotent_and_other_users_are_untouched(
    client: httpx.Client, staff: Account, alice: Account, bob: Account
) -> None:
    for _ in range(2):
        response = client.post(f"/api/admin/users/{alice.id}/deactivate/", headers=staff.bearer)
        assert response.status_code == 200
        assert response.json()["is_active"] is False
    assert client.get("/api/conversations/", headers=bob.bearer).status_code == 200
    assert client.get("/api/admin/users/", headers=staff.bearer).status_code == 200


def test_admins_cannot_deactivate_themselves(client: httpx.Client, staff: Account) -> None:
    refused = client.post(f"/api/admin/users/{staff.id}/deactivate/", headers=staff.bearer)
    assert refused.status_code == 403
    assert refused.json()["code"] == "cannot_deactivate_self"
    assert client.get("/api/admin/users/", headers=staff.bearer).status_code == 200


def test_unknown_users_are_not_found(client: httpx.Client, staff: Account) -> None:
    for action in ("deactivate", "reactivate"):
        response = client.post(f"/api/admin/users/999999999/{action}/", headers=staff.bearer)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_a_deactivated_admin_loses_the_admin_api(
    server: RunningServer, client: httpx.Client, staff: Account
) -> None:
    other = make_staff(server, client, "admin2")
    assert client.get("/api/admin/users/", headers=other.bearer).status_code == 200
    client.post(f"/api/admin/users/{other.id}/deactivate/", headers=staff.bearer)
    assert client.get("/api/admin/users/", headers=other.bearer).status_code == 401
