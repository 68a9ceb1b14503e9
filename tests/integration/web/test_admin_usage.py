"""The admin page's usage section in Chromium: the last 30 days by day and model as a chart
(a bar for today's model, a legend, a summary for screen readers) and as tables whose
numbers are the API's; another period picked with the date fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.integration.web.browser import (
    MODEL,
    Served,
    api_client,
    conversation_with_messages,
    keep_screenshot,
    new_person,
    new_staff,
    page_problems,
    sign_in,
)

NUMBER_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens")


def _cells(row: dict[str, object], *keys: str) -> list[str]:
    return [str(row[key]) for key in keys] + [f"{row[f]:,}" for f in NUMBER_FIELDS]


def test_usage_by_day_and_model_as_a_chart_and_the_apis_numbers(page: Page, served: Served) -> None:
    owner = new_person(served, "user")
    with api_client(served, owner) as http:
        conversation_with_messages(http, "count these words please", "and these")
        echo = http.post("/api/v1/conversations/", json={"title": "echo", "model": "echo"})
        assert echo.status_code == 201, echo.text
        sent = http.post(
            f"/api/conversations/{echo.json()['id']}/send_message/", json={"message": "hi echo"}
        )
        assert sent.status_code == 201, sent.text
    staff = new_staff(served)
    today = datetime.now(UTC).date()
    period = {"from": str(today - timedelta(days=29)), "to": str(today)}
    with api_client(served, staff) as admin:
        by_day = admin.get("/api/admin/usage/", params={**period, "group_by": "day,model"}).json()
        by_model = admin.get("/api/admin/usage/", params={**period, "group_by": "model"}).json()
    todays = next(row for row in by_day if row["model"] == MODEL)
    assert todays["day"] == str(today)
    assert todays["total_tokens"] > 0
    assert {row["model"] for row in by_model} == {MODEL, "echo"}

    sign_in(page, staff, "/?next=/admin/")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_label("From (UTC)")).to_have_value(period["from"])
    expect(page.get_by_label("To (UTC)")).to_have_value(period["to"])

    chart = page.get_by_role("img", name=re.compile("^Tokens by day"))
    expect(chart).to_have_attribute(
        "aria-label", re.compile(f"{MODEL}: {todays['total_tokens']:,}")
    )
    bar = chart.locator(f'rect.bar[data-day="{today}"][data-model="{MODEL}"]')
    expect(bar).to_have_count(1)
    expect(bar).to_have_attribute("data-tokens", str(todays["total_tokens"]))
    assert float(bar.get_attribute("height") or 0) > 0
    expect(chart.locator("rect.bar")).to_have_count(len(by_day))
    expect(page.get_by_role("list", name="Models").get_by_role("listitem")).to_have_text(
        [row["model"] for row in by_model]
    )

    day_rows = page.get_by_role("region", name="Usage by day").locator("tbody tr")
    expect(day_rows).to_have_count(len(by_day))
    for index, row in enumerate(by_day):
        expect(day_rows.nth(index).locator("td")).to_have_text(
            [*_cells(row, "day", "model"), re.compile(r"^\d")]
        )
    model_rows = page.get_by_role("region", name="Usage by model").locator("tbody tr")
    expect(model_rows).to_have_count(len(by_model))
    for index, row in enumerate(by_model):
        expect(model_rows.nth(index).locator("td")).to_have_text(
            [*_cells(row, "model"), f"{row['cost']:.2f} {row['currency']}"]
        )
    keep_screenshot(page, "admin-usage")
    assert page_problems(page) == []


def test_a_period_without_usage_says_so_and_today_shows_again(page: Page, served: Served) -> None:
    with api_client(served, new_person(served, "later")) as http:
        conversation_with_messages(http, "something to count")
    sign_in(page, new_staff(served), "/?next=/admin/")
    page.get_by_role("link", name="Usage").click()
    expect(page.locator("rect.bar").first).to_be_attached()

    page.get_by_label("From (UTC)").fill("2020-01-01")
    page.get_by_label("To (UTC)").fill("2020-01-31")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No usage in this period.")).to_be_visible()
    expect(page.get_by_role("region", name="Usage by day").locator("tbody tr")).to_have_count(0)

    today = str(datetime.now(UTC).date())
    page.get_by_label("From (UTC)").fill(today)
    page.get_by_label("To (UTC)").fill(today)
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f'rect.bar[data-day="{today}"][data-model="{MODEL}"]')).to_have_count(1)
    assert page_problems(page) == []
