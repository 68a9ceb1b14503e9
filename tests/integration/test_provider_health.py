"""``GET /api/admin/providers/``: what staff see of each provider and model after real
chats against fake providers -- counts, success rate, latency percentiles, the last
error without the key -- and the cool-down: after consecutive provider failures the
primary is skipped for its fallback without being asked (the fake counts requests).

The models here have ids of their own, so that other modules' chats on the shared
database do not show in their figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from adapters.persistence import tables as t
from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.admin_support import _run, make_staff
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, running_server

KEY = "sk-health-view-key-5e1f0a9c7b3d"
GEMINI_KEY = "AIza-health-view-gemini-8c2e4a6b"
STEADY = "health-steady"  # OpenAI, no fallback
PRIMARY = "health-primary"  # OpenAI, falls back to BACKUP
BACKUP = "health-backup"  # Gemini
IDLE = "health-idle"  # never asked
COOLDOWN_FAILURES = 3


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def gemini_upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=GEMINI_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    openai_upstream: FakeLLMServer,
    gemini_upstream: FakeLLMServer,
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("provider-health"),
        providers={
            "openai": {"api_key": KEY, "base_url": openai_upstream.openai_base_url},
            "gemini": {"api_key": GEMINI_KEY, "base_url": gemini_upstream.base_url},
        },
        models={
            STEADY: {"provider": "openai", "upstream": "gpt-6.1-sol", "temperature": False},
            PRIMARY: {"provider": "openai", "upstream": "gpt-6-luna", "temperature": False},
            BACKUP: {"provider": "gemini", "upstream": "gemini-3.8-flash", "temperature": False},
            IDLE: {"provider": "openai", "upstream": "gpt-6.1-sol", "temperature": False},
        },
        fallbacks={PRIMARY: [BACKUP]},
        default_model=STEADY,
        provider_max_attempts=1,  # one upstream request per call: the counts stay plain
        provider_cooldown_failures=COOLDOWN_FAILURES,
        provider_cooldown_seconds=600.0,  # outlasts the module: no test waits for its end
    ) as running:
        yield running


@pytest.fixture
def http(parley: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def admin(parley: RunningServer, http: httpx.Client) -> Account:
    return make_staff(parley, http)


def _chat(
    http: httpx.Client, who: Account, model: str, conversation: int | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"message": "how are you?", "model": model}
    if conversation is not None:
        body["conversation_id"] = conversation
    return http.post("/api/v1/messages/chat/", json=body, headers=who.bearer)


def _health(http: httpx.Client, admin: Account) -> dict[str, Any]:
    response = http.get("/api/admin/providers/", headers=admin.bearer)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _model(view: dict[str, Any], model_id: str) -> tuple[str, dict[str, Any]]:
    for provider in view["providers"]:
        for model in provider["models"]:
            if model["model"] == model_id:
                return provider["provider"], model
    raise AssertionError(f"{model_id} is not in the view")


def test_the_view_counts_answers_and_failures_and_shows_the_last_error_without_the_key(
    parley: RunningServer,
    http: httpx.Client,
    admin: Account,
    openai_upstream: FakeLLMServer,
) -> None:
    user = register(http)
    first = _chat(http, user, STEADY)
    assert first.status_code == 201, first.text
    conversation = first.json()["conversation_id"]
    assert _chat(http, user, STEADY, conversation).status_code == 201
    # A stateless call (the OpenAI-compatible endpoint) counts as well.
    stateless = http.post(
        "/v1/chat/completions",
        json={"model": STEADY, "messages": [{"role": "user", "content": "hi"}]},
        headers=user.bearer,
    )
    assert stateless.status_code == 200, stateless.text
    openai_upstream.script(fake.error(500, message=f"Internal error, key={KEY}"))
    failed = _chat(http, user, STEADY, conversation)
    assert failed.status_code == 502, failed.text

    view = _health(http, admin)
    assert view["window_seconds"] == 3600
    provider, steady = _model(view, STEADY)
    assert provider == "OpenAI"
    assert steady["calls"] == 4
    assert steady["success_rate"] == 0.75
    latency = steady["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"]
    error = steady["last_error"]
    assert error["code"] == "provider_error"
    assert "HTTP 500" in error["message"]
    assert KEY not in str(view)
    assert KEY[:12] not in str(view)
    assert datetime.fromisoformat(error["at"]).tzinfo is not None
    assert (steady["cooling_down"], steady["cooldown_until"]) == (False, None)


def test_a_stored_message_that_holds_a_key_is_masked_in_the_view(
    parley: RunningServer, http: httpx.Client, admin: Account
) -> None:
    # Messages are scrubbed of the key when stored; one that was not (stored by an older
    # version, or quoting the key in another form) must not leak through the view.
    user = register(http)
    answered = _chat(http, user, BACKUP)
    assert answered.status_code == 201, answered.text
    _run(
        parley.settings.database_url,
        insert(t.messages).values(
            conversation_id=answered.json()["conversation_id"],
            role="assistant",
            content="",
            status="failed",
            model=BACKUP,
            provider="Google",
            latency_ms=12,
            error_code="provider_auth",
            error_message=f"Model provider Google: HTTP 400: API key not valid: {GEMINI_KEY}",
            created_at=datetime.now(UTC),
        ),
    )
    _, backup = _model(_health(http, admin), BACKUP)
    assert backup["last_error"]["code"] == "provider_auth"
    assert "API key not valid" in backup["last_error"]["message"]
    assert GEMINI_KEY not in backup["last_error"]["message"]
    assert GEMINI_KEY[:10] not in backup["last_error"]["message"]


def test_consecutive_failures_cool_the_primary_down_and_the_fallback_answers_alone(
    http: httpx.Client,
    admin: Account,
    openai_upstream: FakeLLMServer,
    gemini_upstream: FakeLLMServer,
) -> None:
    user = register(http)
    _, primary = _model(_health(http, admin), PRIMARY)
    assert (primary["cooling_down"], primary["cooldown_until"]) == (False, None)

    openai_upstream.script(*[fake.error(503)] * COOLDOWN_FAILURES)
    conversation = None
    for _ in range(COOLDOWN_FAILURES):
        hits = openai_upstream.hits
        answered = _chat(http, user, PRIMARY, conversation)
        assert answered.status_code == 201, answered.text
        assert answered.json()["ai_message"]["model"] == BACKUP
        assert openai_upstream.hits == hits + 1  # the primary was asked, and failed
        conversation = answered.json()["conversation_id"]

    _, primary = _model(_health(http, admin), PRIMARY)
    assert primary["cooling_down"] is True
    assert datetime.fromisoformat(primary["cooldown_until"]) > datetime.now(UTC)

    primary_hits, backup_hits = openai_upstream.hits, gemini_upstream.hits
    answered = _chat(http, user, PRIMARY, conversation)
    assert answered.status_code == 201, answered.text
    assert answered.json()["ai_message"]["model"] == BACKUP
    assert openai_upstream.hits == primary_hits  # the cooling primary was not touched
    assert gemini_upstream.hits == backup_hits + 1
    # Other models of the same provider are not cooling.
    _, steady = _model(_health(http, admin), STEADY)
    assert steady["cooling_down"] is False


def test_every_configured_model_is_listed_under_its_provider(
    http: httpx.Client, admin: Account
) -> None:
    view = _health(http, admin)
    listed = {m["model"]: p["provider"] for p in view["providers"] for m in p["models"]}
    models = http.get("/api/v1/models/", headers=admin.bearer).json()
    assert set(listed) == {model["id"] for model in models}
    assert listed[BACKUP] == "Google"
    _, idle = _model(view, IDLE)
    assert (idle["calls"], idle["success_rate"], idle["latency_ms"], idle["last_error"]) == (
        0,
        None,
        None,
        None,
    )


def test_only_staff_may_look(http: httpx.Client) -> None:
    assert http.get("/api/admin/providers/").status_code == 401
    user = register(http)
    refused = http.get("/api/admin/providers/", headers=user.bearer)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
