"""A seeded, randomised storm of chat exchanges against providers that fail at random.

Eight clients (one user each, so each conversation sees one turn at a time, as a real
chat client sends them) send at least a thousand exchanges through both dialects, some
streamed, some refused on purpose (blank, too long, closed conversation, active limit),
while the fake OpenAI/Gemini upstream answers each request with a behaviour drawn from a
seeded list: a reply, 429, 500, a timeout, a connection reset, a malformed body, or a
stream cut half-way. Some streaming clients also hang up early.

Afterwards the database must show what the clients were told: every message that was
accepted (2xx) or failed at the provider (502/503/504) is stored exactly once, every
refused one is not stored, every reply row is completed (with the full answer) or
failed/partial with an error code, and every user message has exactly one reply row
after it. No client ever sees an undocumented status. ``pytest -s`` prints the figures.

``PARLEY_FAULT_SEED`` replays another seed; ``PARLEY_FAULT_EXCHANGES`` changes the size.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, query, running_server

# A new connection per request: on a reused connection the in-thread test server answers
# ~40 ms late (its listening socket is made with proto 0, so asyncio never sets
# TCP_NODELAY on accepted connections and Nagle meets delayed ACKs).
NO_KEEP_ALIVE = httpx.Limits(max_keepalive_connections=0)
KEY = "sk-fault-injection-0123456789"
SEED = int(os.environ.get("PARLEY_FAULT_SEED", "20250308"))
# 1,000 exchanges on SQLite; PostgreSQL runs the same mix at 300 to keep the suite quick.
EXCHANGES = {
    "sqlite": int(os.environ.get("PARLEY_FAULT_EXCHANGES", "1000")),
    "postgresql": int(os.environ.get("PARLEY_FAULT_EXCHANGES", "300")),
}
WORKERS = 8
MAX_ACTIVE = 10
ECHO = fake.ECHO_PREFIX
READ_TIMEOUT = 0.25
PROVIDER_DEADLINE = 5.0
MODELS = ("gpt-6.1-sol", "gemini-3.8-flash")  # no fallback chains: each failure shows

PROVIDER_CODES = {
    502: {"provider_error", "provider_auth"},
    503: {"provider_unavailable"},
    504: {"provider_timeout"},
}
DOCUMENTED = {200, 201, 400, 409, 429, 502, 503, 504}

# (kind, weight, behaviour factory) -- one behaviour per upstream request, drawn in advance.
FAULTS: list[tuple[str, float, Any]] = [
    ("reply", 0.45, lambda rng: fake.reply()),
    ("429", 0.09, lambda rng: fake.error(429, retry_after=rng.choice([None, 1]))),
    ("500", 0.09, lambda rng: fake.error(500)),
    ("timeout", 0.07, lambda rng: fake.delay(READ_TIMEOUT + 0.2)),
    ("reset", 0.09, lambda rng: fake.reset()),
    ("malformed", 0.09, lambda rng: fake.malformed(rng.choice(["json", "shape"]))),
    ("cut_stream", 0.12, lambda rng: fake.cut_stream(rng.randint(1, 4), abort=rng.random() < 0.5)),
]


def _is_answer(content: str, question: str) -> bool:
    """The fake echoes the last user turn. Gemini gets consecutive user turns (after a
    failed reply, which the model never sees) merged into one, so the echo ends with the
    question rather than being exactly it."""
    return content.startswith(ECHO) and content.endswith(question)


def _backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


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
        tmp_path_factory.mktemp("faults"),
        providers={
            "openai": {"api_key": KEY, "base_url": upstream.openai_base_url},
            "gemini": {"api_key": KEY, "base_url": upstream.base_url},
        },
        default_model="gpt-6.1-sol",
        provider_max_attempts=3,
        provider_backoff_initial=0.005,
        provider_backoff_max=0.02,
        provider_retry_after_max=0.02,
        provider_connect_timeout=1.0,
        provider_read_timeout=READ_TIMEOUT,
        provider_deadline=PROVIDER_DEADLINE,
        max_active_conversations=MAX_ACTIVE,
    ) as running:
        yield running


# ---- what the clients saw ----------------------------------------------------------------


@dataclass
class Outcome:
    """One exchange as the client saw it."""

    text: str
    kind: str  # send | chat | chat_new | blank | too_long | closed | over_limit
    stream: bool
    status: int
    stored_expected: bool  # the user's message must be stored exactly once
    reply: dict[str, Any] | None = None  # ai_message as returned (201 or SSE done)
    reply_status: str | None = None  # completed | partial | failed (stream: from done)
    error_code: str | None = None  # provider error code returned (body or SSE error)
    hung_up: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class Client:
    user: Account
    rng: random.Random
    active: list[int] = field(default_factory=list)  # usable active conversations
    closed: list[int] = field(default_factory=list)
    active_count: int = 0  # every active conversation, usable or not


class Storm:
    def __init__(self, http: httpx.AsyncClient, total: int, seed: int) -> None:
        self.http = http
        self.total = total
        self.seed = seed
        self.started = 0
        self.outcomes: list[Outcome] = []
        self.counter = 0

    def _next_text(self, client: Client) -> str:
        self.counter += 1
        flavour = client.rng.choice(
            ["plain question", "CJK 你好，世界 机器学习", "emoji 🙂🚀 ok", "quote ' \" ; -- %_"]
        )
        return f"x{self.seed}-{self.counter} {flavour}"

    async def run_client(self, client: Client) -> None:
        while self.started < self.total:
            self.started += 1
            await self._one(client)

    # -- one exchange --

    async def _one(self, client: Client) -> None:
        rng = client.rng
        roll = rng.random()
        if client.active_count >= MAX_ACTIVE - 1 and client.active and rng.random() < 0.6:
            await self._close(client, rng.choice(client.active))
        if roll < 0.04 and client.active:
            text = rng.choice(["", "   ", "\n\t "]) if rng.random() < 0.5 else "y" * 4001
            kind = "blank" if len(text) < 10 else "too_long"
            await self._send(client, kind, rng.choice(client.active), text, stream=False)
            return
        if roll < 0.08:
            if not client.closed and client.active:
                await self._close(client, rng.choice(client.active))
            if client.closed:
                target = rng.choice(client.closed)
                await self._send(client, "closed", target, self._next_text(client), stream=False)
                return
        stream = rng.random() < 0.35
        if roll < 0.25 or not client.active:
            await self._send(client, "chat_new", None, self._next_text(client), stream=stream)
            return
        kind = "send" if rng.random() < 0.5 else "chat"
        target = rng.choice(client.active)
        await self._send(client, kind, target, self._next_text(client), stream=stream)

    async def _close(self, client: Client, conversation: int) -> None:
        response = await self.http.post(
            f"/api/conversations/{conversation}/close/", headers=client.user.bearer
        )
        assert response.status_code == 200, response.text
        if conversation in client.active:
            client.active.remove(conversation)
        client.closed.append(conversation)
        client.active_count -= 1

    async def _send(
        self, client: Client, kind: str, conversation: int | None, text: str, *, stream: bool
    ) -> None:
        rng = client.rng
        v1 = kind in ("chat", "chat_new") or (
            kind in ("blank", "too_long", "closed") and rng.random() < 0.5
        )
        body: dict[str, Any] = {"message": text}
        headers = dict(client.user.bearer)
        if v1:
            url = "/api/v1/messages/chat/"
            if conversation is not None:
                body["conversation_id"] = conversation
            if rng.random() < 0.3:
                body["model"] = rng.choice(MODELS)
        else:
            url = f"/api/conversations/{conversation}/send_message/"
        if stream:
            if rng.random() < 0.5:
                body["stream"] = True
            else:
                headers["Accept"] = "text/event-stream"
        over_limit = kind == "chat_new" and client.active_count >= MAX_ACTIVE
        if over_limit:
            kind = "over_limit"
        outcome = Outcome(text=text, kind=kind, stream=stream, status=0, stored_expected=False)
        self.outcomes.append(outcome)
        hang_up = stream and rng.random() < 0.1 and kind in ("send", "chat", "chat_new")
        if stream:
            await self._stream(outcome, url, body, headers, v1, hang_up=hang_up)
        else:
            response = await self.http.post(url, json=body, headers=headers)
            outcome.status = response.status_code
            self._check_plain(outcome, response, v1)
        self._check_expected_status(outcome)
        outcome.stored_expected = outcome.status in (200, 201, 502, 503, 504)
        if kind == "chat_new" and outcome.stored_expected:
            client.active_count += 1
            new_id = await self._new_conversation_id(client, outcome)
            if outcome.hung_up:
                await self._close(client, new_id)
            else:
                client.active.append(new_id)
        elif outcome.hung_up and conversation is not None:
            # The partial reply is written after the hang-up; this client moves on
            # elsewhere, as a person reloading the page would.
            await self._close(client, conversation)

    async def _new_conversation_id(self, client: Client, outcome: Outcome) -> int:
        if outcome.reply is not None and "conversation" in outcome.reply:
            return int(outcome.reply["conversation"])
        # A provider failure answers without the new conversation's id: this client is
        # its owner's only one, so the newest conversation is it.
        listed = await self.http.get("/api/v1/conversations/?limit=1", headers=client.user.bearer)
        assert listed.status_code == 200, listed.text
        return int(listed.json()[0]["id"])

    def _check_expected_status(self, outcome: Outcome) -> None:
        if outcome.status not in DOCUMENTED:
            outcome.problems.append(f"undocumented status {outcome.status}")
        expected = {
            "blank": {400},
            "too_long": {400},
            "closed": {409},
            "over_limit": {409},
        }.get(outcome.kind, {201, 502, 503, 504} if not outcome.stream else {200})
        if outcome.status not in expected:
            outcome.problems.append(f"{outcome.kind}: status {outcome.status}, want {expected}")

    def _check_plain(self, outcome: Outcome, response: httpx.Response, v1: bool) -> None:
        if response.status_code >= 500 and not response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            outcome.problems.append(f"{response.status_code} without a JSON body")
            return
        body = response.json()
        if response.status_code == 201:
            user_message, ai = body["user_message"], body["ai_message"]
            outcome.reply = ai
            outcome.reply_status = ai["status"]
            if user_message["content"] != outcome.text:
                outcome.problems.append("user message content changed")
            if ai["status"] != "completed" or not _is_answer(ai["content"], outcome.text):
                outcome.problems.append(f"201 with reply {ai['status']} {ai['content']!r}")
            if v1 and body.get("status") != ai["status"]:
                outcome.problems.append("v1 status differs from ai_message.status")
            return
        message_key = "error" if v1 else "detail"
        code = body.get("code")
        if response.status_code in PROVIDER_CODES:
            outcome.error_code = code
            if code not in PROVIDER_CODES[response.status_code]:
                outcome.problems.append(f"{response.status_code} with code {code!r}")
        if response.status_code == 400:
            fields = body.get("fields") if v1 else body
            if not isinstance(fields, dict) or "message" not in fields:
                outcome.problems.append(f"400 without a message field error: {body}")
        elif not isinstance(body.get(message_key), str) or not isinstance(code, str):
            outcome.problems.append(f"error body not in the dialect's shape: {body}")

    async def _stream(
        self,
        outcome: Outcome,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        v1: bool,
        *,
        hang_up: bool,
    ) -> None:
        events: list[tuple[str, Any]] = []
        async with self.http.stream("POST", url, json=body, headers=headers) as response:
            outcome.status = response.status_code
            if response.status_code != 200:
                await response.aread()
                self._check_plain(outcome, response, v1)
                return
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                outcome.problems.append("stream without text/event-stream")
            if hang_up and random.Random(outcome.text).random() < 0.5:
                outcome.hung_up = True  # right after the headers
                return
            name = "message"
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line[5:].strip())))
                    if hang_up:
                        outcome.hung_up = True  # after the first event
                        return
        self._check_stream(outcome, events, v1)

    @staticmethod
    def _check_stream(outcome: Outcome, events: list[tuple[str, Any]], v1: bool) -> None:
        names = [name for name, _ in events]
        if not names or names[-1] != "done" or names.count("done") != 1:
            outcome.problems.append(f"stream did not end with one done event: {names}")
            return
        deltas = "".join(data["text"] for name, data in events if name == "delta")
        done = events[-1][1]
        outcome.reply = done["ai_message"]
        outcome.reply_status = done["status"]
        errors = [data for name, data in events if name == "error"]
        if errors:
            outcome.error_code = errors[0].get("code")
            shape = {"error", "code"} if v1 else {"detail", "code"}
            if set(errors[0]) != shape:
                outcome.problems.append(f"SSE error event shape {errors[0]}")
            if outcome.error_code not in {
                "provider_error",
                "provider_unavailable",
                "provider_timeout",
            }:
                outcome.problems.append(f"SSE error code {outcome.error_code}")
        if done["ai_message"]["content"] != deltas:
            outcome.problems.append("done content differs from the deltas")
        if done["status"] == "completed":
            if errors or not _is_answer(deltas, outcome.text):
                outcome.problems.append(f"completed stream with text {deltas!r}")
        elif done["status"] in ("partial", "failed"):
            if not errors:
                outcome.problems.append(f"{done['status']} stream without an error event")
        else:
            outcome.problems.append(f"done status {done['status']!r}")


async def _storm(base_url: str, clients: list[Client], total: int, seed: int) -> Storm:
    limits = httpx.Limits(max_connections=WORKERS * 2, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        storm = Storm(http, total, seed)
        await asyncio.gather(*(storm.run_client(client) for client in clients))
    return storm


# ---- the database afterwards -------------------------------------------------------------


def _rows(parley: RunningServer, owners: list[int]) -> list[tuple[Any, ...]]:
    ids = ",".join(str(int(owner)) for owner in owners)
    return query(
        parley.settings.database_url,
        "SELECT m.id, m.conversation_id, m.role, m.content, m.status, m.error_code "
        "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        f"WHERE c.owner_id IN ({ids}) ORDER BY m.conversation_id, m.id",
    )


def _check_reply_rows(
    by_conversation: dict[int, list[tuple[Any, ...]]],
) -> tuple[list[tuple[Any, ...]], list[tuple[int, list[str]]], list[tuple[Any, ...]]]:
    """Each conversation's rows: (bad replies, conversations not user/assistant pairs,
    replies completed with something other than the answer)."""
    bad_replies: list[tuple[Any, ...]] = []
    orphans: list[tuple[int, list[str]]] = []
    completed_but_wrong: list[tuple[Any, ...]] = []
    for conversation, messages in by_conversation.items():
        roles = [row[2] for row in messages]
        expected_roles = ["user", "assistant"] * (len(messages) // 2)
        if roles != expected_roles or len(messages) % 2:
            orphans.append((conversation, roles))
        for previous, row in itertools.pairwise(messages):
            if row[2] != "assistant" or previous[2] != "user":
                continue
            _, _, _, content, status, error_code = row
            if status == "completed":
                if error_code is not None or not _is_answer(content, previous[3]):
                    completed_but_wrong.append((row[0], content, previous[3]))
            elif status == "failed":
                if not error_code or content != "":
                    bad_replies.append(row)
            elif status == "partial":
                if not error_code or not (ECHO.startswith(content) or content.startswith(ECHO)):
                    bad_replies.append(row)
            else:
                bad_replies.append(row)
    return bad_replies, orphans, completed_but_wrong


def _wait_for_late_replies(parley: RunningServer, owners: list[int], deadline: float) -> None:
    """Hung-up streams go on after the client left: their reply row exists from the start
    (``streaming``) and is written whole or partial when the provider's stream ends."""
    while time.monotonic() < deadline:
        by_conversation: dict[int, list[tuple[str, str]]] = {}
        for _, conversation, role, _, status, _ in _rows(parley, owners):
            by_conversation.setdefault(conversation, []).append((role, status))
        if all(
            rows[-1][0] == "assistant" and all(status != "streaming" for _, status in rows)
            for rows in by_conversation.values()
        ):
            return
        time.sleep(0.2)


