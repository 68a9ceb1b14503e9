"""Streamed replies belong to the server, over real HTTP with a slow fake upstream.

A streamed send stores the user's message and a ``streaming`` reply before the first
token, then sends Server-Sent Events whose ``id`` is the number of characters of the
answer sent so far: ``reply`` (the stored turn, ``stream_url``, ``cancel_url``),
``delta``..., ``error`` (only if the reply did not complete), ``done``. What a user
notices, checked here in both dialects:

- hanging up changes nothing: ``GET stream_url`` with ``Last-Event-ID`` (or ``?after=``)
  gives exactly the rest, and after the end the whole answer again; another user's
  reply is 404;
- ``POST cancel_url`` stops the model: the reply is kept ``partial`` (``cancelled``),
  every follower is told, a second cancel answers the same; a cancel that comes while
  the finished reply is being stored loses none of it (PostgreSQL);
- a retry with the same ``Idempotency-Key`` follows the same reply, never a second one;
- ``kill -9`` mid-stream, then a restart on the same database (SQLite and PostgreSQL):
  the message is kept, the reply is marked ``interrupted`` once its lease ends; a
  graceful stop stores a live reply ``interrupted`` with its text;
- two ``parley serve`` processes on PostgreSQL + Redis: a stream started on one is
  resumed, or cancelled, through the other;
- 200 concurrent streams, some clients hanging up: nothing lost, nothing left
  ``streaming``.

In-process servers (``running_server``) run no lease renewal and no sweep (those start in
``app_from_environment``): what depends on them is checked on ``parley serve`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import POSTGRES_URL, Account, register
from tests.integration.servers import (
    TEST_SECRET_KEY,
    RunningServer,
    postgres_database,
    query,
    running_server,
    start_parley_serve,
)

KEY = "sk-durable-streams-0123456789"
MODEL = "gpt-6.1-sol"  # no fallback chain: one upstream request per turn
ECHO = fake.ECHO_PREFIX
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL")
# Redis database 14 belongs to this module and is emptied first: fresh PostgreSQL
# databases reuse reply ids, and an earlier run's reply streams must not leak in.
TEST_REDIS_DB = 14
# 39 word-sized pieces at DELAY each: a stream lasts about 1 s, long enough to hang up,
# cancel or look at it half way, short enough for the CI budget. SLOW where a stop has
# to travel further (another worker polls for it every 0.5 s, or a process shuts down).
ANSWER = (
    "Durable streams keep writing after the client leaves, so the reader can come back "
    "later and pick up the answer exactly where it stopped, without a gap and without "
    "reading any word twice: 你好, café, 🙂 (ids count characters)."
)
DELAY = 0.025
SLOW = 0.1


# ---- Server-Sent Events ------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    name: str
    id: int | None
    data: Any


class _Parser:
    """One event per blank line; ``id`` is kept per event (each of Parley's has one)."""

    def __init__(self) -> None:
        self._name = "message"
        self._id: int | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._name = value
            elif name == "data":
                self._data.append(value)
            elif name == "id":
                self._id = int(value)
            return None
        event = (
            Event(self._name, self._id, json.loads("\n".join(self._data))) if self._data else None
        )
        self._name, self._id, self._data = "message", None, []
        return event


class _Reader:
    """A stream's events, read in parts: ``read(deltas=2)``, then later ``read()`` the rest."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        self._lines = response.iter_lines()
        self._parser = _Parser()

    def read(self, *, deltas: int | None = None) -> list[Event]:
        """Until the end; with ``deltas``, only until that many deltas came (the caller
        then hangs up by leaving the ``stream`` block)."""
        events: list[Event] = []
        for line in self._lines:
            event = self._parser.feed(line)
            if event is None:
                continue
            events.append(event)
            if deltas is not None and len(_deltas(events)) >= deltas:
                break
        return events


def _read(response: httpx.Response, *, deltas: int | None = None) -> list[Event]:
    return _Reader(response).read(deltas=deltas)


def _deltas(events: Iterable[Event]) -> list[Event]:
    return [event for event in events if event.name == "delta"]


def _text(events: Iterable[Event]) -> str:
    return "".join(event.data["text"] for event in _deltas(events))


def _names(events: Iterable[Event]) -> list[str]:
    return [event.name for event in events]


def _assert_ids_count_characters(events: list[Event], start: int = 0) -> None:
    """Each event's id is the characters sent so far (from ``start``)."""
    sent = start
    for event in events:
        if event.name == "reply":
            assert event.id == 0
        elif event.name == "delta":
            sent += len(event.data["text"])
            assert event.id == sent, (event, sent)
        else:
            assert event.id == sent, (event, sent)


# ---- the two dialects --------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    name: str
    prefix: str  # "/api" or "/api/v1"

    def send(self, conversation: int | None, text: str) -> tuple[str, dict[str, Any]]:
        """Path and body of a streamed send (``conversation`` None: a new one, v1 only)."""
        if self.name == "v1":
            body: dict[str, Any] = {"message": text, "stream": True}
            if conversation is not None:
                body["conversation_id"] = conversation
            return "/api/v1/messages/chat/", body
        assert conversation is not None
        return f"/api/conversations/{conversation}/send_message/", {"message": text, "stream": True}

    def links(self, reply_id: int) -> dict[str, str]:
        return {
            "stream_url": f"{self.prefix}/messages/{reply_id}/stream/",
            "cancel_url": f"{self.prefix}/messages/{reply_id}/cancel/",
        }

    def messages(self, conversation: int) -> str:
        return f"{self.prefix}/conversations/{conversation}/messages/"

    def error(self, body: dict[str, Any]) -> tuple[str, str]:
        """(message, code) of the dialect's error body, which has no other keys."""
        message_key = "error" if self.name == "v1" else "detail"
        assert set(body) == {message_key, "code"}, body
        assert body[message_key], body
        return body[message_key], body["code"]

    def assert_reply_message(self, message: dict[str, Any], status: str) -> None:
        """The reply in the dialect's message shape, with URLs only while streaming."""
        if self.name == "v1":
            assert message["role"] == "assistant"
        else:
            assert message["sender"] == "ai"
        assert message["status"] == status
        if status == "streaming":
            assert {k: message[k] for k in ("stream_url", "cancel_url")} == self.links(
                message["id"]
            )
        else:
            assert "stream_url" not in message
            assert "cancel_url" not in message


DRF = Dialect("drf", "/api")
V1 = Dialect("v1", "/api/v1")
DIALECTS = [pytest.param(DRF, id="drf"), pytest.param(V1, id="v1")]


@dataclass
class Sent:
    """A streamed send as the client saw it before it stopped reading."""

    headers: httpx.Headers
    events: list[Event]

    @property
    def started(self) -> dict[str, Any]:
        assert self.events, "no event at all"
        first = self.events[0]
        assert first.name == "reply", self.events
        data: dict[str, Any] = first.data
        return data

    @property
    def reply_id(self) -> int:
        return int(self.started["ai_message"]["id"])

    @property
    def started_conversation(self) -> int:
        return int(self.started["conversation_id"])


def _send(
    http: httpx.Client,
    dialect: Dialect,
    who: Account,
    conversation: int | None,
    text: str,
    *,
    deltas: int | None = None,
    headers: dict[str, str] | None = None,
) -> Sent:
    path, body = dialect.send(conversation, text)
    with http.stream("POST", path, json=body, headers={**who.bearer, **(headers or {})}) as r:
        return Sent(r.headers, _read(r, deltas=deltas))


def _follow(
    http: httpx.Client,
    url: str,
    who: Account,
    *,
    last_event_id: int | None = None,
    after: int | None = None,
) -> list[Event]:
    headers = dict(who.bearer)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {} if after is None else {"after": str(after)}
    with http.stream("GET", url, headers=headers, params=params) as response:
        return _read(response)


def _conversation(http: httpx.Client, who: Account) -> int:
    response = http.post("/api/conversations/", headers=who.bearer)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _rows(database_url: str, conversation: int) -> list[tuple[Any, ...]]:
    return query(
        database_url,
        "SELECT id, role, content, status, error_code FROM messages "
        "WHERE conversation_id = :id ORDER BY id",
        id=conversation,
    )


def _stored_reply(database_url: str, reply_id: int, *, within: float = 15) -> tuple[Any, ...]:
    """(content, status, error_code) of a reply once it is no longer ``streaming``."""
    deadline = time.monotonic() + within
    while True:
        [row] = query(
            database_url,
            "SELECT content, status, error_code FROM messages WHERE id = :id",
            id=reply_id,
        )
        if row[1] != "streaming":
            return row
        assert time.monotonic() < deadline, f"reply {reply_id} is still streaming: {row}"
        time.sleep(0.05)


def _message_counts(database_url: str, conversation: int) -> tuple[int, int]:
    """The conversation's stored ``message_count``, and its real number of messages."""
    [(stored,)] = query(
        database_url, "SELECT message_count FROM conversations WHERE id = :id", id=conversation
    )
    [(real,)] = query(
        database_url, "SELECT count(*) FROM messages WHERE conversation_id = :id", id=conversation
    )
    return int(stored), int(real)


# ---- one in-process server (SQLite, and PostgreSQL when configured) -----------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("durable"),
        providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
        default_model=MODEL,
        provider_backoff_initial=0.01,
        max_active_conversations=1000,
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer, upstream: FakeLLMServer) -> Iterator[httpx.Client]:
    upstream.reset_state()
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def alice(http: httpx.Client) -> Account:
    return register(http, "alice")


