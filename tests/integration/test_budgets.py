"""Budgets, prices and model access, over real HTTP against a fake provider.

What a user or an operator notices, on SQLite and PostgreSQL:

- a call whose estimate (its prompt's estimated tokens + its max tokens, at the model's
  price) cannot fit the budget is a 429 ``budget_exceeded`` in every entry point, with
  ``Retry-After``, ``resets_at`` and ``period``, before any provider request and without
  storing half a turn;
- what a call is billed is what the provider reported (at the model's price); a stream
  that failed before any token is billed nothing, one cut midway the estimate of what it
  produced; an idempotent replay is billed once; no reservation outlives its call;
- 50 parallel calls against a budget that fits 10 let exactly 10 through, in one process
  and across two ``parley serve`` workers on PostgreSQL;
- a reservation held by a process killed with ``kill -9`` stops counting once its lease
  ends, and the restarted server drops it;
- admins set a user's models (the others are 403 ``model_not_allowed`` and absent from
  the model lists) and budget; the ``allowed_models`` setting is everyone's default.

In-process servers (``running_server``) run no lease renewal (that starts in
``app_from_environment``): what depends on it is checked on ``parley serve`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.admin_support import make_staff
from tests.integration.conftest import POSTGRES_URL, Account, register
from tests.integration.servers import (
    TEST_SECRET_KEY,
    RunningServer,
    free_port,
    migrate,
    postgres_database,
    query,
    running_server,
)

KEY = "sk-budgets-0123456789"
PARLEY = str(Path(sys.executable).with_name("parley"))
PRICED = "priced"  # OpenAI wire, 2.5 per million prompt tokens, 10 per million completion
OTHER = "other"  # OpenAI wire, no price
BUILTIN = "gpt-6.1-sol"  # the built-in model the `parley serve` processes use
INPUT_PRICE = Decimal("2.5")
OUTPUT_PRICE = Decimal("10")
MODELS = {
    PRICED: {
        "provider": "openai",
        "upstream": "gpt-4o-mini",
        "input_price": 2.5,
        "output_price": 10,
    },
    OTHER: {"provider": "openai", "upstream": "gpt-4o-mini"},
}
DEFAULT_MAX_TOKENS = 1024
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL")
# Redis database 13 belongs to this module and is emptied first (14 and 15 are other
# modules'): fresh PostgreSQL databases reuse user ids.
TEST_REDIS_DB = 13

# The concurrency tests: a message and a max_tokens whose estimate is exactly ESTIMATE,
# and a budget that fits exactly FITS of them.
RACE_MESSAGE = "how much is left?"  # 17 ASCII characters: 5 tokens, + 4 for the message
RACE_MAX_TOKENS = 91
ESTIMATE = 100
FITS = 10
CALLS = 50


# ---- the rules, written out independently of the server -------------------------------------


def _text_tokens(text: str) -> int:
    """A quarter token per ASCII character (rounded up), a token per other character."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 0x80)
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def _prompt_tokens(texts: Iterable[str]) -> int:
    return sum(_text_tokens(text) + 4 for text in texts)


def _nanos(prompt_tokens: int, completion_tokens: int) -> int:
    """What the priced model costs, in nano-units (1e-9 of the currency), rounded up."""
    exact = (prompt_tokens * INPUT_PRICE + completion_tokens * OUTPUT_PRICE) * 1000
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


def _money(nanos: int) -> float:
    return float(Decimal(nanos) / 1_000_000_000)


def _utc_text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _next_midnight() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)


def _next_month() -> datetime:
    first = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


assert _prompt_tokens([RACE_MESSAGE]) + RACE_MAX_TOKENS == ESTIMATE


# ---- servers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


def _server(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeLLMServer,
    **overrides: Any,
) -> contextlib.AbstractContextManager[RunningServer]:
    return running_server(
        database_url,
        tmp_path_factory.mktemp("budgets"),
        providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
        models=MODELS,
        default_model=PRICED,
        default_max_tokens=DEFAULT_MAX_TOKENS,
        provider_backoff_initial=0.01,
        provider_backoff_max=0.05,
        **overrides,
    )