def test_random_provider_faults_never_lose_a_message(
    parley: RunningServer, upstream: FakeLLMServer
) -> None:
    backend = _backend(parley.settings.database_url)
    total = EXCHANGES[backend]
    rng = random.Random(SEED)
    kinds = [kind for kind, _, _ in FAULTS]
    weights = [weight for _, weight, _ in FAULTS]
    drawn = rng.choices(range(len(FAULTS)), weights=weights, k=total * 4)
    script = [FAULTS[i][2](rng) for i in drawn]
    upstream.reset_state()
    upstream.script(*script)

    with httpx.Client(base_url=parley.base_url, timeout=30, limits=NO_KEEP_ALIVE) as http:
        clients = []
        for index in range(WORKERS):
            user = register(http, f"storm{index}")
            setting = http.get("/api/chat-setting/", headers=user.bearer).json()
            changed = http.patch(
                f"/api/chat-setting/{setting['id']}/",
                json={"ai_model": MODELS[index % 2]},
                headers=user.bearer,
            )
            assert changed.status_code == 200, changed.text
            clients.append(Client(user=user, rng=random.Random(SEED * 100 + index)))

    started = time.monotonic()
    storm = asyncio.run(_storm(parley.base_url, clients, total, SEED))
    elapsed = time.monotonic() - started
    owners = [client.user.id for client in clients]
    _wait_for_late_replies(parley, owners, time.monotonic() + PROVIDER_DEADLINE + 5)

    consumed = len(script) - upstream.pending
    upstream.reset_state()
    faults = Counter(kinds[i] for i in drawn[:consumed])
    assert upstream.errors == [], upstream.errors

    outcomes = storm.outcomes
    rows = _rows(parley, owners)
    stored = Counter(content for _, _, role, content, *_ in rows if role == "user")
    must_store = [o for o in outcomes if o.stored_expected]
    lost = [o.text for o in must_store if stored[o.text] == 0]
    duplicated = [o.text for o in must_store if stored[o.text] > 1]
    leaked = [o.text for o in outcomes if not o.stored_expected and stored[o.text] > 0]

    # Reply rows: completed with the whole answer, or failed/partial with a code.
    by_conversation: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_conversation.setdefault(row[1], []).append(row)
    bad_replies, orphans, completed_but_wrong = _check_reply_rows(by_conversation)
    empty_conversations = query(
        parley.settings.database_url,
        "SELECT c.id FROM conversations c WHERE c.owner_id IN ("
        + ",".join(str(o) for o in owners)
        + ") AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)",
    )

    # What the clients were told must match what is stored.
    by_id = {row[0]: row for row in rows}
    mismatched: list[tuple[object, ...]] = []
    for outcome in outcomes:
        if outcome.reply is not None:
            reply_row = by_id.get(outcome.reply["id"])
            if reply_row is None or (reply_row[3], reply_row[4]) != (
                outcome.reply["content"],
                outcome.reply_status,
            ):
                mismatched.append((outcome.text, outcome.reply, reply_row))
        elif outcome.status in PROVIDER_CODES and outcome.stored_expected:
            matches = [
                nxt
                for conversation in by_conversation.values()
                for prev, nxt in itertools.pairwise(conversation)
                if prev[3] == outcome.text
            ]
            if len(matches) != 1 or (matches[0][4], matches[0][5]) != (
                "failed",
                outcome.error_code,
            ):
                mismatched.append((outcome.text, outcome.status, outcome.error_code, matches))

    statuses = Counter(o.status for o in outcomes)
    kinds_seen = Counter(o.kind + ("+stream" if o.stream else "") for o in outcomes)
    reply_states = Counter(row[4] for row in rows if row[2] == "assistant")
    problems = [(o.text, o.kind, o.status, o.problems) for o in outcomes if o.problems]
    print(  # noqa: T201 (the run's summary, shown with pytest -s)
        f"\n[fault injection, {backend}, seed {SEED}] {len(outcomes)} exchanges in "
        f"{elapsed:.1f}s with {WORKERS} clients; upstream requests {consumed}; "
        f"faults injected {dict(sorted(faults.items()))}; "
        f"exchanges {dict(sorted(kinds_seen.items()))}; "
        f"client statuses {dict(sorted(statuses.items()))}; reply rows {dict(reply_states)}; "
        f"hung up {sum(o.hung_up for o in outcomes)}; messages lost {len(lost)}; "
        f"duplicated {len(duplicated)}; refused but stored {len(leaked)}; "
        f"orphans {len(orphans)}; bad reply rows {len(bad_replies)}; "
        f"completed but wrong {len(completed_but_wrong)}; client-visible problems {len(problems)}"
    )

    assert len(outcomes) >= total
    assert sum(n for kind, n in faults.items() if kind != "reply") >= total // 2
    assert statuses[500] == 0
    assert problems == []
    assert lost == []
    assert duplicated == []
    assert leaked == []
    by_text = {o.text: o for o in outcomes}
    unanswered = [
        (row[3], by_text[row[3]].kind, by_text[row[3]].stream, by_text[row[3]].hung_up)
        for messages in by_conversation.values()
        for row, nxt in itertools.zip_longest(messages, messages[1:])
        if row[2] == "user" and (nxt is None or nxt[2] != "assistant") and row[3] in by_text
    ]
    assert orphans == [], (
        f"user messages without a reply row (text, kind, stream, hung up): {unanswered}"
    )
    assert bad_replies == [], bad_replies
    assert completed_but_wrong == [], completed_but_wrong
    assert mismatched == [], mismatched
    assert empty_conversations == []


