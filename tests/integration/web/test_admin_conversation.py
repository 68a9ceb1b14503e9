"""The admin page in Chromium: a staff user opens another user's conversation from the list
and sees its messages (as text, whatever they look like), the owner's name and the
statistics' counts; the way back works by link, by the browser's Back button and by
keyboard."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.integration.web.browser import (
    Served,
    api_client,
    conversation_with_messages,
    keep_screenshot,
    new_person,
    new_staff,
    page_problems,
    sign_in,
)


def test_staff_opens_another_users_conversation_and_sees_messages_and_stats(
    page: Page, served: Served
) -> None:
    owner = new_person(served, "owner")
    with api_client(served, owner) as http:
        conversation = conversation_with_messages(
            http, "<img src=x onerror=alert(1)> hello", "second question"
        )
    staff = new_staff(served)
    with api_client(served, staff) as admin:
        stats = admin.get(f"/api/admin/conversations/{conversation}/stats/").json()
    assert stats["message_count"] == 4

    sign_in(page, staff, "/?next=/admin/")
    row = page.locator(f'#admin-conversations tr[data-id="{conversation}"]')
    row.get_by_role("link", name=f"Untitled #{conversation}").click()

    expect(page.get_by_role("heading", name=f"Untitled #{conversation}", level=1)).to_be_focused()
    expect(page.locator(".owner")).to_contain_text(f"By {owner.username}")
    messages = page.locator(".transcript .message")
    expect(messages).to_have_count(4)
    expect(messages.nth(0)).to_contain_text("User")
    expect(messages.nth(0).locator(".text")).to_have_text("<img src=x onerror=alert(1)> hello")
    expect(messages.nth(1)).to_contain_text("Assistant")
    expect(messages.nth(2).locator(".text")).to_have_text("second question")
    assert page.locator(".transcript img").count() == 0

    statistics = page.get_by_role("region", name="Statistics")
    expect(statistics.locator('[data-stat="message_count"] dd')).to_have_text(
        str(stats["message_count"])
    )
    expect(statistics.locator('[data-stat="user_messages"] dd')).to_have_text(
        str(stats["user_messages"])
    )
    expect(statistics.locator('[data-stat="ai_messages"] dd')).to_have_text(
        str(stats["ai_messages"])
    )
    expect(statistics.locator('[data-stat="duration"] dd')).to_have_text(
        f"{stats['duration_minutes']} min"
    )
    expect(statistics.locator('[data-stat="first_message"] time')).to_have_attribute(
        "datetime", stats["first_message_time"]
    )
    keep_screenshot(page, "admin-conversation")

    page.go_back()
    expect(page.get_by_role("heading", name="All conversations")).to_be_visible()
    page.go_forward()
    expect(page.locator(".transcript .message")).to_have_count(4)
    page.get_by_role("link", name="Back to conversations").click()
    expect(page.get_by_role("heading", name="All conversations")).to_be_focused()
    assert page_problems(page) == []


def test_the_keyboard_opens_a_conversation_and_comes_back(page: Page, served: Served) -> None:
    owner = new_person(served, "keys")
    with api_client(served, owner) as http:
        conversation = conversation_with_messages(http, "typed without a mouse")
    sign_in(page, new_staff(served), "/?next=/admin/")
    link = page.get_by_role("link", name=f"Untitled #{conversation}")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".transcript .message .text").first).to_have_text("typed without a mouse")
    back = page.get_by_role("link", name="Back to conversations")
    page.keyboard.press("Shift+Tab")
    expect(back).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="All conversations")).to_be_visible()
    expect(page.locator(f'#admin-conversations tr[data-id="{conversation}"]')).to_be_visible()
    assert page_problems(page) == []
