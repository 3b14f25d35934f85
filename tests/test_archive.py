"""`newsletter archive` (the static site) and the email's 'view in your browser' link (ARCHIVE_BASE_URL)."""

from __future__ import annotations

import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.compose.build import build
from newsletter_cli.project import Project

from helpers import assert_no_traceback
from test_preview_support import edit, png

BASE = "https://nieuwsbrief.vzhg.example/archief"


OCTOBER = """\
subject: "Oktobernummer"
preheader: "De zaal stond vol"
date: 2025-10-23
sections:
  - title: "Foto"
    items:
      - title: "De zaal"
        body: "Een terugblik."
        image: {src: images/zaal.png, alt: "De zaal"}
"""


@pytest.fixture
def two_editions(project: Path) -> Path:
    """2025-09 as shipped, plus a finished 2025-10 with a photo."""
    october = project / "editions" / "2025-10"
    (october / "images").mkdir(parents=True)
    (october / "images" / "zaal.png").write_bytes(png(40, 20))
    (october / "images" / "ongebruikt.png").write_bytes(png(10, 10))  # not in the edition: not published
    (october / "edition.yaml").write_text(OCTOBER, encoding="utf-8")
    return project


def test_archive_writes_an_index_newest_first_and_each_edition_with_its_images(two_editions: Path):
    result = CliRunner().invoke(cli, ["archive", "--out", "site"])
    assert result.exit_code == 0, result.output
    assert "2 edition pages: 2025-10, 2025-09" in result.output and "ARCHIVE_BASE_URL" in result.output
    site = two_editions / "site"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert index.index('href="2025-10/index.html"') < index.index('href="2025-09/index.html"')
    assert "Oktobernummer" in index and "Nieuwsbrief VZHG - september 2025" in index and "september 2025" in index
    assert '<html lang="nl">' in index and "Archief nieuwsbrief" in index
    assert not re.search(r"<(link|script)\b", index)  # self-contained
    october = (site / "2025-10" / "index.html").read_text(encoding="utf-8")
    assert 'src="images/zaal.png"' in october and "[[" not in october
    assert (site / "2025-10" / "images" / "zaal.png").read_bytes().startswith(b"\x89PNG")
    assert not (site / "2025-10" / "images" / "ongebruikt.png").exists()
    september = (site / "2025-09" / "index.html").read_text(encoding="utf-8")
    for href in re.findall(r'href="([^":]+)"', index):  # opened from disk, a folder shows a file listing
        assert (site / href).is_file(), href
    assert september == build(two_editions / "editions" / "2025-09" / "edition.yaml", project=Project.here()).rendered.web_html


@pytest.mark.browser
def test_archive_in_a_browser_links_index_to_pages(two_editions: Path):
    from test_preview_browser import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).is_file():
        pytest.fail("Chromium is missing: run `make chromium`")
    assert CliRunner().invoke(cli, ["archive"]).exit_code == 0
    from playwright.sync_api import sync_playwright

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(two_editions / "site"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as host, sync_playwright() as playwright:
        threading.Thread(target=host.serve_forever, args=(0.1,), daemon=True).start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{host.server_address[1]}/")  # as a plain web host would serve the folder
        page.get_by_role("link", name="Oktobernummer").click()
        page.wait_for_load_state("load")
        assert page.title() == "Oktobernummer"
        assert page.locator("img[alt='De zaal']").evaluate("i => i.complete && i.naturalWidth") == 40
        browser.close()
        host.shutdown()


def test_editions_dated_after_today_are_left_out_unless_asked(two_editions: Path):
    edit(two_editions / "editions" / "2025-10" / "edition.yaml", "date: 2025-10-23", "date: 2999-10-25")
    result = CliRunner().invoke(cli, ["archive"])
    assert result.exit_code == 0, result.output
    assert "1 edition page: 2025-09" in result.output and "left out 2025-10: dated 2999-10-25" in result.output
    assert not (two_editions / "site" / "2025-10").exists()
    result = CliRunner().invoke(cli, ["archive", "--all"])
    assert result.exit_code == 0 and (two_editions / "site" / "2025-10" / "index.html").is_file()


def test_an_edition_with_placeholder_text_is_left_out_unless_asked(two_editions: Path):
    edit(two_editions / "editions" / "2025-10" / "edition.yaml", 'title: "De zaal"', 'title: "Titel van het bericht"')
    result = CliRunner().invoke(cli, ["archive"])
    assert result.exit_code == 0, result.output
    assert "left out 2025-10: it still has placeholder text (editions/2025-10/edition.yaml:" in result.output
    assert not (two_editions / "site" / "2025-10").exists() and (two_editions / "site" / "2025-09").is_dir()


def test_a_broken_edition_writes_nothing(two_editions: Path):
    edit(two_editions / "editions" / "2025-10" / "edition.yaml", "date: 2025-10-23", "datum: 2025-10-23")
    result = CliRunner().invoke(cli, ["archive", "--out", "public"])
    assert result.exit_code == 2
    assert "The archive was not written" in result.output and "editions/2025-10/edition.yaml:" in result.output
    assert_no_traceback(result)
    assert not (two_editions / "public").exists()


def test_no_editions_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["archive"])
    assert result.exit_code == 2 and "newsletter new" in result.output


