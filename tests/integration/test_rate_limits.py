"""Rate limits in one process (the in-memory store): per user, per address for
anonymous requests, and the stricter limit on endpoints that take credentials."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import register
from tests.integration.servers import RunningServer, running_server


@pytest.fixture
def limited(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # A server per test: each starts with the full allowance of its single address.
    with running_server(
        database_url,
        tmp_path_factory.mktemp("limited"),
        rate_limit="5/minute",
        auth_rate_limit="3/minute",
    ) as running:
        yield running


def test_a_user_gets_the_limit_then_429_with_headers(limited: RunningServer) -> None:
    with httpx.Client(base_url=limited.base_url, timeout=30) as http:
        user = register(http)  # registration + one authenticated request
        statuses = [
            http.get("/api/conversations/", headers=user.bearer).status_code for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 200, 429]
        refused = http.get("/api/conversations/", headers=user.bearer)
        assert refused.status_code == 429
        assert refused.json()["code"] == "throttled"
        assert set(refused.json()) == {"detail", "code"}
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Limit"] == "5"
        assert refused.headers["RateLimit-Remaining"] == "0"
        v1 = http.get("/api/v1/conversations/", headers=user.bearer)
        assert v1.status_code == 429
        assert set(v1.json()) == {"error", "code"}


def test_anonymous_requests_count_per_address(limited: RunningServer) -> None:
    with httpx.Client(base_url=limited.base_url, timeout=30) as http:
        statuses = [http.get("/api/v1/models/").status_code for _ in range(8)]
        assert 429 in statuses
        assert statuses.index(429) <= 5


def test_credentials_have_a_stricter_limit_per_username(limited: RunningServer) -> None:
    with httpx.Client(base_url=limited.base_url, timeout=30) as http:
        statuses = [
            http.post(
                "/api/v1/login/", json={"username": "victim", "password": f"guess-{n}"}
            ).status_code
            for n in range(5)
        ]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
