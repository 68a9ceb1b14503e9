"""The admin page's users table in Chromium: each account with its conversations, messages
and this day's and month's spend as the API reports them; deactivate and reactivate."""

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


def _money(value: float) -> str:
    """As the page shows an amount in English: at least 2 decimals, at most 6."""
    text = f"{value:,.6f}".rstrip("0")
    return text + "0" * (2 - len(text.split(".")[1]))


def test_the_users_table_shows_counts_and_spend_as_the_api_reports_them(
    page: Page, served: Served
) -> None:
    owner = new_person(served, "spender")
    with api_client(served, owner) as http:
        conversation_with_messages(http, "one two three", "four five")
        conversation_with_messages(http, "six")
    staff = new_staff(served)
    with api_client(served, staff) as admin:
        (listed,) = admin.get("/api/admin/users/", params={"username": owner.username}).json()
    assert listed["conversation_count"] == 2
    assert listed["total_messages"] == 6
    assert listed["spend"]["day"]["tokens"] > 0

    sign_in(page, staff, "/?next=/admin/")
    page.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    headings = page.locator("#admin-users thead th")
    expect(headings).to_have_text(
        [
            "Account",
            "Status",
            "Conversations",
            "Messages",
            "Tokens today",
            "Cost today",
            "Tokens this month",
            "Cost this month",
            "Actions",
        ]
    )
    row = page.locator(f'#admin-users tr[data-username="{owner.username}"]')
    expect(row.locator("td")).to_have_text(
        [
            owner.username,
            "active",
            "2",
            "6",
            f"{listed['spend']['day']['tokens']:,}",
            _money(listed["spend"]["day"]["cost"]),
            f"{listed['spend']['month']['tokens']:,}",
            _money(listed["spend"]["month"]["cost"]),
            "Limits Deactivate",
        ]
    )
    expect(page.locator(f'#admin-users tr[data-username="{staff.username}"]')).to_contain_text(
        "active · staff"
    )

    row.get_by_role("button", name="Deactivate").click()
    expect(row.get_by_role("button", name="Reactivate")).to_be_visible()
    expect(row.locator("td").nth(1)).to_have_text("deactivated")
    with api_client(served, staff) as admin:
        (after,) = admin.get("/api/admin/users/", params={"username": owner.username}).json()
    assert after["is_active"] is False

    row.get_by_role("button", name="Reactivate").click()
    expect(row.get_by_role("button", name="Deactivate")).to_be_visible()
    expect(row.locator("td").nth(1)).to_have_text("active")
    assert page_problems(page) == []


def test_deactivating_yourself_is_refused_with_the_servers_reason(
    page: Page, served: Served
) -> None:
    staff = new_staff(served)
    sign_in(page, staff, "/?next=/admin/")
    page.get_by_role("link", name="Users").click()
    row = page.locator(f'#admin-users tr[data-username="{staff.username}"]')
    row.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("alert")).to_have_text("You cannot deactivate your own account.")
    expect(row.get_by_role("button", name="Deactivate")).to_be_visible()
    assert page_problems(page) == []