def test_a_stream_of_malformed_chunks_is_not_a_completed_answer(
    parley: RunningServer, upstream: FakeLLMServer
) -> None:
    """200 with chunks of the wrong shape: the user got no answer, so the reply must not
    be stored or shown as a completed one (the non-streaming path says 502)."""
    with httpx.Client(base_url=parley.base_url, timeout=30, limits=NO_KEEP_ALIVE) as http:
        user = register(http, "shape")
        for model in MODELS:
            upstream.reset_state()
            upstream.script(fake.malformed("shape"))
            with http.stream(
                "POST",
                "/api/v1/messages/chat/",
                json={"message": f"shape via {model}", "model": model, "stream": True},
                headers=user.bearer,
            ) as response:
                assert response.status_code == 200
                lines = [line for line in response.iter_lines() if line.startswith("data:")]
            done = json.loads(lines[-1][5:])
            stored = query(
                parley.settings.database_url,
                "SELECT status, error_code, content FROM messages WHERE id = :id",
                id=done["ai_message"]["id"],
            )
            assert (model, done["status"]) == (model, "failed"), stored
            assert stored[0][:2] == ("failed", "provider_error")
        upstream.reset_state()


@contextlib.contextmanager
def _writes_blocked(database_url: str) -> Iterator[None]:
    """Hold the database's write lock (SQLite: a BEGIN IMMEDIATE transaction; PostgreSQL:
    an EXCLUSIVE lock on ``messages``) until the block ends: Parley's next write waits."""
    locked, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                if database_url.startswith("sqlite"):
                    raw = await connection.get_raw_connection()
                    driver = raw.driver_connection
                    assert driver is not None
                    driver.isolation_level = None
                    await driver.execute("BEGIN IMMEDIATE")
                    locked.set()
                    await asyncio.get_running_loop().run_in_executor(None, release.wait)
                    await driver.execute("ROLLBACK")
                else:
                    await connection.execute(text("LOCK TABLE messages IN EXCLUSIVE MODE"))
                    locked.set()
                    await asyncio.get_running_loop().run_in_executor(None, release.wait)
                    await connection.rollback()
        except BaseException as error:  # surfaced below
            failure.append(error)
            locked.set()
        finally:
            await engine.dispose()

    thread = threading.Thread(target=asyncio.run, args=(hold(),), daemon=True)
    thread.start()
    assert locked.wait(10)
    assert not failure, failure
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def test_a_client_that_hangs_up_while_the_reply_is_written_still_leaves_a_reply_row(
    parley: RunningServer, upstream: FakeLLMServer
) -> None:
    """README: "if you disconnect, the partial answer is stored too". Here the whole
    answer has streamed and Parley is writing the reply (held up by a busy database)
    when the client hangs up: the cancellation must not undo that write, or the user's
    question stays in the conversation with no reply row at all. The storm above hits
    the same window by chance (clients that hang up early)."""
    upstream.reset_state()
    answer = "one two three four"
    with httpx.Client(base_url=parley.base_url, timeout=30, limits=NO_KEEP_ALIVE) as http:
        user = register(http, "hangup")
        conversation = http.post("/api/conversations/", headers=user.bearer).json()["id"]
        upstream.script(fake.slow_stream(0.1, text=answer))
        with http.stream(
            "POST",
            f"/api/conversations/{conversation}/send_message/",
            json={"message": "a short answer please", "stream": True},
            headers=user.bearer,
        ) as response:
            assert response.status_code == 200
            with _writes_blocked(parley.settings.database_url):
                received = ""
                # Kept referenced: closing this iterator would close the connection. httpx
                # declares iter_lines() an Iterator, but it is a generator: it has close().
                lines = cast("Generator[str, None, None]", response.iter_lines())
                for line in lines:
                    if line.startswith("data:"):
                        received += json.loads(line[5:]).get("text", "")
                    if received == answer:
                        break  # everything streamed; Parley now waits to write the reply
                time.sleep(1.5)  # the finishing chunks arrive; the write waits for the lock
                lines.close()
                response.close()  # the client hangs up
                time.sleep(1.0)
    deadline = time.monotonic() + 5
    while True:
        rows = query(
            parley.settings.database_url,
            "SELECT role, status, content, error_code FROM messages "
            "WHERE conversation_id = :id ORDER BY id",
            id=conversation,
        )
        finished = len(rows) == 2 and rows[1][1] != "streaming"
        if finished or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [row[0] for row in rows] == ["user", "assistant"], rows
    assert rows[1][1] in ("completed", "partial")


