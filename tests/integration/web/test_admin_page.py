"""The admin page in Chromium: a staff user finds another user's conversation by a
Chinese word of its messages and closes it; the owner then cannot send to it."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.integration.web.browser import Served, new_person, new_staff, page_problems, sign_in


def test_staff_searches_in_chinese_and_closes_another_users_conversation(
    page: Page, served: Served
) -> None:
    owner = new_person(served, "owner")
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        access = http.post(
            "/api/v1/login/", json={"username": owner.username, "password": owner.password}
        ).json()["access"]
        headers = {"Authorization": f"Bearer {access}"}
        conversation = http.post("/api/conversations/", headers=headers).json()["id"]
        sent = http.post(
            f"/api/conversations/{conversation}/send_message/",
            headers=headers,
            json={"message": "什么是机器学习？"},
        )
        assert sent.status_code == 201, sent.text

        sign_in(page, new_staff(served), "/?next=/admin/")
        expect(page.get_by_role("heading", name="All conversations")).to_be_visible()
        page.get_by_label("Search").fill("机器学习")
        page.get_by_role("button", name="Search").click()
        row = page.locator(f'#admin-conversations tr[data-id="{conversation}"]')
        expect(row).to_contain_text(owner.username)
        expect(page.locator("#admin-conversations tbody tr")).to_have_count(1)
        row.get_by_role("button", name="Close").click()
        expect(row.get_by_role("button", name="Reopen")).to_be_visible()
        expect(row).to_contain_text("closed")

        refused = http.post(
            f"/api/conversations/{conversation}/send_message/",
            headers=headers,
            json={"message": "还在吗？"},
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "conversation_closed"
    assert page_problems(page) == []
