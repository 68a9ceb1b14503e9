"""Paging in the admin page's tables (Chromium): the total is shown, "Next" shows the
second page (the rows the API gives for that offset) and "Previous" the first again."""

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

PAGE = 10


def _expect_paging(page: Page, table_id: str, what: str, api_rows: list[str], total: int) -> None:
    """With 10 rows a page: page 1 is full, Next shows rows 11.. as the API lists them."""
    pager = page.get_by_role("navigation", name=f"Pages of {what}")
    pager.get_by_label("Rows per page").select_option(str(PAGE))
    expect(pager).to_contain_text(f"1–{PAGE} of {total}")
    rows = page.locator(f"#{table_id} tbody tr")
    expect(rows).to_have_count(PAGE)
    expect(pager.get_by_role("button", name="Previous")).to_be_disabled()

    pager.get_by_role("button", name="Next").click()
    last = min(total, 2 * PAGE)
    expect(pager).to_contain_text(f"{PAGE + 1}–{last} of {total}")
    expect(rows).to_have_count(last - PAGE)
    assert [rows.nth(i).get_attribute("data-id") for i in range(last - PAGE)] == api_rows

    pager.get_by_role("button", name="Previous").click()
    expect(pager).to_contain_text(f"1–{PAGE} of {total}")
    expect(rows).to_have_count(PAGE)


def test_conversations_users_and_audit_log_page_through(page: Page, served: Served) -> None:
    staff = new_staff(served)
    for _ in range(2):
        with api_client(served, new_person(served, "paged")) as http:
            for _ in range(6):
                conversation_with_messages(http)
    with api_client(served, staff) as admin:
        for item in admin.get("/api/admin/conversations/", params={"limit": 11}).json():
            assert admin.get(f"/api/admin/conversations/{item['id']}/").status_code == 200
        second_pages = {}
        totals = {}
        for path in ("conversations", "audit-log"):
            listed = admin.get(f"/api/admin/{path}/", params={"limit": PAGE, "offset": PAGE})
            second_pages[path] = [str(item["id"]) for item in listed.json()]
            totals[path] = int(listed.headers["X-Total-Count"])
    assert totals == {"conversations": 12, "audit-log": 11}

    sign_in(page, staff, "/?next=/admin/")
    expect(page.get_by_role("heading", name="All conversations")).to_be_visible()
    _expect_paging(
        page, "admin-conversations", "All conversations", second_pages["conversations"], 12
    )

    page.get_by_role("link", name="Audit log").click()
    _expect_paging(page, "admin-audit", "Audit log", second_pages["audit-log"], 11)
    assert page_problems(page) == []


def test_the_users_table_pages_through(page: Page, served: Served) -> None:
    for _ in range(10):
        new_person(served, "many")
    staff = new_staff(served)
    with api_client(served, staff) as admin:
        listed = admin.get("/api/admin/users/", params={"limit": PAGE, "offset": PAGE})
    total = int(listed.headers["X-Total-Count"])
    assert total > PAGE
    sign_in(page, staff, "/?next=/admin/")
    page.get_by_role("link", name="Users").click()
    _expect_paging(page, "admin-users", "Users", [str(u["id"]) for u in listed.json()], total)
    assert page_problems(page) == []
