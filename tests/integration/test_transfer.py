"""Export and import over HTTP, in both dialects, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query

FIXTURE = Path(__file__).parents[1] / "fixtures" / "chatgpt" / "conversations.json"
DIALECTS = ["/api/v1", "/api"]


def _message(
    id_: int, parent: int | None, text: str, *, on_branch: bool, **extra: Any
) -> dict[str, Any]:
    return {
        "id": id_,
        "parent_id": parent,
        "role": "user" if text.startswith("Q") else "assistant",
        "content": text,
        "created_at": f"2024-05-01T10:00:{id_:02d}+00:00",
        "on_current_branch": on_branch,
    } | extra


def _branched_export() -> dict[str, Any]:
    """A conversation where the answer was regenerated and the question edited."""
    messages = [
        _message(10, None, "Q: what is a tree?", on_branch=False),
        _message(11, 10, "A: a graph without cycles", on_branch=False, model="gpt-4o"),
        _message(12, 10, "A: a plant", on_branch=False, prompt_tokens=7, completion_tokens=3),
        _message(13, None, "Q: what is a tree, in graphs?", on_branch=True),
        _message(14, 13, "A: connected and acyclic", on_branch=True, status="partial"),
    ]
    conversations = [
        {
            "title": "Trees 🌳",
            "model": None,
            "created_at": "2024-05-01T10:00:00+00:00",
            "pinned_at": "2024-05-02T00:00:00+00:00",
            "messages": messages,
        },
        {"title": "", "created_at": "2024-05-03T10:00:00+00:00", "messages": []},
    ]
    return {"format": "parley-conversations", "version": 1, "conversations": conversations}


def _import(client: httpx.Client, who: Account, prefix: str, document: object) -> httpx.Response:
    return client.post(f"{prefix}/conversations/import/", json=document, headers=who.bearer)


def _export(
    client: httpx.Client,
    who: Account,
    prefix: str,
    conversation: int | None = None,
    fmt: str = "json",
) -> httpx.Response:
    path = (
        "/conversations/export/"
        if conversation is None
        else f"/conversations/{conversation}/export/"
    )
    return client.get(f"{prefix}{path}", params={"format": fmt}, headers=who.bearer)


def _structure(conversation: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a round trip keeps, without the ids: parents as positions."""
    position = {m["id"]: i for i, m in enumerate(conversation["messages"])}
    return [
        (
            m["role"],
            m["content"],
            m["status"],
            m["model"],
            m["prompt_tokens"],
            m["completion_tokens"],
            m["created_at"],
            m["on_current_branch"],
            None if m["parent_id"] is None else position[m["parent_id"]],
        )
        for m in conversation["messages"]
    ]


def _counts(server: RunningServer, who: Account) -> tuple[int, int]:
    url = server.settings.database_url
    conversations = query(url, "SELECT count(*) FROM conversations WHERE owner_id = :o", o=who.id)
    messages = query(
        url,
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.owner_id = :o",
        o=who.id,
    )
    return conversations[0][0], messages[0][0]


@pytest.mark.parametrize("prefix", DIALECTS)
def test_export_then_import_round_trip(
    client: httpx.Client, alice: Account, bob: Account, prefix: str
) -> None:
    created = _import(client, alice, prefix, _branched_export())
    assert created.status_code == 201, created.text
    first_id = created.json()["conversations"][0]["id"]
    # A conversation with a real turn too, from the echo model.
    chat = client.post("/api/conversations/", headers=alice.bearer).json()
    sent = client.post(
        f"/api/conversations/{chat['id']}/send_message/",
        json={"message": "Hello"},
        headers=alice.bearer,
    )
    assert sent.status_code in (200, 201), sent.text

    exported = _export(client, alice, prefix)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/json")
    assert exported.headers["content-disposition"].startswith("attachment; filename=")
    original = exported.json()
    assert original["format"] == "parley-conversations"
    assert original["version"] == 1
    assert [c["title"] for c in original["conversations"]] == ["Trees 🌳", "", chat["title"]]

    again = _import(client, bob, prefix, original)
    assert again.status_code == 201, again.text
    new_ids = [c["id"] for c in again.json()["conversations"]]
    assert not set(new_ids) & {c["id"] for c in original["conversations"]}
    copied = _export(client, bob, prefix).json()
    assert [c["title"] for c in copied["conversations"]] == [
        c["title"] for c in original["conversations"]
    ]
    for before, after in zip(original["conversations"], copied["conversations"], strict=True):
        assert _structure(after) == _structure(before)
        assert after["status"] == "closed"
        assert after["pinned_at"] == before["pinned_at"]
        assert not {m["id"] for m in after["messages"]} & {m["id"] for m in before["messages"]}
    # Bob owns the copies: the documented list shows the current branch of his.
    listed = client.get(f"/api/v1/conversations/{new_ids[0]}/messages/", headers=bob.bearer)
    assert [m["content"] for m in listed.json()] == [
        "Q: what is a tree, in graphs?",
        "A: connected and acyclic",
    ]
    assert client.get(f"/api/v1/conversations/{first_id}/", headers=bob.bearer).status_code == 404


