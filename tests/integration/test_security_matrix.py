"""Who may touch what, which credentials count, and what input is only data.

- Object access: every endpoint that takes an id answers another user's object exactly
  as it answers a missing one (404, same body) and changes nothing; admin endpoints are
  401 anonymous and 403 for users.
- Tokens: expired, not yet valid, badly signed, unsigned, wrong algorithm, wrong type,
  revoked, or belonging to a deactivated account are all 401; a reused refresh token
  revokes its whole family.
- Passwords: argon2id at rest, the minimum policy, no user enumeration, throttled guessing.
- Input: SQL and FTS syntax is stored and searched as text; image URLs on private
  networks are refused; HTML is returned verbatim as JSON.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.llm_server import FakeLLMServer
from tests.integration.admin_support import make_staff
from tests.integration.conftest import Account, register
from tests.integration.servers import TEST_SECRET_KEY, RunningServer, query, running_server

# A new connection per request: on a reused connection the in-thread test server answers
# ~40 ms late (its listening socket is made with proto 0, so asyncio never sets
# TCP_NODELAY on accepted connections and Nagle meets delayed ACKs).
NO_KEEP_ALIVE = httpx.Limits(max_keepalive_connections=0)
KEY = "sk-security-matrix-0123456789"
MISSING = 2_147_483_000  # an id no object has (within a 32-bit column)
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("security"),
        providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
        default_model="gpt-6-luna",
        provider_backoff_initial=0.01,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def http(parley: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=parley.base_url, timeout=30, limits=NO_KEEP_ALIVE) as client:
        yield client


@dataclass
class World:
    alice: Account
    bob: Account
    admin: Account
    conversation: int  # alice's, active, with one exchange
    closed: int  # alice's, closed
    setting: int  # alice's chat settings id
    title: str


@pytest.fixture(scope="module")
def world(parley: RunningServer, http: httpx.Client) -> World:
    alice, bob = register(http, "alice"), register(http, "bob")
    admin = make_staff(parley, http)
    title = f"alice-private-{uuid.uuid4().hex[:8]}"
    created = http.post("/api/v1/conversations/", json={"title": title}, headers=alice.bearer)
    assert created.status_code == 201, created.text
    conversation = created.json()["id"]
    sent = http.post(
        f"/api/conversations/{conversation}/send_message/",
        json={"message": "alice's secret question"},
        headers=alice.bearer,
    )
    assert sent.status_code == 201, sent.text
    closed = http.post("/api/conversations/", headers=alice.bearer).json()["id"]
    assert http.post(f"/api/conversations/{closed}/close/", headers=alice.bearer).is_success
    setting = http.get("/api/chat-setting/", headers=alice.bearer).json()["id"]
    return World(alice, bob, admin, conversation, closed, setting, title)


def _queries(database_url: str, *statements: str, **params: Any) -> list[list[tuple[Any, ...]]]:
    """Several reads on one connection (``query`` opens an engine per statement)."""

    async def run() -> list[list[tuple[Any, ...]]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                results = []
                for statement in statements:
                    rows = await connection.execute(text(statement), params)
                    results.append([tuple(row) for row in rows])
                return results
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _state(parley: RunningServer, world: World) -> Any:
    """Everything of alice's that another user might try to change."""
    return _queries(
        parley.settings.database_url,
        "SELECT id, title, status, model FROM conversations WHERE owner_id = :o ORDER BY id",
        "SELECT m.id, m.role, m.content FROM messages m JOIN conversations c "
        "ON c.id = m.conversation_id WHERE c.owner_id = :o ORDER BY m.id",
        "SELECT ai_model, temperature, max_tokens FROM chat_settings WHERE user_id = :o",
        "SELECT is_active FROM users WHERE id = :o",
        "SELECT count(*) FROM audit_log",
        o=world.alice.id,
    )


