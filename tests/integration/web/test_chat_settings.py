"""The model picker and the chat settings panel: the picker lists what GET /api/v1/models/
lists and sets the conversation's model (or, for a new one, the user's); the panel saves
temperature and max tokens, and a value the server refuses shows its field error and is
not saved."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.integration.web.browser import Served, api_client, new_person, page_problems, sign_in


def _open_settings(page: Page) -> None:
    page.get_by_text("Chat settings").click()
    expect(page.get_by_label("Temperature")).to_be_visible()


def test_temperature_is_kept_and_an_invalid_one_shows_the_servers_error(
    page: Page, served: Served
) -> None:
    person = new_person(served)
    sign_in(page, person)
    _open_settings(page)
    temperature = page.get_by_label("Temperature")
    expect(temperature).to_have_value("0.7")
    temperature.fill("1.3")
    page.get_by_label("Max tokens").fill("300")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")

    page.reload()
    _open_settings(page)
    expect(temperature).to_have_value("1.3")
    expect(page.get_by_label("Max tokens")).to_have_value("300")

    temperature.fill("3")
    page.get_by_role("button", name="Save").click()
    expect(temperature).to_have_accessible_description(re.compile(r"\S"))
    expect(temperature).to_have_attribute("aria-invalid", "true")
    expect(temperature).to_be_focused()
    with api_client(served, person) as client:
        response = client.patch(
            f"/api/chat-setting/{client.get('/api/chat-setting/').json()['id']}/",
            json={"temperature": 3},
        )
        assert response.status_code == 400
        expect(temperature).to_have_accessible_description(" ".join(response.json()["temperature"]))
        assert client.get("/api/chat-setting/").json()["temperature"] == 1.3

    page.reload()
    _open_settings(page)
    expect(temperature).to_have_value("1.3")
    expect(temperature).not_to_have_attribute("aria-invalid", "true")
    assert page_problems(page) == []


def test_the_model_picker_sets_the_users_and_the_conversations_model(
    page: Page, served: Served
) -> None:
    person = new_person(served)
    sign_in(page, person)
    picker = page.get_by_label("Model", exact=True)
    with api_client(served, person) as client:
        listed = [model["name"] for model in client.get("/api/v1/models/").json()]
    expect(picker.locator("option")).to_have_text(listed)
    expect(picker).to_have_value("gpt-6.1-sol")

    # No conversation open: the choice is the user's model (the chat setting).
    picker.select_option(label="Echo (offline test model)")
    expect(picker).to_have_value("echo")
    page.wait_for_function(
        "async () => (await (await fetch('/api/chat-setting/')).json()).ai_model === 'echo'"
    )
    page.get_by_label("Message").fill("Hello there")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.ai")).to_contain_text("Echo: Hello there")

    # In a conversation: the choice is that conversation's model.
    picker.select_option(label="GPT-6.1 Sol")
    with api_client(served, person) as client:
        conversation = client.get("/api/v1/conversations/").json()[0]
        page.wait_for_function(
            f"async () => (await (await fetch('/api/v1/conversations/{conversation['id']}/'))"
            ".json()).model === 'gpt-6.1-sol'"
        )
        assert client.get("/api/chat-setting/").json()["ai_model"] == "echo"
    page.get_by_label("Message").fill("And now?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.ai").last).to_contain_text("fake reply to: And now?")

    page.reload()
    page.get_by_role("list", name="Your conversations").get_by_role("button").first.click()
    expect(picker).to_have_value("gpt-6.1-sol")
    page.get_by_role("button", name="New conversation").click()
    expect(picker).to_have_value("echo")
    assert page_problems(page) == []
