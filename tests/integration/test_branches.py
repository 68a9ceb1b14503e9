"""Branches over real HTTP, in both dialects, against a fake provider: regenerate a
reply, edit and resend a message, switch branch, read the tree; the documented lists
show the current branch in the shapes they always had, and the model sees only it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, running_server


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=None, models=("house-model",)) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("branches"),
        providers={"local": {"base_url": upstream.openai_base_url}},
        models={"house": {"provider": "local", "upstream": "house-model"}},
        default_model="house",
        provider_max_attempts=1,
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer, upstream: FakeLLMServer) -> Iterator[httpx.Client]:
    upstream.reset_state()
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


def _seen(upstream: FakeLLMServer) -> list[str]:
    """What the model was sent last: the history's texts, oldest first."""
    return [m["content"] for m in upstream.last_request.json["messages"]]


def _drf_send(http: httpx.Client, user: Account, conversation: int, text: str) -> dict[str, Any]:
    sent = http.post(
        f"/api/conversations/{conversation}/send_message/",
        json={"message": text},
        headers=user.bearer,
    )
    assert sent.status_code == 201, sent.text
    return sent.json()  # type: ignore[no-any-return]


def _drf_contents(http: httpx.Client, user: Account, conversation: int) -> list[str]:
    listed = http.get(f"/api/conversations/{conversation}/messages/", headers=user.bearer)
    assert listed.status_code == 200, listed.text
    detail = http.get(f"/api/conversations/{conversation}/", headers=user.bearer).json()
    assert [m["content"] for m in detail["messages"]] == [m["content"] for m in listed.json()]
    assert int(listed.headers["X-Total-Count"]) == len(listed.json())
    return [m["content"] for m in listed.json()]


def _v1_contents(http: httpx.Client, user: Account, conversation: int) -> list[str]:
    listed = http.get(f"/api/v1/conversations/{conversation}/messages/", headers=user.bearer)
    assert listed.status_code == 200, listed.text
    assert int(listed.headers["X-Total-Count"]) == len(listed.json())
    return [m["content"] for m in listed.json()]


def _tree(http: httpx.Client, user: Account, conversation: int, prefix: str = "/api") -> Any:
    tree = http.get(f"{prefix}/conversations/{conversation}/tree/", headers=user.bearer)
    assert tree.status_code == 200, tree.text
    return tree.json()


