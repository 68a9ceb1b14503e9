"""No secret leaves Parley: not in logs, error bodies, the OpenAPI document, or the repr
of its configuration objects.

Secrets here: provider API keys, the JWT signing key, the WeChat app secret, users'
passwords, access/refresh/API tokens, the WeChat access token Parley obtains, and the
passwords inside database and Redis URLs. A server is driven through registration,
logins (right and wrong), token refresh and reuse, API tokens, WeChat login, and
provider failures whose error bodies quote the API key, with every log record captured
at DEBUG under the logging configuration ``parley serve`` uses."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from entrypoints.http.app import build_container, configure_logging
from entrypoints.logs import JsonLines
from entrypoints.settings import Settings
from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.wechat_server import FakeWeChatServer, WeChatUser
from tests.integration.servers import TEST_SECRET_KEY, RunningServer, running_server

KEY = "sk-secret-provider-key-7f3a9c1e5b"
GEMINI_KEY = "AIza-secret-gemini-key-4d2b8e6f0a"
WECHAT_SECRET = "wx-app-secret-9e8d7c6b5a4f"
PASSWORD = "correct-horse-battery-STAPLE-42"
WRONG_PASSWORD = "tr0ub4dor-and-3-WRONG"
NO_KEEP_ALIVE = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def gemini_upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=GEMINI_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWeChatServer]:
    with FakeWeChatServer(app_secret=WECHAT_SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeLLMServer,
    gemini_upstream: FakeLLMServer,
    wechat: FakeWeChatServer,
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("secrets"),
        providers={
            "openai": {"api_key": KEY, "base_url": upstream.openai_base_url},
            "gemini": {"api_key": GEMINI_KEY, "base_url": gemini_upstream.base_url},
        },
        default_model="gpt-6.1-sol",
        provider_backoff_initial=0.01,
        provider_backoff_max=0.02,
        provider_read_timeout=0.5,
        wechat_app_id=wechat.app_id,
        wechat_app_secret=WECHAT_SECRET,
        wechat_redirect_uri="https://parley.example.com/wechat/return",
        wechat_api_base_url=wechat.base_url,
        # A line per request too: its fields (route, user, model, tokens) are scanned.
        access_log=True,
    ) as running:
        yield running


@pytest.fixture
def production_logging(parley: RunningServer) -> Iterator[None]:
    """The logging set-up of ``parley serve`` (``configure_logging``), undone afterwards."""
    root = logging.getLogger()
    names = ("alembic", "httpx", "httpcore", "parley", "uvicorn")
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in names}
    configure_logging(dataclasses.replace(parley.settings, log_level="DEBUG"))
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)


class Recorder:
    """Every response the client saw, to scan afterwards."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, secret in secrets.items() if secret and secret in text]


