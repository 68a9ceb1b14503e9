"""A turn's caller is confirmed in the turn's own first transaction (one transaction less
per chat turn): a bearer access token that is still signed and unexpired but whose user
was deactivated, signed out everywhere, or whose login was revoked by a replayed refresh
token is refused 401 by every endpoint that sends a message, streamed or not, in the
dialect's shape, before anything is stored."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.integration.admin_support import make_staff
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query


def _deactivated(client: httpx.Client, server: RunningServer, user: Account) -> None:
    staff = make_staff(server, client)
    response = client.post(f"/api/admin/users/{user.id}/deactivate/", headers=staff.bearer)
    assert response.status_code == 200, response.text


def _signed_out_everywhere(client: httpx.Client, server: RunningServer, user: Account) -> None:
    assert client.post("/api/auth/logout-everywhere/", headers=user.bearer).status_code == 204


def _login_revoked(client: httpx.Client, server: RunningServer, user: Account) -> None:
    # Refresh once (rotation), then replay the spent refresh token: the login is revoked.
    assert client.post("/api/v1/token/refresh/", json={"refresh": user.refresh}).status_code == 200
    replay = client.post("/api/v1/token/refresh/", json={"refresh": user.refresh})
    assert replay.status_code == 401


REVOCATIONS: dict[str, Callable[[httpx.Client, RunningServer, Account], None]] = {
    "deactivated": _deactivated,
    "signed out everywhere": _signed_out_everywhere,
    "login revoked": _login_revoked,
}


def _turns(
    conversation: int, question: int, reply: int
) -> list[tuple[str, str, dict[str, object]]]:
    """(dialect, path, body) of every endpoint that sends a message."""
    return [
        ("v1", "/api/v1/messages/chat/", {"conversation_id": conversation, "message": "hi"}),
        (
            "v1",
            "/api/v1/messages/chat/",
            {"conversation_id": conversation, "message": "hi", "stream": True},
        ),
        ("v1", "/api/v1/messages/chat/", {"message": "a new conversation"}),
        ("drf", f"/api/conversations/{conversation}/send_message/", {"message": "hi"}),
        (
            "drf",
            f"/api/conversations/{conversation}/send_message/",
            {"message": "hi", "stream": True},
        ),
        ("drf", f"/api/messages/{reply}/regenerate/", {}),
        ("drf", f"/api/messages/{question}/edit/", {"message": "edited"}),
        ("v1", f"/api/v1/messages/{reply}/regenerate/", {}),
        ("v1", f"/api/v1/messages/{question}/edit/", {"message": "edited"}),
    ]


def _stored(server: RunningServer, user: Account) -> tuple[int, int]:
    [(conversations, messages)] = query(
        server.settings.database_url,
        "SELECT (SELECT count(*) FROM conversations WHERE owner_id = :id),"
        " (SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        "  WHERE c.owner_id = :id)",
        id=user.id,
    )
    return int(conversations), int(messages)


@pytest.mark.parametrize("revocation", REVOCATIONS)
def test_a_revoked_caller_sends_nothing_through_any_turn_endpoint(
    server: RunningServer, client: httpx.Client, revocation: str
) -> None:
    user = register(client, "revoked")
    sent = client.post("/api/v1/messages/chat/", json={"message": "first"}, headers=user.bearer)
    assert sent.status_code == 201, sent.text
    conversation = sent.json()["conversation_id"]
    question, reply = sent.json()["user_message"]["id"], sent.json()["ai_message"]["id"]
    before = _stored(server, user)

    REVOCATIONS[revocation](client, server, user)

    # What the same credentials get where nothing is sent: the 401 of each dialect.
    refused = {
        dialect: client.get(path, headers=user.bearer)
        for dialect, path in (("drf", "/api/conversations/"), ("v1", "/api/v1/conversations/"))
    }
    assert {r.status_code for r in refused.values()} == {401}
    for dialect, path, body in _turns(conversation, question, reply):
        response = client.post(path, json=body, headers=user.bearer)
        assert response.status_code == 401, (path, body, response.text)
        assert response.json() == refused[dialect].json(), path
        assert response.headers["WWW-Authenticate"] == refused[dialect].headers["WWW-Authenticate"]
    assert _stored(server, user) == before


def test_a_confirmed_caller_still_sends_on_every_turn_endpoint(
    server: RunningServer, client: httpx.Client
) -> None:
    user = register(client, "confirmed")
    sent = client.post("/api/v1/messages/chat/", json={"message": "first"}, headers=user.bearer)
    conversation = sent.json()["conversation_id"]
    question, reply = sent.json()["user_message"]["id"], sent.json()["ai_message"]["id"]
    for _, path, body in _turns(conversation, question, reply):
        response = client.post(path, json=body, headers=user.bearer)
        assert response.status_code in (200, 201), (path, body, response.text)