# (method, path, json body, stream?) -- {c}: alice's conversation, {x}: her closed one,
# {s}: her chat settings.
OWNED_ENDPOINTS = [
    ("GET", "/api/conversations/{c}/", None),
    ("POST", "/api/conversations/{c}/close/", None),
    ("POST", "/api/conversations/{x}/reopen/", None),
    ("GET", "/api/conversations/{c}/messages/", None),
    ("POST", "/api/conversations/{c}/send_message/", {"message": "bob was here"}),
    ("POST", "/api/conversations/{c}/send_message/", {"message": "bob", "stream": True}),
    ("GET", "/api/v1/conversations/{c}/", None),
    ("PUT", "/api/v1/conversations/{c}/", {"title": "bob's now"}),
    ("PATCH", "/api/v1/conversations/{c}/", {"status": "closed"}),
    ("PATCH", "/api/v1/conversations/{x}/", {"status": "active"}),
    ("DELETE", "/api/v1/conversations/{c}/", None),
    ("GET", "/api/v1/conversations/{c}/messages/", None),
    ("GET", "/api/v1/messages/?conversation_id={c}", None),
    ("POST", "/api/v1/messages/chat/", {"conversation_id": "{c}", "message": "bob"}),
    (
        "POST",
        "/api/v1/messages/chat/",
        {"conversation_id": "{c}", "message": "bob", "stream": True},
    ),
    (
        "PUT",
        "/api/chat-setting/{s}/",
        {"ai_model": "gpt-6.1-sol", "temperature": 1.5, "max_tokens": 7},
    ),
    ("PATCH", "/api/chat-setting/{s}/", {"temperature": 1.9}),
]


def _fill(template: Any, ids: dict[str, int]) -> Any:
    if isinstance(template, str):
        for name, value in ids.items():
            if template == "{" + name + "}":
                return value
            template = template.replace("{" + name + "}", str(value))
        return template
    if isinstance(template, dict):
        return {key: _fill(value, ids) for key, value in template.items()}
    return template


def _call(
    http: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    return http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), OWNED_ENDPOINTS)
def test_another_users_object_is_exactly_as_missing_as_a_missing_one(
    parley: RunningServer,
    http: httpx.Client,
    world: World,
    method: str,
    path: str,
    body: Any,
) -> None:
    before = _state(parley, world)
    theirs = {"c": world.conversation, "x": world.closed, "s": world.setting}
    missing = {"c": MISSING, "x": MISSING, "s": MISSING}
    foreign = _call(http, method, _fill(path, theirs), _fill(body, theirs), world.bob.bearer)
    absent = _call(http, method, _fill(path, missing), _fill(body, missing), world.bob.bearer)
    assert (foreign.status_code, absent.status_code) == (404, 404), foreign.text
    assert foreign.json() == absent.json()
    assert world.title not in foreign.text
    assert "secret" not in foreign.text
    anonymous = _call(http, method, _fill(path, theirs), _fill(body, theirs), {})
    assert anonymous.status_code == 401
    assert "WWW-Authenticate" in anonymous.headers
    assert _state(parley, world) == before
    # The owner still gets there (the 404 is about who asks, not a broken route).
    if method == "GET":
        assert _call(http, method, _fill(path, theirs), None, world.alice.bearer).status_code == 200


ADMIN_ENDPOINTS = [
    ("GET", "/api/admin/conversations/", True),
    ("GET", "/api/admin/conversations/?search=secret", True),
    ("GET", "/api/admin/conversations/{c}/", True),
    ("POST", "/api/admin/conversations/{c}/close/", False),
    ("POST", "/api/admin/conversations/{x}/reopen/", False),
    ("GET", "/api/admin/conversations/{c}/stats/", True),
    ("GET", "/api/admin/users/", True),
    ("POST", "/api/admin/users/{u}/deactivate/", False),
    ("POST", "/api/admin/users/{u}/reactivate/", False),
    ("GET", "/api/admin/usage/", True),
    ("GET", "/api/admin/audit-log/", True),
    ("GET", "/api/admin/providers/", True),
]