@pytest.fixture
def bob(http: httpx.Client) -> Account:
    return register(http, "bob")


# ---- 1. hang up, then resume with Last-Event-ID ---------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_client_that_hangs_up_resumes_with_last_event_id_without_gap_or_duplicate(
    parley: RunningServer,
    http: httpx.Client,
    upstream: FakeLLMServer,
    alice: Account,
    dialect: Dialect,
) -> None:
    conversation = _conversation(http, alice)
    upstream.script(fake.slow_stream(DELAY, text=ANSWER))
    sent = _send(http, dialect, alice, conversation, "tell me about durable streams", deltas=2)

    # The turn was stored before the first token: the reply is streaming, with its URLs.
    assert _names(sent.events) == ["reply", "delta", "delta"]
    _assert_ids_count_characters(sent.events)
    started = sent.started
    assert started["user_message"]["content"] == "tell me about durable streams"
    assert started["user_message"]["status"] == "completed"
    dialect.assert_reply_message(started["ai_message"], "streaming")
    assert started["ai_message"]["content"] == ""
    before = _text(sent.events)
    assert before
    assert ANSWER.startswith(before)
    last_id = sent.events[-1].id
    assert last_id == len(before)

    resumed = _follow(
        http, dialect.links(sent.reply_id)["stream_url"], alice, last_event_id=last_id
    )

    # Only the rest: no reply event, no text twice, none missing, then done.
    assert _names(resumed)[-1] == "done"
    assert set(_names(resumed[:-1])) <= {"delta"}, _names(resumed)
    _assert_ids_count_characters(resumed, start=len(before))
    assembled = before + _text(resumed)
    assert assembled == ANSWER
    done = resumed[-1].data
    assert done["status"] == "completed"
    assert done["ai_message"]["content"] == ANSWER
    assert done["ai_message"]["id"] == sent.reply_id
    dialect.assert_reply_message(done["ai_message"], "completed")
    assert done["usage"]["completion_tokens"] > 0
    content, status, error_code = _stored_reply(parley.settings.database_url, sent.reply_id)
    assert (content, status, error_code) == (ANSWER, "completed", None)
    assert len(upstream.requests) == 1  # the model was asked once
    # The reply event names where to follow and stop it, in the dialect it was sent in.
    assert {k: started[k] for k in ("stream_url", "cancel_url")} == dialect.links(sent.reply_id)


