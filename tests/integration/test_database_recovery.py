"""PostgreSQL dropping every connection (a restart, a failover) costs at most the
requests in flight; the service recovers without being restarted."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.conftest import register
from tests.integration.servers import RunningServer

pytestmark = pytest.mark.skipif(
    not os.environ.get("PARLEY_TEST_POSTGRES_URL"), reason="PARLEY_TEST_POSTGRES_URL is not set"
)


def _terminate_connections(database_url: str) -> int:
    """Ends every server process of the database, as a restart does, and returns once
    they are gone: how many there were."""
    database = make_url(database_url).database
    others = "FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"

    async def run() -> int:
        engine = create_async_engine(os.environ["PARLEY_TEST_POSTGRES_URL"])
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    text(f"SELECT count(pg_terminate_backend(pid)) {others}"), {"db": database}
                )
                terminated = int(result.scalar_one())
                count = text(f"SELECT count(*) {others}")
                for _ in range(200):
                    if await connection.scalar(count, {"db": database}) == 0:
                        break
                    await asyncio.sleep(0.01)
                return terminated
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_the_service_recovers_after_postgres_drops_its_connections(
    server: RunningServer, client: httpx.Client
) -> None:
    if not server.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    user = register(client)
    for _ in range(5):
        assert client.get("/api/conversations/", headers=user.bearer).status_code == 200

    assert _terminate_connections(server.settings.database_url) >= 1

    statuses = [
        client.get("/api/conversations/", headers=user.bearer).status_code for _ in range(10)
    ]
    # Nothing was in flight, and checkout replaces the dead connections: no request fails.
    assert statuses == [200] * 10
    created = client.post("/api/conversations/", headers=user.bearer)
    assert created.status_code == 201