@pytest.mark.parametrize(("method", "path", "safe"), ADMIN_ENDPOINTS)
def test_admin_endpoints_are_401_anonymous_and_403_for_users(
    parley: RunningServer,
    http: httpx.Client,
    world: World,
    method: str,
    path: str,
    safe: bool,
) -> None:
    before = _state(parley, world)
    ids = {"c": world.conversation, "x": world.closed, "u": world.alice.id}
    url = _fill(path, ids)
    anonymous = http.request(method, url)
    assert anonymous.status_code == 401
    assert "WWW-Authenticate" in anonymous.headers
    for user in (world.bob, world.alice):  # the owner is no admin either
        refused = http.request(method, url, headers=user.bearer)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "permission_denied"
        assert world.title not in refused.text
        assert "secret" not in refused.text
    assert _state(parley, world) == before  # nothing changed, nothing audited
    if safe:
        assert http.request(method, url, headers=world.admin.bearer).status_code == 200


# ---- tokens ------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: int, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "type": "access",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _forged_tokens(world: World) -> dict[str, str]:
    alice = world.alice.id
    now = int(time.time())
    valid = jwt.encode(_claims(alice), TEST_SECRET_KEY, algorithm="HS256")
    header, _, signature = valid.split(".")
    with warnings.catch_warnings():  # PyJWT finds the key short for HS512: that is the point
        warnings.simplefilter("ignore")
        hs512 = jwt.encode(_claims(alice), TEST_SECRET_KEY, algorithm="HS512")
    return {
        "expired": jwt.encode(
            _claims(alice, iat=now - 3600, exp=now - 600), TEST_SECRET_KEY, algorithm="HS256"
        ),
        "issued in the future": jwt.encode(
            _claims(alice, iat=now + 3600, exp=now + 7200), TEST_SECRET_KEY, algorithm="HS256"
        ),
        "not valid before the future": jwt.encode(
            _claims(alice, nbf=now + 3600), TEST_SECRET_KEY, algorithm="HS256"
        ),
        "signed with another key": jwt.encode(
            _claims(alice), "another-secret-key-0123456789-abcdefghijklmnop", algorithm="HS256"
        ),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(alice))}.",
        "alg HS512 with the right key": hs512,
        "payload swapped under a valid signature": (
            f"{header}.{_b64(_claims(world.bob.id))}.{signature}"
        ),
        "refresh token as access": world.alice.refresh,
        "no type claim": jwt.encode(_claims(alice, type=None), TEST_SECRET_KEY, algorithm="HS256"),
        "no expiry": jwt.encode(_claims(alice, exp=None), TEST_SECRET_KEY, algorithm="HS256"),
        "unknown user": jwt.encode(_claims(MISSING), TEST_SECRET_KEY, algorithm="HS256"),
        "subject not a number": jwt.encode(
            _claims(alice, sub="alice"), TEST_SECRET_KEY, algorithm="HS256"
        ),
        "garbage": "not.a.jwt",
    }


def test_the_forging_helpers_make_a_token_that_works(http: httpx.Client, world: World) -> None:
    """The control for the next test: a token made the same way, but valid, is accepted."""
    valid = jwt.encode(_claims(world.alice.id), TEST_SECRET_KEY, algorithm="HS256")
    response = http.get("/api/conversations/", headers={"Authorization": f"Bearer {valid}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "issued in the future",
        "not valid before the future",
        "signed with another key",
        "alg none",
        "alg HS512 with the right key",
        "payload swapped under a valid signature",
        "refresh token as access",
        "no type claim",
        "no expiry",
        "unknown user",
        "subject not a number",
        "garbage",
    ],
)
def test_bad_access_tokens_are_401_in_both_dialects(
    http: httpx.Client, world: World, kind: str
) -> None:
    token = _forged_tokens(world)[kind]
    for path, shape in (
        ("/api/conversations/", {"detail", "code"}),
        ("/api/v1/conversations/", {"error", "code"}),
    ):
        response = http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (kind, path, response.text)
        assert set(response.json()) == shape
        assert "WWW-Authenticate" in response.headers