# ---- 2. replay after the end, ?after=, another user's reply ----------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_finished_reply_is_replayed_whole_after_works_like_the_header_and_others_get_404(
    parley: RunningServer,
    http: httpx.Client,
    upstream: FakeLLMServer,
    alice: Account,
    bob: Account,
    dialect: Dialect,
) -> None:
    conversation = _conversation(http, alice)
    upstream.script(fake.slow_stream(DELAY, text=ANSWER))
    sent = _send(http, dialect, alice, conversation, "say it twice", deltas=1)
    # The dialect's own URLs (test 1 checks the reply event names them).
    stream_url, cancel_url = dialect.links(sent.reply_id).values()

    # Another user cannot follow or stop it, while it streams or after.
    def refused_to_bob() -> None:
        for response in (
            http.get(stream_url, headers=bob.bearer),
            http.get(stream_url, headers={**bob.bearer, "Last-Event-ID": "3"}),
            http.post(cancel_url, headers=bob.bearer),
        ):
            assert response.status_code == 404, response.text
            assert dialect.error(response.json())[1] == "not_found"

    refused_to_bob()
    # Alice's follow (from the start: no Last-Event-ID) still gets the whole answer.
    live = _follow(http, stream_url, alice)
    assert _names(live)[0] == "reply"
    assert _names(live)[-1] == "done"
    _assert_ids_count_characters(live)
    assert _text(live) == ANSWER
    assert live[-1].data["status"] == "completed"  # bob's cancel did not stop it
    refused_to_bob()

    # After the end, the same URL replays the whole answer, then done.
    replay = _follow(http, stream_url, alice)
    assert _names(replay)[0] == "reply"
    assert _names(replay)[-1] == "done"
    assert set(_names(replay[1:-1])) == {"delta"}
    _assert_ids_count_characters(replay)
    assert replay[0].data["ai_message"]["id"] == sent.reply_id
    assert _text(replay) == ANSWER
    assert replay[-1].data["status"] == "completed"
    dialect.assert_reply_message(replay[-1].data["ai_message"], "completed")

    # ?after=N is Last-Event-ID: N.
    for n in (0, 7, len(ANSWER) - 1, len(ANSWER)):
        by_header = _follow(http, stream_url, alice, last_event_id=n)
        by_query = _follow(http, stream_url, alice, after=n)
        assert by_query == by_header
        assert _names(by_header)[0] != "reply"
        assert _text(by_header) == ANSWER[n:]
        _assert_ids_count_characters(by_header, start=n)
        assert by_header[-1].name == "done"
        assert by_header[-1].data["status"] == "completed"
    assert len(upstream.requests) == 1  # replays never ask the model


