"""The API docs page (``/schema``): Swagger UI served from Parley's own files, so it works on
a server without internet, under the pages' strict Content-Security-Policy; and a real
Chromium shows the API on it and can try an operation, with nothing refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from entrypoints.http.security_headers import PAGE_CSP
from tests.integration.servers import RunningServer, running_server
from tests.integration.web.browser import chromium_or_skip

DOCS_PAGES = ("/schema", "/schema/swagger")

# Page loads on a loaded 2-core CI machine: generous, never a timing check.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def parley(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("api-docs")
    with running_server(f"sqlite+aiosqlite:///{workdir / 'parley.db'}", workdir) as server:
        yield server


@pytest.fixture(scope="module")
def http(parley: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=parley.base_url, timeout=30) as client:
        yield client


class _Page(HTMLParser):
    """What a page makes the browser load, and any script or style written inline."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.icons: list[str] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "style" in attributes or any(name.startswith("on") for name in attributes):
            self.inline.append(f"<{tag}> attribute")
        if tag == "script":
            if attributes.get("src"):
                self.scripts.append(str(attributes["src"]))
            self._in = "script"
        elif tag == "style":
            self._in = "style"
        elif tag == "link":
            relation = str(attributes.get("rel") or "")
            if relation == "stylesheet":
                self.stylesheets.append(str(attributes["href"]))
            elif "icon" in relation:
                self.icons.append(str(attributes["href"]))

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None and data.strip():
            self.inline.append(f"<{self._in}>: {data.strip()[:80]}")


def _read(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _directives(policy: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_the_docs_page_is_html_that_loads_only_this_servers_files(
    http: httpx.Client, path: str
) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # No address of another server at all: not a CDN, not a font service, not a validator.
    assert "http://" not in response.text
    assert "https://" not in response.text
    page = _read(response.text)
    assert page.inline == []
    assert page.scripts, "the page loads no script: Swagger UI cannot start"
    assert page.stylesheets
    for script in page.scripts:
        assert script.startswith("/"), script
        loaded = http.get(script)
        assert loaded.status_code == 200, script
        assert loaded.headers["content-type"].startswith("text/javascript"), script
    for stylesheet in page.stylesheets:
        assert stylesheet.startswith("/"), stylesheet
        loaded = http.get(stylesheet)
        assert loaded.status_code == 200, stylesheet
        assert loaded.headers["content-type"].startswith("text/css"), stylesheet
    for icon in page.icons:
        loaded = http.get(icon)
        assert loaded.status_code == 200, icon
        assert loaded.headers["content-type"].startswith("image/"), icon


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_the_docs_page_runs_under_the_pages_policy(http: httpx.Client, path: str) -> None:
    policies = http.get(path).headers.get_list("content-security-policy")
    assert policies == [PAGE_CSP]
    directives = _directives(policies[0])
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives["style-src"]
    assert directives["connect-src"] == ["'self'"]


def test_the_served_swagger_ui_reads_openapi_3_1(http: httpx.Client) -> None:
    # Swagger UI 4 shows "Unable to render this definition" for the document Litestar writes.
    assert http.get("/schema/openapi.json").json()["openapi"].startswith("3.1")
    bundle = http.get("/schema/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "isOAS31" in bundle.text


@pytest.mark.parametrize(
    "path",
    [
        # The package's demo page, which shows the Petstore API from another server.
        "/schema/assets/index.html",
        "/schema/assets/swagger-initializer.js",
        # Its OAuth2 redirect page (Parley's API has no OAuth2 scheme).
        "/schema/assets/oauth2-redirect.html",
        "/schema/assets/%2e%2e/__init__.py",
        "/schema/assets/..%2f__init__.py",
    ],
)
def test_the_assets_are_only_the_viewers_files(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 404


def test_anonymous_visitors_are_not_rate_limited_per_asset(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    with (
        running_server(url, tmp_path, rate_limit="3/minute") as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        assets = [
            client.get(path).status_code
            for _ in range(3)
            for path in ("/schema/assets/swagger-ui.css", "/schema/assets/swagger-ui-bundle.js")
        ]
        assert assets == [200] * 6
        # The limit is in force: the document itself is counted.
        documents = [client.get("/schema/openapi.json").status_code for _ in range(4)]
        assert documents[:3] == [200, 200, 200]
        assert documents[3] == 429


# --- In Chromium -------------------------------------------------------------------------

# Playwright's init scripts are not subject to the page's CSP: this one records what the
# policy refuses, whichever way the page would have been broken by it.
_RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.effectiveDirective}: ${event.blockedURI}`);
});
"""


@dataclass
class _Browsing:
    page: Page
    problems: list[str]

    def violations(self) -> list[str]:
        return list(self.page.evaluate("() => window.__violations"))


@pytest.fixture
def browsing(parley: RunningServer) -> Iterator[_Browsing]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            context = browser.new_context(base_url=parley.base_url, locale="en-US")
            context.set_default_timeout(15_000)
            context.add_init_script(_RECORD_VIOLATIONS)
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console {message.type}: {message.text}")
                    if message.type == "error" or "Content Security Policy" in message.text
                    else None
                ),
            )
            yield _Browsing(page, problems)
        finally:
            browser.close()


def _try_out(page: Page, method: str, path: str) -> Locator:
    """Open an operation, "Try it out", "Execute", as a reader of the docs does."""
    block = page.locator(f".opblock-{method}").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    return block


def _answered_status(block: Locator) -> Locator:
    """The status of the response the server gave to "Execute"."""
    return block.locator(".live-responses-table tr.response .response-col_status")


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_chromium_shows_the_api_with_nothing_refused(browsing: _Browsing, path: str) -> None:
    page = browsing.page
    page.goto(path)
    expect(page.get_by_text("/api/conversations", exact=True).first).to_be_visible()
    expect(page.get_by_text("/api/v1/login", exact=True).first).to_be_visible()
    expect(page.get_by_text("/v1/chat/completions", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    # Swagger UI's own error box ("Unable to render this definition", fetch errors).
    expect(page.locator(".swagger-ui .errors-wrapper")).to_have_count(0)
    assert browsing.violations() == []
    assert browsing.problems == []


def test_try_it_out_reaches_the_api(browsing: _Browsing) -> None:
    page = browsing.page
    page.goto("/schema")
    health = _try_out(page, "get", "/api/v1/health")
    expect(_answered_status(health)).to_have_text("200")
    expect(health.locator(".live-responses-table")).to_contain_text('"status"')
    assert browsing.violations() == []
    assert browsing.problems == []


def test_try_it_out_with_the_browser_session_sends_its_csrf_token(
    browsing: _Browsing, http: httpx.Client
) -> None:
    page = browsing.page
    username = f"docs_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    registered = http.post(
        "/api/v1/register/",
        json={"username": username, "email": f"{username}@example.com", "password": password},
    )
    assert registered.status_code == 201, registered.text
    # Signed in to the web app in the same browser: the session cookie goes with the docs
    # page's requests, and the API refuses an unsafe one without the session's CSRF token.
    signed_in = page.context.request.post(
        "/api/auth/session/", data={"username": username, "password": password}
    )
    assert signed_in.status == 200, signed_in.text()

    page.goto("/schema")
    created = _try_out(page, "post", "/api/conversations")
    expect(_answered_status(created)).to_have_text("201")
    assert browsing.violations() == []
    assert browsing.problems == []
