"""Registration, login, token refresh and API tokens over real HTTP (seed 000 bodies)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from tests.integration.conftest import Account, register
from tests.integration.servers import TEST_SECRET_KEY


def _new_name() -> str:
    return f"new_{uuid.uuid4().hex[:10]}"


def test_register_returns_tokens_and_profile(client: httpx.Client) -> None:
    name = _new_name()
    response = client.post(
        "/api/v1/register/",
        json={"username": name, "email": f"{name}@example.com", "password": "correct-horse"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"refresh", "access", "username", "email"}
    assert body["username"] == name
    assert body["email"] == f"{name}@example.com"
    me = client.get("/api/conversations/", headers={"Authorization": f"Bearer {body['access']}"})
    assert me.status_code == 200


def test_register_reports_every_failing_field_in_v1_shape(client: httpx.Client) -> None:
    response = client.post("/api/v1/register/", json={})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert isinstance(body["error"], str)
    assert set(body["fields"]) == {"username", "email", "password"}

    bad = client.post(
        "/api/v1/register/", json={"username": "has space", "email": "nope", "password": "123"}
    )
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"username", "email", "password"}


def test_register_rejects_a_taken_username_and_stores_nothing_new(
    client: httpx.Client, alice: Account
) -> None:
    response = client.post(
        "/api/v1/register/",
        json={"username": alice.username, "email": "other@example.com", "password": "another-pw1"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "username_taken"
    assert "username" in response.json()["fields"]
    # The original account still logs in with its own password.
    login = client.post(
        "/api/v1/login/", json={"username": alice.username, "password": alice.password}
    )
    assert login.status_code == 200
    assert login.json()["email"] == alice.email


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_a_username_is_taken_whatever_its_case_or_width(
    client: httpx.Client, alice: Account
) -> None:
    for variant in (alice.username.upper(), _full_width(alice.username)):
        response = client.post(
            "/api/v1/register/",
            json={"username": variant, "email": "other@example.com", "password": "another-pw1"},
        )
        assert response.status_code == 400, variant
        assert response.json()["code"] == "username_taken"
    login = client.post(
        "/api/v1/login/", json={"username": alice.username.upper(), "password": alice.password}
    )
    assert login.status_code == 200
    assert login.json()["username"] == alice.username


def test_a_password_of_invisible_characters_is_refused(client: httpx.Client) -> None:
    for password in (" " * 8, "\u200b" * 8):
        response = client.post(
            "/api/v1/register/",
            json={"username": "ghost", "email": "ghost@example.com", "password": password},
        )
        assert response.status_code == 400
        assert "password" in response.json()["fields"]


def test_register_with_wrong_json_types_and_broken_json(client: httpx.Client) -> None:
    wrong = client.post(
        "/api/v1/register/", json={"username": 5, "email": "a@b.co", "password": "long-enough"}
    )
    assert wrong.status_code == 400
    assert list(wrong.json()["fields"]) == ["username"]
    broken = client.post(
        "/api/v1/register/", content=b'{"username": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["code"] == "parse_error"
    array = client.post("/api/v1/register/", json=[1, 2])
    assert array.status_code == 400
    assert "non_field_errors" in array.json()["fields"]


def test_login_and_wrong_password(client: httpx.Client, alice: Account) -> None:
    ok = client.post(
        "/api/v1/login/", json={"username": alice.username, "password": alice.password}
    )
    assert ok.status_code == 200
    assert set(ok.json()) == {"refresh", "access", "username", "email"}

    wrong = client.post("/api/v1/login/", json={"username": alice.username, "password": "nope!"})
    unknown = client.post("/api/v1/login/", json={"username": _new_name(), "password": "nope!"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "authentication_failed"
    assert "error" in wrong.json()


def test_refresh_rotates_and_a_used_refresh_token_is_rejected(
    client: httpx.Client, alice: Account
) -> None:
    first = client.post("/api/v1/token/refresh/", json={"refresh": alice.refresh})
    assert first.status_code == 200
    pair = first.json()
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"] != alice.refresh
    assert (
        client.get(
            "/api/conversations/", headers={"Authorization": f"Bearer {pair['access']}"}
        ).status_code
        == 200
    )

    replay = client.post("/api/v1/token/refresh/", json={"refresh": alice.refresh})
    assert replay.status_code == 401
    assert replay.json()["code"] == "authentication_failed"
    # Reuse revokes the family: the token issued by the first refresh stops working too.
    assert (
        client.post("/api/v1/token/refresh/", json={"refresh": pair["refresh"]}).status_code == 401
    )
    # ... and so do that login's access tokens, at once rather than when they expire.
    for access in (alice.access, pair["access"]):
        response = client.get("/api/conversations/", headers={"Authorization": f"Bearer {access}"})
        assert response.status_code == 401


def test_an_access_token_is_not_a_refresh_token_and_vice_versa(
    client: httpx.Client, alice: Account
) -> None:
    assert client.post("/api/v1/token/refresh/", json={"refresh": alice.access}).status_code == 401
    as_access = client.get(
        "/api/conversations/", headers={"Authorization": f"Bearer {alice.refresh}"}
    )
    assert as_access.status_code == 401


def _forge(claims: dict[str, object], key: str = TEST_SECRET_KEY, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_forged_expired_and_unsigned_tokens_are_refused(
    client: httpx.Client, alice: Account
) -> None:
    now = datetime.now(UTC)
    base = {"sub": str(alice.id), "type": "access", "iat": now, "exp": now + timedelta(minutes=5)}
    good = _forge(base)
    assert (
        client.get("/api/conversations/", headers={"Authorization": f"Bearer {good}"}).status_code
        == 200
    )

    expired = _forge({**base, "iat": now - timedelta(hours=1), "exp": now - timedelta(minutes=1)})
    wrong_key = _forge(base, key="not-the-server-key-but-long-enough-for-hs256-ok")
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(
        f'{{"sub":"{alice.id}","type":"access","iat":{int(now.timestamp())},'
        f'"exp":{int((now + timedelta(minutes=5)).timestamp())}}}'.encode()
    ).decode()
    unsigned = f"{header}.{payload}."
    for token in (expired, wrong_key, unsigned, "garbage"):
        response = client.get("/api/conversations/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert set(response.json()) == {"detail", "code"}


def test_missing_or_unknown_credentials_are_401_with_detail(client: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Token"}):
        response = client.get("/api/conversations/", headers=headers)
        assert response.status_code == 401
        assert "detail" in response.json()
        assert "WWW-Authenticate" in response.headers


def test_api_token_lifecycle(client: httpx.Client, alice: Account) -> None:
    issued = client.post(
        "/api/auth/token/", json={"username": alice.username, "password": alice.password}
    )
    assert issued.status_code == 200
    token = issued.json()["token"]
    headers = {"Authorization": f"Token {token}"}
    assert client.get("/api/conversations/", headers=headers).status_code == 200

    revoked = client.delete("/api/auth/token/", headers=headers)
    assert revoked.status_code == 204
    after = client.get("/api/conversations/", headers=headers)
    assert after.status_code == 401
    assert after.json()["code"] == "authentication_failed"


def test_api_token_needs_the_right_password(client: httpx.Client, alice: Account) -> None:
    response = client.post(
        "/api/auth/token/", json={"username": alice.username, "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}
    missing = client.post("/api/auth/token/", json={})
    assert missing.status_code == 400
    assert set(missing.json()) == {"username", "password"}


def test_deleting_tokens_with_a_jwt_revokes_all_api_tokens(
    client: httpx.Client, alice: Account
) -> None:
    tokens = [
        client.post(
            "/api/auth/token/", json={"username": alice.username, "password": alice.password}
        ).json()["token"]
        for _ in range(2)
    ]
    assert client.delete("/api/auth/token/", headers=alice.bearer).status_code == 204
    for token in tokens:
        response = client.get("/api/conversations/", headers={"Authorization": f"Token {token}"})
        assert response.status_code == 401
    # The JWT itself keeps working.
    assert client.get("/api/conversations/", headers=alice.bearer).status_code == 200


def test_a_second_user_registers_independently(client: httpx.Client) -> None:
    first, second = register(client), register(client)
    assert first.id != second.id
