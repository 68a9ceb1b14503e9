"""The chat page in Chinese: a browser that asks for zh-CN gets `<html lang="zh">` and
every label of the page in Simplified Chinese, from sign-in to a sent message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.integration.web.browser import Served, new_person, page_problems, watch_for_problems


@pytest.fixture
def chinese(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    opened = browser.new_context(base_url=served.base_url, locale="zh-CN")
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


def test_a_chinese_browser_gets_the_chinese_chat_page(
    chinese: BrowserContext, served: Served
) -> None:
    person = new_person(served)
    page = chinese.new_page()
    watch_for_problems(page)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh")
    page.get_by_label("用户名").fill(person.username)
    page.get_by_label("密码").fill(person.password)
    page.get_by_role("button", name="登录", exact=True).click()

    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    expect(page.get_by_role("button", name="新对话")).to_be_visible()
    expect(page.get_by_role("navigation", name="我的对话")).to_be_visible()
    expect(page.get_by_label("模型", exact=True)).to_be_visible()
    expect(page.get_by_text("对话设置")).to_be_visible()
    expect(page.get_by_role("button", name="添加图片")).to_be_visible()

    page.get_by_label("消息").fill("你好，世界！")
    page.get_by_role("button", name="发送").click()
    expect(page.locator(".message.ai")).to_contain_text("fake reply to: 你好，世界！")
    expect(page.locator(".message.user")).to_have_text("我你好，世界！")
    expect(page.get_by_role("heading", level=1)).to_have_text("你好，世界！")
    for label in ("重命名", "关闭", "删除"):
        expect(page.get_by_role("button", name=label, exact=True)).to_be_visible()
    page.get_by_role("button", name="关闭", exact=True).click()
    expect(page.get_by_role("textbox", name="消息")).to_have_accessible_description(
        "此对话已关闭。重新打开后才能继续发送消息。"
    )
    expect(page.get_by_role("button", name="重新打开")).to_be_visible()
    assert page_problems(page) == []
