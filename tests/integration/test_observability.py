"""What an operator sees: ``GET /metrics`` after real chats (one answered, one failed) and
refused requests, JSON log lines with request ids, and metrics summed across workers.

Each ``parley serve`` here runs as the README runs it, against the fake OpenAI-compatible
provider; the scrape is parsed with prometheus-client's own parser."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import behaviours as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.conftest import register
from tests.integration.servers import (
    TEST_SECRET_KEY,
    migrate,
    running_server,
    start_parley_serve,
    stop_parley_serve,
)

KEY = "sk-observability-0123456789abcdef"
MODEL = "gpt-6.1-sol"
PROVIDER = "OpenAI"  # as the catalog names it, and the replies store it
METRICS_TOKEN = "metrics-token-0123456789abcdef"
SECRET_WORDS = "the-walrus-sings-at-midnight"  # a message text: never in logs or metrics
SEND = "/api/conversations/{conversation_id}/send_message"  # Litestar's route template


def _environment(database_url: str, upstream: FakeLLMServer, **extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environment.update(
        PARLEY_DATABASE_URL=database_url,
        PARLEY_SECRET_KEY=TEST_SECRET_KEY,
        PARLEY_RATE_LIMIT="1000000/minute",
        PARLEY_AUTH_RATE_LIMIT="4/minute",
        PARLEY_LOG_LEVEL="INFO",
        PARLEY_LOG_FORMAT="json",
        PARLEY_ACCESS_LOG="true",
        PARLEY_METRICS_ENABLED="true",
        PARLEY_METRICS_TOKEN=METRICS_TOKEN,
        PARLEY_DEFAULT_MODEL=MODEL,
        PARLEY_MAX_ACTIVE_CONVERSATIONS="1",
        PARLEY_PROVIDER_BACKOFF_INITIAL="0.01",
        PARLEY_SHUTDOWN_GRACE_SECONDS="5",
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=upstream.openai_base_url,
    )
    environment.update(extra)
    return environment


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@dataclass
class Served:
    base_url: str
    log: Path
    upstream: FakeLLMServer

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log.read_text().splitlines():
            if raw.startswith("{"):
                lines.append(json.loads(raw))
        return lines


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("observability")
    database_url = f"sqlite+aiosqlite:///{directory / 'parley.db'}"
    log = directory / "parley.log"
    with FakeLLMServer(api_key=KEY) as upstream:
        process, base_url = start_parley_serve(directory, _environment(database_url, upstream), log)
        try:
            yield Served(base_url, log, upstream)
        finally:
            stop_parley_serve(process)


@pytest.fixture(scope="module")
def chatted(served: Served) -> dict[str, Any]:
    """One answered chat, one failed chat, one conversation over the limit and logins
    over the credentials limit, as a user would meet them."""
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        alice = register(http, "alice")
        conversation = http.post("/api/conversations/", headers=alice.bearer).json()
        send = f"/api/conversations/{conversation['id']}/send_message/"
        answered = http.post(send, json={"message": SECRET_WORDS}, headers=alice.bearer)
        streamed = http.post(
            "/api/v1/messages/chat/",
            json={"conversation_id": conversation["id"], "message": "more", "stream": True},
            headers=alice.bearer,
        )
        served.upstream.script(fake.error(500), fake.error(500), fake.error(500))
        failed = http.post(
            send,
            json={"message": f"again: {SECRET_WORDS}"},
            headers={**alice.bearer, "X-Request-ID": "report-4711"},
        )
        over_limit = http.post("/api/conversations/", headers=alice.bearer)
        logins = [
            http.post(
                "/api/v1/login/", json={"username": alice.username, "password": "wrong-password"}
            ).status_code
            for _ in range(4)
        ]
    return {
        "alice": alice,
        "answered": answered,
        "streamed": streamed,
        "failed": failed,
        "over_limit": over_limit,
        "logins": logins,
    }


def scrape(base_url: str, token: str | None = METRICS_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base_url}/metrics", headers=headers, timeout=10)


def test_a_scrape_counts_the_answered_chat_the_failed_one_and_the_refusals(
    served: Served, chatted: dict[str, Any]
) -> None:
    assert chatted["answered"].status_code == 201
    assert chatted["streamed"].status_code == 200
    assert "event: done" in chatted["streamed"].text
    assert chatted["failed"].status_code == 502
    assert chatted["over_limit"].status_code == 409
    assert chatted["logins"][-1] == 429

    response = scrape(served.base_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    scraped = samples(response.text)

    turns = "parley_chat_turns_total"
    assert value(scraped, turns, model=MODEL, provider=PROVIDER, outcome="completed") == 2
    assert value(scraped, turns, model=MODEL, provider=PROVIDER, outcome="failed") == 1
    # Three attempts at the failed chat: two retries.
    assert value(scraped, "parley_provider_retries_total", provider=PROVIDER, model=MODEL) == 2
    latency = "parley_provider_latency_seconds_count"
    assert value(scraped, latency, provider=PROVIDER, model=MODEL) == 3
    first_token = "parley_time_to_first_token_seconds_count"
    assert value(scraped, first_token, provider=PROVIDER, model=MODEL) == 1
    assert value(scraped, "parley_tokens_total", model=MODEL, kind="prompt") > 0
    assert value(scraped, "parley_tokens_total", model=MODEL, kind="completion") > 0

    refusals = "parley_limit_refusals_total"
    assert value(scraped, refusals, limit="active_conversations") == 1
    assert value(scraped, refusals, limit="rate_credentials") >= 1

    http_requests = "parley_requests_total"
    for status in ("201", "502"):
        labels = {"method": "POST", "path": SEND, "status_code": status, "app_name": "parley"}
        assert value(scraped, http_requests, **labels) == 1
    assert value(scraped, "parley_streams_in_flight") == 0
    assert ("parley_db_connections_in_use", frozenset()) in scraped


def test_the_scrape_holds_no_user_content_and_no_key(
    served: Served, chatted: dict[str, Any]
) -> None:
    text = scrape(served.base_url).text
    assert SECRET_WORDS not in text
    assert KEY not in text
    assert chatted["alice"].username not in text
    assert chatted["alice"].access not in text


def test_metrics_need_the_token(served: Served) -> None:
    assert scrape(served.base_url, token=None).status_code == 401
    assert scrape(served.base_url, token="not-the-token").status_code == 401
    assert scrape(served.base_url).status_code == 200


def test_a_failed_chat_names_its_request_id_in_the_body_the_header_and_the_log(
    served: Served, chatted: dict[str, Any]
) -> None:
    failed = chatted["failed"]
    assert failed.headers["x-request-id"] == "report-4711"
    assert failed.json()["request_id"] == "report-4711"
    lines = [line for line in served.log_lines() if line.get("request_id") == "report-4711"]
    access = [line for line in lines if line["logger"] == "parley.access"]
    assert len(access) == 1
    assert access[0]["status"] == 502
    assert access[0]["route"] == SEND
    assert access[0]["user_id"] == chatted["alice"].id
    assert access[0]["model"] == MODEL
    assert access[0]["level"] == "ERROR"  # a 5xx is logged whatever the access log says
    # The provider's failure was logged while serving that request, under its id.
    assert any(line["logger"] == "parley.llm" for line in lines)


def test_every_answer_carries_a_request_id_and_the_access_line_has_the_tokens(
    served: Served, chatted: dict[str, Any]
) -> None:
    answered = chatted["answered"]
    request_id = answered.headers["x-request-id"]
    assert len(request_id) == 32  # none sent: a new one
    assert httpx.get(f"{served.base_url}/no/such/page").headers["x-request-id"]
    insane = httpx.get(f"{served.base_url}/api/v1/health/", headers={"X-Request-ID": "a b\tc"})
    assert insane.headers["x-request-id"] != "a b\tc"

    (line,) = [line for line in served.log_lines() if line.get("request_id") == request_id]
    assert line["status"] == 201
    assert line["provider"] == PROVIDER
    assert line["prompt_tokens"] > 0
    assert line["completion_tokens"] > 0
    assert line["latency_ms"] > 0


def test_the_logs_hold_no_message_text_no_key_and_no_token(
    served: Served, chatted: dict[str, Any]
) -> None:
    text = served.log.read_text()
    assert SECRET_WORDS not in text
    assert KEY not in text
    assert chatted["alice"].access not in text
    assert chatted["alice"].password not in text
    assert METRICS_TOKEN not in text


def test_metrics_are_off_unless_asked_for(tmp_path: Path) -> None:
    with running_server(f"sqlite+aiosqlite:///{tmp_path / 'off.db'}", tmp_path) as server:
        assert httpx.get(f"{server.base_url}/metrics").status_code == 404


def test_without_a_token_only_this_host_may_scrape(tmp_path: Path) -> None:
    """Behind a trusted proxy, a scraper elsewhere is refused; one on this host is not."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    with FakeLLMServer(api_key=KEY) as upstream:
        environment = _environment(
            database_url, upstream, PARLEY_METRICS_TOKEN="", PARLEY_TRUSTED_PROXIES="127.0.0.1"
        )
        process, base_url = start_parley_serve(tmp_path, environment, tmp_path / "log")
        try:
            assert scrape(base_url, token=None).status_code == 200
            elsewhere = httpx.get(f"{base_url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
            assert elsewhere.status_code == 403
            assert "PARLEY_METRICS_TOKEN" in elsewhere.json()["error"]
        finally:
            stop_parley_serve(process)


def test_two_workers_scrape_as_one(tmp_path: Path) -> None:
    """Requests served by either worker are counted once, whichever worker is scraped."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    migrate(database_url)
    metrics_dir = tmp_path / "metrics"
    with FakeLLMServer(api_key=KEY) as upstream:
        environment = _environment(
            database_url, upstream, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
        )
        process, base_url = start_parley_serve(
            tmp_path, environment, tmp_path / "log", options=("--workers", "2", "--no-migrate")
        )
        try:
            health = {
                "method": "GET",
                "path": "/api/v1/health",
                "status_code": "200",
                "app_name": "parley",
            }
            before = value(samples(scrape(base_url).text), "parley_requests_total", **health)
            sent = 0
            # A new connection each, until both workers have answered some (the kernel
            # hands connections to whichever worker accepts first).
            while sent < 40 or (len(_writers(metrics_dir)) < 2 and sent < 1000):
                assert httpx.get(f"{base_url}/api/v1/health/").status_code == 200
                sent += 1
            assert len(_writers(metrics_dir)) >= 2
            for _ in range(6):
                scraped = samples(scrape(base_url).text)
                assert value(scraped, "parley_requests_total", **health) == before + sent
        finally:
            stop_parley_serve(process)


def _writers(metrics_dir: Path) -> set[str]:
    """The processes that wrote counters: prometheus-client names each file by its pid."""
    return {path.name.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
