"""The preview page in a real browser: Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter_cli.project import Project
from newsletter_cli.web.preview import PreviewServer

from test_preview_support import WAIT_SECONDS, add_images, edit

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = int(WAIT_SECONDS * 1000)
PHONE = 375


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail("Chromium is missing: run `make chromium` (it installs Debian's chromium for these tests)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def server(project: Path) -> Iterator[PreviewServer]:
    with PreviewServer(add_images(project), "127.0.0.1", 0, project=Project(project)) as running:
        yield running


@pytest.fixture
def page(browser, server: PreviewServer):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.goto(server.url, wait_until="load")
    yield opened
    context.close()


def frame(page, name: str):
    return page.frame_locator(f"#{name}")


def test_page_loads_with_both_widths(page):
    assert page.locator("#inbox-subject").inner_text() == "Nieuwsbrief VZHG - september 2025"
    widths = page.evaluate("['desktop', 'phone'].map(id => document.getElementById(id).clientWidth)")
    assert widths[0] >= 600 and widths[1] == PHONE
    for name in ("desktop", "phone"):
        assert frame(page, name).locator("h1").inner_text() == "Nieuwsbrief VZHG"
        assert frame(page, name).locator("h3", has_text="Breed beeld").count() == 1
    for name in ("desktop", "phone"):  # each frame is as tall as its email: no scrollbar inside the page
        inner = frame(page, name).locator("html").evaluate("e => e.scrollHeight")
        assert page.evaluate(f"document.getElementById('{name}').clientHeight") >= inner > 2000
    assert "Breed beeld" in page.locator("#text-part pre").inner_text()
    assert "KB" in page.locator("#size").inner_text()


def test_no_horizontal_scroll_at_phone_width(page, server: PreviewServer, browser):
    in_frame = frame(page, "phone").locator("html").evaluate("e => [e.scrollWidth, window.innerWidth]")
    assert in_frame[0] <= in_frame[1] == PHONE
    phone = browser.new_context(viewport={"width": PHONE, "height": 800}, is_mobile=True, device_scale_factor=2)
    try:
        alone = phone.new_page()
        alone.goto(server.url + "email.html", wait_until="load")
        assert alone.evaluate("document.documentElement.scrollWidth") <= PHONE
        image = alone.locator("img[alt='Zaal met deelnemers']").bounding_box()
        assert image and image["width"] <= PHONE
    finally:
        phone.close()


def test_every_image_has_alt_and_loads(page):
    for name in ("desktop", "phone"):
        images = frame(page, name).locator("img")
        assert images.count() == 2  # the logo and the photo
        found = images.evaluate_all("all => all.map(i => [i.getAttribute('alt'), i.complete && i.naturalWidth > 0])")
        assert all(alt is not None for alt, _ in found), found
        assert all(loaded for _, loaded in found), found
        assert {alt for alt, _ in found} == {"Zaal met deelnemers", "Vereniging Zuid-Hollandse Gemeenten"}


def _version(page) -> str:
    return page.evaluate("document.body.dataset.version")


def _wait_for_reload(page, before: str) -> None:
    page.wait_for_function(f"document.body && document.body.dataset.version !== '{before}'", timeout=WAIT_MS)
    page.wait_for_load_state("load")


def test_editing_the_yaml_reloads_the_page(page, project: Path):
    before = _version(page)
    edit(project / "editions" / "2025-09" / "edition.yaml", 'subject: "Nieuwsbrief VZHG - september 2025"',
         'subject: "Nieuwsbrief VZHG - aangepast"')
    _wait_for_reload(page, before)
    assert page.locator("#inbox-subject").inner_text() == "Nieuwsbrief VZHG - aangepast"
    assert frame(page, "desktop").locator("title").inner_text() == "Nieuwsbrief VZHG - aangepast"


def test_a_broken_edit_shows_the_error_and_a_fix_recovers(page, project: Path):
    edition = project / "editions" / "2025-09" / "edition.yaml"
    before = _version(page)
    edit(edition, "  - title: \"Met foto\"", "  - title: \"Met foto\n")  # an unclosed quote
    _wait_for_reload(page, before)
    error = page.locator("#build-error")
    assert error.is_visible()
    assert "editions/2025-09/edition.yaml:" in error.inner_text() and "YAML syntax error" in error.inner_text()
    assert frame(page, "phone").locator("h3", has_text="Breed beeld").count() == 1  # the last good render stays

    before = _version(page)
    edit(edition, "  - title: \"Met foto\n", "  - title: \"Met foto hersteld\"")
    _wait_for_reload(page, before)
    assert page.locator("#build-error").count() == 0
    assert frame(page, "phone").locator("h2", has_text="Met foto hersteld").count() == 1


SAFELINK = ("https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fvzhg.nl%2Fagenda%2F"
            "&data=05%7C02%7C&reserved=0")


def _below_the_top_bar(page) -> tuple[float, float, float]:
    """(bottom of the sticky top bar, top of the error box, height of the window), as the reader sees them."""
    return page.evaluate("""() => [document.querySelector('header.top').getBoundingClientRect().bottom,
                                   document.getElementById('build-error').getBoundingClientRect().top,
                                   window.innerHeight]""")


@pytest.mark.parametrize("width", [1280, 560])  # at 560 px the top bar wraps to several lines
def test_after_a_reload_the_error_is_in_view_and_the_pill_leads_to_it(browser, server: PreviewServer,
                                                                      project: Path, width: int):
    context = browser.new_context(viewport={"width": width, "height": 700})
    try:
        page = context.new_page()
        page.goto(server.url, wait_until="load")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # reading the plain text at the bottom
        before = _version(page)
        edit(project / "editions" / "2025-09" / "edition.yaml", "  - title: \"Met foto\"", "  - title: \"Met foto\n")
        _wait_for_reload(page, before)
        bar, top, height = _below_the_top_bar(page)
        assert bar <= top < height, (bar, top, height)  # not under the bar, not off screen
        pill = page.locator("#status")
        assert "below" not in pill.inner_text()
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        pill.click()
        page.wait_for_function("Math.abs(document.getElementById('build-error').getBoundingClientRect().top - "
                               "document.querySelector('header.top').getBoundingClientRect().bottom) < 40")
        bar, top, height = _below_the_top_bar(page)
        assert bar <= top < height, (bar, top, height)
    finally:
        context.close()


def test_each_finding_once_with_a_badge_that_fits_its_line(page, project: Path):
    before = _version(page)
    edit(project / "editions" / "2025-09" / "edition.yaml", "(https://vzhg.nl/agenda/)", f"({SAFELINK})")
    _wait_for_reload(page, before)
    items = page.locator("#warnings li")
    texts = items.all_inner_texts()
    assert sum("safelink" in text.lower() for text in texts) == 1, texts
    row = items.filter(has_text="safelink")
    badge, place = row.locator(".sev"), row.locator("code").first
    assert badge.inner_text().lower() == "error"
    style = badge.evaluate("b => { const s = getComputedStyle(b); return [s.borderTopWidth, s.marginBottom]; }")
    assert style == ["0px", "0px"]  # not the build-error box's border and margins
    b, p, li = badge.bounding_box(), place.bounding_box(), row.bounding_box()
    assert b and p and li
    assert b["x"] + b["width"] <= p["x"] + 0.5 or b["y"] + b["height"] <= p["y"] + 0.5  # side by side, no overlap
    assert b["height"] < 24 and li["y"] <= b["y"] and b["y"] + b["height"] <= li["y"] + li["height"]