def test_an_access_token_is_no_refresh_token(http: httpx.Client, world: World) -> None:
    response = http.post("/api/v1/token/refresh/", json={"refresh": world.alice.access})
    assert response.status_code == 401
    assert set(response.json()) == {"error", "code"}


def test_reusing_a_refresh_token_revokes_its_whole_family(http: httpx.Client) -> None:
    user = register(http, "family")
    login = http.post("/api/v1/login/", json={"username": user.username, "password": user.password})
    other_family = login.json()["refresh"]
    first = http.post("/api/v1/token/refresh/", json={"refresh": user.refresh})
    assert first.status_code == 200
    second_refresh = first.json()["refresh"]
    replayed = http.post("/api/v1/token/refresh/", json={"refresh": user.refresh})
    assert replayed.status_code == 401
    # The thief's replay costs the legitimate holder the rest of that family...
    descendant = http.post("/api/v1/token/refresh/", json={"refresh": second_refresh})
    assert descendant.status_code == 401
    # ...but not a separate login.
    assert http.post("/api/v1/token/refresh/", json={"refresh": other_family}).status_code == 200


def test_a_revoked_api_token_is_401(http: httpx.Client) -> None:
    user = register(http, "apitoken")
    issued = http.post(
        "/api/auth/token/", json={"username": user.username, "password": user.password}
    )
    assert issued.status_code == 200
    token = {"Authorization": f"Token {issued.json()['token']}"}
    assert http.get("/api/conversations/", headers=token).status_code == 200
    assert http.delete("/api/auth/token/", headers=token).status_code == 204
    assert http.get("/api/conversations/", headers=token).status_code == 401
    assert http.get("/api/v1/conversations/", headers=token).status_code == 401


def test_every_credential_of_a_deactivated_user_is_401(
    parley: RunningServer, http: httpx.Client, world: World
) -> None:
    user = register(http, "deactivated")
    api_token = http.post(
        "/api/auth/token/", json={"username": user.username, "password": user.password}
    ).json()["token"]
    session = httpx.Client(base_url=parley.base_url, timeout=30, limits=NO_KEEP_ALIVE)
    with session:
        logged_in = session.post(
            "/api/auth/session/", json={"username": user.username, "password": user.password}
        )
        assert logged_in.status_code == 200
        assert session.get("/api/conversations/").status_code == 200
        deactivated = http.post(
            f"/api/admin/users/{user.id}/deactivate/", headers=world.admin.bearer
        )
        assert deactivated.status_code == 200, deactivated.text
        assert session.get("/api/conversations/").status_code == 401
    for header in (f"Bearer {user.access}", f"Token {api_token}"):
        assert http.get("/api/conversations/", headers={"Authorization": header}).status_code == 401
    assert http.post("/api/v1/token/refresh/", json={"refresh": user.refresh}).status_code == 401
    login = http.post("/api/v1/login/", json={"username": user.username, "password": user.password})
    assert login.status_code == 401


def test_malformed_authorization_headers_are_401(http: httpx.Client) -> None:
    for header in (
        "Bearer",
        "Token",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "bearer  x y",
        "Bearer a b c",
        "JWT x",
    ):
        response = http.get("/api/conversations/", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert "WWW-Authenticate" in response.headers


# ---- passwords ---------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes(parley: RunningServer, world: World) -> None:
    [(stored,)] = query(
        parley.settings.database_url,
        "SELECT password_hash FROM users WHERE id = :id",
        id=world.alice.id,
    )
    assert stored.startswith("$argon2id$")
    assert world.alice.password not in stored


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1!", "too short"),
        ("12345678901", "entirely numeric"),
        ("{username}", "the username"),
        ("", "blank"),
    ],
)
def test_the_password_policy_is_enforced_and_nothing_is_created(
    parley: RunningServer, http: httpx.Client, password: str, why: str
) -> None:
    username = f"policy_{uuid.uuid4().hex[:8]}"
    response = http.post(
        "/api/v1/register/",
        json={
            "username": username,
            "email": f"{username}@example.com",
            "password": password.replace("{username}", username),
        },
    )
    assert response.status_code == 400, why
    assert "password" in response.json()["fields"]
    assert query(
        parley.settings.database_url, "SELECT count(*) FROM users WHERE username = :u", u=username
    ) == [(0,)]


