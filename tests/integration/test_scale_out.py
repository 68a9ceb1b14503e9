"""Two Parley processes behind one PostgreSQL and one Redis: the promises still hold.

Needs PARLEY_TEST_POSTGRES_URL and PARLEY_TEST_REDIS_URL (CI sets both)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis import Redis

from tests.integration.servers import TEST_SECRET_KEY, free_port, postgres_database, query

POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL")
PARLEY = str(Path(sys.executable).with_name("parley"))
# Redis database 15 belongs to this test and is emptied first, so earlier runs'
# counters (the same user ids recur in each fresh database) cannot leak in.
TEST_REDIS_DB = 15

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL and REDIS_URL),
    reason="PARLEY_TEST_POSTGRES_URL and PARLEY_TEST_REDIS_URL are needed",
)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    assert POSTGRES_URL
    assert REDIS_URL
    redis_url = urlsplit(REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}").geturl()
    Redis.from_url(redis_url).flushdb()
    with postgres_database(POSTGRES_URL) as database_url:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        environment.update(
            PARLEY_DATABASE_URL=database_url,
            PARLEY_REDIS_URL=redis_url,
            PARLEY_SECRET_KEY=TEST_SECRET_KEY,
            PARLEY_RATE_LIMIT="60/minute",
            PARLEY_AUTH_RATE_LIMIT="1000/minute",
            PARLEY_LOG_LEVEL="WARNING",
        )
        cwd = tmp_path_factory.mktemp("scale")
        migrated = subprocess.run(
            [PARLEY, "migrate"], env=environment, cwd=cwd, capture_output=True, timeout=120
        )
        assert migrated.returncode == 0, migrated.stderr
        ports = [free_port(), free_port()]
        processes = [
            subprocess.Popen(
                [PARLEY, "serve", "--no-migrate", "--port", str(port)],
                env=environment,
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        try:
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            for url, process in zip(urls, processes, strict=True):
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"{url}/api/v1/ready/", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert process.poll() is None, "a server exited"
                    assert time.monotonic() < deadline, "a server did not become ready"
                    time.sleep(0.2)
            yield urls[0], urls[1], database_url
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)


def _register(base_url: str) -> dict[str, str]:
    name = f"u_{uuid.uuid4().hex[:10]}"
    response = httpx.post(
        f"{base_url}/api/v1/register/",
        json={"username": name, "email": f"{name}@example.com", "password": "long-enough-pw"},
    )
    assert response.status_code == 201, response.text
    return {"username": name, "Authorization": f"Bearer {response.json()['access']}"}


def test_the_rate_limit_is_shared_by_both_processes(two_servers: tuple[str, str, str]) -> None:
    first, second, _ = two_servers
    user = _register(first)
    headers = {"Authorization": user["Authorization"]}
    statuses = [
        httpx.get(f"{(first, second)[n % 2]}/api/conversations/", headers=headers).status_code
        for n in range(61)
    ]
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429


def test_fifty_parallel_creates_over_two_processes_leave_ten_active(
    two_servers: tuple[str, str, str],
) -> None:
    first, second, database_url = two_servers
    user = _register(second)
    headers = {"Authorization": user["Authorization"]}

    async def fire() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as http:
            responses = await asyncio.gather(
                *(
                    http.post(f"{(first, second)[n % 2]}/api/conversations/", headers=headers)
                    for n in range(50)
                )
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(fire())
    assert statuses.count(201) == 10
    assert statuses.count(409) == 40
    active = query(
        database_url,
        "SELECT count(*) FROM conversations c JOIN users u ON u.id = c.owner_id "
        "WHERE u.username = :name AND c.status = 'active'",
        name=user["username"],
    )
    assert active == [(10,)]


def test_a_session_started_on_one_process_works_on_the_other(
    two_servers: tuple[str, str, str],
) -> None:
    first, second, _ = two_servers
    user = _register(first)
    with httpx.Client(timeout=30) as browser:
        login = browser.post(
            f"{first}/api/auth/session/",
            json={"username": user["username"], "password": "long-enough-pw"},
        )
        assert login.status_code == 200
        assert browser.get(f"{second}/api/conversations/").status_code == 200
        created = browser.post(
            f"{second}/api/conversations/", headers={"X-CSRFToken": login.json()["csrf_token"]}
        )
        assert created.status_code == 201


def test_health_reports_redis(two_servers: tuple[str, str, str]) -> None:
    body = httpx.get(f"{two_servers[0]}/api/v1/health/").json()
    assert body["database"] == "ok"
    assert body["redis"] == "ok"
