"""Browser sessions with CSRF, and logging out everywhere."""

from __future__ import annotations

import httpx

from tests.integration.conftest import Account
from tests.integration.servers import RunningServer


def _browser(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


def test_anonymous_and_token_requests_get_no_session_cookie(
    server: RunningServer, alice: Account
) -> None:
    with _browser(server) as browser:
        assert "set-cookie" not in browser.get("/api/v1/health/").headers
        assert "set-cookie" not in browser.get("/api/conversations/", headers=alice.bearer).headers


def test_a_session_authenticates_and_unsafe_requests_need_the_csrf_token(
    server: RunningServer, alice: Account
) -> None:
    with _browser(server) as browser:
        login = browser.post(
            "/api/auth/session/", json={"username": alice.username, "password": alice.password}
        )
        assert login.status_code == 200
        cookie = login.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookie if c.startswith("parley_session="))
        assert "HttpOnly" in session_cookie
        assert "SameSite=lax" in session_cookie
        token = login.json()["csrf_token"]

        assert browser.get("/api/conversations/").status_code == 200
        refused = browser.post("/api/conversations/")
        assert refused.status_code == 403
        assert set(refused.json()) == {"detail", "code"}
        created = browser.post("/api/conversations/", headers={"X-CSRFToken": token})
        assert created.status_code == 201
        assert created.json()["user"] == alice.id

        assert (
            browser.delete("/api/auth/session/", headers={"X-CSRFToken": token}).status_code == 204
        )
        assert browser.get("/api/conversations/").status_code == 401


def test_token_clients_need_no_csrf_token_even_with_cookies(
    server: RunningServer, alice: Account
) -> None:
    with _browser(server) as browser:
        browser.post(
            "/api/auth/session/", json={"username": alice.username, "password": alice.password}
        )
        # The same client, sending a JWT: no ambient authority is used, no CSRF needed.
        assert browser.post("/api/conversations/", headers=alice.bearer).status_code == 201


def test_a_wrong_password_starts_no_session(server: RunningServer, alice: Account) -> None:
    with _browser(server) as browser:
        response = browser.post(
            "/api/auth/session/", json={"username": alice.username, "password": "wrong-one"}
        )
        assert response.status_code == 401
        assert "parley_session" not in response.headers.get("set-cookie", "")
        assert browser.get("/api/conversations/").status_code == 401


def test_logout_everywhere_revokes_every_credential(
    server: RunningServer, client: httpx.Client, alice: Account
) -> None:
    api_token = client.post(
        "/api/auth/token/", json={"username": alice.username, "password": alice.password}
    ).json()["token"]
    with _browser(server) as browser:
        browser.post(
            "/api/auth/session/", json={"username": alice.username, "password": alice.password}
        )
        assert browser.get("/api/conversations/").status_code == 200

        assert client.post("/api/auth/logout-everywhere/", headers=alice.bearer).status_code == 204

        assert browser.get("/api/conversations/").status_code == 401
    assert client.get("/api/conversations/", headers=alice.bearer).status_code == 401
    assert (
        client.get(
            "/api/conversations/", headers={"Authorization": f"Token {api_token}"}
        ).status_code
        == 401
    )
    assert client.post("/api/v1/token/refresh/", json={"refresh": alice.refresh}).status_code == 401

    # Logging in again works at once.
    again = client.post(
        "/api/v1/login/", json={"username": alice.username, "password": alice.password}
    )
    assert again.status_code == 200
    fresh = {"Authorization": f"Bearer {again.json()['access']}"}
    assert client.get("/api/conversations/", headers=fresh).status_code == 200
