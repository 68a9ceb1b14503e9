"""Session and CSRF cookies as a browser (here: httpx's cookie jar) keeps them.

Runs against the in-memory session store and, when ``PARLEY_TEST_REDIS_URL`` is set,
against Redis: a logout must really remove the cookie, a stale or made-up session cookie
must not stand between a user and the next login, and a CSRF token only works with the
session it was issued for."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from application.ports import ChatCompletion, ChatDelta, ChatRequest
from entrypoints.container import Container
from tests.integration.conftest import Account, register
from tests.integration.servers import RunningServer, running_server

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL")


@pytest.fixture(
    scope="module",
    params=[
        "memory",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(not REDIS_URL, reason="PARLEY_TEST_REDIS_URL is not set"),
        ),
    ],
)
def sessions_server(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    model: HeldChatModel,
) -> Iterator[RunningServer]:
    # Any: running_server takes any Settings field as a keyword (its **overrides: Any).
    overrides: dict[str, Any] = {"redis_url": REDIS_URL} if request.param == "redis" else {}

    def configure(container: Container) -> None:
        container.chat_model.override(providers.Object(model))

    with running_server(
        database_url, tmp_path_factory.mktemp("sessions"), configure=configure, **overrides
    ) as running:
        yield running


class HeldChatModel:
    """A model whose answer waits until the test lets it go: a request that is still
    being served while the same browser does something else."""

    def __init__(self) -> None:
        self.answering = threading.Event()
        self.release = threading.Event()

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        self.answering.set()
        await asyncio.to_thread(self.release.wait, 30)
        return ChatCompletion(text="late answer", model=request.model, provider="held")

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(text="late answer")


@pytest.fixture(scope="module")
def model() -> HeldChatModel:
    return HeldChatModel()


@pytest.fixture
def browser(sessions_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as http:
        yield http


@pytest.fixture
def user(sessions_server: RunningServer) -> Account:
    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as http:
        return register(http, "cookie")


def _log_in(browser: httpx.Client, user: Account) -> str:
    response = browser.post(
        "/api/auth/session/", json={"username": user.username, "password": user.password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


def _credentials(user: Account) -> dict[str, str]:
    return {"username": user.username, "password": user.password}


def test_after_logout_the_browser_keeps_no_session_cookie_and_logs_in_again(
    browser: httpx.Client, user: Account
) -> None:
    token = _log_in(browser, user)
    assert "parley_session" in browser.cookies

    logout = browser.delete("/api/auth/session/", headers={"X-CSRFToken": token})
    assert logout.status_code == 204
    assert "parley_session" not in browser.cookies
    deletion = next(
        c for c in logout.headers.get_list("set-cookie") if c.startswith("parley_session=")
    )
    assert "Max-Age=0" in deletion

    # Every credentials endpoint works from the same browser, with no CSRF token.
    assert browser.post("/api/v1/login/", json=_credentials(user)).status_code == 200
    assert browser.post("/api/auth/token/", json=_credentials(user)).status_code == 200
    assert browser.post("/api/v1/token/refresh/", json={"refresh": user.refresh}).status_code == 200
    again = browser.post("/api/auth/session/", json=_credentials(user))
    assert again.status_code == 200
    assert browser.get("/api/conversations/").status_code == 200


def test_a_request_still_running_at_logout_does_not_bring_the_session_back(
    sessions_server: RunningServer, model: HeldChatModel, user: Account
) -> None:
    """The page's own requests are still in flight when its Sign out is clicked; the one
    that answers after the logout must not store the session again (which signed the
    browser straight back in)."""
    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as browser:
        token = _log_in(browser, user)
        session = browser.cookies["parley_session"]
        csrf = {"X-CSRFToken": token}
        conversation = browser.post("/api/conversations/", headers=csrf).json()["id"]
        model.answering.clear()
        model.release.clear()
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                browser.post,
                f"/api/conversations/{conversation}/send_message/",
                json={"message": "hello"},
                headers=csrf,
            )
            assert model.answering.wait(30)
            assert browser.delete("/api/auth/session/", headers=csrf).status_code == 204
            model.release.set()
            assert slow.result().status_code == 201

    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as later:
        later.cookies.set("parley_session", session, domain="127.0.0.1")
        assert later.get("/api/conversations/").status_code == 401


@pytest.mark.parametrize("planted", ["null", "", "0" * 64, "not-a-session"])
def test_an_unknown_session_cookie_needs_no_csrf_token_to_log_in_or_register(
    sessions_server: RunningServer, user: Account, planted: str
) -> None:
    cookie = {"Cookie": f"parley_session={planted}"}
    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as raw:
        login = raw.post("/api/v1/login/", json=_credentials(user), headers=cookie)
        assert login.status_code == 200, login.text
        session = raw.post("/api/auth/session/", json=_credentials(user), headers=cookie)
        assert session.status_code == 200, session.text
        name = f"new_{os.urandom(5).hex()}"
        registered = raw.post(
            "/api/v1/register/",
            json={"username": name, "email": f"{name}@example.com", "password": "long-enough-pw"},
            headers=cookie,
        )
        assert registered.status_code == 201, registered.text


def test_a_stale_session_cookie_is_deleted_for_good(
    sessions_server: RunningServer, browser: httpx.Client, user: Account
) -> None:
    token = _log_in(browser, user)
    stale = browser.cookies["parley_session"]
    assert browser.delete("/api/auth/session/", headers={"X-CSRFToken": token}).status_code == 204

    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as other:
        other.cookies.set("parley_session", stale, domain="127.0.0.1")
        refused = other.get("/api/conversations/")
        assert refused.status_code == 401
        assert "parley_session" not in other.cookies
        assert other.post("/api/v1/login/", json=_credentials(user)).status_code == 200


def test_logging_in_over_a_planted_session_cookie_starts_a_new_session(
    sessions_server: RunningServer, user: Account
) -> None:
    planted = "a" * 64
    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as browser:
        browser.cookies.set("parley_session", planted, domain="127.0.0.1")
        _log_in(browser, user)
        assert browser.cookies["parley_session"] != planted
        assert browser.get("/api/conversations/").status_code == 200
    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as attacker:
        attacker.cookies.set("parley_session", planted, domain="127.0.0.1")
        assert attacker.get("/api/conversations/").status_code == 401


def test_a_csrf_token_works_only_with_its_own_session(
    sessions_server: RunningServer, user: Account
) -> None:
    with (
        httpx.Client(base_url=sessions_server.base_url, timeout=30) as first,
        httpx.Client(base_url=sessions_server.base_url, timeout=30) as second,
    ):
        own = _log_in(first, user)
        foreign = _log_in(second, user)
        assert own != foreign
        # The first session's cookie with the second session's token, in cookie and header.
        first.cookies.set("csrftoken", foreign, domain="127.0.0.1")
        refused = first.post("/api/conversations/", headers={"X-CSRFToken": foreign})
        assert refused.status_code == 403
        assert refused.json()["code"] == "permission_denied"

        first.cookies.set("csrftoken", own, domain="127.0.0.1")
        assert first.post("/api/conversations/", headers={"X-CSRFToken": own}).status_code == 201


def test_a_lost_csrf_cookie_is_set_again_to_the_sessions_token(
    sessions_server: RunningServer, user: Account
) -> None:
    with httpx.Client(base_url=sessions_server.base_url, timeout=30) as browser:
        token = _log_in(browser, user)
        browser.cookies.delete("csrftoken")
        assert browser.get("/api/conversations/").status_code == 200
        assert browser.cookies["csrftoken"] == token
        assert (
            browser.post("/api/conversations/", headers={"X-CSRFToken": token}).status_code == 201
        )