@pytest.fixture(scope="module")
def tight(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    """A default budget that no call fits."""
    with _server(database_url, tmp_path_factory, upstream, budget_daily_tokens="10") as running:
        yield running


@pytest.fixture(scope="module")
def metered(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    """A generous default budget (so every call is reserved and settled), in euros."""
    with _server(
        database_url,
        tmp_path_factory,
        upstream,
        budget_daily_tokens="1000000",
        budget_monthly_cost="1000",
        currency="EUR",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def exact(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    """A default budget that fits exactly FITS race calls."""
    with running_server(
        database_url,
        tmp_path_factory.mktemp("budgets-exact"),
        providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
        models=MODELS,
        default_model=PRICED,
        default_max_tokens=RACE_MAX_TOKENS,
        budget_daily_tokens=str(FITS * ESTIMATE),
        db_pool_size=5,
        db_max_overflow=10,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def restricted(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    """Everyone without a list of their own may use PRICED only."""
    with _server(database_url, tmp_path_factory, upstream, allowed_models=(PRICED,)) as running:
        yield running


@pytest.fixture
def provider(upstream: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The fake provider, afresh for each test (no requests, no script)."""
    upstream.reset_state()
    yield upstream
    assert upstream.errors == []  # the fake found no bug in what Parley sent it


def _client(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


# ---- helpers --------------------------------------------------------------------------------


def _conversation(http: httpx.Client, who: Account) -> int:
    response = http.post("/api/conversations/", headers=who.bearer)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _budget(http: httpx.Client, who: Account) -> dict[str, Any]:
    response = http.get("/api/usage/budget/", headers=who.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _usage(http: httpx.Client, who: Account) -> list[dict[str, Any]]:
    response = http.get("/api/usage/", headers=who.bearer)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def _reservations(database_url: str, user_id: int) -> int:
    [(count,)] = query(
        database_url,
        "SELECT count(*) FROM budget_reservations WHERE user_id = :id",
        id=user_id,
    )
    return int(count)


def _stored_messages(database_url: str, user_id: int) -> int:
    [(count,)] = query(
        database_url,
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.owner_id = :id",
        id=user_id,
    )
    return int(count)


def _billed(database_url: str, table: str, row_id: int) -> tuple[int, int]:
    [(tokens, nanos)] = query(
        database_url,
        f"SELECT billed_tokens, cost_nanos FROM {table} WHERE id = :id",
        id=row_id,
    )
    return int(tokens), int(nanos)


def _events(response: httpx.Response) -> list[tuple[str, Any]]:
    """A Server-Sent Events body as (event name, decoded data)."""
    events: list[tuple[str, Any]] = []
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data.append(line.partition(":")[2].removeprefix(" "))
        elif not line and data:
            payload = "\n".join(data)
            events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
            name, data = "message", []
    return events


def _stream(
    http: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]
) -> list[tuple[str, Any]]:
    with http.stream("POST", path, json=body, headers=headers) as response:
        assert response.status_code == 200, response.read().decode()
        return _events(response)


def _done(events: list[tuple[str, Any]]) -> dict[str, Any]:
    assert events, "no event at all"
    name, data = events[-1]
    assert name == "done", events
    body: dict[str, Any] = data
    return body


def _refused(response: httpx.Response, midnight: datetime) -> dict[str, Any]:
    """A 429 budget refusal: Retry-After is the seconds to the day's end."""
    assert response.status_code == 429, response.text
    header = response.headers["Retry-After"]
    assert header.isdigit(), header
    retry_after = int(header)
    assert 0 < retry_after <= 86400
    to_midnight = (midnight - datetime.now(UTC)).total_seconds()
    assert abs(retry_after - to_midnight) <= 5, (retry_after, to_midnight)
    body: dict[str, Any] = response.json()
    return body


# ---- 1. refused before any provider call ------------------------------------------------------


def test_a_call_the_budget_cannot_fit_is_refused_before_the_provider_in_every_entry_point(
    tight: RunningServer, provider: FakeLLMServer
) -> None:
    database_url = tight.settings.database_url
    with _client(tight) as api:
        me = register(api, "tight")
        conversation = _conversation(api, me)
        midnight = _next_midnight()
        resets_at = _utc_text(midnight)

        # /api (DRF): {"detail", "code", "resets_at", "period"}
        for stream in (False, True):
            refused = api.post(
                f"/api/conversations/{conversation}/send_message/",
                json={"message": "hello there", "stream": stream},
                headers=me.bearer,
            )
            body = _refused(refused, midnight)
            assert set(body) == {"detail", "code", "resets_at", "period"}, body
            assert body["detail"]
            assert (body["code"], body["resets_at"], body["period"]) == (
                "budget_exceeded",
                resets_at,
                "day",
            )

        # /api/v1: {"error", "code", "resets_at", "period"}, in a new conversation or not
        for stream in (False, True):
            for where in ({}, {"conversation_id": conversation}):
                refused = api.post(
                    "/api/v1/messages/chat/",
                    json={"message": "hello there", "stream": stream, **where},
                    headers=me.bearer,
                )
                body = _refused(refused, midnight)
                assert set(body) == {"error", "code", "resets_at", "period"}, body
                assert body["error"]
                assert (body["code"], body["resets_at"], body["period"]) == (
                    "budget_exceeded",
                    resets_at,
                    "day",
                )

        # /v1 (OpenAI): {"error": {"message", "type", "param", "code", ...}}, stateless or
        # bound to the conversation
        for stream in (False, True):
            for bound in ({}, {"X-Parley-Conversation": str(conversation)}):
                refused = api.post(
                    "/v1/chat/completions",
                    json={"model": PRICED, "messages": _user("hello there"), "stream": stream},
                    headers={**me.bearer, **bound},
                )
                body = _refused(refused, midnight)
                assert set(body) == {"error"}, body
                error = body["error"]
                assert set(error) == {"message", "type", "param", "code", "resets_at", "period"}
                assert error["message"]
                assert (error["type"], error["param"], error["code"]) == (
                    "rate_limit_error",
                    None,
                    "budget_exceeded",
                )
                assert (error["resets_at"], error["period"]) == (resets_at, "day")

        assert provider.hits == 0
        # Nothing half-written: no message, no new conversation, no usage, no reservation.
        messages = api.get(f"/api/conversations/{conversation}/messages/", headers=me.bearer)
        assert messages.status_code == 200
        assert messages.json() == []
        listed = api.get("/api/v1/conversations/", headers=me.bearer)
        assert [c["id"] for c in listed.json()] == [conversation]
        assert _stored_messages(database_url, me.id) == 0
        assert _usage(api, me) == []
        assert _reservations(database_url, me.id) == 0
        budget = _budget(api, me)
        assert budget["own"] is False
        assert budget["day"] == {
            "limit_tokens": 10,
            "limit_cost": None,
            "spent_tokens": 0,
            "spent_cost": 0.0,
            "remaining_tokens": 10,
            "remaining_cost": None,
            "resets_at": resets_at,
        }
        assert budget["month"]["resets_at"] == _utc_text(_next_month())
        assert budget["month"]["limit_tokens"] is None


# ---- 2. settled to the reported usage ---------------------------------------------------------


def test_spend_is_settled_to_the_reported_usage_at_the_models_price(
    metered: RunningServer, provider: FakeLLMServer
) -> None:
    database_url = metered.settings.database_url
    with _client(metered) as api:
        me = register(api, "settle")
        staff = make_staff(metered, api)
        conversation = _conversation(api, me)
        provider.script(
            fake.reply("a drf answer", prompt_tokens=1000, completion_tokens=500),
            fake.reply("a streamed v1 answer", prompt_tokens=200, completion_tokens=30),
            fake.reply("an openai answer", prompt_tokens=40, completion_tokens=8),
            fake.reply("an unpriced answer", prompt_tokens=70, completion_tokens=7),
        )
        sent = api.post(
            f"/api/conversations/{conversation}/send_message/",
            json={"message": "first question"},
            headers=me.bearer,
        )
        assert sent.status_code == 201, sent.text
        drf_reply = int(sent.json()["ai_message"]["id"])
        done = _done(
            _stream(
                api,
                "/api/v1/messages/chat/",
                {"message": "second question", "stream": True},
                me.bearer,
            )
        )
        assert done["status"] == "completed"
        v1_reply = int(done["ai_message"]["id"])
        plain = api.post(
            "/v1/chat/completions",
            json={"model": PRICED, "messages": _user("third question")},
            headers=me.bearer,
        )
        assert plain.status_code == 200, plain.text
        unpriced = api.post(
            "/v1/chat/completions",
            json={"model": OTHER, "messages": _user("fourth question")},
            headers=me.bearer,
        )
        assert unpriced.status_code == 200, unpriced.text
        assert provider.hits == 4

        priced_nanos = _nanos(1000, 500) + _nanos(200, 30) + _nanos(40, 8)
        assert priced_nanos == 7_500_000 + 800_000 + 180_000
        tokens = 1500 + 230 + 48 + 77
        budget = _budget(api, me)
        assert budget["own"] is False
        assert budget["currency"] == "EUR"
        for period in ("day", "month"):
            assert budget[period]["spent_tokens"] == tokens, budget
            assert budget[period]["spent_cost"] == _money(priced_nanos), budget
        assert budget["day"]["remaining_tokens"] == 1_000_000 - tokens
        assert budget["month"]["limit_cost"] == 1000.0
        assert budget["month"]["remaining_cost"] == _money(1000 * 10**9 - priced_nanos)

        assert _billed(database_url, "messages", drf_reply) == (1500, _nanos(1000, 500))
        assert _billed(database_url, "messages", v1_reply) == (230, _nanos(200, 30))
        calls = query(
            database_url,
            "SELECT model, billed_tokens, cost_nanos FROM model_calls WHERE user_id = :id "
            "ORDER BY id",
            id=me.id,
        )
        assert calls == [(PRICED, 48, _nanos(40, 8)), (OTHER, 77, 0)]

        rows = {row["model"]: row for row in _usage(api, me)}
        assert rows == {
            PRICED: {
                "model": PRICED,
                "requests": 3,
                "prompt_tokens": 1240,
                "completion_tokens": 538,
                "total_tokens": 1778,
                "cost": _money(priced_nanos),
                "currency": "EUR",
            },
            OTHER: {
                "model": OTHER,
                "requests": 1,
                "prompt_tokens": 70,
                "completion_tokens": 7,
                "total_tokens": 77,
                "cost": 0.0,
                "currency": "EUR",
            },
        }
        admin = api.get("/api/admin/usage/", params={"user": me.username}, headers=staff.bearer)
        assert admin.status_code == 200, admin.text
        assert sorted(
            (r["model"], r["total_tokens"], r["cost"], r["currency"]) for r in admin.json()
        ) == [(OTHER, 77, 0.0, "EUR"), (PRICED, 1778, _money(priced_nanos), "EUR")]
        assert _reservations(database_url, me.id) == 0


# ---- 3. failed and cut streams ----------------------------------------------------------------


def test_a_stream_failing_before_any_token_is_billed_nothing_and_a_cut_one_what_it_wrote(
    metered: RunningServer, provider: FakeLLMServer
) -> None:
    database_url = metered.settings.database_url
    with _client(metered) as api:
        me = register(api, "cut")

        # Fails before any token (every retry too): nothing billed.
        provider.default = fake.stream_error(after_chunks=0)
        failed = _done(
            _stream(
                api, "/api/v1/messages/chat/", {"message": "fail please", "stream": True}, me.bearer
            )
        )
        provider.default = None
        assert failed["status"] == "failed", failed
        assert failed["ai_message"]["content"] == ""
        assert _billed(database_url, "messages", int(failed["ai_message"]["id"])) == (0, 0)
        assert _budget(api, me)["day"]["spent_tokens"] == 0
        assert _reservations(database_url, me.id) == 0

        # Cut midway, no usage reported: the estimated prompt and the text it produced.
        question = "tell me a long story about budgets"
        prompt = _prompt_tokens([question])
        reserved = prompt + DEFAULT_MAX_TOKENS
        conversation = _conversation(api, me)
        provider.script(fake.cut_stream(after_chunks=4))
        cut = _done(
            _stream(
                api,
                f"/api/conversations/{conversation}/send_message/",
                {"message": question, "stream": True},
                me.bearer,
            )
        )
        assert cut["status"] == "partial", cut
        written = cut["ai_message"]["content"]
        assert written
        whole = fake.ECHO_PREFIX + question
        assert whole.startswith(written)
        assert written != whole
        cut_tokens = prompt + _text_tokens(written)
        assert 0 < cut_tokens < reserved
        assert _billed(database_url, "messages", int(cut["ai_message"]["id"])) == (
            cut_tokens,
            _nanos(prompt, _text_tokens(written)),
        )

        # The same on /v1.
        provider.script(fake.cut_stream(after_chunks=4))
        with api.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": PRICED, "messages": _user(question), "stream": True},
            headers=me.bearer,
        ) as response:
            assert response.status_code == 200
            chunks = [data for _, data in _events(response)]
        text = "".join(
            c["choices"][0]["delta"].get("content") or ""
            for c in chunks
            if isinstance(c, dict) and c.get("choices")
        )
        assert whole.startswith(text)
        assert text != whole
        assert isinstance(chunks[-1], dict)
        assert "error" in chunks[-1]  # the stream ended in an error, not [DONE]
        [(billed_tokens, cost_nanos)] = query(
            database_url,
            "SELECT billed_tokens, cost_nanos FROM model_calls WHERE user_id = :id",
            id=me.id,
        )
        assert (billed_tokens, cost_nanos) == (
            prompt + _text_tokens(text),
            _nanos(prompt, _text_tokens(text)),
        )
        assert 0 < billed_tokens < reserved

        budget = _budget(api, me)
        assert budget["day"]["spent_tokens"] == cut_tokens + billed_tokens
        assert budget["day"]["spent_cost"] == _money(
            _nanos(prompt, _text_tokens(written)) + cost_nanos
        )
        assert _reservations(database_url, me.id) == 0


# ---- 4. idempotent replays --------------------------------------------------------------------


def test_an_idempotent_replay_is_not_billed_twice(
    metered: RunningServer, provider: FakeLLMServer
) -> None:
    database_url = metered.settings.database_url
    with _client(metered) as api:
        me = register(api, "replay")
        conversation = _conversation(api, me)

        provider.script(fake.reply("only once", prompt_tokens=100, completion_tokens=20))
        key = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
        answers = [
            api.post(
                f"/api/conversations/{conversation}/send_message/",
                json={"message": "just once"},
                headers={**me.bearer, **key},
            )
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [201, 201]
        assert answers[1].headers["Idempotent-Replayed"] == "true"
        assert answers[1].json() == answers[0].json()
        assert provider.hits == 1

        provider.script(fake.reply("only once too", prompt_tokens=50, completion_tokens=5))
        key = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
        answers = [
            api.post(
                "/v1/chat/completions",
                json={"model": PRICED, "messages": _user("just once on /v1")},
                headers={**me.bearer, **key},
            )
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [200, 200]
        assert answers[1].headers["Idempotent-Replayed"] == "true"
        assert answers[1].json()["id"] == answers[0].json()["id"]
        assert provider.hits == 2

        budget = _budget(api, me)
        assert budget["day"]["spent_tokens"] == 120 + 55
        assert budget["day"]["spent_cost"] == _money(_nanos(100, 20) + _nanos(50, 5))
        [row] = _usage(api, me)
        assert (row["requests"], row["total_tokens"]) == (2, 175)
        assert _reservations(database_url, me.id) == 0


# ---- 5. concurrency in one process ------------------------------------------------------------


async def _race(
    urls: list[str], token: str, calls: int, model: str = PRICED
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{urls[n % len(urls)]}/v1/chat/completions",
                    json={"model": model, "messages": _user(RACE_MESSAGE)},
                    headers={"Authorization": f"Bearer {token}"},
                )
                for n in range(calls)
            )
        )


def _assert_exactly_fits(responses: list[httpx.Response]) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * FITS + [429] * (CALLS - FITS), statuses
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["error"]["code"] == "budget_exceeded", refused.text


def _slow_exact_reply(upstream: FakeLLMServer) -> None:
    """Each answer takes 0.5 s (so all the calls are in flight together) and reports the
    call's estimate as its usage: what fits does not depend on which call ends first."""
    upstream.default = fake.delay(
        0.5,
        fake.reply(
            "ok",
            prompt_tokens=ESTIMATE - RACE_MAX_TOKENS,
            completion_tokens=RACE_MAX_TOKENS,
        ),
    )


def test_fifty_parallel_calls_against_a_budget_of_ten_let_ten_through(
    exact: RunningServer, provider: FakeLLMServer
) -> None:
    with _client(exact) as api:
        me = register(api, "race")
    _slow_exact_reply(provider)
    responses = asyncio.run(_race([exact.base_url], me.access, CALLS))
    provider.default = None
    _assert_exactly_fits(responses)
    assert provider.hits == FITS
    with _client(exact) as api:
        assert _budget(api, me)["day"]["spent_tokens"] == FITS * ESTIMATE
    assert _reservations(exact.settings.database_url, me.id) == 0


# ---- `parley serve` processes -----------------------------------------------------------------


def _environment(database_url: str, upstream: FakeLLMServer, **extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.update(
        PARLEY_DATABASE_URL=database_url,
        PARLEY_SECRET_KEY=TEST_SECRET_KEY,
        PARLEY_RATE_LIMIT="1000000/minute",
        PARLEY_AUTH_RATE_LIMIT="1000000/minute",
        PARLEY_LOG_LEVEL="WARNING",
        PARLEY_DEFAULT_MODEL=BUILTIN,
        PARLEY_DEFAULT_MAX_TOKENS=str(RACE_MAX_TOKENS),
        PARLEY_PROVIDER_BACKOFF_INITIAL="0.01",
        PARLEY_PROVIDER_BACKOFF_MAX="0.05",
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=upstream.openai_base_url,
        **extra,
    )
    return environment


def _serve(
    cwd: Path, environment: dict[str, str], logs: list[Path]
) -> list[tuple[subprocess.Popen[bytes], str]]:
    """``parley serve`` processes on an already migrated database, started together
    (most of a start is importing), once each answers its health check."""
    started = []
    for log in logs:
        port = free_port()
        process = subprocess.Popen(
            [PARLEY, "serve", "--no-migrate", "--port", str(port)],
            env=environment,
            cwd=cwd,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        started.append((process, f"http://127.0.0.1:{port}"))
    deadline = time.monotonic() + 60
    try:
        for (process, base_url), log in zip(started, logs, strict=True):
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{base_url}/api/v1/health/", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "parley serve did not become healthy"
                time.sleep(0.05)
    except BaseException:
        for process, _ in started:
            _stop(process)
        raise
    return started


def _register_at(base_url: str, prefix: str) -> Account:
    with httpx.Client(base_url=base_url, timeout=30) as api:
        return register(api, prefix)


def _call(base_url: str, who: Account, text: str = RACE_MESSAGE) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": BUILTIN, "messages": _user(text)},
        headers=who.bearer,
        timeout=30,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ---- 6. concurrency across two worker processes -------------------------------------------------


@pytest.mark.skipif(not POSTGRES_URL, reason="PARLEY_TEST_POSTGRES_URL is not set")
def test_fifty_parallel_calls_over_two_processes_let_at_most_ten_through(
    tmp_path: Path, provider: FakeLLMServer
) -> None:
    assert POSTGRES_URL is not None
    extra = {"PARLEY_BUDGET_DAILY_TOKENS": str(FITS * ESTIMATE)}
    if REDIS_URL:
        redis_url = urlsplit(REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}").geturl()
        Redis.from_url(redis_url).flushdb()
        extra["PARLEY_REDIS_URL"] = redis_url
    with postgres_database(POSTGRES_URL) as database_url:
        migrate(database_url)
        environment = _environment(database_url, provider, **extra)
        started = _serve(tmp_path, environment, [tmp_path / f"worker-{n}.log" for n in range(2)])
        try:
            urls = [url for _, url in started]
            me = _register_at(urls[0], "workers")
            _slow_exact_reply(provider)
            responses = asyncio.run(_race(urls, me.access, CALLS, BUILTIN))
            provider.default = None
            _assert_exactly_fits(responses)
            assert provider.hits == FITS
            assert sum(r.status_code == 200 for r in responses) <= FITS
            assert _reservations(database_url, me.id) == 0
            [(spent,)] = query(
                database_url,
                "SELECT sum(billed_tokens) FROM model_calls WHERE user_id = :id",
                id=me.id,
            )
            assert spent == FITS * ESTIMATE
        finally:
            for process, _ in started:
                _stop(process)


# ---- 7. a reservation of a killed process -----------------------------------------------------


def test_a_killed_processs_reservation_stops_counting_after_its_lease(
    fresh_database_url: str, tmp_path: Path, provider: FakeLLMServer
) -> None:
    lease = 1.5
    environment = _environment(
        fresh_database_url,
        provider,
        PARLEY_REPLY_LEASE_SECONDS=str(lease),
        PARLEY_BUDGET_DAILY_TOKENS=str(ESTIMATE),  # one call fits
    )
    log = tmp_path / "parley.log"
    migrate(fresh_database_url)
    [(process, base_url)] = _serve(tmp_path, environment, [log])
    try:
        me = _register_at(base_url, "crash")
        provider.script(fake.delay(10))
        outcome: list[BaseException | httpx.Response] = []

        def in_flight() -> None:
            try:
                outcome.append(_call(base_url, me))
            except httpx.TransportError as failure:
                outcome.append(failure)

        caller = threading.Thread(target=in_flight, daemon=True)
        caller.start()
        deadline = time.monotonic() + 10
        while provider.hits == 0:
            assert time.monotonic() < deadline, "the call never reached the provider"
            time.sleep(0.02)
        assert _reservations(fresh_database_url, me.id) == 1
        # The call in flight holds the budget: another is refused.
        refused = _call(base_url, me)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "budget_exceeded"

        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        caller.join(timeout=10)
        assert len(outcome) == 1
        assert isinstance(outcome[0], httpx.TransportError), outcome
        assert _reservations(fresh_database_url, me.id) == 1  # the dead process's

        [(process, base_url)] = _serve(tmp_path, environment, [log])
        restarted = time.monotonic()
        while _reservations(fresh_database_url, me.id):
            assert time.monotonic() - restarted < 4 * lease, "the dead reservation stayed"
            time.sleep(0.05)
        provider.script(fake.reply("after the crash", prompt_tokens=9, completion_tokens=3))
        answered = _call(base_url, me)
        assert answered.status_code == 200, answered.text
        assert answered.json()["choices"][0]["message"]["content"] == "after the crash"
        assert provider.hits == 2  # the refused call never reached it
        with httpx.Client(base_url=base_url, timeout=30) as api:
            assert _budget(api, me)["day"]["spent_tokens"] == 12
        assert _reservations(fresh_database_url, me.id) == 0
    finally:
        _stop(process)


# ---- 8. model access --------------------------------------------------------------------------


def _model_ids(api: httpx.Client, who: Account | None) -> tuple[set[str], set[str] | None]:
    """The ids of /api/v1/models/ and (signed in) /v1/models."""
    headers = {} if who is None else who.bearer
    listed = api.get("/api/v1/models/", headers=headers)
    assert listed.status_code == 200, listed.text
    v1_ids = {m["id"] for m in listed.json()}
    if who is None:
        return v1_ids, None
    openai = api.get("/v1/models", headers=who.bearer)
    assert openai.status_code == 200, openai.text
    return v1_ids, {m["id"] for m in openai.json()["data"]}


def _assert_not_allowed(api: httpx.Client, who: Account, model: str) -> None:
    """Every entry point that names a model refuses this one with 403."""
    for stream in (False, True):
        chat = api.post(
            "/api/v1/messages/chat/",
            json={"message": "may I?", "model": model, "stream": stream},
            headers=who.bearer,
        )
        assert chat.status_code == 403, chat.text
        assert chat.json()["code"] == "model_not_allowed"
        openai = api.post(
            "/v1/chat/completions",
            json={"model": model, "messages": _user("may I?"), "stream": stream},
            headers=who.bearer,
        )
        assert openai.status_code == 403, openai.text
        assert openai.json()["error"]["code"] == "model_not_allowed"
    retrieved = api.get(f"/v1/models/{model}", headers=who.bearer)
    assert retrieved.status_code == 404, retrieved.text
    assert retrieved.json()["error"]["code"] == "model_not_found"


def _assert_allowed(api: httpx.Client, who: Account, model: str) -> None:
    answered = api.post(
        "/v1/chat/completions",
        json={"model": model, "messages": _user("may I?")},
        headers=who.bearer,
    )
    assert answered.status_code == 200, answered.text
    assert api.get(f"/v1/models/{model}", headers=who.bearer).status_code == 200


def _audit(api: httpx.Client, staff: Account, action: str, target: int) -> list[dict[str, Any]]:
    response = api.get("/api/admin/audit-log/", params={"action": action}, headers=staff.bearer)
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["target_id"] == target]


def test_an_admin_limits_the_models_a_user_may_use(
    metered: RunningServer, provider: FakeLLMServer
) -> None:
    database_url = metered.settings.database_url
    with _client(metered) as api:
        staff = make_staff(metered, api)
        me = register(api, "models")
        someone = register(api, "unaffected")
        models = f"/api/admin/users/{me.id}/models/"
        shown = api.get(models, headers=staff.bearer)
        assert shown.status_code == 200, shown.text
        assert shown.json() == {"user": me.id, "own": False, "allowed_models": None}

        put = api.put(models, json={"allowed_models": [PRICED]}, headers=staff.bearer)
        assert put.status_code == 200, put.text
        assert put.json() == {"user": me.id, "own": True, "allowed_models": [PRICED]}
        assert api.get(models, headers=staff.bearer).json() == put.json()

        _assert_not_allowed(api, me, OTHER)
        # The /api dialect names no model: the user's chat setting does.
        setting = api.get("/api/chat-setting/", headers=me.bearer).json()
        changed = api.patch(
            f"/api/chat-setting/{setting['id']}/", json={"ai_model": OTHER}, headers=me.bearer
        )
        assert changed.status_code == 200, changed.text
        conversation = _conversation(api, me)
        drf = api.post(
            f"/api/conversations/{conversation}/send_message/",
            json={"message": "may I?"},
            headers=me.bearer,
        )
        assert drf.status_code == 403, drf.text
        assert drf.json()["code"] == "model_not_allowed"
        assert provider.hits == 0
        assert _stored_messages(database_url, me.id) == 0
        assert _usage(api, me) == []

        v1_ids, openai_ids = _model_ids(api, me)
        assert v1_ids == openai_ids == {PRICED}
        _assert_allowed(api, me, PRICED)
        # Someone else is unaffected.
        theirs, their_openai = _model_ids(api, someone)
        assert {PRICED, OTHER} <= theirs
        assert their_openai == theirs
        _assert_allowed(api, someone, OTHER)
        assert provider.hits == 2

        # null: back to the default (every model here).
        reset = api.put(models, json={"allowed_models": None}, headers=staff.bearer)
        assert reset.status_code == 200, reset.text
        assert reset.json() == {"user": me.id, "own": False, "allowed_models": None}
        _assert_allowed(api, me, OTHER)
        assert _model_ids(api, me)[0] == theirs

        # An empty list allows none.
        none = api.put(models, json={"allowed_models": []}, headers=staff.bearer)
        assert none.status_code == 200, none.text
        assert none.json() == {"user": me.id, "own": True, "allowed_models": []}
        _assert_not_allowed(api, me, PRICED)
        assert _model_ids(api, me) == (set(), set())

        audited = _audit(api, staff, "user.models", me.id)
        assert len(audited) == 3
        assert {e["actor_username"] for e in audited} == {staff.username}
        assert all(e["target_type"] == "user" for e in audited)

        # An unknown model is a 400 naming the field; nothing changes.
        unknown = api.put(
            models, json={"allowed_models": [PRICED, "no-such-model"]}, headers=staff.bearer
        )
        assert unknown.status_code == 400, unknown.text
        assert "allowed_models" in unknown.json(), unknown.json()
        assert "no-such-model" in unknown.text
        assert api.get(models, headers=staff.bearer).json()["allowed_models"] == []
        assert len(_audit(api, staff, "user.models", me.id)) == 3

        # Only staff.
        for method, path, body in (
            ("GET", f"/api/admin/users/{someone.id}/models/", None),
            ("PUT", f"/api/admin/users/{someone.id}/models/", {"allowed_models": None}),
            ("PUT", f"/api/admin/users/{me.id}/models/", {"allowed_models": None}),
        ):
            denied = api.request(method, path, json=body, headers=me.bearer)
            assert denied.status_code == 403, denied.text
        assert api.get(f"/api/admin/users/{me.id}/models/").status_code == 401
        missing = api.get("/api/admin/users/999999999/models/", headers=staff.bearer)
        assert missing.status_code == 404, missing.text
        missing = api.put(
            "/api/admin/users/999999999/models/",
            json={"allowed_models": None},
            headers=staff.bearer,
        )
        assert missing.status_code == 404, missing.text
        assert provider.hits == 3

        # An unknown field is a 400 too (ModelsPut forbids unknown fields); nothing changes.
        extra = api.put(
            models, json={"allowed_models": [PRICED], "colour": "red"}, headers=staff.bearer
        )
        assert extra.status_code == 400, extra.text
        assert "colour" in extra.text
        assert api.get(models, headers=staff.bearer).json()["allowed_models"] == []


def test_the_allowed_models_setting_is_everyones_default(
    restricted: RunningServer, provider: FakeLLMServer
) -> None:
    with _client(restricted) as api:
        staff = make_staff(restricted, api)
        me = register(api, "default")
        assert _model_ids(api, None) == ({PRICED}, None)
        assert _model_ids(api, me) == ({PRICED}, {PRICED})
        _assert_not_allowed(api, me, OTHER)
        assert provider.hits == 0
        _assert_allowed(api, me, PRICED)

        models = f"/api/admin/users/{me.id}/models/"
        assert api.get(models, headers=staff.bearer).json() == {
            "user": me.id,
            "own": False,
            "allowed_models": [PRICED],
        }
        # A user's own list replaces the default.
        own = api.put(models, json={"allowed_models": [PRICED, OTHER]}, headers=staff.bearer)
        assert own.status_code == 200, own.text
        assert own.json() == {"user": me.id, "own": True, "allowed_models": [OTHER, PRICED]}
        _assert_allowed(api, me, OTHER)
        assert _model_ids(api, me) == ({PRICED, OTHER}, {PRICED, OTHER})
        assert _model_ids(api, None) == ({PRICED}, None)

        back = api.put(models, json={"allowed_models": None}, headers=staff.bearer)
        assert back.json() == {"user": me.id, "own": False, "allowed_models": [PRICED]}
        _assert_not_allowed(api, me, OTHER)
        assert provider.hits == 2


# ---- 9. the admin budget API ------------------------------------------------------------------


def test_an_admin_sets_and_resets_a_users_budget(
    metered: RunningServer, provider: FakeLLMServer
) -> None:
    with _client(metered) as api:
        staff = make_staff(metered, api)
        me = register(api, "budget")
        path = f"/api/admin/users/{me.id}/budget/"
        midnight = _utc_text(_next_midnight())
        month_end = _utc_text(_next_month())

        def period(
            limit_tokens: int | None, limit_cost: float | None, resets_at: str
        ) -> dict[str, Any]:
            return {
                "limit_tokens": limit_tokens,
                "limit_cost": limit_cost,
                "spent_tokens": 0,
                "spent_cost": 0.0,
                "remaining_tokens": limit_tokens,
                "remaining_cost": limit_cost,
                "resets_at": resets_at,
            }

        default = {
            "own": False,
            "currency": "EUR",
            "day": period(1_000_000, None, midnight),
            "month": period(None, 1000.0, month_end),
        }
        shown = api.get(path, headers=staff.bearer)
        assert shown.status_code == 200, shown.text
        assert shown.json() == default
        assert _budget(api, me) == default

        # Costs as a decimal string and as a number; what is left out is no limit.
        put = api.put(
            path,
            json={"daily_tokens": 5000, "daily_cost": "0.25", "monthly_cost": 0.25},
            headers=staff.bearer,
        )
        assert put.status_code == 200, put.text
        own = {
            "own": True,
            "currency": "EUR",
            "day": period(5000, 0.25, midnight),
            "month": period(None, 0.25, month_end),
        }
        assert put.json() == own
        assert api.get(path, headers=staff.bearer).json() == own
        assert _budget(api, me) == own

        put = api.put(path, json={"daily_cost": 0.25, "monthly_tokens": None}, headers=staff.bearer)
        assert put.status_code == 200, put.text
        own = {
            "own": True,
            "currency": "EUR",
            "day": period(None, 0.25, midnight),
            "month": period(None, None, month_end),
        }
        assert put.json() == own

        # Refused: negative amounts, malformed amounts, unknown fields. Nothing changes.
        for body, field in (
            ({"daily_tokens": -1}, "daily_tokens"),
            ({"monthly_tokens": -5}, "monthly_tokens"),
            ({"daily_cost": "-0.25"}, "daily_cost"),
            ({"monthly_cost": -1}, "monthly_cost"),
            ({"daily_cost": "a lot"}, "daily_cost"),
        ):
            refused = api.put(path, json=body, headers=staff.bearer)
            assert refused.status_code == 400, (body, refused.text)
            assert field in refused.text, (body, refused.text)
        assert api.get(path, headers=staff.bearer).json() == own

        # It applies to the next call: a budget that fits none refuses it.
        tiny = api.put(path, json={"daily_tokens": 10}, headers=staff.bearer)
        assert tiny.status_code == 200, tiny.text
        refused = api.post(
            "/v1/chat/completions",
            json={"model": PRICED, "messages": _user("one more?")},
            headers=me.bearer,
        )
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert provider.hits == 0

        # DELETE: back to the default, and the call goes through.
        reset = api.delete(path, headers=staff.bearer)
        assert reset.status_code == 200, reset.text
        assert reset.json() == default
        assert _budget(api, me) == default
        answered = api.post(
            "/v1/chat/completions",
            json={"model": PRICED, "messages": _user("one more?")},
            headers=me.bearer,
        )
        assert answered.status_code == 200, answered.text
        assert provider.hits == 1

        audited = _audit(api, staff, "user.budget", me.id)
        assert len(audited) == 4  # three PUTs and the DELETE; the refused PUTs are not
        assert {e["actor_username"] for e in audited} == {staff.username}
        assert all(e["target_type"] == "user" for e in audited)

        # Only staff; an unknown user is 404.
        for method in ("GET", "PUT", "DELETE"):
            payload = {"daily_tokens": 1} if method == "PUT" else None
            denied = api.request(method, path, json=payload, headers=me.bearer)
            assert denied.status_code == 403, denied.text
            missing = api.request(
                method, "/api/admin/users/999999999/budget/", json=payload, headers=staff.bearer
            )
            assert missing.status_code == 404, missing.text
        assert api.get(path).status_code == 401
        after_call = api.get(path, headers=staff.bearer).json()
        assert after_call["own"] is False
        assert after_call["day"]["limit_tokens"] == 1_000_000
        assert after_call["day"]["spent_tokens"] > 0

        # An unknown field is a 400 naming it; nothing changes (and nothing is audited).
        unknown = api.put(path, json={"weekly_tokens": 10}, headers=staff.bearer)
        assert unknown.status_code == 400, unknown.text
        assert "weekly_tokens" in unknown.text
        assert api.get(path, headers=staff.bearer).json() == after_call
        assert len(_audit(api, staff, "user.budget", me.id)) == 4