LOGIN_ENDPOINTS = ["/api/v1/login/", "/api/auth/token/", "/api/auth/session/"]


@pytest.mark.parametrize("path", LOGIN_ENDPOINTS)
def test_an_unknown_user_and_a_wrong_password_look_the_same(
    http: httpx.Client, world: World, path: str
) -> None:
    unknown = http.post(
        path, json={"username": f"nobody_{uuid.uuid4().hex[:8]}", "password": "x" * 12}
    )
    wrong = http.post(path, json={"username": world.alice.username, "password": "x" * 12})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert unknown.headers.get("WWW-Authenticate") == wrong.headers.get("WWW-Authenticate")
    assert "set-cookie" not in unknown.headers
    assert "set-cookie" not in wrong.headers


@pytest.fixture
def strict(
    parley: RunningServer, tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer
) -> Iterator[RunningServer]:
    """A second server on the same database with a tight limit on credential endpoints
    (a fresh one per test: the limits are per address too, and all tests share one)."""
    with running_server(
        parley.settings.database_url,
        tmp_path_factory.mktemp("strict"),
        providers={"openai": {"api_key": KEY, "base_url": upstream.openai_base_url}},
        auth_rate_limit="3/minute",
    ) as running:
        yield running


@pytest.mark.parametrize("path", LOGIN_ENDPOINTS)
def test_password_guessing_is_throttled(
    strict: RunningServer, http: httpx.Client, path: str
) -> None:
    victim = register(http, "victim")  # through the lenient server: same database
    with httpx.Client(base_url=strict.base_url, timeout=30, limits=NO_KEEP_ALIVE) as guesser:
        answers = [
            guesser.post(path, json={"username": victim.username, "password": f"guess-{n}-xx"})
            for n in range(3)
        ]
        blocked = guesser.post(path, json={"username": victim.username, "password": "guess-4-xx"})
        right = guesser.post(path, json={"username": victim.username, "password": victim.password})
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "throttled"
    assert int(blocked.headers["Retry-After"]) >= 1
    assert right.status_code == 429  # even the right password waits out the window


# ---- input is data -----------------------------------------------------------------------

