"""Moving around the admin page in Chromium: the sections (Conversations, Users, Usage,
Audit log) by keyboard, with aria-current and the URL's hash (reload and Back); at phone
width the tables scroll sideways instead of the page; in Chinese with a zh-CN browser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.integration.web.browser import (
    Served,
    api_client,
    conversation_with_messages,
    new_person,
    new_staff,
    page_problems,
    sign_in,
    watch_for_problems,
)

SECTIONS = ["Conversations", "Users", "Usage", "Audit log"]


@pytest.fixture
def phone(browser: Browser, served: Served) -> Iterator[Page]:
    context = browser.new_context(
        base_url=served.base_url, locale="en-US", viewport={"width": 375, "height": 740}
    )
    opened = context.new_page()
    watch_for_problems(opened)
    yield opened
    context.close()


@pytest.fixture
def chinese(browser: Browser, served: Served) -> Iterator[Page]:
    context = browser.new_context(base_url=served.base_url, locale="zh-CN")
    opened = context.new_page()
    watch_for_problems(opened)
    yield opened
    context.close()


def test_the_sections_are_tabs_the_keyboard_moves_through(page: Page, served: Served) -> None:
    sign_in(page, new_staff(served), "/?next=/admin/")
    sections = page.get_by_role("navigation", name="Admin sections")
    links = sections.get_by_role("link")
    expect(links).to_have_text(SECTIONS)
    expect(sections.get_by_role("link", name="Conversations")).to_have_attribute(
        "aria-current", "page"
    )

    links.first.focus()
    page.keyboard.press("Tab")
    expect(sections.get_by_role("link", name="Users")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    expect(sections.get_by_role("link", name="Users")).to_have_attribute("aria-current", "page")
    expect(sections.locator('[aria-current="page"]')).to_have_count(1)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(sections.get_by_role("link", name="Audit log")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    assert page.url.endswith("/admin/#audit")

    page.reload()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(sections.get_by_role("link", name="Audit log")).to_have_attribute("aria-current", "page")
    page.go_back()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    assert page_problems(page) == []


def test_at_phone_width_tables_scroll_sideways_not_the_page(phone: Page, served: Served) -> None:
    with api_client(served, new_person(served, "narrow")) as http:
        conversation_with_messages(http, "a message on a small screen")
    sign_in(phone, new_staff(served), "/?next=/admin/")
    phone.get_by_role("link", name="Users").click()
    users = phone.get_by_role("region", name="Users")
    expect(users.locator("tbody tr").first).to_be_visible()
    widths = users.evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert widths[0] > widths[1], widths
    page_width = phone.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert page_width[0] <= page_width[1], page_width
    for name in SECTIONS:
        expect(phone.get_by_role("link", name=name)).to_be_visible()

    phone.get_by_role("link", name="Usage").click()
    expect(phone.get_by_role("img", name="Tokens by day", exact=False)).to_be_visible()
    chart_box = phone.get_by_role("img", name="Tokens by day", exact=False).bounding_box()
    assert chart_box is not None
    assert chart_box["width"] <= 375
    assert phone.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    assert page_problems(phone) == []


def test_with_a_chinese_browser_the_admin_page_is_in_chinese(chinese: Page, served: Served) -> None:
    with api_client(served, new_person(served, "zh")) as http:
        conversation_with_messages(http, "你好")
    staff = new_staff(served)
    chinese.goto("/?next=/admin/")
    chinese.get_by_label("用户名").fill(staff.username)
    chinese.get_by_label("密码").fill(staff.password)
    chinese.get_by_role("button", name="登录", exact=True).click()

    expect(chinese).to_have_title("Parley 管理")
    sections = chinese.get_by_role("navigation", name="管理分区")
    expect(sections.get_by_role("link")).to_have_text(["对话", "用户", "用量", "审计日志"])
    expect(chinese.get_by_role("heading", name="全部对话")).to_be_visible()
    expect(chinese.get_by_label("搜索")).to_be_visible()
    expect(chinese.locator("#admin-conversations thead th")).to_have_text(
        ["标题", "用户", "状态", "更新时间", "操作"]
    )
    expect(chinese.locator("#admin-conversations tbody tr").first).to_contain_text("进行中")
    pager = chinese.get_by_role("navigation", name="全部对话分页")
    expect(pager.get_by_role("button", name="下一页")).to_be_disabled()
    expect(pager).to_contain_text(re.compile(r"第 1–\d+ 条，共 \d+ 条"))

    sections.get_by_role("link", name="用户").click()
    expect(chinese.locator("#admin-users thead th")).to_contain_text(["今日令牌", "本月费用"])
    sections.get_by_role("link", name="用量").click()
    expect(chinese.get_by_role("heading", name="按日用量")).to_be_visible()
    expect(chinese.get_by_role("img", name="每日令牌用量", exact=False)).to_be_visible()
    expect(chinese.get_by_label("开始日期（UTC）")).to_be_visible()
    sections.get_by_role("link", name="审计日志").click()
    expect(chinese.get_by_role("heading", name="审计日志", level=1)).to_be_visible()
    expect(chinese.get_by_role("button", name="筛选")).to_be_visible()
    assert page_problems(chinese) == []
