"""Integration fixtures: real HTTP against real databases.

Every test module runs against SQLite; when ``PARLEY_TEST_POSTGRES_URL`` is set (CI sets
it) the ``backend`` parameter adds a PostgreSQL run of the same tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import RunningServer, postgres_database, running_server

POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")


@pytest.fixture(
    scope="session",
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not POSTGRES_URL, reason="PARLEY_TEST_POSTGRES_URL is not set"
            ),
        ),
    ],
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "parley.db"
        yield f"sqlite+aiosqlite:///{path}"
    else:
        assert POSTGRES_URL is not None
        with postgres_database(POSTGRES_URL) as url:
            yield url


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same backend as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    else:
        assert POSTGRES_URL is not None
        with postgres_database(POSTGRES_URL) as url:
            yield url


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(database_url, tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


@dataclass
class Account:
    id: int
    username: str
    email: str
    password: str
    access: str
    refresh: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def register(http: httpx.Client, prefix: str = "user") -> Account:
    username = f"{prefix}_{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    email = f"{username}@example.com"
    response = http.post(
        "/api/v1/register/", json={"username": username, "email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    me = http.get("/api/chat-setting/", headers={"Authorization": f"Bearer {body['access']}"})
    assert me.status_code == 200, me.text
    return Account(
        id=me.json()["user"],
        username=username,
        email=email,
        password=password,
        access=body["access"],
        refresh=body["refresh"],
    )


@pytest.fixture
def alice(client: httpx.Client) -> Account:
    return register(client, "alice")


@pytest.fixture
def bob(client: httpx.Client) -> Account:
    return register(client, "bob")
