"""The seed-004 conversation API (/api/conversations/...) over real HTTP."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _create(client: httpx.Client, who: Account) -> dict[str, Any]:
    response = client.post("/api/conversations/", headers=who.bearer)
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


def _close_all(client: httpx.Client, who: Account) -> None:
    listing = client.get("/api/conversations/?limit=500", headers=who.bearer).json()
    for conversation in listing:
        if conversation["status"] == "active":
            client.post(f"/api/conversations/{conversation['id']}/close/", headers=who.bearer)


def test_create_and_read_follow_the_seed_shape(client: httpx.Client, alice: Account) -> None:
    created = _create(client, alice)
    assert {"id", "user", "user_username", "status", "created_at", "updated_at", "messages"} <= set(
        created
    )
    assert created["user"] == alice.id
    assert created["user_username"] == alice.username
    assert created["status"] == "active"
    assert created["messages"] == []
    assert ISO_UTC.match(created["created_at"])

    detail = client.get(f"/api/conversations/{created['id']}/", headers=alice.bearer)
    assert detail.status_code == 200
    assert detail.json()["id"] == created["id"]

    listing = client.get("/api/conversations/", headers=alice.bearer)
    assert listing.status_code == 200
    assert [c["id"] for c in listing.json()] == [created["id"]]
    assert listing.headers["X-Total-Count"] == "1"


def test_send_message_stores_both_sides(client: httpx.Client, alice: Account) -> None:
    conversation = _create(client, alice)
    url = f"/api/conversations/{conversation['id']}"
    sent = client.post(f"{url}/send_message/", json={"message": "Hello, AI!"}, headers=alice.bearer)
    assert sent.status_code == 201
    body = sent.json()
    assert body["user_message"]["sender"] == "user"
    assert body["user_message"]["content"] == "Hello, AI!"
    assert body["ai_message"]["sender"] == "ai"
    assert body["ai_message"]["content"] == "Echo: Hello, AI!"
    for message in body.values():
        assert {"id", "sender", "content", "timestamp"} <= set(message)
        assert ISO_UTC.match(message["timestamp"])

    messages = client.get(f"{url}/messages/", headers=alice.bearer).json()
    assert [(m["sender"], m["content"]) for m in messages] == [
        ("user", "Hello, AI!"),
        ("ai", "Echo: Hello, AI!"),
    ]
    detail = client.get(f"{url}/", headers=alice.bearer).json()
    assert [m["id"] for m in detail["messages"]] == [m["id"] for m in messages]


def test_the_model_sees_the_conversation_history(client: httpx.Client, alice: Account) -> None:
    conversation = _create(client, alice)
    url = f"/api/conversations/{conversation['id']}/send_message/"
    client.post(url, json={"message": "first"}, headers=alice.bearer)
    second = client.post(url, json={"message": "second"}, headers=alice.bearer)
    assert second.json()["ai_message"]["content"] == "Echo: second"


def test_message_length_limits(server: RunningServer, client: httpx.Client, alice: Account) -> None:
    conversation = _create(client, alice)
    url = f"/api/conversations/{conversation['id']}/send_message/"
    at_limit = client.post(url, json={"message": "字" * 4000}, headers=alice.bearer)
    assert at_limit.status_code == 201

    for text in ("x" * 4001, "", "   \n"):
        response = client.post(url, json={"message": text}, headers=alice.bearer)
        assert response.status_code == 400
        assert list(response.json()) == ["message"]
        assert isinstance(response.json()["message"], list)
    missing = client.post(url, json={}, headers=alice.bearer)
    assert missing.status_code == 400
    assert missing.json() == {"message": ["This field is required."]}

    stored = query(
        server.settings.database_url,
        "SELECT count(*) FROM messages WHERE conversation_id = :id",
        id=conversation["id"],
    )
    assert stored == [(2,)]  # only the accepted exchange


def test_closed_conversations_take_no_messages_until_reopened(
    server: RunningServer, client: httpx.Client, alice: Account
) -> None:
    conversation = _create(client, alice)
    url = f"/api/conversations/{conversation['id']}"
    closed = client.post(f"{url}/close/", headers=alice.bearer)
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    again = client.post(f"{url}/close/", headers=alice.bearer)
    assert again.status_code == 200
    assert again.json()["status"] == "closed"

    refused = client.post(f"{url}/send_message/", json={"message": "hi"}, headers=alice.bearer)
    assert refused.status_code == 409
    assert refused.json()["code"] == "conversation_closed"
    assert "detail" in refused.json()
    assert query(
        server.settings.database_url,
        "SELECT count(*) FROM messages WHERE conversation_id = :id",
        id=conversation["id"],
    ) == [(0,)]

    reopened = client.post(f"{url}/reopen/", headers=alice.bearer)
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "active"
    assert client.post(f"{url}/reopen/", headers=alice.bearer).json()["status"] == "active"
    accepted = client.post(f"{url}/send_message/", json={"message": "hi"}, headers=alice.bearer)
    assert accepted.status_code == 201


def test_active_conversation_limit(client: httpx.Client, alice: Account) -> None:
    ids = [_create(client, alice)["id"] for _ in range(10)]
    over = client.post("/api/conversations/", headers=alice.bearer)
    assert over.status_code == 409
    assert over.json()["code"] == "active_conversation_limit"
    assert "detail" in over.json()

    client.post(f"/api/conversations/{ids[0]}/close/", headers=alice.bearer)
    assert client.post("/api/conversations/", headers=alice.bearer).status_code == 201
    # Full again: reopening the closed one would exceed the limit.
    reopen = client.post(f"/api/conversations/{ids[0]}/reopen/", headers=alice.bearer)
    assert reopen.status_code == 409
    assert reopen.json()["code"] == "active_conversation_limit"
    assert (
        client.get(f"/api/conversations/{ids[0]}/", headers=alice.bearer).json()["status"]
        == "closed"
    )


def test_fifty_parallel_creates_leave_exactly_ten_active(
    server: RunningServer, alice: Account
) -> None:
    async def fire() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            responses = await asyncio.gather(
                *(http.post("/api/conversations/", headers=alice.bearer) for _ in range(50))
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(fire())
    assert statuses.count(201) == 10
    assert statuses.count(409) == 40
    active = query(
        server.settings.database_url,
        "SELECT count(*) FROM conversations WHERE owner_id = :owner AND status = 'active'",
        owner=alice.id,
    )
    assert active == [(10,)]


def test_other_users_conversations_are_not_found(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    conversation = _create(client, alice)
    url = f"/api/conversations/{conversation['id']}"
    attempts = [
        client.get(f"{url}/", headers=bob.bearer),
        client.get(f"{url}/messages/", headers=bob.bearer),
        client.post(f"{url}/close/", headers=bob.bearer),
        client.post(f"{url}/reopen/", headers=bob.bearer),
        client.post(f"{url}/send_message/", json={"message": "mine now"}, headers=bob.bearer),
    ]
    for response in attempts:
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert alice.username not in response.text
    assert client.get("/api/conversations/", headers=bob.bearer).json() == []
    assert client.get(f"{url}/", headers=alice.bearer).json()["status"] == "active"


def test_pagination_headers_and_links(client: httpx.Client, alice: Account) -> None:
    conversation = _create(client, alice)
    url = f"/api/conversations/{conversation['id']}"
    for n in range(3):
        client.post(f"{url}/send_message/", json={"message": f"m{n}"}, headers=alice.bearer)

    first = client.get(f"{url}/messages/?limit=2", headers=alice.bearer)
    assert first.headers["X-Total-Count"] == "6"
    assert [m["content"] for m in first.json()] == ["m0", "Echo: m0"]
    links = httpx.Response(200, headers={"Link": first.headers["Link"]}).links
    assert "prev" not in links
    second = client.get(links["next"]["url"], headers=alice.bearer)
    assert [m["content"] for m in second.json()] == ["m1", "Echo: m1"]
    second_links = httpx.Response(200, headers={"Link": second.headers["Link"]}).links
    assert {"next", "prev"} <= set(second_links)
    last = client.get(f"{url}/messages/?limit=2&offset=4", headers=alice.bearer)
    assert 'rel="next"' not in last.headers.get("Link", "")


@pytest.mark.parametrize(
    ("query_string", "field"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("offset=-1", "offset"), ("limit=abc", "limit")],
)
def test_bad_pagination_parameters_are_field_errors(
    client: httpx.Client, alice: Account, query_string: str, field: str
) -> None:
    response = client.get(f"/api/conversations/?{query_string}", headers=alice.bearer)
    assert response.status_code == 400
    assert field in response.json()


def test_conversations_list_newest_first(client: httpx.Client, alice: Account) -> None:
    first, second = _create(client, alice), _create(client, alice)
    listing = client.get("/api/conversations/", headers=alice.bearer).json()
    assert [c["id"] for c in listing] == [second["id"], first["id"]]


def test_unknown_conversation_is_404(client: httpx.Client, alice: Account) -> None:
    response = client.get("/api/conversations/999999999/", headers=alice.bearer)
    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}


def test_totals_stay_exact_through_every_insert_and_delete(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    """X-Total-Count comes from counts stored with the conversation and the user (kept
    by the database's triggers), not from counting every row: they must never drift."""

    def conversations_total(who: Account) -> int:
        response = client.get("/api/conversations/?limit=1", headers=who.bearer)
        return int(response.headers["X-Total-Count"])

    def messages_total(conversation_id: int) -> int:
        response = client.get(
            f"/api/conversations/{conversation_id}/messages/?limit=1", headers=alice.bearer
        )
        return int(response.headers["X-Total-Count"])

    _close_all(client, alice)
    before = conversations_total(alice)
    kept, dropped = _create(client, alice)["id"], _create(client, alice)["id"]
    _create(client, bob)
    assert conversations_total(alice) == before + 2
    for n in range(3):
        client.post(
            f"/api/conversations/{kept}/send_message/",
            json={"message": f"k{n}"},
            headers=alice.bearer,
        )
    client.post(
        "/api/v1/messages/chat/",
        json={"conversation_id": dropped, "message": "bye"},
        headers=alice.bearer,
    )
    assert messages_total(kept) == 6
    assert messages_total(dropped) == 2
    assert (
        client.delete(f"/api/v1/conversations/{dropped}/", headers=alice.bearer).status_code == 204
    )
    assert conversations_total(alice) == before + 1
    assert messages_total(kept) == 6
    listed = client.get(f"/api/conversations/{kept}/messages/?limit=500", headers=alice.bearer)
    assert len(listed.json()) == 6


def test_a_new_users_first_chats_sent_together_all_succeed(
    client: httpx.Client, server: RunningServer
) -> None:
    # Each first turn makes the user's default chat settings; only one may store them.
    who = register(client)
    conversations = [_create(client, who)["id"] for _ in range(6)]

    def send(conversation: int) -> int:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            response = http.post(
                f"/api/conversations/{conversation}/send_message/",
                json={"message": "hello"},
                headers=who.bearer,
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(send, conversations))
    assert statuses == [201] * 6
    assert client.get("/api/chat-setting/", headers=who.bearer).status_code == 200
