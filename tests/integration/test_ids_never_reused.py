"""Ids are never handed out twice, over real HTTP with the fake upstream.

A reply's id names its stream, its cancel URL and the text the reply channel keeps for
a while after it ends. When someone deletes their newest conversation, the next
conversation and its messages must get new ids: on SQLite without AUTOINCREMENT they
got the deleted ones again, and the next streamed reply (another user's too) carried
the deleted reply's text. Each test runs on an empty database of its own (SQLite, and
PostgreSQL when configured), so the deleted conversation is the newest there is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, running_server

KEY = "sk-ids-never-reused-0123456789"
MODEL = "gpt-6.1-sol"  # no fallback chain: one upstream request per turn


@dataclass(frozen=True)
class StreamedTurn:
    """What a streamed send showed its sender: the turn's ids, the text, the end."""

    conversation_id: int
    user_message_id: int
    reply_id: int
    text: str
    done: dict[str, Any]
    raw: str


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def parley(
    fresh_database_url: str, tmp_path: Path, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    upstream.reset_state()
    with running_server(
        fresh_database_url,
        tmp_path,
        providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
        default_model=MODEL,
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


def _events(raw: str) -> list[tuple[str, Any]]:
    """(name, data) of each Server-Sent Event in a whole response body."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value.removeprefix(" "))
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def _stream_a_turn(http: httpx.Client, who: Account, text: str) -> StreamedTurn:
    """A new conversation whose first message is ``text``, its reply streamed to the end."""
    with http.stream(
        "POST",
        "/api/v1/messages/chat/",
        json={"message": text, "stream": True},
        headers=who.bearer,
    ) as response:
        assert response.status_code == 200, response.read().decode()
        raw = response.read().decode()
    events = _events(raw)
    names = [name for name, _ in events]
    assert names[0] == "reply", raw
    assert names[-1] == "done", raw
    started = events[0][1]
    return StreamedTurn(
        conversation_id=int(started["conversation_id"]),
        user_message_id=int(started["user_message"]["id"]),
        reply_id=int(started["ai_message"]["id"]),
        text="".join(data["text"] for name, data in events if name == "delta"),
        done=events[-1][1],
        raw=raw,
    )


def _delete_conversation(http: httpx.Client, who: Account, conversation_id: int) -> None:
    response = http.delete(f"/api/v1/conversations/{conversation_id}/", headers=who.bearer)
    assert response.status_code == 204, response.text


def _stored_messages(http: httpx.Client, who: Account, conversation_id: int) -> list[Any]:
    response = http.get(f"/api/v1/conversations/{conversation_id}/messages/", headers=who.bearer)
    assert response.status_code == 200, response.text
    return [(m["id"], m["role"], m["content"]) for m in response.json()]


@pytest.mark.parametrize("next_sender", ["another user", "the same user"])
def test_a_reply_after_the_newest_conversation_is_deleted_is_its_own(
    http: httpx.Client, next_sender: str
) -> None:
    alice = register(http, "alice")
    deleted = _stream_a_turn(http, alice, "alice's private words")
    assert deleted.text == fake.ECHO_PREFIX + "alice's private words"
    _delete_conversation(http, alice, deleted.conversation_id)

    sender = register(http, "bob") if next_sender == "another user" else alice
    fresh = _stream_a_turn(http, sender, "fresh words")

    assert "private" not in fresh.raw
    assert fresh.text == fake.ECHO_PREFIX + "fresh words"
    assert fresh.done["status"] == "completed"
    assert fresh.done["ai_message"]["content"] == fake.ECHO_PREFIX + "fresh words"
    assert fresh.done["ai_message"]["id"] == fresh.reply_id
    # Every id is new: none of the deleted conversation's is handed out again.
    assert fresh.conversation_id > deleted.conversation_id
    assert min(fresh.user_message_id, fresh.reply_id) > deleted.reply_id
    assert _stored_messages(http, sender, fresh.conversation_id) == [
        (fresh.user_message_id, "user", "fresh words"),
        (fresh.reply_id, "assistant", fake.ECHO_PREFIX + "fresh words"),
    ]
    # Following the new reply again shows the same, not the deleted one's text.
    with http.stream(
        "GET", f"/api/v1/messages/{fresh.reply_id}/stream/", headers=sender.bearer
    ) as response:
        assert response.status_code == 200, response.read().decode()
        replayed = response.read().decode()
    assert "private" not in replayed
    assert _events(replayed)[-1][1]["ai_message"]["content"] == fake.ECHO_PREFIX + "fresh words"
