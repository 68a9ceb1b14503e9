"""The seed-000 dialect (/api/v1/...) on the same data as the seed-004 dialect (/api/...)."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.servers import RunningServer, query


def test_conversation_crud_in_the_seed_shape(client: httpx.Client, alice: Account) -> None:
    created = client.post(
        "/api/v1/conversations/", json={"title": "我的会话", "model": "echo"}, headers=alice.bearer
    )
    assert created.status_code == 201
    body = created.json()
    assert {"id", "user", "title", "model", "created_at", "updated_at"} <= set(body)
    assert (body["user"], body["title"], body["model"]) == (alice.id, "我的会话", "echo")
    url = f"/api/v1/conversations/{body['id']}/"

    assert client.get(url, headers=alice.bearer).json()["title"] == "我的会话"
    renamed = client.put(url, json={"title": "renamed"}, headers=alice.bearer)
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "renamed"
    patched = client.patch(url, json={"status": "closed"}, headers=alice.bearer)
    assert patched.json()["status"] == "closed"
    assert patched.json()["title"] == "renamed"

    assert client.delete(url, headers=alice.bearer).status_code == 204
    assert client.get(url, headers=alice.bearer).status_code == 404


def test_both_dialects_see_the_same_conversations(client: httpx.Client, alice: Account) -> None:
    v1 = client.post("/api/v1/conversations/", json={"title": "from v1"}, headers=alice.bearer)
    api = client.post("/api/conversations/", headers=alice.bearer)
    v1_ids = [c["id"] for c in client.get("/api/v1/conversations/", headers=alice.bearer).json()]
    api_ids = [c["id"] for c in client.get("/api/conversations/", headers=alice.bearer).json()]
    assert v1_ids == api_ids == [api.json()["id"], v1.json()["id"]]

    chat = client.post(
        "/api/v1/messages/chat/",
        json={"conversation_id": v1.json()["id"], "message": "hello from v1"},
        headers=alice.bearer,
    )
    assert chat.status_code == 201
    seen_in_004 = client.get(
        f"/api/conversations/{v1.json()['id']}/messages/", headers=alice.bearer
    ).json()
    assert [m["content"] for m in seen_in_004] == ["hello from v1", "Echo: hello from v1"]


def test_chat_without_a_conversation_starts_one_titled_from_the_message(
    client: httpx.Client, alice: Account
) -> None:
    response = client.post(
        "/api/v1/messages/chat/",
        json={"message": "你好，世界！ Tell me about Parley"},
        headers=alice.bearer,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "completed"
    assert body["user_message"]["role"] == "user"
    assert body["ai_message"]["role"] == "assistant"
    assert body["user_message"]["conversation"] == body["conversation_id"]
    assert {"id", "conversation", "role", "content", "created_at"} <= set(body["ai_message"])
    conversation = client.get(
        f"/api/v1/conversations/{body['conversation_id']}/", headers=alice.bearer
    ).json()
    assert conversation["title"] == "你好，世界！ Tell me about Parley"


def test_a_refused_chat_starts_no_conversation(
    server: RunningServer, client: httpx.Client, alice: Account
) -> None:
    too_long = client.post(
        "/api/v1/messages/chat/", json={"message": "x" * 4001}, headers=alice.bearer
    )
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "message_too_long"
    assert "message" in too_long.json()["fields"]
    assert query(
        server.settings.database_url,
        "SELECT count(*) FROM conversations WHERE owner_id = :id",
        id=alice.id,
    ) == [(0,)]


def test_messages_across_conversations_filter_and_paginate(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    first = client.post("/api/v1/messages/chat/", json={"message": "one"}, headers=alice.bearer)
    client.post("/api/v1/messages/chat/", json={"message": "two"}, headers=alice.bearer)
    client.post("/api/v1/messages/chat/", json={"message": "bob's"}, headers=bob.bearer)

    everything = client.get("/api/v1/messages/", headers=alice.bearer)
    assert everything.headers["X-Total-Count"] == "4"
    assert [m["content"] for m in everything.json()] == ["one", "Echo: one", "two", "Echo: two"]

    only_first = client.get(
        f"/api/v1/messages/?conversation_id={first.json()['conversation_id']}&limit=1",
        headers=alice.bearer,
    )
    assert only_first.headers["X-Total-Count"] == "2"
    assert [m["content"] for m in only_first.json()] == ["one"]
    assert 'rel="next"' in only_first.headers["Link"]

    foreign = client.get(
        f"/api/v1/messages/?conversation_id={first.json()['conversation_id']}",
        headers=bob.bearer,
    )
    assert foreign.status_code == 404
    assert set(foreign.json()) == {"error", "code"}


def test_deleting_frees_an_active_slot_and_removes_messages(
    server: RunningServer, client: httpx.Client, alice: Account
) -> None:
    ids = [
        client.post("/api/v1/conversations/", json={}, headers=alice.bearer).json()["id"]
        for _ in range(10)
    ]
    client.post(
        "/api/v1/messages/chat/",
        json={"conversation_id": ids[0], "message": "hi"},
        headers=alice.bearer,
    )
    full = client.post("/api/v1/conversations/", json={}, headers=alice.bearer)
    assert full.status_code == 409
    assert full.json()["code"] == "active_conversation_limit"
    assert "error" in full.json()

    assert (
        client.delete(f"/api/v1/conversations/{ids[0]}/", headers=alice.bearer).status_code == 204
    )
    assert query(
        server.settings.database_url,
        "SELECT count(*) FROM messages WHERE conversation_id = :id",
        id=ids[0],
    ) == [(0,)]
    assert client.post("/api/v1/conversations/", json={}, headers=alice.bearer).status_code == 201


@pytest.mark.parametrize(
    ("method", "path_suffix", "body"),
    [
        ("GET", "/", None),
        ("PUT", "/", {"title": "mine"}),
        ("PATCH", "/", {"title": "mine"}),
        ("DELETE", "/", None),
        ("GET", "/messages/", None),
    ],
)
def test_another_users_conversation_is_404_in_v1(
    client: httpx.Client, alice: Account, bob: Account, method: str, path_suffix: str, body: object
) -> None:
    conversation = client.post("/api/v1/conversations/", json={}, headers=alice.bearer).json()
    response = client.request(
        method,
        f"/api/v1/conversations/{conversation['id']}{path_suffix}",
        json=body,
        headers=bob.bearer,
    )
    assert response.status_code == 404
    assert set(response.json()) == {"error", "code"}
    assert (
        client.get(f"/api/v1/conversations/{conversation['id']}/", headers=alice.bearer).status_code
        == 200
    )


def test_v1_validation_errors(client: httpx.Client, alice: Account) -> None:
    bad = client.post(
        "/api/v1/conversations/", json={"title": 5, "model": "nope"}, headers=alice.bearer
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"
    assert "title" in bad.json()["fields"]
    unknown_model = client.post(
        "/api/v1/conversations/", json={"model": "nope"}, headers=alice.bearer
    )
    assert unknown_model.status_code == 400
    assert "model" in unknown_model.json()["fields"]
    conversation = client.post("/api/v1/conversations/", json={}, headers=alice.bearer).json()
    status = client.patch(
        f"/api/v1/conversations/{conversation['id']}/",
        json={"status": "paused"},
        headers=alice.bearer,
    )
    assert status.status_code == 400
    assert "status" in status.json()["fields"]
    no_title = client.put(
        f"/api/v1/conversations/{conversation['id']}/", json={}, headers=alice.bearer
    )
    assert no_title.status_code == 400
    assert no_title.json()["fields"] == {"title": ["This field is required."]}
    unauthenticated = client.get("/api/v1/conversations/")
    assert unauthenticated.status_code == 401
    assert set(unauthenticated.json()) == {"error", "code"}