# ---- 3. cancel --------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cancel_mid_stream_keeps_the_partial_answer_and_tells_every_follower(
    parley: RunningServer,
    http: httpx.Client,
    upstream: FakeLLMServer,
    alice: Account,
    dialect: Dialect,
) -> None:
    conversation = _conversation(http, alice)
    upstream.script(fake.slow_stream(DELAY, text=ANSWER))
    path, body = dialect.send(conversation, "stop me half way")
    with http.stream("POST", path, json=body, headers=alice.bearer) as response:
        sender = _Reader(response)
        first = sender.read(deltas=2)
        reply_id = int(first[0].data["ai_message"]["id"])
        links = dialect.links(reply_id)
        # A second follower, from where the sender is.
        with http.stream(
            "GET", links["stream_url"], headers={**alice.bearer, "Last-Event-ID": str(first[-1].id)}
        ) as following:
            asked = time.monotonic()
            cancelled = http.post(links["cancel_url"], headers=alice.bearer)
            took = time.monotonic() - asked
            follower = _read(following)
        # The sender, still connected, reads on.
        rest = sender.read()

    assert cancelled.status_code == 200, cancelled.text
    assert took < 3, f"the cancel took {took:.1f}s"
    stopped = cancelled.json()
    assert stopped["id"] == reply_id
    dialect.assert_reply_message(stopped, "partial")
    partial = stopped["content"]
    assert ANSWER.startswith(partial)
    assert len(partial) < len(ANSWER), "the model was not stopped"
    assert partial.startswith(_text(first))

    content, status, error_code = _stored_reply(parley.settings.database_url, reply_id)
    assert (content, status, error_code) == (partial, "partial", "cancelled")

    # Both followers: the text up to the cut, then error (cancelled), then done (partial).
    before = _text(first)
    for events in (rest, follower):
        assert _names(events)[-2:] == ["error", "done"], _names(events)
        assert set(_names(events[:-2])) <= {"delta"}
        _assert_ids_count_characters(events, start=len(before))
        assert before + _text(events) == partial
        assert dialect.error(events[-2].data)[1] == "cancelled"
        done = events[-1].data
        assert done["status"] == "partial"
        assert done["ai_message"]["content"] == partial
        dialect.assert_reply_message(done["ai_message"], "partial")

    # Idempotent: a second cancel answers the same.
    again = http.post(links["cancel_url"], headers=alice.bearer)
    assert again.status_code == 200, again.text
    assert again.json() == stopped
    assert _stored_reply(parley.settings.database_url, reply_id) == (
        partial,
        "partial",
        "cancelled",
    )
    # The stored turn, as the conversation shows it.
    shown = http.get(dialect.messages(conversation), headers=alice.bearer).json()
    assert shown[-1] == stopped


# ---- 3b. a cancel that comes as the reply is being stored (PostgreSQL) ------------------------


class _AsyncReader:
    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self._parser = _Parser()

    async def next(self) -> Event:
        async for line in self._lines:
            if (event := self._parser.feed(line)) is not None:
                return event
        raise AssertionError("the stream ended")

    async def rest(self) -> list[Event]:
        events = []
        async for line in self._lines:
            if (event := self._parser.feed(line)) is not None:
                events.append(event)
        return events


_WAITING_TO_STORE = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query LIKE '%finish_reason%'"
)


async def _until_the_final_write_waits(engine: AsyncEngine) -> None:
    deadline = time.monotonic() + 10
    while True:
        async with engine.connect() as look:
            if (await look.execute(_WAITING_TO_STORE)).scalar_one():
                return
        assert time.monotonic() < deadline, "the reply was never stored"
        await asyncio.sleep(0.02)


@dataclass
class LateCancel:
    took: float | None = None  # None: no answer within 5 s
    body: dict[str, Any] | None = None
    rest: list[Event] | None = None  # the sender's events after it; None: not within 5 s


async def _cancel_while_the_reply_is_stored(
    base_url: str, database_url: str, who: Account, conversation: int
) -> LateCancel:
    """Send; hold the reply's row so that its final write (once the model has ended)
    waits; cancel then; let the write go."""
    engine = create_async_engine(database_url)
    path, body = DRF.send(conversation, "stop, or is it too late?")
    outcome = LateCancel()
    try:
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
            http.stream("POST", path, json=body, headers=who.bearer) as response,
        ):
            events = _AsyncReader(response)
            reply_id = (await events.next()).data["ai_message"]["id"]
            async with engine.connect() as holder:
                lock = text("SELECT id FROM messages WHERE id = :id FOR UPDATE")
                await holder.execute(lock, {"id": reply_id})
                await _until_the_final_write_waits(engine)
                asked = time.monotonic()
                cancel = asyncio.ensure_future(
                    http.post(DRF.links(reply_id)["cancel_url"], headers=who.bearer, timeout=5)
                )
                await asyncio.sleep(0.3)
                await holder.rollback()
            rest = asyncio.ensure_future(events.rest())
            await asyncio.wait({cancel, rest}, timeout=5)
            if cancel.done() and cancel.exception() is None:
                outcome.body = cancel.result().json()
                outcome.took = time.monotonic() - asked
            if rest.done():
                outcome.rest = rest.result()
            for pending in (cancel, rest):
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
    finally:
        await engine.dispose()
    return outcome