def test_view_in_browser_link_points_at_the_archive_page(project: Path, monkeypatch: pytest.MonkeyPatch):
    edition = project / "editions" / "2025-09" / "edition.yaml"
    assert "Bekijk deze nieuwsbrief in uw browser" not in build(edition, project=Project(project)).rendered.html  # not configured: no link
    monkeypatch.setenv("ARCHIVE_BASE_URL", BASE + "/")
    rendered = build(edition, project=Project(project)).rendered
    link = re.search(r'<a href="([^"]+)"[^>]*>Bekijk deze nieuwsbrief in uw browser</a>', rendered.html)
    assert link and link.group(1) == f"{BASE}/2025-09/"
    assert f"{BASE}/2025-09/" in rendered.text
    assert "Bekijk deze nieuwsbrief" not in rendered.web_html  # the web page does not link to itself
    result = CliRunner().invoke(cli, ["archive"])
    assert f"so that {BASE}/2025-09/ shows the newest edition" in result.output
    assert (project / "site" / "2025-09" / "index.html").is_file()  # what that link opens once published


def test_view_in_browser_link_follows_the_locale(project: Path, monkeypatch: pytest.MonkeyPatch):
    edition = project / "editions" / "2025-09" / "edition.yaml"
    edit(edition, "locale: nl", "locale: en")
    monkeypatch.setenv("ARCHIVE_BASE_URL", BASE)
    assert ">View this newsletter in your browser</a>" in build(edition, project=Project(project)).rendered.html
    result = CliRunner().invoke(cli, ["archive"])
    assert '<html lang="en">' in (project / "site" / "index.html").read_text(encoding="utf-8")
    assert result.exit_code == 0


def test_archive_base_url_may_be_set_in_the_env_file(project: Path):
    (project / ".env").write_text(f"ARCHIVE_BASE_URL={BASE}\n", encoding="utf-8")
    rendered = build(project / "editions" / "2025-09" / "edition.yaml", project=Project(project)).rendered
    assert f'href="{BASE}/2025-09/"' in rendered.html


def test_env_example_explains_archive_base_url_next_to_every_other_setting():
    from dotenv import dotenv_values

    from newsletter_cli.envfile import NAMES

    example = Path(__file__).resolve().parent.parent / ".env.example"
    lines = example.read_text(encoding="utf-8").splitlines()
    shown = {line.removeprefix("# ").split("=", 1)[0] for line in lines if "=" in line}  # set, or as an example
    assert {*NAMES, "ARCHIVE_BASE_URL"} <= shown
    at = next(n for n, line in enumerate(lines) if line.removeprefix("# ").startswith("ARCHIVE_BASE_URL="))
    assert lines[at - 1].startswith("#") and "newsletter archive" in " ".join(lines[at - 3:at])
    # not set: copying the example must not make every email link to a page that is not online
    assert "ARCHIVE_BASE_URL" not in dotenv_values(example, interpolate=False)


def test_the_index_shows_merge_fields_in_subjects_at_their_defaults(two_editions: Path):
    """As the pages do: "Nieuwsbrief voor [[naam|leden]]" is listed as "Nieuwsbrief voor leden"."""
    october = two_editions / "editions" / "2025-10" / "edition.yaml"
    october.write_text(OCTOBER.replace('subject: "Oktobernummer"', 'subject: "Nieuws voor [[naam|leden]] & co"')
                       .replace('preheader: "De zaal stond vol"', 'preheader: "Dag [[voornaam]], de zaal"'),
                       encoding="utf-8")
    result = CliRunner().invoke(cli, ["archive", "--out", "site"])
    assert result.exit_code == 0, result.output
    index = (two_editions / "site" / "index.html").read_text(encoding="utf-8")
    assert "Nieuws voor leden &amp; co" in index
    assert "[[" not in index and "]]" not in index
    assert "Dag , de zaal" in index  # the preheader too (a field without a default is left empty)
