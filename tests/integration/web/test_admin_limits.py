"""A user's limits in the admin page, in Chromium: their budget (their own or the default)
and the models they may use, set in the page and read back through the API."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.integration.web.browser import (
    Person,
    Served,
    api_client,
    new_person,
    new_staff,
    page_problems,
    sign_in,
)


def _open_limits(page: Page, staff: Person, person: Person) -> Locator:
    sign_in(page, staff, "/?next=/admin/")
    page.get_by_role("link", name="Users").click()
    row = page.locator(f'#admin-users tr[data-username="{person.username}"]')
    row.get_by_role("button", name=f"Limits for {person.username}").click()
    dialog = page.get_by_role("dialog", name=f"Limits for {person.username}")
    expect(dialog).to_be_visible()
    return dialog


def _user_id(served: Served, staff: Person, person: Person) -> int:
    with api_client(served, staff) as admin:
        (listed,) = admin.get("/api/admin/users/", params={"username": person.username}).json()
    return int(listed["id"])


def test_a_daily_token_budget_set_in_the_page_is_the_users_until_put_back_on_the_default(
    page: Page, served: Served
) -> None:
    person = new_person(served, "budgeted")
    staff = new_staff(served)
    budget_path = f"/api/admin/users/{_user_id(served, staff, person)}/budget/"
    dialog = _open_limits(page, staff, person)
    budget = dialog.get_by_role("form", name="Budget")
    expect(budget).to_contain_text("The default budget")
    expect(budget.get_by_role("button", name="Use the default")).to_be_disabled()
    daily_tokens = budget.get_by_label("Tokens per day")

    daily_tokens.fill("-5")
    budget.get_by_role("button", name="Save budget").click()
    expect(dialog.locator("#limits-daily-tokens-error")).to_have_text("Expected `int` >= 0.")
    expect(daily_tokens).to_have_attribute("aria-invalid", "true")
    with api_client(served, staff) as admin:
        refused = admin.get(budget_path).json()
    assert refused["own"] is False
    assert refused["day"]["limit_tokens"] is None

    daily_tokens.fill("1200")
    budget.get_by_role("button", name="Save budget").click()
    expect(dialog.get_by_role("status")).to_have_text("Budget saved.")
    expect(budget).to_contain_text("Their own budget.")
    expect(dialog.locator("#limits-daily-tokens-error")).to_have_text("")
    with api_client(served, staff) as admin:
        saved = admin.get(budget_path).json()
    assert saved["own"] is True
    assert saved["day"]["limit_tokens"] == 1200
    assert saved["month"]["limit_tokens"] is None
    assert saved["day"]["limit_cost"] is None

    budget.get_by_role("button", name="Use the default").click()
    expect(dialog.get_by_role("status")).to_have_text("Back on the default budget.")
    expect(budget).to_contain_text("The default budget")
    expect(daily_tokens).to_have_value("")
    with api_client(served, staff) as admin:
        reset = admin.get(budget_path).json()
    assert reset["own"] is False
    assert reset["day"]["limit_tokens"] is None

    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("button", name=f"Limits for {person.username}")).to_be_focused()
    assert page_problems(page) == []


def test_restricting_a_users_models_in_the_page_is_what_the_api_then_returns(
    page: Page, served: Served
) -> None:
    person = new_person(served, "restricted")
    staff = new_staff(served)
    models_path = f"/api/admin/users/{_user_id(served, staff, person)}/models/"
    with api_client(served, staff) as admin:
        offered = [model["id"] for model in admin.get("/api/v1/models/").json()]
    assert len(offered) >= 2
    dialog = _open_limits(page, staff, person)
    models = dialog.get_by_role("form", name="Models")
    expect(models).to_contain_text("The default list of models.")
    expect(models.get_by_role("button", name="Use the default")).to_be_disabled()
    boxes = models.get_by_role("group", name="Models they may use").get_by_role("checkbox")
    expect(boxes).to_have_count(len(offered))
    for box in boxes.all():
        expect(box).to_be_checked()

    kept = offered[0]
    for model in offered[1:]:
        models.get_by_role("checkbox", name=f"({model})").uncheck()
    models.get_by_role("button", name="Save models").click()
    expect(dialog.get_by_role("status")).to_have_text("Models saved.")
    expect(models).to_contain_text("Their own list of models.")
    with api_client(served, staff) as admin:
        restricted = admin.get(models_path).json()
    assert restricted["own"] is True
    assert restricted["allowed_models"] == [kept]
    with api_client(served, person) as own:
        assert [model["id"] for model in own.get("/api/v1/models/").json()] == [kept]

    models.get_by_role("button", name="Use the default").click()
    expect(dialog.get_by_role("status")).to_have_text("Back on the default list of models.")
    with api_client(served, staff) as admin:
        assert admin.get(models_path).json() == {
            "user": restricted["user"],
            "own": False,
            "allowed_models": None,
        }
    assert page_problems(page) == []