@pytest.mark.skipif(not POSTGRES_URL, reason="PARLEY_TEST_POSTGRES_URL is not set")
def test_a_cancel_that_comes_while_the_finished_reply_is_stored_loses_nothing(
    tmp_path: Path,
) -> None:
    assert POSTGRES_URL is not None
    log = tmp_path / "parley.log"
    with postgres_database(POSTGRES_URL) as database_url, FakeLLMServer(api_key=KEY) as upstream:
        # A short grace: a stop that hangs must not hang the test's teardown too.
        environment = _environment(database_url, upstream, PARLEY_SHUTDOWN_GRACE_SECONDS="1")
        process, base_url = start_parley_serve(tmp_path, environment, log)
        try:
            with httpx.Client(base_url=base_url, timeout=30) as http:
                alice = register(http, "alice")
                conversation = _conversation(http, alice)
            upstream.script(fake.slow_stream(DELAY, text=ANSWER))
            late = asyncio.run(
                _cancel_while_the_reply_is_stored(base_url, database_url, alice, conversation)
            )
            [(content, status, error_code)] = query(
                database_url,
                "SELECT content, status, error_code FROM messages "
                "WHERE conversation_id = :id AND role = 'assistant'",
                id=conversation,
            )
        finally:
            _stop(process)

    # The model had written the whole answer (the sender has it): stopping now keeps it,
    # whether the stop counts (partial, cancelled) or came too late (completed).
    assert (content, status, error_code) in (
        (ANSWER, "completed", None),
        (ANSWER, "partial", "cancelled"),
    ), (content, status, error_code)
    assert late.took is not None, f"the cancel did not answer within 5 s; the reply is {status}"
    assert late.body is not None
    assert late.body["content"] == ANSWER
    assert late.rest is not None, "the sender's stream did not end within 5 s of the cancel"
    assert late.rest[-1].name == "done"
    assert late.rest[-1].data["ai_message"]["content"] == ANSWER


# ---- 4. message lists while streaming ------------------------------------------------------


def test_conversation_and_message_lists_show_a_reply_streaming_with_its_urls(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer, alice: Account
) -> None:
    conversation = _conversation(http, alice)
    upstream.script(fake.slow_stream(DELAY, text=ANSWER))
    sent = _send(http, DRF, alice, conversation, "show me while you write", deltas=1)
    reply_id = sent.reply_id

    detail = http.get(f"/api/conversations/{conversation}/", headers=alice.bearer)
    drf_list = http.get(DRF.messages(conversation), headers=alice.bearer)
    v1_list = http.get(V1.messages(conversation), headers=alice.bearer)
    v1_all = http.get(
        "/api/v1/messages/", params={"conversation_id": conversation}, headers=alice.bearer
    )
    for response in (detail, drf_list, v1_list, v1_all):
        assert response.status_code == 200, response.text
    during = {
        "detail": detail.json()["messages"],
        "drf": drf_list.json(),
        "v1": v1_list.json(),
        "v1 all": v1_all.json(),
    }
    for name, messages in during.items():
        assert [m["id"] for m in messages][-1] == reply_id, name
        assert messages[-2]["content"] == "show me while you write", name
        assert messages[-2]["status"] == "completed", name
    for messages in (during["detail"], during["drf"]):
        DRF.assert_reply_message(messages[-1], "streaming")
    for messages in (during["v1"], during["v1 all"]):
        V1.assert_reply_message(messages[-1], "streaming")
    assert during["detail"][-1] == during["drf"][-1]

    # Once written, the same lists show it completed, without URLs.
    _follow(http, sent.started["stream_url"], alice, last_event_id=sent.events[-1].id)
    after = http.get(DRF.messages(conversation), headers=alice.bearer).json()
    DRF.assert_reply_message(after[-1], "completed")
    assert after[-1]["content"] == ANSWER
    v1_after = http.get(V1.messages(conversation), headers=alice.bearer).json()
    V1.assert_reply_message(v1_after[-1], "completed")