def test_a_client_that_gives_up_before_its_stream_starts_still_leaves_a_reply_row(
    parley: RunningServer, upstream: FakeLLMServer
) -> None:
    """The storm's other source of unanswered messages, made deterministic: the client
    asks for a stream and gives up while Parley is still storing its message (a busy
    database). The message is committed afterwards, the response starts to a client
    that is gone, and the reply stream is never iterated: nothing writes a reply row,
    so the question sits in the conversation unanswered, with no failure recorded."""
    upstream.reset_state()
    with httpx.Client(base_url=parley.base_url, timeout=30, limits=NO_KEEP_ALIVE) as http:
        user = register(http, "gaveup")
        conversation = http.post("/api/conversations/", headers=user.bearer).json()["id"]
        with _writes_blocked(parley.settings.database_url):
            with pytest.raises(httpx.ReadTimeout):
                http.post(
                    f"/api/conversations/{conversation}/send_message/",
                    json={"message": "anyone there?", "stream": True},
                    headers=user.bearer,
                    timeout=1.0,
                )
            time.sleep(0.2)
    deadline = time.monotonic() + 5
    while True:
        rows = query(
            parley.settings.database_url,
            "SELECT role, status, error_code FROM messages WHERE conversation_id = :id ORDER BY id",
            id=conversation,
        )
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [row[0] for row in rows] == ["user", "assistant"], rows
