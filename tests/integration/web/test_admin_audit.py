"""The admin page's audit log in Chromium: what a staff user just did in the page is there,
newest first, with who did it and to what; the filters narrow it as the API does."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.integration.web.browser import (
    Served,
    api_client,
    conversation_with_messages,
    new_person,
    new_staff,
    page_problems,
    sign_in,
)


def test_a_close_in_the_page_shows_in_the_audit_log_by_that_staff_user(
    page: Page, served: Served
) -> None:
    owner = new_person(served, "owner")
    with api_client(served, owner) as http:
        conversation = conversation_with_messages(http, "to be closed")
    staff = new_staff(served)
    sign_in(page, staff, "/?next=/admin/")
    row = page.locator(f'#admin-conversations tr[data-id="{conversation}"]')
    row.get_by_role("button", name="Close").click()
    expect(row.get_by_role("button", name="Reopen")).to_be_visible()

    page.get_by_role("navigation", name="Admin sections").get_by_role(
        "link", name="Audit log"
    ).click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    newest = page.locator("#admin-audit tbody tr").first
    expect(newest).to_contain_text("conversation.close")
    expect(newest).to_contain_text(staff.username)
    expect(newest).to_contain_text(f"conversation #{conversation}")
    with api_client(served, staff) as admin:
        entry = admin.get("/api/admin/audit-log/", params={"limit": 1}).json()[0]
    assert entry["action"] == "conversation.close"
    expect(newest).to_have_attribute("data-id", str(entry["id"]))
    assert page_problems(page) == []


def test_the_filters_narrow_the_log_to_one_actor_action_and_target_type(
    page: Page, served: Served
) -> None:
    owner = new_person(served, "watched")
    with api_client(served, owner) as http:
        conversation = conversation_with_messages(http, "read by two admins")
    first, second = new_staff(served, "first"), new_staff(served, "second")
    with api_client(served, first) as admin:
        assert admin.get(f"/api/admin/conversations/{conversation}/").status_code == 200
        assert admin.post(f"/api/admin/conversations/{conversation}/close/").status_code == 200
    with api_client(served, second) as admin:
        assert admin.get(f"/api/admin/conversations/{conversation}/").status_code == 200

    sign_in(page, second, "/?next=/admin/")
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Actor").fill(first.username)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#admin-audit tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("conversation.close")
    expect(rows.nth(1)).to_contain_text("conversation.view")

    page.get_by_label("Action").fill("conversation.view")
    page.get_by_label("Target type").select_option("conversation")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(first.username)
    expect(page.get_by_role("navigation", name="Pages of Audit log")).to_contain_text("1–1 of 1")

    page.get_by_label("Target type").select_option("user")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("navigation", name="Pages of Audit log")).to_contain_text("None found")
    expect(rows).to_have_count(0)
    assert page_problems(page) == []