# ---- 5. Idempotency-Key on a streamed send -------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_retry_with_the_same_idempotency_key_follows_the_same_reply(
    parley: RunningServer,
    http: httpx.Client,
    upstream: FakeLLMServer,
    alice: Account,
    dialect: Dialect,
) -> None:
    # v1 without conversation_id: the retry must not start a second conversation either.
    conversation = _conversation(http, alice) if dialect is DRF else None
    upstream.script(fake.slow_stream(DELAY, text=ANSWER))
    key = {"Idempotency-Key": f"durable-{dialect.name}-{time.monotonic_ns()}"}
    first = _send(http, dialect, alice, conversation, "only once please", deltas=1, headers=key)
    assert "Idempotent-Replayed" not in first.headers
    # The connection dropped; the client retries while the reply is still written.
    retry = _send(http, dialect, alice, conversation, "only once please", headers=key)
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.started["ai_message"]["id"] == first.reply_id
    assert retry.started["user_message"]["id"] == first.started["user_message"]["id"]
    assert _text(retry.events) == ANSWER
    assert retry.events[-1].name == "done"
    assert retry.events[-1].data["status"] == "completed"
    # And once more after the end: the same reply, replayed.
    late = _send(http, dialect, alice, conversation, "only once please", headers=key)
    assert late.headers.get("Idempotent-Replayed") == "true"
    assert late.started["ai_message"]["id"] == first.reply_id
    assert _text(late.events) == ANSWER
    assert late.events[-1].data == retry.events[-1].data

    if conversation is None:
        conversation = first.started_conversation
        assert retry.started_conversation == late.started_conversation == conversation
    rows = _rows(parley.settings.database_url, conversation)
    assert [row[1:4] for row in rows] == [
        ("user", "only once please", "completed"),
        ("assistant", ANSWER, "completed"),
    ]
    assert len(upstream.requests) == 1  # one generation


# ---- 6. kill -9 mid-stream, restart on the same database ----------------------------------


def _environment(database_url: str, upstream: FakeLLMServer, **extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.update(
        PARLEY_DATABASE_URL=database_url,
        PARLEY_SECRET_KEY=TEST_SECRET_KEY,
        PARLEY_RATE_LIMIT="1000000/minute",
        PARLEY_AUTH_RATE_LIMIT="1000000/minute",
        PARLEY_LOG_LEVEL="WARNING",
        PARLEY_DEFAULT_MODEL=MODEL,
        PARLEY_PROVIDER_BACKOFF_INITIAL="0.01",
        PARLEY_SHUTDOWN_GRACE_SECONDS="5",
        # A short lease (renewed every second), so a killed stream is marked in seconds.
        PARLEY_REPLY_LEASE_SECONDS="3",
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=upstream.openai_base_url,
    )
    environment.update(extra)
    return environment


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_kill_9_mid_stream_keeps_the_message_and_marks_the_reply_interrupted(
    fresh_database_url: str, tmp_path: Path
) -> None:
    database_url = fresh_database_url
    log = tmp_path / "parley.log"
    with FakeLLMServer(api_key=KEY) as upstream:
        environment = _environment(database_url, upstream)
        process, base_url = start_parley_serve(tmp_path, environment, log)
        try:
            with httpx.Client(base_url=base_url, timeout=30) as http:
                alice = register(http, "alice")
                conversation = _conversation(http, alice)
                upstream.script(fake.slow_stream(DELAY, text=ANSWER))
                path, body = DRF.send(conversation, "are you still there?")
                with http.stream("POST", path, json=body, headers=alice.bearer) as response:
                    received = _read(response, deltas=3)
                    os.kill(process.pid, signal.SIGKILL)
                    assert process.wait(10) == -signal.SIGKILL
        finally:
            _stop(process)
        reply_id = int(received[0].data["ai_message"]["id"])
        stream_url = received[0].data["stream_url"]
        # Right after the kill: the message and the streaming reply are on disk.
        assert [(row[1], row[3]) for row in _rows(database_url, conversation)] == [
            ("user", "completed"),
            ("assistant", "streaming"),
        ]

        process, base_url = start_parley_serve(tmp_path, environment, log)
        restarted = time.monotonic()
        try:
            # The lease (3 s) ends, then the restarted process's sweep (every 1 s) marks it.
            content, status, error_code = _stored_reply(database_url, reply_id, within=30)
            marked_after = time.monotonic() - restarted
            with httpx.Client(base_url=base_url, timeout=30) as http:
                shown = http.get(DRF.messages(conversation), headers=alice.bearer)
                replay = _follow(http, stream_url, alice)
                rows = _rows(database_url, conversation)
                counts = _message_counts(database_url, conversation)
                # A graceful stop stores the replies it is writing as they stand.
                upstream.script(fake.slow_stream(SLOW, text=ANSWER))
                path, body = DRF.send(conversation, "and now a graceful stop")
                with http.stream("POST", path, json=body, headers=alice.bearer) as response:
                    before_stop = _read(response, deltas=2)
            process.send_signal(signal.SIGTERM)
            # uvicorn re-raises SIGTERM once it has shut down gracefully.
            assert process.wait(15) in (0, -signal.SIGTERM), log.read_text()
        finally:
            _stop(process)
        stopped_reply = _stored_reply(database_url, int(before_stop[0].data["ai_message"]["id"]))

    print(  # noqa: T201 (shown with pytest -s)
        f"\n[kill -9 mid-stream] the client had {len(_text(received))} characters, "
        f"the stored reply {len(content)}; marked {status} {marked_after:.1f}s after the restart"
    )
    assert (status, error_code) == ("interrupted", "interrupted"), log.read_text()
    assert ANSWER.startswith(content)  # the text at the last lease renewal
    assert [row[1:] for row in rows] == [
        ("user", "are you still there?", "completed", None),
        ("assistant", content, "interrupted", "interrupted"),
    ]
    assert counts == (2, 2)
    assert shown.status_code == 200
    assert [m["status"] for m in shown.json()] == ["completed", "interrupted"]
    DRF.assert_reply_message(shown.json()[-1], "interrupted")
    assert _names(replay)[0] == "reply"
    assert _names(replay)[-2:] == ["error", "done"]
    assert _text(replay) == content
    assert DRF.error(replay[-2].data)[1] == "interrupted"
    assert replay[-1].data["status"] == "interrupted"
    stopped_content, *stopped_status = stopped_reply
    assert stopped_status == ["interrupted", "interrupted"]
    assert stopped_content.startswith(_text(before_stop))
    assert ANSWER.startswith(stopped_content)
    assert len(stopped_content) < len(ANSWER)
    assert KEY not in log.read_text(errors="replace")


# ---- 7. two worker processes on PostgreSQL + Redis ------------------------------------------


@dataclass
class TwoWorkers:
    first: str
    second: str
    database_url: str
    upstream: FakeLLMServer
    logs: list[Path] = field(default_factory=list)

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoWorkers]:
    if not (POSTGRES_URL and REDIS_URL):
        pytest.skip("PARLEY_TEST_POSTGRES_URL and PARLEY_TEST_REDIS_URL are needed")
    redis_url = urlsplit(REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}").geturl()
    Redis.from_url(redis_url).flushdb()
    cwd = tmp_path_factory.mktemp("workers")
    with postgres_database(POSTGRES_URL) as database_url, FakeLLMServer(api_key=KEY) as upstream:
        environment = _environment(database_url, upstream, PARLEY_REDIS_URL=redis_url)
        logs = [cwd / "first.log", cwd / "second.log"]
        processes: list[subprocess.Popen[bytes]] = []
        urls: list[str] = []
        try:
            # One after the other: the second one's migration finds nothing to do.
            for log in logs:
                process, url = start_parley_serve(cwd, environment, log)
                processes.append(process)
                urls.append(url)
            yield TwoWorkers(urls[0], urls[1], database_url, upstream, logs)
        finally:
            for process in processes:
                _stop(process)