@pytest.mark.parametrize("prefix", DIALECTS)
def test_a_malformed_import_is_refused_with_the_path_and_stores_nothing(
    client: httpx.Client, server: RunningServer, prefix: str
) -> None:
    carol = register(client, "carol")
    document = _branched_export()
    document["conversations"].append(
        {
            "title": "bad",
            "created_at": "2024-05-01T10:00:00+00:00",
            "messages": [_message(1, None, "Q", on_branch=True, role="robot")],
        }
    )
    document["conversations"][0]["messages"][2]["parent_id"] = 99
    before = _counts(server, carol)
    refused = _import(client, carol, prefix, document)
    assert refused.status_code == 400, refused.text
    body = refused.json()
    fields = body["fields"] if prefix == "/api/v1" else body
    if prefix == "/api/v1":
        assert body["code"] == "invalid_import"
    assert set(fields) == {
        "conversations[0].messages[2].parent_id",
        "conversations[2].messages[0].role",
    }
    assert _counts(server, carol) == before == (0, 0)


@pytest.mark.parametrize("prefix", DIALECTS)
def test_bodies_that_are_no_export_are_refused(
    client: httpx.Client, alice: Account, prefix: str
) -> None:
    url = f"{prefix}/conversations/import/"
    not_json = client.post(
        url, content=b"{", headers=alice.bearer | {"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    as_form = client.post(
        url,
        content=b"a=b",
        headers=alice.bearer | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert as_form.status_code == 415
    a_number = client.post(url, json=5, headers=alice.bearer)
    assert a_number.status_code == 400
    assert "non_field_errors" in json.dumps(a_number.json())


@pytest.mark.parametrize("prefix", DIALECTS)
def test_chatgpt_export_imports_with_its_branches_and_current_node(
    client: httpx.Client, alice: Account, prefix: str
) -> None:
    imported = _import(client, alice, prefix, json.loads(FIXTURE.read_text()))
    assert imported.status_code == 201, imported.text
    first, second = imported.json()["conversations"]
    assert first["title"] == "What the .NET Desktop Runtime is for"
    assert first["messages"] == 5
    assert second["messages"] == 2
    branch = client.get(
        f"/api/v1/conversations/{first['id']}/messages/", headers=alice.bearer
    ).json()
    assert [m["content"] for m in branch] == [
        "What does the .NET 8.0 Desktop Runtime do,\n and what breaks if I do not install it?",
        "It runs .NET 8 desktop apps. Without it such an app will not start and asks you to "
        "install the runtime.",
    ]
    tree = _export(client, alice, prefix, first["id"]).json()["conversations"][0]
    assert tree["status"] == "closed"
    roots = [m for m in tree["messages"] if m["parent_id"] is None]
    assert len(roots) == 2
    answers = [m for m in tree["messages"] if m["role"] == "assistant"]
    assert {m["model"] for m in answers} == {"gpt-4o", "gpt-4o-mini"}
    # Imported conversations are closed; reopening one works within the active limit.
    reopened = client.post(f"/api/conversations/{first['id']}/reopen/", headers=alice.bearer)
    assert reopened.status_code == 200, reopened.text


@pytest.mark.parametrize("prefix", DIALECTS)
def test_another_users_conversation_cannot_be_exported(
    client: httpx.Client, alice: Account, bob: Account, prefix: str
) -> None:
    created = _import(client, alice, prefix, _branched_export()).json()["conversations"][0]
    assert _export(client, bob, prefix, created["id"]).status_code == 404
    assert _export(client, bob, prefix, created["id"], "markdown").status_code == 404
    assert _export(client, bob, prefix).json()["conversations"] == []
    assert client.get(f"{prefix}/conversations/export/").status_code == 401


@pytest.mark.parametrize("prefix", DIALECTS)
def test_markdown_export_shows_the_current_branch(
    client: httpx.Client, alice: Account, prefix: str
) -> None:
    created = _import(client, alice, prefix, _branched_export()).json()["conversations"][0]
    exported = _export(client, alice, prefix, created["id"], "markdown")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/markdown")
    assert (
        exported.headers["content-disposition"]
        == f'attachment; filename="parley-conversation-{created["id"]}.md"'
    )
    text = exported.text
    assert text.startswith("# Trees 🌳\n")
    assert "Q: what is a tree, in graphs?" in text
    assert "A: connected and acyclic" in text
    assert "a plant" not in text
    assert "_(partial)_" in text
    assert _export(client, alice, prefix, created["id"], "pdf").status_code == 400


def test_a_large_export_is_streamed(client: httpx.Client) -> None:
    dave = register(client, "dave")
    conversations = [
        {
            "title": f"conversation {i}",
            "created_at": "2024-05-01T10:00:00+00:00",
            "messages": [
                _message(1, None, "Q: " + "words " * 60, on_branch=True),
                _message(2, 1, "A: " + "answer " * 60, on_branch=True),
            ],
        }
        for i in range(300)
    ]
    document = {"format": "parley-conversations", "version": 1, "conversations": conversations}
    assert _import(client, dave, "/api/v1", document).status_code == 201
    with client.stream("GET", "/api/v1/conversations/export/", headers=dave.bearer) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    exported = json.loads(body)
    assert [c["title"] for c in exported["conversations"]] == [
        f"conversation {i}" for i in range(300)
    ]
    assert all(len(c["messages"]) == 2 for c in exported["conversations"])