def test_a_regenerated_reply_becomes_current_and_the_old_one_stays(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    alice = register(http, "alice")
    conversation = http.post("/api/conversations/", headers=alice.bearer).json()["id"]
    upstream.script(fake.reply("first answer"), fake.reply("second answer"))
    first = _drf_send(http, alice, conversation, "hello")

    again = http.post(
        f"/api/messages/{first['ai_message']['id']}/regenerate/", headers=alice.bearer
    )
    assert again.status_code == 201, again.text
    body = again.json()
    assert body["user_message"]["id"] == first["user_message"]["id"]
    assert body["ai_message"]["content"] == "second answer"
    assert _seen(upstream) == ["hello"]
    assert _drf_contents(http, alice, conversation) == ["hello", "second answer"]
    assert _v1_contents(http, alice, conversation) == ["hello", "second answer"]

    tree = _tree(http, alice, conversation)
    replies = [first["ai_message"]["id"], body["ai_message"]["id"]]
    by_id = {node["id"]: node for node in tree["nodes"]}
    assert [node["id"] for node in tree["nodes"]] == [first["user_message"]["id"], *replies]
    assert by_id[replies[0]]["sibling_ids"] == replies
    assert by_id[replies[1]]["parent_id"] == first["user_message"]["id"]
    assert [by_id[r]["on_current_branch"] for r in replies] == [False, True]
    assert by_id[replies[0]]["message"]["content"] == "first answer"
    assert tree["next_after"] is None

    chosen = http.post(f"/api/messages/{replies[0]}/select/", headers=alice.bearer)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["id"] == replies[0]
    assert _drf_contents(http, alice, conversation) == ["hello", "first answer"]
    upstream.script(fake.reply("third answer"))
    _drf_send(http, alice, conversation, "and then?")
    assert _seen(upstream) == ["hello", "first answer", "and then?"]


def test_an_edited_message_is_resent_on_a_new_branch_in_the_v1_dialect(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    alice = register(http, "alice")
    upstream.script(fake.reply("A1"), fake.reply("A2"), fake.reply("A2 again"))
    one = http.post("/api/v1/messages/chat/", json={"message": "one"}, headers=alice.bearer)
    conversation = one.json()["conversation_id"]
    two = http.post(
        "/api/v1/messages/chat/",
        json={"message": "two", "conversation_id": conversation},
        headers=alice.bearer,
    ).json()

    edited = http.post(
        f"/api/v1/messages/{two['user_message']['id']}/edit/",
        json={"message": "two, better"},
        headers=alice.bearer,
    )
    assert edited.status_code == 201, edited.text
    body = edited.json()
    assert body["conversation_id"] == conversation
    assert body["user_message"]["content"] == "two, better"
    assert body["ai_message"]["content"] == "A2 again"
    assert body["status"] == "completed"
    assert _seen(upstream) == ["one", "A1", "two, better"]
    assert _v1_contents(http, alice, conversation) == ["one", "A1", "two, better", "A2 again"]

    tree = _tree(http, alice, conversation, "/api/v1")
    assert len(tree["nodes"]) == 6
    by_id = {node["id"]: node for node in tree["nodes"]}
    old, new = two["user_message"]["id"], body["user_message"]["id"]
    assert by_id[old]["sibling_ids"] == by_id[new]["sibling_ids"] == [old, new]
    assert by_id[new]["message"]["role"] == "user"

    back = http.post(f"/api/v1/messages/{old}/select/", headers=alice.bearer)
    assert back.status_code == 200, back.text
    assert back.json()["id"] == two["ai_message"]["id"]  # down to that branch's newest
    assert _v1_contents(http, alice, conversation) == ["one", "A1", "two", "A2"]
    # Paged by id, every message once.
    paged: list[int] = []
    after = 0
    while True:
        page = http.get(
            f"/api/v1/conversations/{conversation}/tree/?after={after}&limit=4",
            headers=alice.bearer,
        ).json()
        paged += [node["id"] for node in page["nodes"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert paged == sorted(by_id)


def test_a_regenerated_reply_streams_and_a_replayed_key_asks_the_model_once(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    alice = register(http, "alice")
    conversation = http.post("/api/conversations/", headers=alice.bearer).json()["id"]
    upstream.script(fake.reply("plain"), fake.reply("streamed"), fake.reply("keyed"))
    first = _drf_send(http, alice, conversation, "hi")
    reply = first["ai_message"]["id"]

    with http.stream(
        "POST",
        f"/api/messages/{reply}/regenerate/",
        json={"stream": True},
        headers=alice.bearer,
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = "".join(streamed.iter_text())
    assert "event: done" in events
    assert "streamed" in events
    assert _drf_contents(http, alice, conversation) == ["hi", "streamed"]

    keyed = {**alice.bearer, "Idempotency-Key": "regenerate-once"}
    answers = [http.post(f"/api/messages/{reply}/regenerate/", headers=keyed) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["ai_message"]["content"] == "keyed"
    assert len([r for r in upstream.requests if r.path.endswith("/chat/completions")]) == 3
    assert len(_tree(http, alice, conversation)["nodes"]) == 4


def test_another_users_messages_cannot_be_regenerated_edited_selected_or_read(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    alice, bob = register(http, "alice"), register(http, "bob")
    conversation = http.post("/api/conversations/", headers=alice.bearer).json()["id"]
    sent = _drf_send(http, alice, conversation, "mine")
    question, reply = sent["user_message"]["id"], sent["ai_message"]["id"]
    requests_before = len(upstream.requests)
    for prefix in ("/api", "/api/v1"):
        attempts = [
            http.post(f"{prefix}/messages/{reply}/regenerate/", headers=bob.bearer),
            http.post(
                f"{prefix}/messages/{question}/edit/", json={"message": "x"}, headers=bob.bearer
            ),
            http.post(f"{prefix}/messages/{reply}/select/", headers=bob.bearer),
            http.get(f"{prefix}/conversations/{conversation}/tree/", headers=bob.bearer),
        ]
        assert [a.status_code for a in attempts] == [404] * 4, [a.text for a in attempts]
        if prefix == "/api/v1":
            assert {a.json()["code"] for a in attempts} == {"not_found"}
        else:
            assert all("detail" in a.json() for a in attempts)
    assert len(upstream.requests) == requests_before
    assert len(_tree(http, alice, conversation)["nodes"]) == 2


def test_wrong_turns_on_earlier_messages_are_refused_and_change_nothing(
    http: httpx.Client, upstream: FakeLLMServer
) -> None:
    alice = register(http, "alice")
    conversation = http.post("/api/conversations/", headers=alice.bearer).json()["id"]
    sent = _drf_send(http, alice, conversation, "question")
    question, reply = sent["user_message"]["id"], sent["ai_message"]["id"]
    requests_before = len(upstream.requests)

    not_a_reply = http.post(f"/api/messages/{question}/regenerate/", headers=alice.bearer)
    assert not_a_reply.status_code == 400
    assert list(not_a_reply.json()) == ["message_id"]
    not_yours_to_edit = http.post(
        f"/api/v1/messages/{reply}/edit/", json={"message": "x"}, headers=alice.bearer
    )
    assert not_yours_to_edit.status_code == 400
    assert list(not_yours_to_edit.json()["fields"]) == ["message_id"]
    empty = http.post(f"/api/messages/{question}/edit/", json={"message": ""}, headers=alice.bearer)
    assert empty.status_code == 400
    assert "message" in empty.json()
    unknown = http.post("/api/messages/999999/regenerate/", headers=alice.bearer)
    assert unknown.status_code == 404

    closed = http.post(f"/api/conversations/{conversation}/close/", headers=alice.bearer)
    assert closed.status_code == 200
    refused = http.post(f"/api/v1/messages/{reply}/regenerate/", headers=alice.bearer)
    assert refused.status_code == 409
    assert refused.json()["code"] == "conversation_closed"

    assert len(upstream.requests) == requests_before
    tree = _tree(http, alice, conversation)
    assert [(n["id"], n["on_current_branch"]) for n in tree["nodes"]] == [
        (question, True),
        (reply, True),
    ]
