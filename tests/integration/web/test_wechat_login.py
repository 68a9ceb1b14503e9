"""WeChat's QR login from the web app in Chromium, against a real ``parley serve`` whose
WeChat is the fake (tests/fakes/wechat_server.py) and whose WECHAT_REDIRECT_URI is the
page route ``/auth/wechat/``.

The fake speaks WeChat's API (the code exchange, the profile: api.weixin.qq.com). The QR
page is on another host (open.weixin.qq.com), a stand-in here that only shows a page; the
test "scans" by going where WeChat then sends the browser: ``redirect_uri`` with a fresh
code and the ``state``. So the browser never talks to the API fake, whose scripted
failures stay for Parley's requests."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.wechat_server import FakeWeChatServer, WeChatUser
from tests.integration.servers import stdlib_http_server
from tests.integration.web.browser import (
    Served,
    new_person,
    page_problems,
    parley_serve,
    sign_in,
    watch_for_problems,
)

RETURN_PATH = "/auth/wechat/"
BINDING_COOKIE = "parley_wechat_binding"


class _QrPageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>WeChat</title><p>Scan the QR code with WeChat.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def qr_host() -> Iterator[str]:
    """The open platform's host, where the QR page is: its base URL."""
    with stdlib_http_server(_QrPageHandler) as url:
        yield url


def _wechat_environment(wechat: FakeWeChatServer, qr_host: str) -> dict[str, str]:
    return {
        "WECHAT_APP_ID": wechat.app_id,
        "WECHAT_APP_SECRET": wechat.app_secret,
        "WECHAT_OPEN_BASE_URL": qr_host,
        "WECHAT_API_BASE_URL": wechat.base_url,
    }


def _return_to_page(base_url: str) -> dict[str, str]:
    return {"WECHAT_REDIRECT_URI": f"{base_url}{RETURN_PATH}"}


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWeChatServer]:
    with FakeWeChatServer() as server:
        yield server


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeLLMServer,
    wechat: FakeWeChatServer,
    qr_host: str,
) -> Iterator[Served]:
    with parley_serve(
        tmp_path_factory.mktemp("wechat-web"),
        upstream,
        own_url_variables=_return_to_page,
        **_wechat_environment(wechat, qr_host),
    ) as running:
        yield running


class QrPage:
    """WeChat's QR page: ``scan`` waits for the browser to reach it and does what WeChat
    does once ``scanner`` has scanned: back to ``redirect_uri`` with a fresh code and the
    state (``scanner`` None: the person declined; WeChat returns with the state only)."""

    def __init__(self, wechat: FakeWeChatServer, qr_host: str) -> None:
        self._wechat = wechat
        self._qr_host = qr_host
        self.scanner: WeChatUser | None = WeChatUser(openid=f"open-{uuid.uuid4().hex}")
        self.grant = True
        self.visits: list[dict[str, str]] = []
        self.returns: list[str] = []
        # The binding cookie the browser held on its way to each return.
        self.bindings: dict[str, str] = {}

    def scan(self, page: Page) -> None:
        page.wait_for_url(re.compile(re.escape(self._qr_host) + r"/connect/qrconnect\?"))
        query = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
        self.visits.append(query)
        back = {"state": query["state"]}
        if self.scanner is not None:
            back = {"code": f"code-{uuid.uuid4().hex}", **back}
            if self.grant:
                self._wechat.grant(back["code"], self.scanner)
        location = f"{query['redirect_uri']}?{urlencode(back)}"
        self.returns.append(location)
        for cookie in page.context.cookies():
            if cookie["name"] == BINDING_COOKIE:
                self.bindings[location] = cookie["value"]
        page.goto(location)


@pytest.fixture
def qr_page(wechat: FakeWeChatServer, qr_host: str) -> QrPage:
    return QrPage(wechat, qr_host)


def _signed_in_name(page: Page) -> str:
    """The name of whoever the page was served to, once the page shows it."""
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    name = page.locator("body").get_attribute("data-username") or ""
    assert name, "the page was served to no one"
    expect(page.get_by_role("main").get_by_text(name, exact=True)).to_be_visible()
    return name


def _sign_in_with_wechat(page: Page, qr_page: QrPage) -> None:
    page.get_by_role("button", name="Sign in with WeChat").click()
    qr_page.scan(page)


def _send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def _has_session(context: BrowserContext) -> bool:
    return any(cookie["name"] == "parley_session" for cookie in context.cookies())


def test_the_wechat_button_signs_a_new_person_in_and_they_can_chat(
    page: Page, context: BrowserContext, served: Served, qr_page: QrPage
) -> None:
    page.goto("/")
    _sign_in_with_wechat(page, qr_page)
    name = _signed_in_name(page)
    assert re.fullmatch(r"wx_[0-9a-f]{12}", name), name
    assert urlsplit(page.url).path == "/"
    [visit] = qr_page.visits
    assert visit["redirect_uri"] == f"{served.base_url}{RETURN_PATH}"
    assert (visit["appid"], visit["scope"]) == ("wx-test-app", "snsapi_login")

    # The session's CSRF token works: an unsafe request (sending) goes through.
    _send(page, "你好，微信")
    expect(page.locator(".message.ai").last).to_contain_text("fake reply to: 你好，微信")

    # Signed out and back with the same WeChat account: the same person, not a new one.
    page.get_by_role("button", name="Sign out").click()
    _sign_in_with_wechat(page, qr_page)
    assert _signed_in_name(page) == name
    assert page_problems(page) == []