def test_no_secret_in_logs_or_error_bodies(
    parley: RunningServer,
    upstream: FakeLLMServer,
    gemini_upstream: FakeLLMServer,
    wechat: FakeWeChatServer,
    production_logging: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    secrets: dict[str, str] = {
        "provider key": KEY,
        "gemini key": GEMINI_KEY,
        "JWT signing key": TEST_SECRET_KEY,
        "WeChat app secret": WECHAT_SECRET,
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
    }
    username = f"secret_{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.DEBUG)
    with httpx.Client(
        base_url=parley.base_url,
        timeout=30,
        limits=NO_KEEP_ALIVE,
        event_hooks={"response": [recorder]},
    ) as http:
        registered = http.post(
            "/api/v1/register/",
            json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201
        secrets["access token"] = registered.json()["access"]
        secrets["refresh token"] = registered.json()["refresh"]
        auth = {"Authorization": f"Bearer {secrets['access token']}"}
        for path in ("/api/v1/login/", "/api/auth/token/", "/api/auth/session/"):
            assert (
                http.post(path, json={"username": username, "password": WRONG_PASSWORD}).status_code
                == 401
            )
        login = http.post("/api/v1/login/", json={"username": username, "password": PASSWORD})
        secrets["second refresh token"] = login.json()["refresh"]
        rotated = http.post("/api/v1/token/refresh/", json={"refresh": secrets["refresh token"]})
        secrets["rotated refresh token"] = rotated.json()["refresh"]
        secrets["rotated access token"] = rotated.json()["access"]
        replay = http.post("/api/v1/token/refresh/", json={"refresh": secrets["refresh token"]})
        assert replay.status_code == 401
        # The replay revoked the first login, its access token included: go on with the second.
        secrets["second access token"] = login.json()["access"]
        auth = {"Authorization": f"Bearer {secrets['second access token']}"}
        issued = http.post("/api/auth/token/", json={"username": username, "password": PASSWORD})
        secrets["API token"] = issued.json()["token"]
        token_auth = {"Authorization": f"Token {secrets['API token']}"}
        assert http.get("/api/conversations/", headers=token_auth).status_code == 200
        assert http.delete("/api/auth/token/", headers=token_auth).status_code == 204
        assert http.get("/api/conversations/", headers=token_auth).status_code == 401
        forged = secrets["access token"][:-4] + "AAAA"
        assert (
            http.get(
                "/api/conversations/", headers={"Authorization": f"Bearer {forged}"}
            ).status_code
            == 401
        )

        # Providers that fail and quote the key back.
        conversation = http.post("/api/conversations/", headers=auth).json()["id"]
        quoting: list[tuple[FakeLLMServer, str, fake.Behaviour]] = [
            (
                upstream,
                "gpt-6.1-sol",
                fake.error(401, message=f"Incorrect API key provided: {KEY}"),
            ),
            (upstream, "gpt-6.1-sol", fake.error(400, message=f"Bad request for key {KEY}")),
            (upstream, "gpt-6.1-sol", fake.error(500, message=f"Internal error, key={KEY}")),
            (upstream, "gpt-6.1-sol", fake.malformed(body=f'{{"key": "{KEY}"'.encode())),
            (
                gemini_upstream,
                "gemini-3.8-flash",
                fake.error(403, message=f"Key {GEMINI_KEY} denied"),
            ),
            (
                gemini_upstream,
                "gemini-3.8-flash",
                fake.error(400, message=f"API key not valid: {GEMINI_KEY}"),
            ),
        ]
        for server, model, behaviour in quoting:
            for stream in (False, True):
                server.reset_state()
                server.script(*[behaviour] * 3)
                response = http.post(
                    "/api/v1/messages/chat/",
                    json={
                        "message": "leak?",
                        "conversation_id": conversation,
                        "model": model,
                        "stream": stream,
                    },
                    headers=auth,
                )
                assert response.status_code in ((200,) if stream else (502, 503)), response.text
                if stream:
                    assert "event: error" in response.text
        upstream.reset_state()
        gemini_upstream.reset_state()

        # WeChat: a login, and a refusal.
        started = http.get("/api/v1/auth/wechat/url/")
        assert started.status_code == 200
        assert WECHAT_SECRET not in started.text
        wechat.grant("code-ok", WeChatUser(openid=f"open-{uuid.uuid4().hex}"))
        callback = http.get(
            "/api/v1/auth/wechat/callback/",
            params={"code": "code-ok", "state": started.json()["state"]},
        )
        assert callback.status_code == 200, callback.text
        secrets["WeChat login access token"] = callback.json()["access"]
        secrets.update(
            {f"WeChat access token {i}": token for i, token in enumerate(wechat.issued_tokens)}
        )
        again = http.get("/api/v1/auth/wechat/url/")
        wechat.fail_next(40001, f"invalid credential, secret {WECHAT_SECRET} rid: 1")
        refused = http.get(
            "/api/v1/auth/wechat/callback/",
            params={"code": "code-x", "state": again.json()["state"]},
        )
        assert refused.status_code >= 400

    logged = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    # And as PARLEY_LOG_FORMAT=json writes them.
    logged += "\n".join(JsonLines().format(record) for record in caplog.records)
    # The capture sees the server thread's records (the provider failures are logged).
    assert any(r.name.startswith("parley.") for r in caplog.records), "capture not working"
    assert any(r.name == "parley.access" for r in caplog.records), "no access lines"
    assert _leaks(logged, secrets) == []
    token_secrets = {k: v for k, v in secrets.items() if "token" in k}
    fixed_secrets = {k: v for k, v in secrets.items() if "token" not in k}
    for response in recorder.responses:
        # Tokens appear where they are issued; nothing else does, and errors show none.
        body = response.text
        assert _leaks(body, fixed_secrets) == [], (response.request.url, body[:300])
        if response.status_code >= 400 or "event: error" in body:
            assert _leaks(body, token_secrets) == [], (response.request.url, body[:300])


def test_no_secret_in_the_api_documents(parley: RunningServer) -> None:
    with httpx.Client(base_url=parley.base_url, timeout=30) as http:
        documents = [
            http.get(path) for path in ("/schema/openapi.json", "/schema", "/schema/swagger")
        ]
    assert [d.status_code for d in documents] == [200, 200, 200]
    json.loads(documents[0].text)
    for document in documents:
        assert (
            _leaks(
                document.text,
                {"key": KEY, "gemini": GEMINI_KEY, "jwt": TEST_SECRET_KEY, "wechat": WECHAT_SECRET},
            )
            == []
        )


DB_PASSWORD = "db-pass-Zx81qq"
REDIS_PASSWORD = "redis-pass-Kq29ww"


def _secret_settings() -> Settings:
    return Settings(
        database_url=f"postgresql+asyncpg://parley:{DB_PASSWORD}@db.internal:5432/parley",
        redis_url=f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0",
        secret_key=TEST_SECRET_KEY,
        providers={
            "openai": {"api_key": KEY},
            "gemini": {"api_key": GEMINI_KEY},
            "local": {"base_url": "http://127.0.0.1:11434/v1", "api_key": "local-secret-key-1"},
        },
        wechat_app_id="wx-app",
        wechat_app_secret=WECHAT_SECRET,
    )


SETTINGS_SECRETS = {
    "provider key": KEY,
    "gemini key": GEMINI_KEY,
    "local key": "local-secret-key-1",
    "JWT signing key": TEST_SECRET_KEY,
    "WeChat app secret": WECHAT_SECRET,
    "database password": DB_PASSWORD,
    "redis password": REDIS_PASSWORD,
}


def test_the_settings_repr_shows_no_secret() -> None:
    settings = _secret_settings()
    assert _leaks(repr(settings), SETTINGS_SECRETS) == []
    assert _leaks(str(settings), SETTINGS_SECRETS) == []
    assert "db.internal" in repr(settings)  # the rest is still there to debug with


def test_the_model_configuration_repr_shows_no_secret() -> None:
    container = build_container(_secret_settings())
    llm_config: Any = container.llm.args[0]()
    assert type(llm_config).__name__ == "LlmConfig"
    assert _leaks(repr(llm_config), SETTINGS_SECRETS) == []
    stack = container.llm()
    assert _leaks(repr(stack), SETTINGS_SECRETS) == []
    assert _leaks(repr(stack.chat_model.chain("gpt-6-luna")), SETTINGS_SECRETS) == []