def test_a_stream_started_on_one_worker_resumes_and_is_cancelled_through_the_other(
    two_workers: TwoWorkers,
) -> None:
    workers = two_workers
    workers.upstream.reset_state()
    with (
        httpx.Client(base_url=workers.first, timeout=30) as a,
        httpx.Client(base_url=workers.second, timeout=30) as b,
    ):
        alice = register(a, "alice")

        # Resume on B a stream started on A.
        conversation = _conversation(a, alice)
        workers.upstream.script(fake.slow_stream(DELAY, text=ANSWER))
        sent = _send(a, DRF, alice, conversation, "across workers", deltas=2)
        before = _text(sent.events)
        resumed = _follow(
            b, DRF.links(sent.reply_id)["stream_url"], alice, last_event_id=sent.events[-1].id
        )
        assert _names(resumed)[-1] == "done", workers.log_text()
        assert set(_names(resumed[:-1])) <= {"delta"}
        _assert_ids_count_characters(resumed, start=len(before))
        assert before + _text(resumed) == ANSWER
        assert resumed[-1].data["status"] == "completed"
        assert _stored_reply(workers.database_url, sent.reply_id) == (ANSWER, "completed", None)

        # Cancel through B a stream A writes.
        workers.upstream.script(fake.slow_stream(SLOW, text=ANSWER))
        path, body = V1.send(None, "cancel me from elsewhere")
        with a.stream("POST", path, json=body, headers=alice.bearer) as response:
            sender = _Reader(response)
            first = sender.read(deltas=2)
            reply_id = int(first[0].data["ai_message"]["id"])
            asked = time.monotonic()
            cancelled = b.post(V1.links(reply_id)["cancel_url"], headers=alice.bearer)
            took = time.monotonic() - asked
            rest = sender.read()

    assert cancelled.status_code == 200, cancelled.text + workers.log_text()
    assert took < 3, f"the cancel took {took:.1f}s"
    stopped = cancelled.json()
    V1.assert_reply_message(stopped, "partial")
    partial = stopped["content"]
    assert ANSWER.startswith(partial)
    assert len(partial) < len(ANSWER), "the writer on the other worker was not stopped"
    stored = _stored_reply(workers.database_url, reply_id)
    assert stored == (partial, "partial", "cancelled")
    assert _names(rest)[-2:] == ["error", "done"]
    assert _text(first) + _text(rest) == partial
    assert V1.error(rest[-2].data)[1] == "cancelled"
    assert rest[-1].data["status"] == "partial"
    assert len(workers.upstream.requests) == 2


