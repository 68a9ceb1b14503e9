"""Every admin endpoint: anonymous is 401, a signed-in non-staff user 403, staff allowed."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.integration.admin_support import make_staff, start
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query


@dataclass
class Targets:
    staff: Account
    user: Account
    conversation_id: int
    victim_id: int


@pytest.fixture(scope="module")
def targets(server: RunningServer) -> Targets:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = register(client, "plain")
        victim = register(client, "victim")
        return Targets(
            staff=make_staff(server, client),
            user=user,
            conversation_id=start(client, user),
            victim_id=victim.id,
        )


ENDPOINTS = [
    ("GET", "/api/admin/conversations/"),
    ("GET", "/api/admin/conversations/?user=x&status=active&search=hello"),
    ("GET", "/api/admin/conversations/{conversation}/"),
    ("POST", "/api/admin/conversations/{conversation}/close/"),
    ("POST", "/api/admin/conversations/{conversation}/reopen/"),
    ("GET", "/api/admin/conversations/{conversation}/stats/"),
    ("GET", "/api/admin/users/"),
    ("POST", "/api/admin/users/{victim}/deactivate/"),
    ("POST", "/api/admin/users/{victim}/reactivate/"),
    ("GET", "/api/admin/usage/?from=2020-01-01&to=2030-12-31"),
    ("GET", "/api/admin/audit-log/"),
]


def _url(template: str, targets: Targets) -> str:
    return template.format(conversation=targets.conversation_id, victim=targets.victim_id)


@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
def test_permission_matrix(
    server: RunningServer,
    client: httpx.Client,
    targets: Targets,
    method: str,
    template: str,
) -> None:
    url = _url(template, targets)

    anonymous = client.request(method, url)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert "www-authenticate" in anonymous.headers

    not_staff = client.request(method, url, headers=targets.user.bearer)
    assert not_staff.status_code == 403
    assert not_staff.json() == {
        "detail": "Only staff members can use the admin API.",
        "code": "permission_denied",
    }

    allowed = client.request(method, url, headers=targets.staff.bearer)
    assert allowed.status_code == 200, allowed.text


def test_non_staff_changes_nothing(
    server: RunningServer, client: httpx.Client, targets: Targets
) -> None:
    for template in [
        "/api/admin/conversations/{conversation}/close/",
        "/api/admin/users/{victim}/deactivate/",
    ]:
        assert client.post(_url(template, targets), headers=targets.user.bearer).status_code == 403
    url = server.settings.database_url
    assert query(
        url, "SELECT status FROM conversations WHERE id = :id", id=targets.conversation_id
    ) == [("active",)]
    assert query(url, "SELECT is_active FROM users WHERE id = :id", id=targets.victim_id) in (
        [(True,)],
        [(1,)],
    )
    assert query(
        url, "SELECT count(*) FROM audit_log WHERE actor_id = :id", id=targets.user.id
    ) == [(0,)]


def test_non_staff_cannot_probe_which_conversations_exist(
    client: httpx.Client, targets: Targets
) -> None:
    missing = client.get("/api/admin/conversations/999999999/", headers=targets.user.bearer)
    assert missing.status_code == 403
    assert (
        client.get("/api/admin/conversations/999999999/", headers=targets.staff.bearer).status_code
        == 404
    )


def test_api_tokens_work_for_staff_too(client: httpx.Client, targets: Targets) -> None:
    token = client.post(
        "/api/auth/token/",
        json={"username": targets.staff.username, "password": targets.staff.password},
    ).json()["token"]
    response = client.get("/api/admin/users/", headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200


def test_impossible_ids_and_null_characters_are_client_errors(
    client: httpx.Client, targets: Targets
) -> None:
    staff = targets.staff.bearer
    for path in (
        f"/api/admin/conversations/{2**40}/",
        f"/api/admin/conversations/{10**20}/stats/",
    ):
        assert client.get(path, headers=staff).status_code == 404
    for path in (f"/api/admin/users/{2**40}/deactivate/", f"/api/admin/users/{10**20}/reactivate/"):
        assert client.post(path, headers=staff).status_code == 404
    audit = client.get(f"/api/admin/audit-log/?target_id={2**40}", headers=staff)
    assert audit.status_code == 200
    assert audit.json() == []
    for params, field in (({"search": "a\x00b"}, "search"), ({"user": "x\x00"}, "user")):
        refused = client.get("/api/admin/conversations/", params=params, headers=staff)
        assert refused.status_code == 400
        assert refused.json() == {field: ["Null characters are not allowed."]}
