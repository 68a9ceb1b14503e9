"""A reply that failed or stopped part way offers "Retry": the reply is asked for again
(streamed) and takes the failed one's place, in view and in the stored history."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLLMServer
from tests.integration.web.browser import Served, new_person, page_problems, sign_in


def _send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_retry_replaces_a_failed_reply_with_a_streamed_answer(
    page: Page, served: Served, upstream: FakeLLMServer
) -> None:
    sign_in(page, new_person(served))
    # A 400 is not retried by Parley itself: the reply is stored failed at once.
    upstream.script(fake.error(400, "The upstream did not like it."))
    _send(page, "Tell me a joke")
    reply = page.locator(".message.ai")
    expect(reply).to_contain_text("The model could not answer.")
    expect(page.get_by_role("alert")).to_contain_text("The upstream did not like it.")
    retry = reply.get_by_role("button", name="Retry")

    upstream.script(fake.slow_stream(0.2, text="Why did the chicken cross the road"))
    retry.click()
    expect(page.locator("#messages")).to_have_attribute("aria-busy", "true")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("Why did the chicken cross the road")
    expect(page.locator("#messages")).not_to_have_attribute("aria-busy", "true")
    expect(reply).not_to_contain_text("The model could not answer.")
    expect(reply.get_by_role("button", name="Retry")).to_have_count(0)

    page.reload()
    page.get_by_role("list", name="Your conversations").get_by_role("button").first.click()
    expect(page.locator(".message")).to_have_count(2)
    expect(page.locator(".message.ai")).to_contain_text("Why did the chicken cross the road")
    assert page_problems(page) == []


def test_a_stopped_reply_can_be_retried_too(
    page: Page, served: Served, upstream: FakeLLMServer
) -> None:
    sign_in(page, new_person(served))
    upstream.script(fake.slow_stream(0.2, text="one two three four five six seven eight nine ten"))
    _send(page, "Count slowly")
    expect(page.locator(".message.ai .text")).to_contain_text("one")
    page.get_by_role("button", name="Stop").click()
    reply = page.locator(".message.ai")
    expect(reply).to_contain_text("The answer stopped part way.")

    reply.get_by_role("button", name="Retry").click()
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("fake reply to: Count slowly")
    expect(reply).not_to_contain_text("The answer stopped part way.")
    assert page_problems(page) == []