# ---- 8. 200 concurrent streams, random hang-ups ------------------------------------------


STREAMS = 200
USERS = 10


@dataclass
class Outcome:
    index: int
    text: str
    hang_up_after: int | None  # deltas; None: read to the end
    status_code: int = 0
    user_message_id: int | None = None
    reply_id: int | None = None
    received: str = ""
    done: dict[str, Any] | None = None

    @property
    def expected(self) -> str:
        return ECHO + self.text


async def _stream_once(
    http: httpx.AsyncClient, outcome: Outcome, headers: dict[str, str], conversation: int | None
) -> None:
    dialect = V1 if conversation is None else DRF
    path, body = dialect.send(conversation, outcome.text)
    parser = _Parser()
    async with http.stream("POST", path, json=body, headers=headers) as response:
        outcome.status_code = response.status_code
        if response.status_code != 200:
            await response.aread()
            return
        deltas = 0
        async for line in response.aiter_lines():
            event = parser.feed(line)
            if event is None:
                continue
            if event.name == "reply":
                outcome.user_message_id = event.data["user_message"]["id"]
                outcome.reply_id = event.data["ai_message"]["id"]
            elif event.name == "delta":
                outcome.received += event.data["text"]
                deltas += 1
            elif event.name == "done":
                outcome.done = event.data
            if outcome.hang_up_after is not None and deltas >= outcome.hang_up_after:
                return  # leaving the block closes the connection


def test_two_hundred_concurrent_streams_with_hang_ups_lose_nothing(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'load.db'}"
    with (
        FakeLLMServer(api_key=KEY) as upstream,
        running_server(
            database_url,
            tmp_path,
            providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
            default_model=MODEL,
            provider_backoff_initial=0.01,
            max_active_conversations=1000,
            db_pool_size=10,
            db_max_overflow=10,
        ) as server,
    ):
        upstream.default = fake.slow_stream(0.01)  # echoes the message, word by word
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            users = [register(http, f"load{n}") for n in range(USERS)]
            # Odd streams go to an existing conversation (DRF), even ones start one (v1).
            conversations = {
                index: _conversation(http, users[index % USERS]) for index in range(1, STREAMS, 2)
            }
        rng = random.Random(20260)
        outcomes = [
            Outcome(
                index,
                f"load {index} alpha beta gamma delta",
                rng.choice([None, None, None, 0, 1, 2, 4]),
            )
            for index in range(STREAMS)
        ]

        async def run() -> None:
            limits = httpx.Limits(max_connections=STREAMS + 10)
            async with httpx.AsyncClient(
                base_url=server.base_url, timeout=60, limits=limits
            ) as client:
                await asyncio.gather(
                    *(
                        _stream_once(
                            client,
                            outcome,
                            users[outcome.index % USERS].bearer,
                            conversations.get(outcome.index),
                        )
                        for outcome in outcomes
                    )
                )

        started = time.monotonic()
        asyncio.run(run())
        sent_in = time.monotonic() - started
        # Every reply is written to the end, whoever still listens.
        deadline = time.monotonic() + 30
        while query(database_url, "SELECT count(*) FROM messages WHERE status = 'streaming'") != [
            (0,)
        ]:
            assert time.monotonic() < deadline, "replies were left streaming"
            time.sleep(0.1)
        finished_in = time.monotonic() - started
        rows = query(database_url, "SELECT id, role, content, status, error_code FROM messages")

    print(  # noqa: T201 (shown with pytest -s)
        f"\n[{STREAMS} concurrent streams] clients done in {sent_in:.1f}s, every reply "
        f"stored in {finished_in:.1f}s; "
        f"{sum(o.hang_up_after is not None for o in outcomes)} clients hung up"
    )
    assert [o.index for o in outcomes if o.status_code != 200] == []
    assert [o.index for o in outcomes if o.reply_id is None] == []
    by_id = {row[0]: row for row in rows}
    users_rows = [row for row in rows if row[1] == "user"]
    replies = [row for row in rows if row[1] == "assistant"]
    lost = [
        o.index for o in outcomes if by_id.get(o.user_message_id or 0, ())[1:3] != ("user", o.text)
    ]
    assert lost == []
    assert len(users_rows) == len(replies) == STREAMS
    wrong = [
        (o.index, by_id.get(o.reply_id or 0))
        for o in outcomes
        if by_id.get(o.reply_id or 0, ())[1:] != ("assistant", o.expected, "completed", None)
    ]
    assert wrong == []
    for outcome in outcomes:
        assert outcome.expected.startswith(outcome.received), outcome
        if outcome.hang_up_after is None:
            assert outcome.done is not None, outcome
            assert outcome.done["status"] == "completed"
            assert outcome.received == outcome.expected
    assert upstream.errors == []
