"""What the browser tests share: a real ``parley serve`` on 127.0.0.1 (SQLite, the fake
OpenAI upstream), Debian's Chromium driven by Playwright, and accounts made the way people
make them (the register endpoint; staff with ``parley createsuperuser``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.fakes.llm_server import FakeLLMServer
from tests.integration.servers import PARLEY, TEST_SECRET_KEY, free_port, start_parley_serve

CHROMIUM = Path("/usr/bin/chromium")
UPSTREAM_KEY = "sk-browser-tests-0123456789"
MODEL = "gpt-6.1-sol"


def chromium_or_skip() -> str:
    """Debian's Chromium. CI (``.ci/run``) installs it and sets PARLEY_REQUIRE_BROWSER=1, so
    there a missing browser fails; elsewhere the browser tests skip, saying what to install."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    reason = "Chromium is missing: apt-get install chromium (browser tests drive /usr/bin/chromium)"
    if os.environ.get("PARLEY_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass(frozen=True)
class Served:
    base_url: str
    environment: dict[str, str]
    database: Path


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    email: str


@contextlib.contextmanager
def parley_serve(
    workdir: Path,
    upstream: FakeLLMServer,
    *,
    own_url_variables: Callable[[str], Mapping[str, str]] | None = None,
    **variables: str,
) -> Iterator[Served]:
    """``parley serve`` as the README runs it, pointed at the fake upstream.
    ``own_url_variables``: settings that name the server's own address (given its base URL),
    such as a WeChat redirect URI."""
    database = workdir / "parley.db"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.update(
        PARLEY_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        PARLEY_SECRET_KEY=TEST_SECRET_KEY,
        PARLEY_RATE_LIMIT="1000000/minute",
        PARLEY_AUTH_RATE_LIMIT="1000000/minute",
        PARLEY_LOG_LEVEL="WARNING",
        PARLEY_DEFAULT_MODEL=MODEL,
        PARLEY_KEEP_ECHO="true",
        PARLEY_PROVIDER_BACKOFF_INITIAL="0.01",
        OPENAI_API_KEY=UPSTREAM_KEY,
        OPENAI_BASE_URL=upstream.openai_base_url,
    )
    environment.update(variables)
    port = free_port()
    if own_url_variables is not None:
        environment.update(own_url_variables(f"http://127.0.0.1:{port}"))
    process, base_url = start_parley_serve(workdir, environment, workdir / "parley.log", port)
    try:
        yield Served(base_url, environment, database)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def new_person(served: Served, prefix: str = "web") -> Person:
    """An account made through the register endpoint."""
    username = f"{prefix}_{uuid.uuid4().hex[:8]}"
    person = Person(username, f"pw-{uuid.uuid4().hex}", f"{username}@example.com")
    response = httpx.post(
        f"{served.base_url}/api/v1/register/",
        json={"username": person.username, "email": person.email, "password": person.password},
    )
    assert response.status_code == 201, response.text
    return person


def new_staff(served: Served, prefix: str = "admin") -> Person:
    """A staff account made with ``parley createsuperuser``, as the README says."""
    username = f"{prefix}_{uuid.uuid4().hex[:8]}"
    person = Person(username, f"pw-{uuid.uuid4().hex}", f"{username}@example.com")
    subprocess.run(
        [PARLEY, "createsuperuser", "--username", username, "--email", person.email],
        env={**served.environment, "PARLEY_SUPERUSER_PASSWORD": person.password},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return person


_PROBLEMS: dict[int, list[str]] = {}


def watch_for_problems(page: Page) -> None:
    """Collect what would break a page for its user: uncaught script errors, and what the
    Content-Security-Policy refused (the console says "Refused to ..."). A 4xx the page
    shows on purpose is not one."""
    problems = _PROBLEMS.setdefault(id(page), [])
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error"
            and ("Refused to" in message.text or "Uncaught" in message.text)
            else None
        ),
    )


def page_problems(page: Page) -> list[str]:
    return _PROBLEMS.get(id(page), [])


def sign_in(page: Page, person: Person, path: str = "/") -> None:
    """Sign in through the page's form, as a person would."""
    page.goto(path)
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def api_client(served: Served, person: Person) -> httpx.Client:
    """An HTTP client speaking for ``person`` (a JWT from the login endpoint), to set up
    what a test needs faster than through the page. Close it (``with``) when done."""
    response = httpx.post(
        f"{served.base_url}/api/v1/login/",
        json={"username": person.username, "password": person.password},
    )
    assert response.status_code == 200, response.text
    return httpx.Client(
        base_url=served.base_url,
        headers={"Authorization": f"Bearer {response.json()['access']}"},
    )


def conversation_with_messages(http: httpx.Client, *messages: str) -> int:
    """A new conversation of the client's user (``api_client``), each message sent and
    answered by the model; its id."""
    created = http.post("/api/conversations/")
    assert created.status_code == 201, created.text
    conversation = int(created.json()["id"])
    for message in messages:
        sent = http.post(
            f"/api/conversations/{conversation}/send_message/",
            json={"message": message},
            timeout=30,
        )
        assert sent.status_code == 201, sent.text
    return conversation


SCREENSHOTS = "PARLEY_SCREENSHOTS"


def keep_screenshot(page: Page, name: str) -> None:
    """The README's pictures are taken by the tests that reach what they show:
    ``PARLEY_SCREENSHOTS=docs/screenshots ./just test tests/integration/web`` writes
    ``<name>.png`` there; otherwise nothing is taken."""
    folder = os.environ.get(SCREENSHOTS)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(folder) / f"{name}.png")
