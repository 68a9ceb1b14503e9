"""Attaching an image: offered only for a model that takes images (GET /api/v1/models/
says `supports_images`), previewed from a blob: URL, sent as a data: URI with the message,
shown in the sent message and passed to the model."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fakes.llm_server import FakeLLMServer
from tests.integration.web.browser import Served, new_person, page_problems, parley_serve, sign_in

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TEXT_ONLY = "plain-text"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer) -> Iterator[Served]:
    """This module's server also serves a model that takes no images."""
    workdir = tmp_path_factory.mktemp("web-images")
    config = workdir / "parley.toml"
    config.write_text(
        f'[models."{TEXT_ONLY}"]\nprovider = "openai"\nname = "Plain Text"\nimages = false\n'
    )
    upstream.allow_models(TEXT_ONLY)
    with parley_serve(workdir, upstream, PARLEY_CONFIG=str(config)) as running:
        yield running


def _attach(page: Page, image: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach image").click()
    chooser.value.set_files(str(image))


def test_an_image_is_previewed_sent_and_shown(
    page: Page, served: Served, upstream: FakeLLMServer, tmp_path: Path
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    sign_in(page, new_person(served))
    _attach(page, image)
    preview = page.get_by_role("img", name="Attached image")
    expect(preview).to_be_visible()
    assert (preview.get_attribute("src") or "").startswith("blob:")

    page.get_by_label("Message").fill("What is in this picture?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message.ai")).to_contain_text("fake reply to: What is in this picture?")
    expect(preview).to_have_count(0)
    sent = page.locator(".message.user").get_by_role("img", name="Image sent with the message")
    expect(sent).to_be_visible()
    data_uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    expect(sent).to_have_attribute("src", data_uri)
    parts = upstream.last_request.json["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": data_uri}} in [
        {key: part[key] for key in ("type", "image_url")} for part in parts if "image_url" in part
    ]

    page.reload()
    page.get_by_role("list", name="Your conversations").get_by_role("button").first.click()
    expect(page.get_by_role("img", name="Image sent with the message")).to_have_attribute(
        "src", data_uri
    )
    assert page_problems(page) == []


def test_a_model_without_images_offers_no_attachment(
    page: Page, served: Served, tmp_path: Path
) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    sign_in(page, new_person(served))
    attach = page.get_by_role("button", name="Attach image")
    expect(attach).to_be_visible()
    _attach(page, image)
    expect(page.get_by_role("img", name="Attached image")).to_be_visible()

    page.get_by_label("Model", exact=True).select_option(label="Plain Text")
    expect(attach).to_be_hidden()
    expect(page.get_by_role("img", name="Attached image")).to_have_count(0)
    expect(page.get_by_role("alert")).to_have_text("This model does not take images.")

    page.get_by_label("Model", exact=True).select_option(label="GPT-6.1 Sol")
    expect(attach).to_be_visible()
    assert page_problems(page) == []
