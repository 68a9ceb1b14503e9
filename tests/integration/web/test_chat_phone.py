"""The chat page on a phone-sized screen, used with the keyboard only: the conversation
list folds away behind a "Conversations" button (aria-expanded), focus goes where the
next step is, and the reply streams into a polite live region that is busy meanwhile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.web.browser import (
    Served,
    new_person,
    page_problems,
    sign_in,
    watch_for_problems,
)


@pytest.fixture
def phone(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    opened = browser.new_context(
        base_url=served.base_url, locale="en-US", viewport={"width": 390, "height": 844}
    )
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


def test_sign_in_open_the_list_start_and_send_with_the_keyboard_only(
    phone: BrowserContext, served: Served, upstream: FakeLLMServer
) -> None:
    person = new_person(served)
    page = phone.new_page()
    watch_for_problems(page)
    page.goto("/")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(person.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(person.password)
    page.keyboard.press("Enter")

    toggle = page.get_by_role("button", name="Conversations")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    new = page.get_by_role("button", name="New conversation")
    expect(new).to_be_hidden()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(toggle).to_be_focused()

    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(new).to_be_visible()
    expect(new).to_be_focused()
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    expect(new).to_be_focused()

    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    message = page.get_by_role("textbox", name="Message")
    expect(message).to_be_focused()

    upstream.script(fake.slow_stream(0.2, text="Hello to you on your small screen"))
    page.keyboard.type("Hello from a phone")
    page.keyboard.press("Enter")
    messages = page.locator("#messages")
    expect(messages).to_have_attribute("aria-live", "polite")
    expect(messages).to_have_attribute("aria-busy", "true")
    expect(page.locator(".message.user .text")).to_have_text("Hello from a phone")
    expect(page.locator(".message.ai .text")).to_have_text("Hello to you on your small screen")
    expect(messages).not_to_have_attribute("aria-busy", "true")
    expect(message).to_be_focused()
    expect(message).to_have_value("")

    # Shift+Enter starts a new line instead of sending.
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(message).to_have_value("line one\nline two")
    expect(page.locator(".message")).to_have_count(2)
    assert page_problems(page) == []


def test_on_a_wide_screen_the_list_is_always_shown(page: Page, served: Served) -> None:
    sign_in(page, new_person(served))
    expect(page.get_by_role("button", name="New conversation")).to_be_visible()
    expect(page.get_by_role("button", name="Conversations")).to_be_hidden()
    assert page_problems(page) == []
