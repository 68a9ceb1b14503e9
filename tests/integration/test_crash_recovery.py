"""``kill -9`` of a real ``parley serve`` process in the middle of a load of chat turns.

A SQLite file database, a fake OpenAI upstream that takes a moment to answer (so turns
are always in flight), a dozen clients sending and streaming. The process is killed
with SIGKILL, then started again on the same file. Then:

- the file passes ``PRAGMA integrity_check``;
- every exchange whose answer the client received in full is intact (user and assistant
  rows, as returned);
- a turn that was in flight is at most one user message, followed by nothing or by one
  whole reply row: never a duplicate, never a half-written row; a streamed turn's reply
  (stored ``streaming`` from its start) is ``interrupted`` once its lease ends, with a
  prefix of the answer;
- the restarted server serves the same conversations, including the interrupted ones.

What an interrupted turn looks like after the restart is printed (``pytest -s``).

A second test kills the process (SQLite and PostgreSQL) while ten non-streamed turns wait
on the model, six of them sent with an ``Idempotency-Key``: after the restart each retry
with the same key is answered (the model asked once per key, a later retry replayed),
never a stuck 409; each turn lost without a key gets a failed ``interrupted`` reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.servers import TEST_SECRET_KEY, postgres_database, start_parley_serve

KEY = "sk-crash-recovery-0123456789"
ECHO = fake.ECHO_PREFIX
CLIENTS = 10
KILL_AFTER_ANSWERS = 40


@dataclass
class Turn:
    user: int  # index of the client
    text: str
    conversation: int
    stream: bool
    state: str = "sending"  # answered | in_flight | refused
    user_message_id: int | None = None
    ai_message: dict[str, Any] | None = None


class Load:
    def __init__(self, base_url: str, tokens: list[str], conversations: list[int]) -> None:
        self.base_url = base_url
        self.tokens = tokens
        self.conversations = conversations
        self.turns: list[Turn] = []
        self.answered = 0
        self.enough = asyncio.Event()
        self.killed = asyncio.Event()

    async def client(self, index: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(index)
        headers = {"Authorization": f"Bearer {self.tokens[index]}"}
        sequence = 0
        while not self.killed.is_set():
            sequence += 1
            turn = Turn(
                user=index,
                text=f"crash-{index}-{sequence} {rng.choice(['hello', '你好', '🙂 hi'])}",
                conversation=self.conversations[index],
                stream=rng.random() < 0.4,
            )
            self.turns.append(turn)
            try:
                if turn.stream:
                    await self._stream(http, turn, headers)
                else:
                    await self._send(http, turn, headers, v1=rng.random() < 0.5)
            except httpx.TransportError:
                turn.state = "in_flight"
                return
            if turn.state == "answered":
                self.answered += 1
                if self.answered >= KILL_AFTER_ANSWERS:
                    self.enough.set()

    async def _send(
        self, http: httpx.AsyncClient, turn: Turn, headers: dict[str, str], *, v1: bool
    ) -> None:
        if v1:
            response = await http.post(
                "/api/v1/messages/chat/",
                json={"message": turn.text, "conversation_id": turn.conversation},
                headers=headers,
            )
        else:
            response = await http.post(
                f"/api/conversations/{turn.conversation}/send_message/",
                json={"message": turn.text},
                headers=headers,
            )
        if response.status_code != 201:
            turn.state = f"refused {response.status_code}"
            return
        body = response.json()
        turn.state = "answered"
        turn.user_message_id = body["user_message"]["id"]
        turn.ai_message = body["ai_message"]

    async def _stream(self, http: httpx.AsyncClient, turn: Turn, headers: dict[str, str]) -> None:
        async with http.stream(
            "POST",
            f"/api/conversations/{turn.conversation}/send_message/",
            json={"message": turn.text, "stream": True},
            headers=headers,
        ) as response:
            if response.status_code != 200:
                turn.state = f"refused {response.status_code}"
                return
            done = None
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data = json.loads(line[5:])
                    if "ai_message" in data:
                        done = data
        if done is None:
            raise httpx.RemoteProtocolError("the stream ended without its done event")
        turn.state = "answered"
        turn.user_message_id = done["user_message"]["id"]
        turn.ai_message = done["ai_message"]

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=CLIENTS * 2)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, limits=limits) as http:
            await asyncio.gather(*(self.client(i, http) for i in range(CLIENTS)))


async def _load_then_kill(load: Load, process: subprocess.Popen[bytes]) -> float:
    async def killer() -> float:
        await load.enough.wait()
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        load.killed.set()
        return killed_at

    killed_at, _ = await asyncio.gather(killer(), load.run())
    return killed_at


def _rows(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT id, conversation_id, role, content, status, error_code, created_at "
            "FROM messages ORDER BY conversation_id, id"
        ).fetchall()


def _rows_once_no_reply_streams(database: Path) -> list[tuple[Any, ...]]:
    """The rows once the restarted server has marked the killed one's streamed replies
    (their leases end, and its sweep runs every third of a lease)."""
    deadline = time.monotonic() + 10
    while True:
        rows = _rows(database)
        if all(row[4] != "streaming" for row in rows):
            return rows
        assert time.monotonic() < deadline, "a killed stream's reply stayed streaming"
        time.sleep(0.2)


def test_kill_9_mid_load_keeps_every_answered_exchange(tmp_path: Path) -> None:
    database = tmp_path / "parley.db"
    log = tmp_path / "parley.log"
    with FakeLLMServer(api_key=KEY) as upstream:
        # Every answer takes a moment: there are always turns waiting on the model.
        upstream.default = fake.Reply(chunk_delay=0.03)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        environment.update(
            PARLEY_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
            PARLEY_SECRET_KEY=TEST_SECRET_KEY,
            PARLEY_RATE_LIMIT="1000000/minute",
            PARLEY_AUTH_RATE_LIMIT="1000000/minute",
            PARLEY_LOG_LEVEL="WARNING",
            PARLEY_DEFAULT_MODEL="gpt-6.1-sol",
            PARLEY_PROVIDER_BACKOFF_INITIAL="0.01",
            # A streamed reply of the killed process is marked once its lease ends.
            PARLEY_REPLY_LEASE_SECONDS="1.5",
            OPENAI_API_KEY=KEY,
            OPENAI_BASE_URL=upstream.openai_base_url,
        )
        process, base_url = start_parley_serve(tmp_path, environment, log)
        try:
            tokens, conversations = [], []
            with httpx.Client(base_url=base_url, timeout=30) as http:
                for index in range(CLIENTS):
                    registered = http.post(
                        "/api/v1/register/",
                        json={
                            "username": f"crash{index}",
                            "email": f"crash{index}@example.com",
                            "password": f"crash-password-{index}",
                        },
                    )
                    assert registered.status_code == 201, registered.text
                    token = registered.json()["access"]
                    tokens.append(token)
                    started = http.post(
                        "/api/conversations/", headers={"Authorization": f"Bearer {token}"}
                    )
                    conversations.append(started.json()["id"])
            load = Load(base_url, tokens, conversations)
            started_at = time.monotonic()
            killed_at = asyncio.run(_load_then_kill(load, process))
            assert process.wait(10) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)

        with sqlite3.connect(database) as connection:
            integrity_before_restart = connection.execute("PRAGMA integrity_check").fetchall()
        process, base_url = start_parley_serve(tmp_path, environment, log)
        try:
            with sqlite3.connect(database) as connection:
                integrity = connection.execute("PRAGMA integrity_check").fetchall()
                foreign_keys = connection.execute("PRAGMA foreign_key_check").fetchall()
            rows = _rows_once_no_reply_streams(database)
            # The restarted server carries on in every conversation, interrupted ones too.
            with httpx.Client(base_url=base_url, timeout=30) as http:
                after = [
                    http.post(
                        f"/api/conversations/{conversation}/send_message/",
                        json={"message": f"after the restart {index}"},
                        headers={"Authorization": f"Bearer {tokens[index]}"},
                    )
                    for index, conversation in enumerate(conversations)
                ]
                shown = http.get(
                    f"/api/conversations/{conversations[0]}/messages/?limit=500",
                    headers={"Authorization": f"Bearer {tokens[0]}"},
                ).json()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)

    assert integrity_before_restart == [("ok",)]
    assert integrity == [("ok",)]
    assert foreign_keys == []
    assert [response.status_code for response in after] == [201] * CLIENTS, [
        response.text for response in after
    ]
    assert upstream.errors == []

    by_id = {row[0]: row for row in rows}
    user_rows = Counter(row[3] for row in rows if row[2] == "user")
    answered = [turn for turn in load.turns if turn.state == "answered"]
    in_flight = [turn for turn in load.turns if turn.state == "in_flight"]
    refused = [turn for turn in load.turns if turn.state.startswith("refused")]

    # Every answered exchange is intact, as the client was shown it.
    damaged = []
    for turn in answered:
        assert turn.ai_message is not None
        user_row = by_id.get(turn.user_message_id)
        ai_row = by_id.get(turn.ai_message["id"])
        if (
            user_row is None
            or ai_row is None
            or user_row[2:5] != ("user", turn.text, "completed")
            or ai_row[2:5] != ("assistant", turn.ai_message["content"], "completed")
            or ai_row[3] != ECHO + turn.text
            or user_rows[turn.text] != 1
        ):
            damaged.append((turn, user_row, ai_row))

    # Interrupted turns: at most one user row, then nothing or one whole reply.
    by_conversation: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_conversation.setdefault(row[1], []).append(row)
    outcome_of_interrupted: Counter[str] = Counter()
    broken: list[tuple[str, str | tuple[Any, ...]]] = []
    for turn in in_flight:
        copies = user_rows[turn.text]
        if copies == 0:
            outcome_of_interrupted["not stored"] += 1
            continue
        if copies > 1:
            broken.append((turn.text, "stored twice"))
            continue
        messages = by_conversation[turn.conversation]
        position = next(i for i, row in enumerate(messages) if row[3] == turn.text)
        following = messages[position + 1] if position + 1 < len(messages) else None
        if following is None or following[2] != "assistant":
            outcome_of_interrupted["user message, no reply row"] += 1
            continue
        _, _, _, content, status, error_code, created_at = following
        outcome_of_interrupted[f"user message + {status} reply"] += 1
        whole = (
            (status == "completed" and content == ECHO + turn.text and error_code is None)
            or (status == "failed" and content == "" and error_code)
            or (status == "partial" and (ECHO + turn.text).startswith(content) and error_code)
            or (
                status == "interrupted"
                and (ECHO + turn.text).startswith(content)
                and error_code == "interrupted"
            )
        )
        if not whole or created_at is None:
            broken.append((turn.text, following))

    # No row anywhere is half-written: every reply follows a user message and is whole.
    incomplete = [
        row
        for row in rows
        if row[4] not in ("completed", "failed", "partial", "interrupted")
        or row[6] is None
        or (row[2] == "assistant" and row[4] == "completed" and not row[3].startswith(ECHO))
    ]
    interrupted_shown = [(m["sender"], m["status"], m["content"][:12]) for m in shown]
    print(  # noqa: T201 (the run's summary, shown with pytest -s)
        f"\n[crash recovery] killed after {killed_at - started_at:.2f}s of load with "
        f"{CLIENTS} clients: {len(load.turns)} turns, answered {len(answered)}, "
        f"in flight at the kill {len(in_flight)}, refused {len(refused)}; "
        f"interrupted turns after the restart: {dict(outcome_of_interrupted)}; "
        f"integrity {integrity[0][0]}; client 0's conversation as the API shows it "
        f"(tail): {interrupted_shown[-5:]}"
    )
    assert refused == []
    assert len(answered) >= KILL_AFTER_ANSWERS
    assert in_flight, "the kill should have caught turns in flight"
    assert damaged == []
    assert broken == []
    assert incomplete == []
    assert KEY not in log.read_text(errors="replace")


# ---- non-streamed turns in flight, with and without an Idempotency-Key ---------------------

POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")
WITH_KEY = 6
WITHOUT_KEY = 4
# A short deadline and statement timeout, so that a lost turn is known lost within the
# test: a live turn's reply is written within the deadline plus a wait for the database
# (here 4 + 15 + 15 seconds).
DEADLINE = "4"
STATEMENT_TIMEOUT_MS = "15000"


@contextlib.contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    else:
        assert POSTGRES_URL is not None
        with postgres_database(POSTGRES_URL) as url:
            yield url


def _message_rows(database_url: str) -> list[tuple[Any, ...]]:
    async def read() -> list[tuple[Any, ...]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    text(
                        "SELECT id, conversation_id, role, content, status, error_code "
                        "FROM messages ORDER BY conversation_id, id"
                    )
                )
                return [tuple(row) for row in result]
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not POSTGRES_URL, reason="PARLEY_TEST_POSTGRES_URL is not set"
            ),
        ),
    ],
)
def test_kill_9_then_retries_with_the_same_key_get_one_answer_and_lost_turns_are_marked(
    tmp_path: Path, backend: str
) -> None:
    log = tmp_path / "parley.log"
    with _database(backend, tmp_path) as database_url, FakeLLMServer(api_key=KEY) as upstream:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        environment.update(
            PARLEY_DATABASE_URL=database_url,
            PARLEY_SECRET_KEY=TEST_SECRET_KEY,
            PARLEY_RATE_LIMIT="1000000/minute",
            PARLEY_AUTH_RATE_LIMIT="1000000/minute",
            PARLEY_LOG_LEVEL="WARNING",
            PARLEY_DEFAULT_MODEL="gpt-6.1-sol",
            OPENAI_API_KEY=KEY,
            OPENAI_BASE_URL=upstream.openai_base_url,
            PARLEY_PROVIDER_DEADLINE=DEADLINE,
            PARLEY_DB_STATEMENT_TIMEOUT_MS=STATEMENT_TIMEOUT_MS,
        )
        process, base_url = start_parley_serve(tmp_path, environment, log)
        try:
            with httpx.Client(base_url=base_url, timeout=30) as http:
                registered = http.post(
                    "/api/v1/register/",
                    json={"username": "keys", "email": "k@example.com", "password": "pw-keys-01"},
                )
                headers = {"Authorization": f"Bearer {registered.json()['access']}"}
                # The user's chat settings exist before the burst (on PostgreSQL a new
                # user's concurrent first turns race to create them: a 500 for the loser).
                assert http.get("/api/chat-setting/", headers=headers).status_code == 200
                conversations = [
                    http.post("/api/conversations/", headers=headers).json()["id"]
                    for _ in range(WITH_KEY + WITHOUT_KEY)
                ]
            requests = [
                (
                    f"/api/conversations/{conversation}/send_message/"
                    if index % 2
                    else "/api/v1/messages/chat/",
                    {"message": f"lost-{index}"}
                    if index % 2
                    else {"message": f"lost-{index}", "conversation_id": conversation},
                    {**headers, "Idempotency-Key": f"key-{index}"} if index < WITH_KEY else headers,
                )
                for index, conversation in enumerate(conversations)
            ]
            # The model takes its time: every turn is in flight when the process dies.
            upstream.default = fake.delay(60)

            async def send_then_kill() -> list[Any]:
                async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
                    sent = [
                        asyncio.ensure_future(client.post(url, json=body, headers=with_key))
                        for url, body, with_key in requests
                    ]
                    for _ in range(3000):  # a minute at most
                        if upstream.hits >= len(requests):
                            break
                        await asyncio.sleep(0.02)
                    os.kill(process.pid, signal.SIGKILL)
                    return await asyncio.gather(*sent, return_exceptions=True)

            first_attempts = asyncio.run(send_then_kill())
            assert process.wait(10) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        assert all(isinstance(a, httpx.TransportError) for a in first_attempts), first_attempts
        upstream.default = fake.Reply()
        asked_before = upstream.hits

        process, base_url = start_parley_serve(tmp_path, environment, log)
        restarted_at = time.monotonic()
        try:

            async def retry() -> list[httpx.Response]:
                async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
                    return await asyncio.gather(
                        *(
                            client.post(url, json=body, headers=with_key)
                            for url, body, with_key in requests[:WITH_KEY]
                        )
                    )

            retries = asyncio.run(retry())
            answered_after = time.monotonic() - restarted_at
            # Every retry gets an answer, never 409 idempotency_in_progress.
            assert [r.status_code for r in retries] == [201] * WITH_KEY, [r.text for r in retries]
            with httpx.Client(base_url=base_url, timeout=30) as http:
                again = [
                    http.post(url, json=body, headers=with_key)
                    for url, body, with_key in requests[:WITH_KEY]
                ]
                # A turn lost without a key is marked once it can no longer be running.
                give_up = time.monotonic() + 120
                while True:
                    tails = [
                        http.get(
                            f"/api/conversations/{conversation}/messages/", headers=headers
                        ).json()[-1]
                        for conversation in conversations[WITH_KEY:]
                    ]
                    if all(m["sender"] == "ai" for m in tails) or time.monotonic() > give_up:
                        break
                    time.sleep(0.5)
                marked_after = time.monotonic() - restarted_at
            rows = _message_rows(database_url)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    print(  # noqa: T201 (the run's summary, shown with pytest -s)
        f"\n[crash recovery, {backend}] retries with the same key answered "
        f"{answered_after:.1f}s after the restart: {[r.status_code for r in retries]}; "
        f"turns lost without a key marked {marked_after:.1f}s after it"
    )
    # The model answered each key once, and the answer is kept for later retries.
    assert upstream.hits - asked_before == WITH_KEY
    assert [r.status_code for r in again] == [201] * WITH_KEY
    assert [r.headers.get("Idempotent-Replayed") for r in again] == ["true"] * WITH_KEY
    assert [r.content for r in again] == [r.content for r in retries]
    answers = Counter(row[3] for row in rows if row[2] == "assistant" and row[4] == "completed")
    assert all(answers[ECHO + f"lost-{index}"] == 1 for index in range(WITH_KEY)), answers
    # Turns lost without a key: the user's message, then a failed reply saying why.
    assert [(m["sender"], m["status"]) for m in tails] == [("ai", "failed")] * WITHOUT_KEY
    by_conversation: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_conversation.setdefault(row[1], []).append(row)
    for index, conversation in enumerate(conversations[WITH_KEY:], start=WITH_KEY):
        assert [row[2:] for row in by_conversation[conversation]] == [
            ("user", f"lost-{index}", "completed", None),
            ("assistant", "", "failed", "interrupted"),
        ]
    assert KEY not in log.read_text(errors="replace")
