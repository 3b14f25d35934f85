"""The email in a real browser (headless Chromium): standards mode, dark mode, and what a client without <style>
shows at phone width; the preview page's dark and no-<style> toggles (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import test_preview_browser

from newsletter_cli.compose.build import build
from newsletter_cli.project import Project
from newsletter_cli.web.preview import PreviewServer

pytestmark = pytest.mark.browser
PHONE = 375
CARD = "document.querySelector('.nl-card')"


@pytest.fixture(scope="module")
def browser():
    """The preview tests' Chromium (same executable and flags), one per module."""
    yield from test_preview_browser.browser.__wrapped__()


@pytest.fixture
def email_file(project: Path) -> Path:
    build(project / "editions" / "2025-09" / "edition.yaml", project=Project(project))
    return project / "editions" / "2025-09" / "build" / "email.html"


def open_email(browser, email_file: Path, *, width: int = 680, scheme: str = "light"):
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.goto(email_file.as_uri(), wait_until="load")
    return context, page


def background(page, selector: str) -> str:
    return page.evaluate(f"getComputedStyle({selector}).backgroundColor")


def test_the_email_renders_in_standards_mode(browser, email_file: Path) -> None:
    context, page = open_email(browser, email_file)
    assert page.evaluate("document.compatMode") == "CSS1Compat"  # not "BackCompat" (quirks mode)
    context.close()


def test_dark_mode_recolours_the_email_and_keeps_the_masthead(browser, email_file: Path) -> None:
    context, light = open_email(browser, email_file)
    assert background(light, CARD) == "rgb(255, 255, 255)"
    masthead = background(light, "document.querySelector('.nl-masthead')")
    context.close()
    context, dark = open_email(browser, email_file, scheme="dark")
    assert background(dark, CARD) == "rgb(29, 35, 39)"
    assert background(dark, "document.body") == "rgb(18, 22, 25)"
    assert background(dark, "document.querySelector('.nl-masthead')") == masthead  # the logo's own background
    text = dark.evaluate("getComputedStyle(document.querySelector('.nl-card p')).color")
    assert text == "rgb(227, 232, 236)"
    button = dark.locator(".nl-button a").first
    assert button.evaluate("a => getComputedStyle(a).color") == "rgb(255, 255, 255)"
    lines = dark.evaluate("""[...document.querySelectorAll('.nl-divider p')].map(p => getComputedStyle(p).borderTopColor)
        .concat([...document.querySelectorAll('.nl-agenda-row')].map(r => getComputedStyle(r).borderBottomColor))""")
    assert len(lines) == 12 + 6 and set(lines) == {"rgb(58, 68, 76)"}  # dividers and agenda lines: dark grey
    context.close()


AGENDA_CELLS = "document.querySelectorAll('.nl-agenda [role=rowheader], .nl-agenda [role=cell]')"


@pytest.mark.parametrize(("width", "stacked"), [(PHONE, True), (680, False)])
def test_without_style_the_agenda_stacks_on_a_phone_and_keeps_two_columns_wide(browser, email_file: Path,
                                                                              width: int, stacked: bool) -> None:
    """Gmail with a non-Google account drops <style>: on a phone each event's dates stand under it, on a wide
    screen beside it, as with the style sheet."""
    context, page = open_email(browser, email_file, width=width)
    page.evaluate("document.querySelectorAll('style').forEach(s => s.remove())")
    rows = page.evaluate("""Array.from(document.querySelectorAll('.nl-agenda [role=row]')).map(row => {
        const what = row.querySelector('[role=rowheader]').getBoundingClientRect();
        const when = row.querySelector('[role=cell]').getBoundingClientRect();
        return {below: when.top >= what.bottom - 1, beside: Math.abs(when.top - what.top) < 1 && when.left >= what.right - 1};
    })""")
    assert len(rows) == 6
    assert all(row["below"] if stacked else row["beside"] for row in rows), rows
    context.close()


def test_without_style_the_agenda_fits_a_phone(browser, email_file: Path) -> None:
    """Gmail's mobile web mail ignores @media; the agenda must still fit 375 px without breaking words."""
    context, page = open_email(browser, email_file, width=PHONE)
    page.evaluate("document.querySelectorAll('style').forEach(s => s.remove())")
    cells = page.evaluate(f"Array.from({AGENDA_CELLS})" + """.map(c => {
        const range = document.createRange(); range.selectNodeContents(c);
        const words = c.textContent.trim().split(/\\s+/);
        return {overflow: c.scrollWidth > c.clientWidth + 1, right: c.getBoundingClientRect().right,
                lines: range.getClientRects().length, words: words.length};
    })""")
    assert len(cells) == 12
    assert all(not cell["overflow"] and cell["right"] <= PHONE for cell in cells), cells
    assert all(cell["lines"] <= cell["words"] for cell in cells), cells  # never more lines than words
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
    context.close()


@pytest.fixture
def preview(browser, project: Path) -> Iterator:
    edition = project / "editions" / "2025-09" / "edition.yaml"
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(server.url, wait_until="load")
        yield page
        context.close()


