"""Fixtures of the browser tests: one ``parley serve`` and one Chromium per test module,
a fresh browser context (cookies, storage) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.fakes.llm_server import FakeLLMServer
from tests.integration.web.browser import (
    UPSTREAM_KEY,
    Served,
    chromium_or_skip,
    parley_serve,
    watch_for_problems,
)

# Streams and page loads on a loaded 2-core CI machine: generous, never a timing check.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer) -> Iterator[Served]:
    with parley_serve(tmp_path_factory.mktemp("web"), upstream) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    opened = browser.new_context(base_url=served.base_url, locale="en-US")
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page whose script errors and CSP refusals are collected (``page_problems``)."""
    opened = context.new_page()
    watch_for_problems(opened)
    return opened
