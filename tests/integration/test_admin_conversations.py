"""Admin view of every user's conversations: listing, filters, keyword search (Chinese
included), detail, close/reopen and statistics, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.integration.admin_support import (
    add_conversations,
    add_message,
    chinese,
    make_staff,
    send,
    set_title,
    start,
    word,
)
from tests.integration.conftest import Account
from tests.integration.servers import RunningServer, query


@pytest.fixture(scope="module")
def staff(server: RunningServer) -> Account:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return make_staff(server, client)


def _list(client: httpx.Client, staff: Account, **params: str | int) -> httpx.Response:
    response = client.get("/api/admin/conversations/", params=params, headers=staff.bearer)
    assert response.status_code == 200, response.text
    return response


def _ids(response: httpx.Response) -> list[int]:
    return [c["id"] for c in response.json()]


def _close(client: httpx.Client, who: Account, conversation_id: int) -> None:
    closed = client.post(f"/api/conversations/{conversation_id}/close/", headers=who.bearer)
    assert closed.status_code == 200


def test_lists_all_users_newest_first_with_the_owners_names(
    client: httpx.Client, staff: Account, alice: Account, bob: Account
) -> None:
    a1, b1, a2 = start(client, alice), start(client, bob), start(client, alice)

    everyone = _list(client, staff)
    assert _ids(everyone)[:3] == [a2, b1, a1]
    first = everyone.json()[0]
    assert first["user"] == alice.id
    assert first["user_username"] == alice.username  # the owner, not the admin
    assert first["messages"] == []
    assert {"id", "user", "user_username", "status", "created_at", "updated_at"} <= set(first)
    assert int(everyone.headers["X-Total-Count"]) >= 3

    only_alice = _list(client, staff, user=alice.username)
    assert _ids(only_alice) == [a2, a1]
    assert only_alice.headers["X-Total-Count"] == "2"
    assert _list(client, staff, user="no_such_user").json() == []


def test_status_filter_and_invalid_status(
    client: httpx.Client, staff: Account, alice: Account
) -> None:
    open_one, closed_one = start(client, alice), start(client, alice)
    _close(client, alice, closed_one)

    assert _ids(_list(client, staff, user=alice.username, status="active")) == [open_one]
    closed = _list(client, staff, user=alice.username, status="closed")
    assert _ids(closed) == [closed_one]
    assert closed.json()[0]["status"] == "closed"

    invalid = client.get("/api/admin/conversations/?status=archived", headers=staff.bearer)
    assert invalid.status_code == 400
    assert invalid.json() == {"status": ['"archived" is not a valid choice.']}


def test_search_matches_messages_and_titles_case_insensitively(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account
) -> None:
    in_message, in_title, elsewhere = word("msg"), word("title"), word("other")
    by_message, by_title, neither = start(client, alice), start(client, alice), start(client, alice)
    send(client, alice, by_message, f"How does {in_message} compare?")
    set_title(server, by_title, f"Notes on {in_title}")
    send(client, alice, neither, elsewhere)

    assert _ids(_list(client, staff, search=in_message)) == [by_message]
    assert _ids(_list(client, staff, search=in_title)) == [by_title]
    assert _ids(_list(client, staff, search=in_message.upper())) == [by_message]
    assert _ids(_list(client, staff, search=in_message[2:9])) == [by_message]  # inside a word
    # Every word must be found: together in the title or in one message.
    assert _ids(_list(client, staff, search=f"compare {in_message}")) == [by_message]
    assert _list(client, staff, search=f"{in_message} {in_title}").json() == []
    assert _list(client, staff, search=word("absent")).json() == []


def test_search_finds_chinese_text_without_spaces(
    client: httpx.Client, staff: Account, alice: Account
) -> None:
    topic, short = chinese(4), chinese(2)
    latin = word("mix")
    conversation = start(client, alice)
    send(client, alice, conversation, f"我们今天讨论{topic}的问题，还有{short}和{latin}。")

    assert _ids(_list(client, staff, search=topic)) == [conversation]
    assert _ids(_list(client, staff, search=topic[1:])) == [conversation]  # 3 characters
    assert _ids(_list(client, staff, search=short)) == [conversation]  # 2: no trigram
    assert _ids(_list(client, staff, search=f"{short} {latin}")) == [conversation]
    assert _ids(_list(client, staff, search=f"{topic} {latin}")) == [conversation]
    assert _list(client, staff, search=chinese(4)).json() == []


def test_short_and_long_words_must_meet_in_one_message(
    client: httpx.Client, staff: Account, alice: Account, bob: Account
) -> None:
    short, long = chinese(2), word("long")
    split = start(client, alice)
    send(client, alice, split, f"{long} here")
    send(client, alice, split, f"{short}在那里")
    only_short = start(client, bob)
    send(client, bob, only_short, f"只有{short}")

    assert _list(client, staff, search=f"{short} {long}").json() == []
    assert _list(client, staff, search=f"{short} {long}", user=alice.username).json() == []
    assert _ids(_list(client, staff, search=short)) == [only_short, split]


def test_filters_combine_with_search(
    client: httpx.Client, staff: Account, alice: Account, bob: Account
) -> None:
    term = word("both")
    alice_open, alice_closed, bob_open = (
        start(client, alice),
        start(client, alice),
        start(client, bob),
    )
    for owner, conversation in [(alice, alice_open), (alice, alice_closed), (bob, bob_open)]:
        send(client, owner, conversation, f"{term} appears here")
    _close(client, alice, alice_closed)

    assert _ids(_list(client, staff, search=term)) == [bob_open, alice_closed, alice_open]
    assert _ids(_list(client, staff, search=term, user=alice.username)) == [
        alice_closed,
        alice_open,
    ]
    assert _ids(_list(client, staff, search=term, status="active")) == [bob_open, alice_open]
    both = _list(client, staff, search=term, user=alice.username, status="closed")
    assert _ids(both) == [alice_closed]
    assert both.headers["X-Total-Count"] == "1"


def test_search_pages_follow_the_list_convention(
    client: httpx.Client, staff: Account, alice: Account
) -> None:
    term = word("page")
    ids = [start(client, alice) for _ in range(3)]
    for conversation in ids:
        send(client, alice, conversation, term)

    first = _list(client, staff, search=term, limit=2)
    assert _ids(first) == [ids[2], ids[1]]
    assert first.headers["X-Total-Count"] == "3"
    assert "X-Total-Count-Capped" not in first.headers
    following = client.get(first.links["next"]["url"], headers=staff.bearer)
    assert _ids(following) == [ids[0]]
    assert "next" not in following.links
    beyond = _list(client, staff, search=term, limit=2, offset=10)
    assert beyond.json() == []
    assert beyond.headers["X-Total-Count"] == "3"


def test_a_search_stops_counting_past_200(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account
) -> None:
    term = word("many")
    ids = add_conversations(
        server, alice.id, 230, message=f"about {term}", when=datetime(2024, 5, 1, tzinfo=UTC)
    )

    capped = _list(client, staff, search=term, limit=50)
    assert _ids(capped) == sorted(ids, reverse=True)[:50]
    assert capped.headers["X-Total-Count"] == "201"  # at least this many
    assert capped.headers["X-Total-Count-Capped"] == "true"
    assert "next" in capped.links

    deep = _list(client, staff, search=term, limit=100, offset=200)
    assert _ids(deep) == sorted(ids, reverse=True)[200:]
    assert deep.headers["X-Total-Count"] == "230"
    assert "X-Total-Count-Capped" not in deep.headers
    exact = _list(client, staff, search=term, user=alice.username, limit=500)
    assert exact.headers["X-Total-Count"] == "230"


def test_the_search_index_follows_renames_and_deletes(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account
) -> None:
    old, new, said = word("old"), word("new"), word("said")
    conversation = start(client, alice)
    send(client, alice, conversation, said)
    set_title(server, conversation, old)
    assert _ids(_list(client, staff, search=old)) == [conversation]

    renamed = client.patch(
        f"/api/v1/conversations/{conversation}/", json={"title": new}, headers=alice.bearer
    )
    assert renamed.status_code == 200, renamed.text
    assert _list(client, staff, search=old).json() == []
    assert _ids(_list(client, staff, search=new)) == [conversation]

    deleted = client.delete(f"/api/v1/conversations/{conversation}/", headers=alice.bearer)
    assert deleted.status_code == 204
    for gone in (new, said):
        response = _list(client, staff, search=gone)
        assert response.json() == []
        assert response.headers["X-Total-Count"] == "0"
    if server.settings.database_url.startswith("sqlite"):
        # The contentless index forgot the documents, not just the rows behind them.
        assert query(
            server.settings.database_url,
            "SELECT count(*) FROM search_index WHERE search_index MATCH :q",
            q=f'"{said}"',
        ) == [(0,)]


def test_detail_shows_any_conversation_with_its_messages(
    client: httpx.Client, staff: Account, alice: Account
) -> None:
    conversation = start(client, alice)
    send(client, alice, conversation, "Hello, AI!")

    detail = client.get(f"/api/admin/conversations/{conversation}/", headers=staff.bearer)
    assert detail.status_code == 200
    body = detail.json()
    assert body["user"] == alice.id
    assert body["user_username"] == alice.username
    assert [(m["sender"], m["content"]) for m in body["messages"]] == [
        ("user", "Hello, AI!"),
        ("ai", "Echo: Hello, AI!"),
    ]
    missing = client.get("/api/admin/conversations/999999999/", headers=staff.bearer)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_admin_close_and_reopen_change_what_the_owner_sees(
    client: httpx.Client, staff: Account, alice: Account
) -> None:
    conversation = start(client, alice)
    url = f"/api/admin/conversations/{conversation}"

    closed = client.post(f"{url}/close/", headers=staff.bearer)
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert closed.json()["user_username"] == alice.username
    assert client.post(f"{url}/close/", headers=staff.bearer).json()["status"] == "closed"
    refused = client.post(
        f"/api/conversations/{conversation}/send_message/",
        json={"message": "still there?"},
        headers=alice.bearer,
    )
    assert refused.status_code == 409

    reopened = client.post(f"{url}/reopen/", headers=staff.bearer)
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "active"
    owner_view = client.get(f"/api/conversations/{conversation}/", headers=alice.bearer)
    assert owner_view.json()["status"] == "active"
    assert client.post(f"{url}/reopen/", headers=staff.bearer).json()["status"] == "active"
    for action in ("close", "reopen"):
        missing = client.post(f"/api/admin/conversations/999999999/{action}/", headers=staff.bearer)
        assert missing.status_code == 404


def test_admin_reopen_respects_the_owners_active_limit(
    server: RunningServer, client: httpx.Client, staff: Account, bob: Account
) -> None:
    first = start(client, bob)
    _close(client, bob, first)
    for _ in range(10):
        start(client, bob)

    refused = client.post(f"/api/admin/conversations/{first}/reopen/", headers=staff.bearer)
    assert refused.status_code == 409
    assert refused.json()["code"] == "active_conversation_limit"
    assert bob.username in refused.json()["detail"]
    assert query(
        server.settings.database_url, "SELECT status FROM conversations WHERE id = :id", id=first
    ) == [("closed",)]


def test_stats_of_a_conversation(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account
) -> None:
    conversation = start(client, alice)
    at = datetime(2025, 1, 12, 10, 15, tzinfo=UTC)
    add_message(server, conversation, "Hello, AI!", at)
    add_message(server, conversation, "Hi!", at.replace(second=30), role="assistant")
    add_message(server, conversation, "And then?", at.replace(hour=11, minute=0, second=59))
    add_message(
        server,
        conversation,
        "",
        at.replace(hour=11, minute=0, second=59, microsecond=500_000),
        role="assistant",
        status="failed",
    )

    stats = client.get(f"/api/admin/conversations/{conversation}/stats/", headers=staff.bearer)
    assert stats.status_code == 200
    assert stats.json() == {
        "conversation_id": conversation,
        "message_count": 4,
        "duration_minutes": 45,  # 45 min 59.5 s, in whole minutes
        "user_messages": 2,
        "ai_messages": 2,
        "first_message_time": "2025-01-12T10:15:00Z",
        "last_message_time": "2025-01-12T11:00:59.500000Z",
    }


def test_stats_of_an_empty_conversation_are_zeros_and_nulls(
    server: RunningServer, client: httpx.Client, staff: Account, alice: Account
) -> None:
    empty = start(client, alice)
    stats = client.get(f"/api/admin/conversations/{empty}/stats/", headers=staff.bearer)
    assert stats.status_code == 200
    assert stats.json() == {
        "conversation_id": empty,
        "message_count": 0,
        "duration_minutes": 0,
        "user_messages": 0,
        "ai_messages": 0,
        "first_message_time": None,
        "last_message_time": None,
    }

    single = start(client, alice)
    add_message(server, single, "only me", datetime(2025, 2, 1, 8, 0, tzinfo=UTC))
    one = client.get(f"/api/admin/conversations/{single}/stats/", headers=staff.bearer).json()
    assert (one["message_count"], one["duration_minutes"]) == (1, 0)
    assert one["first_message_time"] == one["last_message_time"] == "2025-02-01T08:00:00Z"

    missing = client.get("/api/admin/conversations/999999999/stats/", headers=staff.bearer)
    assert missing.status_code == 404
