"""Health, OpenAPI, and the error shapes of both dialects for framework-level errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dependency_injector import providers

from adapters.persistence.database import SqlDatabaseProbe, create_engine
from entrypoints.container import Container
from tests.integration.servers import RunningServer, running_server


def test_health_checks_the_database(client: httpx.Client) -> None:
    response = client.get("/api/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["message"], str)


@pytest.fixture(scope="module")
def server_with_unreachable_database(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    def configure(container: Container) -> None:
        # Nothing listens on port 9 here: a real connection attempt that fails.
        broken = create_engine("postgresql+asyncpg://parley@127.0.0.1:9/none")
        container.database_probe.override(providers.Object(SqlDatabaseProbe(broken)))

    with running_server(
        database_url, tmp_path_factory.mktemp("broken"), configure=configure
    ) as running:
        yield running


def test_health_is_503_when_the_database_is_down(
    server_with_unreachable_database: RunningServer,
) -> None:
    response = httpx.get(f"{server_with_unreachable_database.base_url}/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_openapi_document_covers_both_dialects(client: httpx.Client) -> None:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    paths = set(document["paths"])
    assert {
        "/api/conversations",
        "/api/conversations/{conversation_id}/send_message",
        "/api/chat-setting/{setting_id}",
        "/api/v1/register",
        "/api/v1/login",
        "/api/v1/token/refresh",
        "/api/v1/health",
        "/api/auth/token",
    } <= {p.rstrip("/") for p in paths}
    assert {"BearerJWT", "ApiToken"} <= set(document["components"]["securitySchemes"])
    docs = client.get("/schema/swagger")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


def test_framework_errors_use_each_dialects_shape(client: httpx.Client) -> None:
    missing_api = client.get("/api/nothing-here/")
    assert missing_api.status_code == 404
    assert set(missing_api.json()) == {"detail", "code"}
    missing_v1 = client.get("/api/v1/nothing-here/")
    assert missing_v1.status_code == 404
    assert set(missing_v1.json()) == {"error", "code"}

    wrong_method = client.delete("/api/v1/login/")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    assert "error" in wrong_method.json()


def test_paths_work_with_and_without_trailing_slash(client: httpx.Client) -> None:
    assert client.get("/api/v1/health/").status_code == 200
    assert client.get("/api/v1/health").status_code == 200


def test_refresh_body_errors_are_v1_fields(client: httpx.Client) -> None:
    response = client.post("/api/v1/token/refresh/", json={})
    assert response.status_code == 400
    assert response.json()["fields"] == {"refresh": ["This field is required."]}


@pytest.fixture(scope="module")
def server_with_unreachable_redis(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    # Nothing listens on port 9: Redis is configured but down.
    with running_server(
        database_url, tmp_path_factory.mktemp("noredis"), redis_url="redis://127.0.0.1:9/0"
    ) as running:
        yield running


def test_readiness_is_503_while_redis_is_down(server_with_unreachable_redis: RunningServer) -> None:
    base = server_with_unreachable_redis.base_url
    health = httpx.get(f"{base}/api/v1/health/")
    assert health.status_code == 200
    assert health.json()["redis"] == "unavailable"
    ready = httpx.get(f"{base}/api/v1/ready/")
    assert ready.status_code == 503
    assert ready.json()["redis"] == "unavailable"
    # Requests that need Redis (rate limits) fail clearly, not with a 500.
    models = httpx.get(f"{base}/api/v1/models/")
    assert models.status_code == 503
    assert models.json()["code"] == "redis_unavailable"
    assert "Retry-After" in models.headers


def test_ready_when_everything_answers(client: httpx.Client) -> None:
    response = client.get("/api/v1/ready/")
    assert response.status_code == 200
    assert response.json()["redis"] == "not_configured"


def test_requests_get_503_when_the_database_is_unreachable(
    server_with_unreachable_database: RunningServer, tmp_path: Path
) -> None:
    # The fixture's probe is broken; here the whole engine is.
    broken = create_engine("postgresql+asyncpg://parley@127.0.0.1:9/none")
    server_with_unreachable_database.container.engine.override(providers.Object(broken))
    try:
        response = httpx.get(
            f"{server_with_unreachable_database.base_url}/api/conversations/",
            headers={"Authorization": "Token abc"},
        )
    finally:
        server_with_unreachable_database.container.engine.reset_override()
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