PAYLOADS = ["'; DROP TABLE users; --", '" OR 1=1', "*", "NEAR(", "%", "_", "\\", "%' OR '1'='1"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sql_and_fts_syntax_is_stored_and_searched_as_text(
    parley: RunningServer, http: httpx.Client, world: World, payload: str
) -> None:
    user = register(http, "input")  # a fresh user: each test starts conversations
    marker = uuid.uuid4().hex[:12]
    stored = f"{marker} {payload}"
    created = http.post("/api/v1/conversations/", json={"title": stored}, headers=user.bearer)
    assert created.status_code == 201, created.text
    target = created.json()["id"]
    chat = http.post(
        "/api/v1/messages/chat/",
        json={"conversation_id": target, "message": stored},
        headers=user.bearer,
    )
    assert chat.status_code == 201, chat.text
    decoy = http.post(
        "/api/v1/conversations/", json={"title": f"{marker} decoy"}, headers=user.bearer
    ).json()["id"]
    titles, contents = _queries(
        parley.settings.database_url,
        "SELECT title FROM conversations WHERE id = :id",
        "SELECT content FROM messages WHERE conversation_id = :id AND role = 'user'",
        id=target,
    )
    assert titles == contents == [(stored,)]
    assert (
        http.get(f"/api/v1/conversations/{target}/", headers=user.bearer).json()["title"] == stored
    )

    admin = world.admin.bearer
    found = http.get("/api/admin/conversations/", params={"search": stored}, headers=admin)
    assert found.status_code == 200, found.text
    assert [c["id"] for c in found.json()] == [target]  # not the decoy: % and _ are literal
    both = http.get("/api/admin/conversations/", params={"search": marker}, headers=admin)
    assert sorted(c["id"] for c in both.json()) == sorted([target, decoy])
    alone = http.get("/api/admin/conversations/", params={"search": payload}, headers=admin)
    assert alone.status_code == 200, alone.text
    for path, params in [
        ("/api/admin/conversations/", {"user": payload}),
        ("/api/admin/users/", {"username": payload}),
        ("/api/admin/usage/", {"user": payload, "model": payload}),
        ("/api/admin/audit-log/", {"actor": payload, "action": payload, "target_type": payload}),
    ]:
        response = http.get(path, params=params, headers=admin)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == []
    bad_status = http.get("/api/admin/conversations/", params={"status": payload}, headers=admin)
    assert bad_status.status_code == 400
    assert "status" in bad_status.json()
    assert query(parley.settings.database_url, "SELECT count(*) FROM users")[0][0] > 0


PRIVATE_IMAGE_URLS = [
    "http://127.0.0.1/",
    "http://10.0.0.1/x.png",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/",
    "http://localhost/x.png",
    "http://0.0.0.0/x.png",
    "http://192.168.1.1/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "http://2130706433/x.png",  # 127.0.0.1 as one number
    "http://[fe80::1]/x.png",
    "https://127.0.0.1:8443/x.png",
]


def test_an_image_at_a_data_uri_is_accepted(http: httpx.Client, world: World) -> None:
    """The control for the next test: the model takes images."""
    user = register(http, "image")
    response = http.post(
        "/api/v1/messages/chat/",
        json={"message": "what is this?", "model": "gpt-6-luna", "image_url": PNG},
        headers=user.bearer,
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("url", PRIVATE_IMAGE_URLS)
def test_image_urls_on_private_networks_are_refused(
    parley: RunningServer, http: httpx.Client, upstream: FakeLLMServer, url: str
) -> None:
    user = register(http, "ssrf")
    upstream.reset_state()
    response = http.post(
        "/api/v1/messages/chat/",
        json={"message": "look at this", "model": "gpt-6-luna", "image_url": url},
        headers=user.bearer,
    )
    assert response.status_code == 400, response.text
    assert "image_url" in response.json()["fields"]
    assert upstream.requests == []
    assert query(
        parley.settings.database_url,
        "SELECT count(*) FROM conversations WHERE owner_id = :id",
        id=user.id,
    ) == [(0,)]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_html_is_stored_and_returned_verbatim_as_json(
    parley: RunningServer, http: httpx.Client, world: World
) -> None:
    user = register(http, "html")
    html = '<script>alert("x")</script><img src=x onerror="alert(1)">&amp; </textarea>'
    created = http.post("/api/v1/conversations/", json={"title": html}, headers=user.bearer)
    assert created.status_code == 201
    conversation = created.json()["id"]
    sent = http.post(
        f"/api/conversations/{conversation}/send_message/",
        json={"message": html},
        headers=user.bearer,
    )
    assert sent.status_code == 201
    for response in (
        created,
        sent,
        http.get(f"/api/conversations/{conversation}/", headers=user.bearer),
        http.get(f"/api/v1/conversations/{conversation}/messages/", headers=user.bearer),
    ):
        assert response.headers["content-type"].startswith("application/json")
        assert html in _strings(response.json())
    assert sent.json()["user_message"]["content"] == html
    assert query(
        parley.settings.database_url,
        "SELECT content FROM messages WHERE conversation_id = :id AND role = 'user'",
        id=conversation,
    ) == [(html,)]
