"""WeChat website login against a fake WeChat server on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes.wechat_server import FakeWeChatServer, WeChatUser
from tests.integration.conftest import register
from tests.integration.servers import RunningServer, query, running_server

REDIRECT = "https://parley.example.com/wechat/return"


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWeChatServer]:
    with FakeWeChatServer() as server:
        yield server


@pytest.fixture(scope="module")
def parley(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, wechat: FakeWeChatServer
) -> Iterator[RunningServer]:
    with running_server(
        database_url,
        tmp_path_factory.mktemp("wechat"),
        wechat_app_id=wechat.app_id,
        wechat_app_secret=wechat.app_secret,
        wechat_redirect_uri=REDIRECT,
        wechat_open_base_url="https://open.weixin.qq.com",
        wechat_api_base_url=wechat.base_url,
    ) as running:
        yield running


def _browser(parley: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=parley.base_url, timeout=30)


def _start(browser: httpx.Client, headers: dict[str, str] | None = None) -> str:
    response = browser.get("/api/v1/auth/wechat/url/", headers=headers or {})
    assert response.status_code == 200
    body = response.json()
    url = urlsplit(body["url"])
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "open.weixin.qq.com",
        "/connect/qrconnect",
    )
    assert url.fragment == "wechat_redirect"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params["appid"] == "wx-test-app"
    assert params["redirect_uri"] == REDIRECT
    assert params["response_type"] == "code"
    assert params["scope"] == "snsapi_login"
    assert params["state"] == body["state"]
    return str(body["state"])


def _users(parley: RunningServer) -> int:
    return int(query(parley.settings.database_url, "SELECT count(*) FROM users")[0][0])


def test_first_login_creates_a_user_and_the_second_finds_it(
    parley: RunningServer, wechat: FakeWeChatServer
) -> None:
    unionid = f"union-{uuid.uuid4().hex}"
    with _browser(parley) as browser:
        state = _start(browser)
        wechat.grant("code-1", WeChatUser(openid="open-1", unionid=unionid, nickname="小明"))
        first = browser.get(f"/api/v1/auth/wechat/callback/?code=code-1&state={state}")
        assert first.status_code == 200, first.text
        body = first.json()
        assert set(body) == {"refresh", "access", "username", "email"}
        me = httpx.get(
            f"{parley.base_url}/api/chat-setting/",
            headers={"Authorization": f"Bearer {body['access']}"},
        )
        assert me.status_code == 200

        # Same unionid through another app's openid: the same user.
        state = _start(browser)
        wechat.grant("code-2", WeChatUser(openid="open-2-other-app", unionid=unionid))
        second = browser.get(f"/api/v1/auth/wechat/callback/?code=code-2&state={state}")
        assert second.status_code == 200
        assert second.json()["username"] == body["username"]


def test_openid_is_the_identity_without_a_unionid(
    parley: RunningServer, wechat: FakeWeChatServer
) -> None:
    openid = f"open-{uuid.uuid4().hex}"
    with _browser(parley) as browser:
        names = []
        for code in ("a", "b"):
            state = _start(browser)
            wechat.grant(f"{openid}-{code}", WeChatUser(openid=openid))
            response = browser.get(
                f"/api/v1/auth/wechat/callback/?code={openid}-{code}&state={state}"
            )
            assert response.status_code == 200
            names.append(response.json()["username"])
        assert names[0] == names[1]


def test_reused_unknown_and_foreign_states_are_refused(
    parley: RunningServer, wechat: FakeWeChatServer
) -> None:
    with _browser(parley) as browser:
        state = _start(browser)
        wechat.grant("code-r1", WeChatUser(openid=f"o-{uuid.uuid4().hex}"))
        assert (
            browser.get(f"/api/v1/auth/wechat/callback/?code=code-r1&state={state}").status_code
            == 200
        )
        before = _users(parley)
        wechat.grant("code-r2", WeChatUser(openid=f"o-{uuid.uuid4().hex}"))
        replay = browser.get(f"/api/v1/auth/wechat/callback/?code=code-r2&state={state}")
        assert replay.status_code == 400
        assert replay.json()["code"] == "invalid_state"
        assert "error" in replay.json()
        unknown = browser.get("/api/v1/auth/wechat/callback/?code=code-r2&state=made-up")
        assert unknown.status_code == 400

        # A state started by another client (without its binding cookie) is refused.
        stolen = _start(browser)
    with _browser(parley) as attacker:
        response = attacker.get(f"/api/v1/auth/wechat/callback/?code=code-r2&state={stolen}")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_state"
    assert _users(parley) == before


def test_wechat_errors_are_reported_and_nothing_is_created(
    parley: RunningServer, wechat: FakeWeChatServer
) -> None:
    before = _users(parley)
    with _browser(parley) as browser:
        state = _start(browser)
        bad_code = browser.get(f"/api/v1/auth/wechat/callback/?code=never-granted&state={state}")
        assert bad_code.status_code == 400
        assert "code" in bad_code.json()["fields"]

        state = _start(browser)
        wechat.grant("code-e", WeChatUser(openid=f"o-{uuid.uuid4().hex}"))
        wechat.fail_next(-1, "system error")
        failing = browser.get(f"/api/v1/auth/wechat/callback/?code=code-e&state={state}")
        assert failing.status_code == 502
        assert failing.json()["code"] == "oauth_provider_error"
        assert wechat.app_secret not in failing.text
    assert _users(parley) == before


def test_a_logged_in_user_links_wechat_to_their_account(
    parley: RunningServer, wechat: FakeWeChatServer
) -> None:
    with _browser(parley) as browser:
        owner = register(browser)
        state = _start(browser, owner.bearer)
        openid = f"o-{uuid.uuid4().hex}"
        wechat.grant("code-link", WeChatUser(openid=openid))
        linked = browser.get(f"/api/v1/auth/wechat/callback/?code=code-link&state={state}")
        assert linked.status_code == 200
        assert linked.json()["username"] == owner.username

        state = _start(browser)
        wechat.grant("code-again", WeChatUser(openid=openid))
        login = browser.get(f"/api/v1/auth/wechat/callback/?code=code-again&state={state}")
        assert login.json()["username"] == owner.username


def test_unconfigured_wechat_answers_503(client: httpx.Client) -> None:
    for path in ("/api/v1/auth/wechat/url/", "/api/v1/auth/wechat/callback/?code=x&state=y"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json()["code"] == "oauth_not_configured"
        assert "error" in response.json()


def test_wechat_accounts_have_no_usable_password(
    parley: RunningServer, wechat: FakeWeChatServer
) -> None:
    with _browser(parley) as browser:
        state = _start(browser)
        wechat.grant("code-pw", WeChatUser(openid=f"o-{uuid.uuid4().hex}"))
        username = browser.get(f"/api/v1/auth/wechat/callback/?code=code-pw&state={state}").json()[
            "username"
        ]
        hashed = query(
            parley.settings.database_url,
            "SELECT password_hash FROM users WHERE username = :u",
            u=username,
        )[0][0]
        for guess in ("", hashed, hashed[1:]):
            response = browser.post(
                "/api/v1/login/", json={"username": username, "password": guess}
            )
            assert response.status_code in (400, 401)
