"""Runs before any test module is imported, in each pytest-xdist worker.

PostgreSQL needs nothing here: every test gets a database of its own
(``servers.postgres_database``). Redis has no such thing, and some tests empty their
database (FLUSHDB), so each worker gets a Redis database number of its own."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_redis = os.environ.get("PARLEY_TEST_REDIS_URL")
if _redis and _worker.startswith("gw"):
    _url = urlsplit(_redis)
    _base = int(_url.path.strip("/") or 0)
    _own = _base + 1 + int(_worker.removeprefix("gw"))
    os.environ["PARLEY_TEST_REDIS_URL"] = _url._replace(path=f"/{_own}").geturl()
