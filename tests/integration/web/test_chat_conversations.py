"""Managing conversations in the chat page: rename in place (Enter saves, Escape cancels),
delete after a confirmation dialog, close and reopen (a closed one says so and takes no
message; a reopen over the active limit shows the server's reason), and the list a page
at a time, newest first."""

from __future__ import annotations

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.integration.web.browser import (
    Served,
    api_client,
    new_person,
    page_problems,
    sign_in,
)


def _send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.ai").last).to_contain_text(f"fake reply to: {text}")


def _conversation_buttons(page: Page) -> Locator:
    return page.get_by_role("list", name="Your conversations").get_by_role("button")


def _start(client: httpx.Client, title: str) -> int:
    response = client.post("/api/v1/conversations/", json={"title": title})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_rename_in_place_enter_saves_and_escape_cancels(page: Page, served: Served) -> None:
    sign_in(page, new_person(served))
    _send(page, "Plan a trip")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Plan a trip")

    page.get_by_role("button", name="Rename").click()
    title = page.get_by_role("textbox", name="Title")
    expect(title).to_be_focused()
    title.fill("Not this one")
    title.press("Escape")
    expect(heading).to_have_text("Plan a trip")
    expect(page.get_by_role("button", name="Rename")).to_be_focused()

    page.get_by_role("button", name="Rename").click()
    page.get_by_role("textbox", name="Title").fill("Kyoto in spring")
    page.get_by_role("textbox", name="Title").press("Enter")
    expect(heading).to_have_text("Kyoto in spring")
    expect(_conversation_buttons(page)).to_have_text(["Kyoto in spring"])

    page.reload()
    expect(_conversation_buttons(page)).to_have_text(["Kyoto in spring"])
    assert page_problems(page) == []


def test_delete_asks_first_in_a_dialog(page: Page, served: Served) -> None:
    person = new_person(served)
    sign_in(page, person)
    _send(page, "Something to forget")
    with api_client(served, person) as client:
        # A second conversation, to show the list keeps it after the other is deleted.
        keeper = client.post("/api/v1/messages/chat/", json={"message": "Keep me"})
        assert keeper.status_code == 201, keeper.text
    page.reload()
    page.get_by_role("button", name="Something to forget").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Something to forget")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete this conversation?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("“Something to forget” and all its messages will be deleted.")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(_conversation_buttons(page)).to_have_text(["Keep me", "Something to forget"])

    page.get_by_role("button", name="Delete").click()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(_conversation_buttons(page)).to_have_count(2)

    page.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog).to_be_hidden()
    expect(_conversation_buttons(page)).to_have_text(["Keep me"])
    expect(page.locator(".message")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_have_text("New conversation")
    with api_client(served, person) as client:
        assert [c["title"] for c in client.get("/api/v1/conversations/").json()] == ["Keep me"]
    assert page_problems(page) == []


def test_a_reply_after_deleting_the_newest_conversation_is_its_own(
    page: Page, served: Served
) -> None:
    sign_in(page, new_person(served))
    _send(page, "Deleted words")
    # exact: the conversation's own button, "Deleted words", also contains "Delete".
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".message")).to_have_count(0)
    page.get_by_label("Message").fill("Fresh words")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.ai").last).to_contain_text(
        "fake reply to: Fresh words", timeout=5_000
    )
    assert page_problems(page) == []


def test_a_closed_conversation_says_so_and_takes_no_message_until_reopened(
    page: Page, served: Served
) -> None:
    sign_in(page, new_person(served))
    _send(page, "First words")
    page.get_by_role("button", name="Close", exact=True).click()
    message = page.get_by_role("textbox", name="Message")
    expect(page.locator("#closed-badge")).to_have_text("Closed")
    expect(message).to_be_disabled()
    expect(message).to_have_accessible_description(
        "This conversation is closed. Reopen it to write in it."
    )
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(_conversation_buttons(page)).to_have_text(["First wordsclosed"])

    page.reload()
    _conversation_buttons(page).first.click()
    expect(message).to_be_disabled()
    page.get_by_role("button", name="Reopen").click()
    expect(message).to_be_enabled()
    expect(page.locator("#closed-badge")).to_be_hidden()
    _send(page, "More words")
    expect(page.locator(".message")).to_have_count(4)
    assert page_problems(page) == []


def test_reopen_over_the_active_limit_shows_the_servers_reason(page: Page, served: Served) -> None:
    person = new_person(served)
    with api_client(served, person) as client:
        closed = _start(client, "An old one")
        assert client.post(f"/api/conversations/{closed}/close/").status_code == 200
        for number in range(10):
            _start(client, f"Active {number}")
        refusal = client.post(f"/api/conversations/{closed}/reopen/")
        assert refusal.status_code == 409
        reason = refusal.json()["detail"]
    sign_in(page, person)
    page.get_by_role("button", name="An old one").click()
    page.get_by_role("button", name="Reopen").click()
    expect(page.get_by_role("alert")).to_have_text(reason)
    expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
    assert page_problems(page) == []


def test_the_list_shows_newest_first_and_more_on_request(page: Page, served: Served) -> None:
    person = new_person(served)
    with api_client(served, person) as client:
        for number in range(1, 26):
            conversation = _start(client, f"Topic {number:02}")
            # Closed ones do not count toward the active limit of 10.
            assert client.post(f"/api/conversations/{conversation}/close/").status_code == 200
    sign_in(page, person)
    buttons = _conversation_buttons(page)
    expect(buttons).to_have_count(20)
    expect(buttons.first).to_have_text("Topic 25closed")
    expect(buttons.last).to_have_text("Topic 06closed")
    more = page.get_by_role("button", name="Show more")
    more.click()
    expect(buttons).to_have_count(25)
    expect(buttons.last).to_have_text("Topic 01closed")
    expect(buttons.nth(20)).to_be_focused()
    expect(more).to_be_hidden()

    buttons.last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Topic 01")
    expect(buttons).to_have_count(25)
    assert page_problems(page) == []
