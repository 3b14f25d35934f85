"""`newsletter handbook`: the Dutch handbook comes with the program and opens as a web page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli

REPO = Path(__file__).resolve().parent.parent


def test_handbook_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["handbook", "--no-open"])
    assert result.exit_code == 0, result.output
    page = Path(result.output.split("The handbook: ", 1)[1].strip())
    assert page.is_relative_to(tmp_path / "cache")
    html = page.read_text(encoding="utf-8")
    assert "<title>Handleiding nieuwsbrief voor het secretariaat</title>" in html
    assert "<table>" in html and '<h2 id="0-eenmalig-installeren-en-de-projectmap-maken">' in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert images and all(src.startswith("file:///") for src in images)
    assert all(Path(src.removeprefix("file://")).is_file() for src in images)  # the screenshots are found


def test_handbook_path() -> None:
    result = CliRunner().invoke(cli, ["handbook", "--path"])
    assert result.exit_code == 0
    # From a source checkout the docs/ folder itself; an installed program has its own copy (test_install.py).
    assert Path(result.output.strip()) == REPO / "docs" / "handleiding.md"


@pytest.fixture(scope="module")
def browser():
    """The preview tests' Chromium (same executable and flags)."""
    import test_preview_browser

    yield from test_preview_browser.browser.__wrapped__()


@pytest.mark.browser
def test_the_handbook_page_shows_its_screenshots_in_a_browser(browser, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["handbook", "--no-open"])
    page_file = Path(result.output.split("The handbook: ", 1)[1].strip())
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    try:
        page = context.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert len(widths) >= 6 and all(w > 0 for w in widths), widths  # every screenshot loaded
        assert page.evaluate("document.querySelectorAll('table').length") >= 5
        assert "Waar de projectmap hoort" in page.inner_text("body")
    finally:
        context.close()