def test_a_reused_state_shows_the_error_page_and_starts_no_session(
    page: Page, context: BrowserContext, served: Served, qr_page: QrPage, wechat: FakeWeChatServer
) -> None:
    page.goto("/")
    _sign_in_with_wechat(page, qr_page)
    _signed_in_name(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in with WeChat")).to_be_visible()
    assert not _has_session(context)

    # The same return again, with everything else right: the browser still holds the
    # state's binding, and WeChat would accept the code.
    [first_return] = qr_page.returns
    binding = qr_page.bindings[first_return]
    context.add_cookies(
        [{"name": BINDING_COOKIE, "value": binding, "url": f"{served.base_url}{RETURN_PATH}"}]
    )
    query = parse_qs(urlsplit(first_return).query)
    wechat.grant("code-again", WeChatUser(openid=f"open-{uuid.uuid4().hex}"))
    response = page.goto(f"{RETURN_PATH}?code=code-again&state={query['state'][0]}")
    assert response is not None
    assert response.status == 400
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="WeChat sign-in failed")).to_be_visible()
    expect(page.get_by_text("This sign-in has expired or was already used.")).to_be_visible()
    assert not _has_session(context)

    # The way back: the sign-in page, and a password sign-in works from it.
    page.get_by_role("link", name="Back to sign in").click()
    person = new_person(served)
    sign_in(page, person)
    assert _signed_in_name(page) == person.username
    assert page_problems(page) == []


def test_linking_while_signed_in_makes_wechat_sign_in_to_the_same_account(
    page: Page, served: Served, qr_page: QrPage
) -> None:
    person = new_person(served, "linker")
    sign_in(page, person)
    assert _signed_in_name(page) == person.username
    page.get_by_role("link", name="Link WeChat").click()
    qr_page.scan(page)
    assert _signed_in_name(page) == person.username
    # The new session replaced the old one, and its CSRF token is the one the page sends.
    _send(page, "linked")
    expect(page.locator(".message.ai").last).to_contain_text("fake reply to: linked")

    page.get_by_role("button", name="Sign out").click()
    _sign_in_with_wechat(page, qr_page)
    assert _signed_in_name(page) == person.username
    assert page_problems(page) == []


def test_signing_in_from_a_link_lands_on_the_page_it_asked_for(
    page: Page, served: Served, qr_page: QrPage
) -> None:
    page.goto("/?next=/admin/")
    _sign_in_with_wechat(page, qr_page)
    expect(page.get_by_role("heading")).to_have_text("403 · Not allowed")
    assert urlsplit(page.url).path == "/admin/"

    # Somewhere else is not a place to land: the person lands on the chat page.
    for elsewhere in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        page.goto("/auth/wechat/start/?" + urlencode({"next": elsewhere}))
        qr_page.scan(page)
        _signed_in_name(page)
        assert page.url.startswith(f"{served.base_url}/"), page.url
        assert urlsplit(page.url).path == "/"
    assert page_problems(page) == []


@pytest.fixture
def chinese_page(browser: Browser, served: Served) -> Iterator[Page]:
    context = browser.new_context(base_url=served.base_url, locale="zh-CN")
    page = context.new_page()
    watch_for_problems(page)
    yield page
    context.close()


def test_a_code_wechat_refuses_is_explained_in_chinese_with_a_way_back(
    chinese_page: Page, qr_page: QrPage
) -> None:
    page = chinese_page
    qr_page.grant = False
    page.goto("/")
    page.get_by_role("button", name="微信登录").click()
    qr_page.scan(page)
    expect(page.get_by_role("heading", name="微信登录失败")).to_be_visible()
    expect(page.get_by_text("微信没有确认此次登录")).to_be_visible()
    assert not _has_session(page.context)
    page.get_by_role("link", name="返回登录").click()
    expect(page.get_by_role("heading", name="登录", exact=True)).to_be_visible()
    assert page_problems(page) == []


def test_declining_and_wechat_failing_each_show_why(
    page: Page, context: BrowserContext, qr_page: QrPage, wechat: FakeWeChatServer
) -> None:
    qr_page.scanner = None
    page.goto("/")
    _sign_in_with_wechat(page, qr_page)
    expect(page.get_by_text("WeChat did not confirm the sign-in")).to_be_visible()

    qr_page.scanner = WeChatUser(openid=f"open-{uuid.uuid4().hex}")
    wechat.fail_next(-1, "system error")
    page.get_by_role("link", name="Back to sign in").click()
    _sign_in_with_wechat(page, qr_page)
    expect(page.get_by_text("WeChat could not complete the sign-in.")).to_be_visible()
    expect(page.get_by_text("oauth_provider_error")).to_be_visible()
    assert not _has_session(context)
    assert page_problems(page) == []


def test_completing_a_login_counts_against_the_sign_in_limit(
    tmp_path: Path, upstream: FakeLLMServer, wechat: FakeWeChatServer, qr_host: str
) -> None:
    with parley_serve(
        tmp_path,
        upstream,
        own_url_variables=_return_to_page,
        PARLEY_AUTH_RATE_LIMIT="2/minute",
        **_wechat_environment(wechat, qr_host),
    ) as limited:
        answers = [
            httpx.get(f"{limited.base_url}{RETURN_PATH}?code=c&state=s", timeout=30)
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [400, 400, 429]
    throttled = answers[-1]
    assert throttled.headers["content-type"].startswith("text/html")
    assert "Too many sign-in attempts" in throttled.text
    assert "Retry-After" in throttled.headers
