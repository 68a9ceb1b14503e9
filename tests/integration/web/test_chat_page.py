"""The chat page in Chromium against a real ``parley serve``: register and sign in through
the form, stream a reply and see it whole, reload and see the same history, stop a reply,
and what a message says stays text however much it looks like markup."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.web.browser import (
    Served,
    keep_screenshot,
    new_person,
    page_problems,
    sign_in,
)


def _send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_register_then_chat_with_a_streamed_reply_that_survives_a_reload(page: Page) -> None:
    page.goto("/")
    page.get_by_role("button", name="New here? Create an account").click()
    page.get_by_label("Username").fill("web_reader")
    page.get_by_label("Email").fill("web_reader@example.com")
    page.get_by_label("Password").fill("a-long-enough-password-1")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    _send(page, "What is machine learning?")
    reply = page.locator(".message.ai").last
    expect(reply).to_have_text(re.compile(r"fake reply to: What is machine learning\?"))
    expect(page.locator(".message.user")).to_have_text(["YouWhat is machine learning?"])

    page.reload()
    page.get_by_role("navigation").get_by_role("button").nth(1).click()
    expect(page.locator(".message")).to_have_count(2)
    expect(page.locator(".message.ai")).to_contain_text("fake reply to: What is machine learning?")
    assert page_problems(page) == []


def test_stop_keeps_what_was_written_and_says_the_answer_stopped(
    page: Page, served: Served, upstream: FakeLLMServer
) -> None:
    sign_in(page, new_person(served))
    upstream.script(fake.slow_stream(0.2, text="one two three four five six seven eight nine ten"))
    _send(page, "Count slowly")
    stop = page.get_by_role("button", name="Stop")
    expect(page.locator(".message.ai .text")).to_contain_text("one")
    stop.click()
    expect(page.locator(".message.ai")).to_contain_text("The answer stopped part way.")
    expect(stop).to_be_hidden()
    assert "ten" not in page.locator(".message.ai .text").inner_text()
    assert page_problems(page) == []


def test_markup_in_messages_is_shown_as_text_and_never_runs(page: Page, served: Served) -> None:
    sign_in(page, new_person(served))
    hostile = (
        '<script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2"> '
        "[click](javascript:window.pwned=3)"
    )
    _send(page, hostile)
    expect(page.locator(".message.ai")).to_contain_text("fake reply to:")
    expect(page.locator(".message.user .text")).to_have_text(hostile)
    assert page.locator(".messages img, .messages script").count() == 0
    assert page.evaluate("window.pwned") is None
    page.reload()
    page.get_by_role("navigation").get_by_role("button").nth(1).click()
    expect(page.locator(".message.user .text")).to_have_text(hostile)
    assert page.evaluate("window.pwned") is None


def test_an_answer_in_markdown_is_shown_formatted_and_its_code_can_be_copied(
    page: Page, context: BrowserContext, served: Served, upstream: FakeLLMServer
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.base_url)
    sign_in(page, new_person(served))
    answer = (
        "Two steps:\n\n1. Install it\n2. Run **it**\n\n"
        "```python\nprint('hi')\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "[docs](https://example.com/docs) and [no](javascript:window.pwned=1)"
    )
    upstream.script(fake.reply(text=answer))
    _send(page, "How do I start?")
    reply = page.locator(".message.ai").last
    expect(reply.locator("ol > li")).to_have_text(["Install it", "Run it"])
    expect(reply.locator("strong")).to_have_text("it")
    expect(reply.locator("pre code")).to_have_text("print('hi')")
    expect(reply.locator("table td")).to_have_text(["1", "2"])
    expect(reply.get_by_role("link", name="docs")).to_have_attribute(
        "href", "https://example.com/docs"
    )
    expect(reply.get_by_role("link")).to_have_count(1)
    expect(reply).to_contain_text("[no](javascript:window.pwned=1)")
    reply.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == "print('hi')"
    keep_screenshot(page, "chat")

    page.reload()
    page.get_by_role("navigation").get_by_role("button", name="How do I start?").click()
    expect(page.locator(".message.ai pre code")).to_have_text("print('hi')")
    assert page.evaluate("window.pwned") is None
    assert page_problems(page) == []


def test_a_non_staff_user_gets_the_403_page_for_admin(page: Page, served: Served) -> None:
    sign_in(page, new_person(served))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    response = page.goto("/admin/")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading")).to_have_text("403 · Not allowed")


def test_anonymous_admin_visit_signs_in_first_and_pages_carry_a_strict_csp(served: Served) -> None:
    response = httpx.get(f"{served.base_url}/admin/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/?next=/admin/"
    page = httpx.get(f"{served.base_url}/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "http" not in page.text.replace('href="/', "").split("<body")[0]


def test_signing_in_never_sends_the_browser_to_another_site(page: Page, served: Served) -> None:
    """``next`` is honoured only as a path of this site: ``/\\host`` and ``//host`` are
    read by browsers as another site's address (an open redirect for a crafted link)."""
    person = new_person(served)
    for hostile in ("/%5Cevil.example/", "//evil.example/", "https://evil.example/"):
        sign_in(page, person, f"/?next={hostile}")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert page.url == f"{served.base_url}/", hostile
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("Username")).to_be_visible()
    sign_in(page, person, "/?next=/admin/")
    expect(page.get_by_role("heading")).to_have_text("403 · Not allowed")
    assert page_problems(page) == []