def frame_eval(page, name: str, script: str) -> object:
    return page.frame_locator(f"#{name}").locator("html").evaluate(script)


def test_the_preview_dark_toggle_shows_the_dark_email(preview) -> None:
    card = "() => getComputedStyle(document.querySelector('.nl-card')).backgroundColor"
    for name in ("desktop", "phone"):
        assert frame_eval(preview, name, card) == "rgb(255, 255, 255)"
    preview.check("#toggle-dark")
    for name in ("desktop", "phone"):
        assert frame_eval(preview, name, card) == "rgb(29, 35, 39)"
    preview.reload(wait_until="load")  # the choice survives the live reload
    assert preview.is_checked("#toggle-dark")
    preview.wait_for_function("document.body.dataset.dark === 'on'")
    assert frame_eval(preview, "desktop", card) == "rgb(29, 35, 39)"
    preview.uncheck("#toggle-dark")
    assert frame_eval(preview, "desktop", card) == "rgb(255, 255, 255)"


def test_the_preview_no_style_toggle_drops_every_style_sheet(preview) -> None:
    count = "() => document.querySelectorAll('style').length"
    heading = "() => getComputedStyle(document.querySelector('h2')).color"
    before = frame_eval(preview, "desktop", count)
    colour = frame_eval(preview, "desktop", heading)
    assert before and before > 3
    preview.check("#toggle-nostyle")
    assert frame_eval(preview, "desktop", count) == 0
    assert frame_eval(preview, "desktop", heading) == colour  # headings keep their inlined colour
    width = frame_eval(preview, "phone", "() => document.documentElement.scrollWidth")
    assert width <= PHONE  # the phone layout still fits without the @media rules
    preview.uncheck("#toggle-nostyle")
    assert frame_eval(preview, "desktop", count) == before


def test_a_dark_logo_replaces_the_logo_in_dark_mode(browser, project: Path) -> None:
    from test_preview_support import png

    (project / "assets").mkdir()
    (project / "assets" / "logo.png").write_bytes(png(160, 40, (0, 0, 0)))
    (project / "assets" / "logo-dark.png").write_bytes(png(160, 40, (255, 255, 255)))
    theme = (project / "theme.yaml").read_text(encoding="utf-8")
    (project / "theme.yaml").write_text(theme + "logo: assets/logo.png\nlogo_dark: assets/logo-dark.png\n",
                                        encoding="utf-8")
    built = build(project / "editions" / "2025-09" / "edition.yaml", project / "out", project=Project(project))
    assert set(built.rendered.image_files) == {"assets/logo.png", "assets/logo-dark.png"}  # both travel along
    shown = "() => Array.from(document.images).filter(i => i.offsetHeight > 0).map(i => i.getAttribute('src'))"
    for scheme, expected in (("light", ["assets/logo.png"]), ("dark", ["assets/logo-dark.png"])):
        context = browser.new_context(viewport={"width": 680, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        page.goto((project / "out" / "email.html").as_uri(), wait_until="load")
        assert page.evaluate(shown) == expected, scheme
        page.evaluate("document.querySelectorAll('style').forEach(s => s.remove())")  # no <style>: the plain logo
        assert page.evaluate(shown) == ["assets/logo.png"], scheme
        context.close()


def test_the_preview_inverted_toggle_inverts_colours_but_not_images(preview) -> None:
    """The Gmail app on iPhone: every colour inverted, the images as they are, the dark rules ignored; one
    dark view at a time."""
    html_filter = "() => getComputedStyle(document.documentElement).filter"
    card = "() => getComputedStyle(document.querySelector('.nl-card')).backgroundColor"
    preview.check("#toggle-dark")
    preview.check("#toggle-invert")
    assert not preview.is_checked("#toggle-dark")
    for name in ("desktop", "phone"):
        assert frame_eval(preview, name, html_filter) == "invert(1) hue-rotate(180deg)"
        assert frame_eval(preview, name, card) == "rgb(255, 255, 255)"  # white, inverted by the filter alone
    preview.reload(wait_until="load")  # the choice survives the live reload
    preview.wait_for_function("document.body.dataset.invert === 'on'")
    assert frame_eval(preview, "desktop", html_filter) == "invert(1) hue-rotate(180deg)"
    preview.check("#toggle-dark")
    assert not preview.is_checked("#toggle-invert")
    assert frame_eval(preview, "desktop", html_filter) == "none"
    assert frame_eval(preview, "desktop", card) == "rgb(29, 35, 39)"


def test_without_style_the_desktop_email_looks_the_same(browser, email_file: Path) -> None:
    """Spacing lives on the elements (paragraphs, lists, headings, the agenda), not in <style>: a client that
    drops the style sheet shows the desktop email pixel for pixel as one that keeps it."""
    shots = []
    for drop in (False, True):
        context, page = open_email(browser, email_file)
        if drop:
            page.evaluate("document.querySelectorAll('style').forEach(s => s.remove())")
        shots.append(page.screenshot(full_page=True))
        context.close()
    assert shots[0] == shots[1]
