"""Assistant replies rendered from Markdown, in Chromium under the app's real CSP: each
construct a model writes becomes the right elements, a Copy button copies code, and no
text — hostile or random — can make a script, an image, an unsafe link or an attribute
outside a short allow-list."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.integration.web.browser import Served, page_problems, watch_for_problems

# Renders into a fresh `.message .text` box, as chat.js will, and returns nothing: the
# tests look at the result through locators.
_RENDER = """async (text) => {
  const { renderMarkdown } = await import("/static/markdown.js");
  document.getElementById("rendered")?.remove();
  const message = document.createElement("article");
  message.className = "message ai";
  message.id = "rendered";
  const box = document.createElement("div");
  box.className = "text";
  box.append(renderMarkdown(text));
  message.append(box);
  document.body.append(message);
}"""


@pytest.fixture
def app(page: Page) -> Page:
    page.goto("/")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    return page


def render(page: Page, text: str) -> Locator:
    page.evaluate(_RENDER, text)
    return page.locator("#rendered .text")


def test_paragraphs_keep_single_newlines_as_line_breaks(app: Page) -> None:
    shown = render(app, "first line\nsecond line\n\nanother paragraph")
    expect(shown.locator("p")).to_have_count(2)
    expect(shown.locator("p").first.locator("br")).to_have_count(1)
    expect(shown.locator("p")).to_have_text(["first linesecond line", "another paragraph"])
    assert shown.locator("p").first.inner_text() == "first line\nsecond line"
    assert page_problems(app) == []


def test_headings_from_one_to_six_hashes(app: Page) -> None:
    text = "\n".join(f"{'#' * level} Level {level}" for level in range(1, 7))
    shown = render(app, text + "\n## Closed ##\n#hashtag is not a heading\n\nTitle\n===")
    for level in range(1, 7):
        expect(shown.get_by_role("heading", level=level, name=f"Level {level}")).to_be_visible()
    expect(shown.get_by_role("heading", level=2, name="Closed", exact=True)).to_be_visible()
    expect(shown.locator("p")).to_have_text("#hashtag is not a heading")
    expect(shown.get_by_role("heading", level=1, name="Title")).to_be_visible()
    assert page_problems(app) == []


def test_lists_nest_by_indentation(app: Page) -> None:
    shown = render(
        app,
        "- fruit\n  - apple\n  - pear\n    1. ripe\n    2. green\n* star\n\n"
        "+ plus\n\n3. three\n4. four\n\n1) paren",
    )
    outer = shown.locator(":scope > ul").first
    expect(outer.locator(":scope > li")).to_have_count(1)
    expect(outer.locator(":scope > li > ul > li")).to_have_text(["apple", "pearripegreen"])
    expect(outer.locator(":scope > li > ul > li > ol > li")).to_have_text(["ripe", "green"])
    expect(shown.locator(":scope > ul")).to_have_count(3)  # -, * and + are three lists
    expect(shown.locator(":scope > ul").nth(1)).to_have_text("star")
    numbered = shown.locator(":scope > ol").first
    expect(numbered).to_have_attribute("start", "3")
    expect(numbered.locator("li")).to_have_text(["three", "four"])
    expect(shown.locator(":scope > ol").nth(1)).not_to_have_attribute("start", re.compile("."))
    expect(shown.locator("li p")).to_have_count(0)  # tight lists: no paragraphs in items
    assert page_problems(app) == []


def test_loose_list_items_hold_paragraphs(app: Page) -> None:
    shown = render(app, "- one\n\n- two\n\n  more about two")
    expect(shown.locator("li")).to_have_count(2)
    expect(shown.locator("li").nth(1).locator("p")).to_have_text(["two", "more about two"])
    assert page_problems(app) == []


def test_fenced_code_keeps_its_text_and_names_its_language(app: Page) -> None:
    shown = render(
        app,
        "```python\ndef f():\n\treturn '<b>**not bold**</b>'\n```\n\n~~~\nplain ~~~ text\n~~~\n\n"
        "```js\nstreaming(",
    )
    blocks = shown.locator(".code-block")
    expect(blocks).to_have_count(3)
    python = blocks.nth(0)
    expect(python.locator(".code-language")).to_have_text("python")
    expect(python.locator("pre code")).to_have_class("language-python")
    assert python.locator("code").text_content() == "def f():\n\treturn '<b>**not bold**</b>'"
    expect(python.locator("b, strong")).to_have_count(0)
    expect(blocks.nth(1).locator(".code-language")).to_have_count(0)
    assert blocks.nth(1).locator("code").text_content() == "plain ~~~ text"
    # An unclosed fence, as a reply mid-stream has, runs to the end.
    expect(blocks.nth(2).locator("code")).to_have_class("language-js")
    assert blocks.nth(2).locator("code").text_content() == "streaming("
    assert page_problems(app) == []


def test_copy_puts_the_code_on_the_clipboard(
    app: Page, context: BrowserContext, served: Served
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.base_url)
    code = "for i in range(3):\n    print(i)"
    shown = render(app, f"Try:\n\n```python\n{code}\n```")
    copy = shown.get_by_role("button")  # the block's one button, whatever it says now
    expect(copy).to_have_accessible_name("Copy")
    copy.click()
    expect(copy).to_have_accessible_name("Copied")
    assert app.evaluate("navigator.clipboard.readText()") == code
    expect(copy).to_have_text("Copy")  # back, after a moment
    copy.focus()
    app.keyboard.press("Enter")  # reachable and usable from the keyboard
    expect(copy).to_have_text("Copied")
    assert page_problems(app) == []


def test_without_a_clipboard_copy_selects_the_code_instead(app: Page) -> None:
    app.evaluate("() => { Object.defineProperty(navigator, 'clipboard', { value: undefined }); }")
    shown = render(app, "```sh\nmake deploy\n```")
    copy = shown.get_by_role("button")
    copy.click()
    expect(copy).to_have_accessible_name("Could not copy")
    assert app.evaluate("getSelection().toString()") == "make deploy"
    assert page_problems(app) == []


@pytest.fixture
def chinese_page(browser: Browser, served: Served) -> Iterator[Page]:
    opened = browser.new_context(base_url=served.base_url, locale="zh-CN")
    page = opened.new_page()
    watch_for_problems(page)
    yield page
    opened.close()


def test_copy_button_speaks_chinese_on_a_chinese_page(chinese_page: Page) -> None:
    chinese_page.goto("/")
    shown = render(chinese_page, "```\nx\n```")
    expect(shown.get_by_role("button", name="复制")).to_be_visible()
    assert page_problems(chinese_page) == []


def test_inline_code_emphasis_strike_and_escapes(app: Page) -> None:
    shown = render(
        app,
        "Use `a <b> c` with **bold**, *star* and _under_ and ~~gone~~; "
        "**outer *inner* outer** and ***both***; snake_case_name, 2 * 3 * 4, "
        r"\*not em\* and \`not code\`",
    )
    expect(shown.locator("code")).to_have_text("a <b> c")
    expect(shown.locator("strong")).to_have_text(["bold", "outer inner outer", "both"])
    expect(shown.locator("em")).to_have_text(["star", "under", "inner", "both"])
    expect(shown.locator("strong em")).to_have_text(["inner", "both"])
    expect(shown.locator("del")).to_have_text("gone")
    expect(shown).to_contain_text("snake_case_name, 2 * 3 * 4, *not em* and `not code`")
    assert page_problems(app) == []


def test_links_and_bare_urls_open_safely_in_a_new_tab(app: Page) -> None:
    shown = render(
        app,
        'See [the *docs*](https://example.com/docs "Docs"), https://example.org/a_(b). '
        "Mail [us](mailto:team@example.com) or <https://example.net/x>. "
        "[relative](/admin) and [dotted](./x) stay text.",
    )
    links = shown.get_by_role("link")
    expect(links).to_have_count(4)
    docs = shown.get_by_role("link", name="the docs")
    expect(docs).to_have_attribute("href", "https://example.com/docs")
    expect(docs.locator("em")).to_have_text("docs")
    expect(shown.get_by_role("link", name="https://example.org/a_(b)")).to_have_attribute(
        "href", "https://example.org/a_(b)"
    )
    expect(shown.get_by_role("link", name="us")).to_have_attribute(
        "href", "mailto:team@example.com"
    )
    expect(shown.get_by_role("link", name="https://example.net/x")).to_be_visible()
    for index in range(4):
        expect(links.nth(index)).to_have_attribute("rel", "noopener noreferrer nofollow")
        expect(links.nth(index)).to_have_attribute("target", "_blank")
    expect(shown).to_contain_text("[relative](/admin) and [dotted](./x) stay text.")
    assert page_problems(app) == []


def test_images_become_links_and_are_never_loaded(app: Page) -> None:
    shown = render(app, "![a cat](https://images.example.com/cat.png) ![x](/local.png)")
    expect(shown.locator("img")).to_have_count(0)
    expect(shown.get_by_role("link", name="a cat")).to_have_attribute(
        "href", "https://images.example.com/cat.png"
    )
    expect(shown).to_contain_text("![x](/local.png)")
    assert page_problems(app) == []


def test_blockquotes_and_rules(app: Page) -> None:
    shown = render(app, "> quoted **words**\n> > deeper\n\n---\n\n* * *\nafter")
    quote = shown.locator(":scope > blockquote")
    expect(quote.locator(":scope > p strong")).to_have_text("words")
    expect(quote.locator("blockquote")).to_have_text("deeper")
    expect(shown.locator("hr")).to_have_count(2)
    expect(shown.locator(":scope > p")).to_have_text("after")
    assert page_problems(app) == []


def test_tables_with_alignment_scroll_in_their_own_box(app: Page) -> None:
    shown = render(
        app,
        "Compare:\n| Name | Count | Note |\n|:-----|------:|:----:|\n"
        "| `a\\|b` | 2 | **yes** |\n| c | 10 |\n\nafter",
    )
    table = shown.locator(".table-scroll > table")
    expect(table.get_by_role("columnheader")).to_have_text(["Name", "Count", "Note"])
    expect(table.locator("tbody tr")).to_have_count(2)
    first_row = table.locator("tbody tr").first.get_by_role("cell")
    expect(first_row).to_have_text(["a|b", "2", "yes"])
    expect(first_row.nth(0).locator("code")).to_have_text("a|b")
    expect(first_row.nth(1)).to_have_class("align-right")
    expect(first_row.nth(2)).to_have_class("align-center")
    expect(table.get_by_role("columnheader", name="Name")).to_have_class("align-left")
    expect(table.locator("tbody tr").nth(1).get_by_role("cell")).to_have_text(["c", "10", ""])
    expect(shown.locator(":scope > p")).to_have_text(["Compare:", "after"])
    assert page_problems(app) == []


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    " [x](  javascript:alert(1))",
    "![a](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<iframe src=javascript:alert(1)></iframe>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    "[x](java\tscript:alert(1)) [y](jav&#x61;script:alert(1)) [z](//evil.example)",
    "<javascript:alert(1)> <svg onload=alert(1)>",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "| <img src=x onerror=alert(1)> |\n|---|\n| [x](javascript:alert(1)) |",
]


def test_hostile_markup_and_links_stay_inert_text(app: Page) -> None:
    app.evaluate("() => { window.alert = () => { window.__pwned = true; }; }")
    for payload in XSS:
        shown = render(app, payload)
        expect(shown.locator("script, img, iframe, svg, object, embed")).to_have_count(0)
        hrefs = shown.locator("[href]").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        assert all(re.match(r"(https?:|mailto:)", href) for href in hrefs), (payload, hrefs)
        assert shown.locator("[onerror], [onload], [src]").count() == 0
        if not payload.startswith("```") and "|" not in payload:
            expect(shown).to_contain_text(payload.strip().replace("\t", " ").split("\n")[0][:12])
    expect(render(app, XSS[0])).to_have_text("<script>alert(1)</script>")
    expect(render(app, XSS[7])).to_have_text("&lt;script&gt;alert(1)&lt;/script&gt;")
    expect(render(app, XSS[2])).to_have_text("[click](javascript:alert(1))")
    # Let anything a payload might have scheduled run before looking at the flag.
    app.evaluate("new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))")
    assert app.evaluate("window.__pwned") is None
    assert page_problems(app) == []


ALLOWED_TAGS = {
    "p", "br", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr",
    "div", "span", "pre", "code", "button", "strong", "em", "del", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"href", "class", "rel", "target", "type", "start"}
ALLOWED_CLASSES = re.compile(
    r"^(code-block|code-header|code-language|copy-code|table-scroll|image-link"
    r"|align-(left|right|center)|language-[\w.+#-]+)$"
)
PIECES = [
    "*", "**", "_", "__", "~~", "~", "`", "```", "~~~", "#", "## ", "- ", "* ", "+ ", "1. ",
    "2) ", "> ", "|", "| a | b |\n|---|:-:|\n", "---", "[", "]", "(", ")", "![", "](", "\\",
    "<", ">", "&lt;", "&#x61;", "\"", "'", "http://a.example/", "https://b.example/x_(y)",
    "javascript:", "JaVaScRiPt:alert(1)", "data:", "mailto:x@y.z", "<script>", "onerror=",
    "<img src=x>", "\n", "\n\n", " ", "  ", "    ", "\t", "a", "word", "中文", ":", ".", "=",
]  # fmt: skip


def _random_markdown(seed: int, count: int) -> list[str]:
    chooser = random.Random(seed)
    return ["".join(chooser.choices(PIECES, k=chooser.randint(1, 60))) for _ in range(count)]


def test_random_markdown_never_makes_anything_outside_the_allow_list(app: Page) -> None:
    texts = _random_markdown(seed=20240611, count=400)
    found = app.evaluate(
        """async (texts) => {
          const { renderMarkdown } = await import("/static/markdown.js");
          const seen = { tags: {}, attributes: {}, classes: {}, hrefs: [] };
          for (const text of texts) {
            const box = document.createElement("div");
            box.append(renderMarkdown(text));
            for (const element of box.querySelectorAll("*")) {
              const tag = element.tagName.toLowerCase();
              seen.tags[tag] = (seen.tags[tag] ?? 0) + 1;
              for (const attribute of element.attributes) seen.attributes[attribute.name] = true;
              for (const name of element.classList) seen.classes[name] = true;
              if (element.hasAttribute("href")) seen.hrefs.push(element.getAttribute("href"));
            }
          }
          return seen;
        }""",
        texts,
    )
    assert set(found["tags"]) <= ALLOWED_TAGS, set(found["tags"]) - ALLOWED_TAGS
    assert set(found["attributes"]) <= ALLOWED_ATTRIBUTES
    assert [name for name in found["classes"] if not ALLOWED_CLASSES.match(name)] == []
    assert [href for href in found["hrefs"] if not re.match(r"(https?|mailto):", href)] == []
    # The random texts reach the constructs, so the allow-list is really being exercised.
    assert {"a", "strong", "em", "code", "pre", "li", "blockquote", "table"} <= set(found["tags"])
    assert page_problems(app) == []


def test_stylesheet_lays_out_rendered_parts_under_the_csp(app: Page) -> None:
    app.evaluate(
        """() => new Promise((loaded, failed) => {
          const sheet = document.createElement("link");
          sheet.rel = "stylesheet";
          sheet.href = "/static/markdown.css";
          sheet.onload = loaded;
          sheet.onerror = failed;
          document.head.append(sheet);
        })"""
    )
    shown = render(app, "para\n\n```\n" + "x" * 400 + "\n```\n\n| a |\n|---|\n| b |")
    style = shown.evaluate(
        """box => ({
          paragraph: getComputedStyle(box.querySelector("p")).whiteSpace,
          pre: getComputedStyle(box.querySelector("pre")).whiteSpace,
          overflow: getComputedStyle(box.querySelector("pre")).overflowX,
          font: getComputedStyle(box.querySelector("pre")).fontFamily,
          cell: getComputedStyle(box.querySelector("td")).borderTopStyle,
          scrolls: box.querySelector("pre").scrollWidth > box.querySelector("pre").clientWidth,
        })"""
    )
    assert style["paragraph"] == "normal"
    assert style["pre"] == "pre"
    assert style["overflow"] == "auto"
    assert "monospace" in style["font"]
    assert style["cell"] == "solid"
    assert style["scrolls"] is True  # a long line scrolls inside its block, not the page
    assert page_problems(app) == []
