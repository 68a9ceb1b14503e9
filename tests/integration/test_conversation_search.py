"""A user's own conversation list: search (English and Chinese), archive, pin, in both
dialects (``/api/`` DRF style, ``/api/v1/``), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import Account

DIALECTS = ["/api/conversations", "/api/v1/conversations"]


def _start(client: httpx.Client, account: Account, base: str) -> int:
    body: dict[str, Any] | None = {} if "/v1/" in base else None
    response = client.post(f"{base}/", json=body, headers=account.bearer)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _say(client: httpx.Client, account: Account, conversation_id: int, text: str) -> None:
    response = client.post(
        f"/api/conversations/{conversation_id}/send_message/",
        json={"message": text},
        headers=account.bearer,
    )
    assert response.status_code == 201, response.text


def _list(client: httpx.Client, account: Account, base: str, **query: Any) -> httpx.Response:
    response = client.get(f"{base}/", params=query, headers=account.bearer)
    assert response.status_code == 200, response.text
    return response


def _ids(client: httpx.Client, account: Account, base: str, **query: Any) -> list[int]:
    return [c["id"] for c in _list(client, account, base, **query).json()]


def _act(
    client: httpx.Client, account: Account, base: str, conversation_id: int, action: str
) -> httpx.Response:
    return client.post(f"{base}/{conversation_id}/{action}/", headers=account.bearer)


@pytest.mark.parametrize("base", DIALECTS)
def test_search_finds_english_and_chinese_in_titles_and_messages(
    client: httpx.Client, alice: Account, base: str
) -> None:
    kyoto = _start(client, alice, base)
    _say(client, alice, kyoto, "Plan a trip to Kyoto in spring")
    great_wall = _start(client, alice, base)
    _say(client, alice, great_wall, "我们明天去北京看长城")
    titled = _start(client, alice, base)
    client.patch(
        f"/api/v1/conversations/{titled}/",
        json={"title": "週末的計劃 weekend"},
        headers=alice.bearer,
    )

    assert _ids(client, alice, base, search="kyoto") == [kyoto]
    assert _ids(client, alice, base, search="SPRING trip") == [kyoto]
    assert _ids(client, alice, base, search="北京") == [great_wall]
    assert _ids(client, alice, base, search="长城 北京") == [great_wall]
    assert _ids(client, alice, base, search="計劃") == [titled]
    assert _ids(client, alice, base, search="Weekend") == [titled]
    # The echo model's replies are messages too ("Echo: ..."): every conversation with one.
    assert set(_ids(client, alice, base, search="echo")) == {kyoto, great_wall}
    nothing = _list(client, alice, base, search="巴黎")
    assert nothing.json() == []
    assert nothing.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize("base", DIALECTS)
def test_bob_never_finds_alices_conversations(
    client: httpx.Client, alice: Account, bob: Account, base: str
) -> None:
    alices = _start(client, alice, base)
    _say(client, alice, alices, "secret recipe 秘密配方")
    bobs = _start(client, bob, base)
    _say(client, bob, bobs, "my own recipe")

    assert _ids(client, bob, base, search="recipe") == [bobs]
    assert _ids(client, bob, base, search="秘密配方") == []
    assert _ids(client, bob, base, search="secret") == []
    assert _ids(client, alice, base, search="recipe") == [alices]
    for action in ("archive", "unarchive", "pin", "unpin"):
        assert _act(client, bob, base, alices, action).status_code == 404
    assert _ids(client, bob, base, archived="true") == []


@pytest.mark.parametrize("base", DIALECTS)
def test_archive_leaves_the_default_list_and_the_active_count(
    client: httpx.Client, alice: Account, base: str
) -> None:
    ids = [_start(client, alice, base) for _ in range(10)]
    full = client.post("/api/v1/conversations/", json={}, headers=alice.bearer)
    assert full.status_code == 409

    archived = _act(client, alice, base, ids[0], "archive")
    assert archived.status_code == 200
    assert archived.json()["archived_at"] is not None
    assert archived.json()["status"] == "active"
    again = _act(client, alice, base, ids[0], "archive")
    assert again.json()["archived_at"] == archived.json()["archived_at"]

    listed = _list(client, alice, base)
    assert ids[0] not in [c["id"] for c in listed.json()]
    assert listed.headers["X-Total-Count"] == "9"
    assert _ids(client, alice, base, archived="true") == [ids[0]]
    assert _list(client, alice, base, archived="false").headers["X-Total-Count"] == "9"
    # Not counted as active: there is room for one more...
    newest = _start(client, alice, base)
    # ...so unarchiving the archived one, which is active, would pass the limit.
    refused = _act(client, alice, base, ids[0], "unarchive")
    assert refused.status_code == 409
    assert refused.json()["code"] == "active_conversation_limit"
    assert _ids(client, alice, base, archived="true") == [ids[0]]
    # An archived conversation takes no messages until unarchived.
    send = client.post(
        f"/api/conversations/{ids[0]}/send_message/", json={"message": "hi"}, headers=alice.bearer
    )
    assert send.status_code == 409
    assert send.json()["code"] == "conversation_archived"

    assert (
        client.delete(f"/api/v1/conversations/{newest}/", headers=alice.bearer).status_code == 204
    )
    unarchived = _act(client, alice, base, ids[0], "unarchive")
    assert unarchived.status_code == 200
    assert unarchived.json()["archived_at"] is None
    assert _act(client, alice, base, ids[0], "unarchive").status_code == 200
    assert _ids(client, alice, base, archived="true") == []
    assert _list(client, alice, base).headers["X-Total-Count"] == "10"


@pytest.mark.parametrize("base", DIALECTS)
def test_pinned_come_first_latest_pinned_first(
    client: httpx.Client, alice: Account, base: str
) -> None:
    a, b, c, d = (_start(client, alice, base) for _ in range(4))
    pinned = _act(client, alice, base, a, "pin")
    assert pinned.status_code == 200
    assert pinned.json()["pinned_at"] is not None
    _act(client, alice, base, c, "pin")

    assert _ids(client, alice, base) == [c, a, d, b]
    assert _ids(client, alice, base, pinned="true") == [c, a]
    assert _ids(client, alice, base, pinned="false") == [d, b]
    # Pinning again keeps its place; unpinning puts it back among the others by id.
    assert _act(client, alice, base, a, "pin").json()["pinned_at"] == pinned.json()["pinned_at"]
    assert _ids(client, alice, base) == [c, a, d, b]
    unpinned = _act(client, alice, base, c, "unpin")
    assert unpinned.json()["pinned_at"] is None
    assert _ids(client, alice, base) == [a, d, c, b]
    # The detail answers the new fields too, in both dialects.
    detail = client.get(f"{base}/{a}/", headers=alice.bearer).json()
    assert detail["pinned_at"] == pinned.json()["pinned_at"]
    assert detail["archived_at"] is None


@pytest.mark.parametrize("base", DIALECTS)
def test_paging_totals_stay_right_with_filters(
    client: httpx.Client, alice: Account, base: str
) -> None:
    ids = [_start(client, alice, base) for _ in range(7)]
    for conversation_id in ids[:5]:
        _say(client, alice, conversation_id, "共同的话题 common topic")
    _act(client, alice, base, ids[0], "archive")
    _act(client, alice, base, ids[1], "pin")

    pages = [
        _list(client, alice, base, search="话题", limit=2, offset=offset) for offset in (0, 2, 4)
    ]
    assert [p.headers["X-Total-Count"] for p in pages] == ["4", "4", "4"]
    assert [c["id"] for p in pages for c in p.json()] == [ids[1], ids[4], ids[3], ids[2]]
    assert 'rel="next"' in pages[0].headers["Link"]
    assert 'rel="next"' not in pages[1].headers.get("Link", "")
    assert "search=" in pages[0].headers["Link"]
    assert pages[2].json() == []

    everything = _list(client, alice, base, limit=3)
    assert everything.headers["X-Total-Count"] == "6"
    assert (
        _list(client, alice, base, archived="true", search="common").headers["X-Total-Count"] == "1"
    )
    assert (
        _list(client, alice, base, pinned="true", search="common").headers["X-Total-Count"] == "1"
    )


@pytest.mark.parametrize("base", DIALECTS)
def test_bad_filters_are_refused_in_the_dialects_shape(
    client: httpx.Client, alice: Account, base: str
) -> None:
    too_many = client.get(
        f"{base}/", params={"search": " ".join(f"w{i}" for i in range(9))}, headers=alice.bearer
    )
    assert too_many.status_code == 400
    not_a_bool = client.get(f"{base}/", params={"archived": "maybe"}, headers=alice.bearer)
    assert not_a_bool.status_code == 400
    missing = client.post(f"{base}/999999999/pin/", headers=alice.bearer)
    assert missing.status_code == 404
