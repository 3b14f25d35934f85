"""Rendering: the example edition comes out complete in HTML and text, and survives premailer intact."""

from __future__ import annotations

import datetime as dt
import re
import socket
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from newsletter_cli.compose import render as render_mod
from newsletter_cli.compose.build import build, load_theme
from newsletter_cli.compose.load import load
from newsletter_cli.compose.model import Theme
from newsletter_cli.compose.render import render
from newsletter_cli.project import Project

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_YAML = REPO / "editions" / "2025-09" / "edition.yaml"

# Written out here (not taken from babel) so that the test checks the dates independently.
NL_WEEKDAYS = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"]
NL_MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
             "oktober", "november", "december"]


def nl_date(day: dt.date, weekday: bool = False) -> str:
    text = f"{day.day} {NL_MONTHS[day.month - 1]} {day.year}"
    return f"{NL_WEEKDAYS[day.weekday()]} {text}" if weekday else text


class Page(HTMLParser):
    """The parts of an HTML document the tests look at: elements, their attributes and text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_of: dict[str, list[str]] = {}
        self.open: list[tuple[str, list[str]]] = []
        self.all_text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("h1", "h2", "h3", "title", "script", "b", "strong", "a"):
            self.open.append((tag, []))

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            name, parts = self.open.pop()
            self.text_of.setdefault(name, []).append(" ".join("".join(parts).split()))

    def handle_data(self, data):
        self.all_text.append(data)
        for _, parts in self.open:
            parts.append(data)

    def hrefs(self) -> list[str]:
        return [attrs["href"] or "" for tag, attrs in self.tags if tag == "a" and "href" in attrs]

    @property
    def text(self) -> str:
        return " ".join("".join(self.all_text).split())


@pytest.fixture(scope="module")
def raw() -> dict:
    """The example edition as plain YAML data, read independently of the loader."""
    return yaml.safe_load(EXAMPLE_YAML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def example():
    return render(load(EXAMPLE_YAML), Theme())


def authored_urls(raw: dict) -> list[str]:
    """Every URL written in the example: Markdown links in any text and button URLs."""
    dumped = yaml.safe_dump(raw, allow_unicode=True, width=10_000)
    urls = re.findall(r"\]\(((?:https?://|mailto:)[^)\s]+)\)", dumped)
    for section in raw["sections"]:
        for item in section["items"]:
            if "button" in item:
                urls.append(item["button"]["url"])
    return urls


def test_example_has_what_the_reference_has(raw: dict) -> None:
    """Sanity of the fixture data: 16 items, 23 links, so the tests below check something."""
    assert sum(len(s["items"]) for s in raw["sections"]) == 16
    assert len(authored_urls(raw)) == 23


def test_every_item_and_section_title_is_a_real_heading(example, raw: dict) -> None:
    page = Page(example.html)
    assert page.text_of["h3"] == [" ".join(i["title"].split()) for s in raw["sections"] for i in s["items"]]
    assert page.text_of["h2"] == [s["title"] for s in raw["sections"]] + [raw["agenda"]["title"]]
    assert page.text_of["h1"] == ["Nieuwsbrief VZHG"]
    assert page.text_of["title"] == [raw["subject"]]


def test_every_title_is_in_the_text(example, raw: dict) -> None:
    lines = example.text.splitlines()
    for section in raw["sections"]:
        assert section["title"].upper() in lines
        for item in section["items"]:
            assert item["title"] in lines, item["title"]
    assert raw["agenda"]["title"] in lines


def test_every_link_is_in_the_html(example, raw: dict) -> None:
    hrefs = Page(example.html).hrefs()
    for url in authored_urls(raw):
        assert url in hrefs, url
    assert example.links == 23


def test_every_link_is_in_the_text_on_its_own_line(example, raw: dict) -> None:
    lines = [line.strip() for line in example.text.splitlines()]
    for url in authored_urls(raw):
        if url.startswith("mailto:"):
            assert url.removeprefix("mailto:") in example.text, url
        else:
            assert url in lines, url


def test_every_agenda_date_is_in_html_and_text(example, raw: dict) -> None:
    """As the reference writes them: the year once when the dates share it."""
    html_text = Page(example.html).text
    text = " ".join(example.text.split())
    expected = ["9 oktober en 4 december 2025", "6 oktober 2025", "10 oktober 2025", "10 november 2025",
                "21 november 2025", "24 november 2025"]
    assert len(expected) == len(raw["agenda"]["rows"])
    for dates in expected:
        assert dates in html_text and dates in text, dates
    assert "september 2025" in html_text and "september 2025" in text


def test_event_times_and_places_are_in_html_and_text(example, raw: dict) -> None:
    html_text = Page(example.html).text
    for section in raw["sections"]:
        for item in section["items"]:
            for key in ("time", "location"):
                value = item.get("event", {}).get(key)
                if value:
                    assert value in html_text and value in example.text, value
            for row in item.get("schedule", []):
                assert row["what"] in html_text and row["what"] in example.text


def test_lang_on_html_and_body_wrapper(example) -> None:
    page = Page(example.html)
    assert page.tags[0] == ("html", page.tags[0][1]) and page.tags[0][1]["lang"] == "nl"
    wrapper = [attrs for tag, attrs in page.tags if tag == "div" and attrs.get("role") == "article"]
    assert [w.get("lang") for w in wrapper] == ["nl"]


def test_no_safelinks_anywhere(example) -> None:
    for part in (example.html, example.text, example.web_html, example.mjml):
        assert "safelinks" not in part.lower()


def test_outlook_conditional_comments_survive_premailer(example) -> None:
    before = render_mod.mjml_to_html(example.mjml)
    conditionals = re.findall(r"<!--\[if [^\]]*\]>", before)
    assert len(conditionals) > 10
    assert re.findall(r"<!--\[if [^\]]*\]>", example.html) == conditionals
    assert example.html.count("<![endif]-->") == before.count("<![endif]-->")


def test_media_rules_keep_important_after_premailer(example) -> None:
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", example.html, re.DOTALL))
    phone = re.search(r"@media only screen and \(max-width: ?480px\)\s*\{(.*?)\}\s*\}", styles, re.DOTALL)
    assert phone, "the phone-width @media block is gone"
    assert "display: block !important" in phone.group(1)
    assert "width: 100% !important" in phone.group(1)
    desktop = re.search(r"@media only screen and \(min-width: ?480px\)\s*\{(.*?)\}\s*\}", styles, re.DOTALL)
    assert desktop and "!important" in desktop.group(1)


def test_inlined_css_reaches_the_headings(example) -> None:
    """premailer did its job: the h2 carries the theme colour inline (Gmail drops <style> on some clients)."""
    page = Page(example.html)
    h2_styles = [attrs.get("style") or "" for tag, attrs in page.tags if tag == "h2"]
    assert h2_styles and all("color:#00566e" in s.replace(" ", "") for s in h2_styles)


def test_images_keep_their_pixel_width(project: Path) -> None:
    """<img width="160"> stays 160 after premailer (Outlook obeys the attribute), for the logo and an item image."""
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63"
                        "f8cfc0f01f0005000201a2b1a5f40000000049454e44ae426082")
    (project / "logo.png").write_bytes(png)
    (project / "theme.yaml").write_text("logo: logo.png\nlogo_width: 160\n", encoding="utf-8")
    folder = project / "editions" / "2025-11"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "foto.png").write_bytes(png)
    (folder / "edition.yaml").write_text(
        "subject: x\ndate: 2025-11-20\nsections:\n  - title: S\n    items:\n      - title: T\n"
        "        image: {src: images/foto.png, alt: Een foto, width: 240}\n", encoding="utf-8")
    result = build(folder / "edition.yaml", theme=load_theme(Project(project)), project=Project(project))
    images = [attrs for tag, attrs in Page(result.rendered.html).tags if tag == "img"]
    assert [(i["src"], i["width"], i["alt"]) for i in images] == [
        ("logo.png", "160", "Vereniging Zuid-Hollandse Gemeenten"), ("images/foto.png", "240", "Een foto")]
    assert result.rendered.images == 2
    assert result.rendered.image_files == {"logo.png": project / "logo.png", "images/foto.png": folder / "images" / "foto.png"}


def test_local_image_src_is_written_as_its_path_in_the_edition_folder(project: Path) -> None:
    """'./images/a.png' and 'images//a.png' come out as 'images/a.png', the form the sender swaps for cid:;
    'HTTPS://' is remote, whatever its case."""
    folder = project / "editions" / "2025-11"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "edition.yaml").write_text(
        "subject: x\ndate: 2025-11-20\nsections:\n  - title: S\n    items:\n"
        "      - title: T\n        image: {src: ./images/a.png, alt: A}\n"
        "      - title: U\n        image: {src: images//a.png, alt: B}\n"
        "      - title: V\n        image: {src: 'HTTPS://example.org/c.png', alt: C}\n", encoding="utf-8")
    result = render(load(folder / "edition.yaml"), Theme())
    for html in (result.html, result.web_html):
        assert [a["src"] for t, a in Page(html).tags if t == "img"] == [
            "images/a.png", "images/a.png", "HTTPS://example.org/c.png"]
    assert result.image_files == {"images/a.png": folder / "images" / "a.png"}  # one file, embedded once


def test_missing_theme_logo_is_an_error(project: Path) -> None:
    (project / "theme.yaml").write_text("logo: logo.png\n", encoding="utf-8")
    from newsletter_cli.errors import InputError

    with pytest.raises(InputError, match=r"theme.yaml: logo 'logo.png' does not exist"):
        load_theme(Project(project))


SAFELINK_EDITION = """\
subject: x
date: 2025-09-25
sections:
  - title: S
    items:
      - title: Knop
        button: {label: Aanmelden, url: "https://eur03.safelinks.protection.outlook.com/?url=https%3A%2F%2Fvzhg.nl%2Fagenda%2F&data=05%7C02%7Csecretariaat%40vzhg.nl%7C&reserved=0"}
      - title: Tekst
        body: |
          Eerste regel.

          Zie [de site](https://eur03.safelinks.protection.outlook.com/?url=https%3A%2F%2Fvng.nl%2Ftrainingen&data=05%7C02%7Cx%40vzhg.nl&reserved=0) voor meer.
"""


def test_safelinks_are_unwrapped_with_a_warning_naming_item_and_line(project: Path) -> None:
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(SAFELINK_EDITION, encoding="utf-8")
    result = render(load(path), Theme())
    shown = "editions/2025-10/edition.yaml"
    assert [str(w) for w in result.warnings] == [
        f'{shown}:7: item "Knop": Outlook safelink unwrapped to https://vzhg.nl/agenda/ (safelinks leak the '
        "sender's address and expire) (replace the link in the YAML by https://vzhg.nl/agenda/)",
        f'{shown}:12: item "Tekst": Outlook safelink unwrapped to https://vng.nl/trainingen (safelinks leak the '
        "sender's address and expire) (replace the link in the YAML by https://vng.nl/trainingen)"]
    hrefs = Page(result.html).hrefs()
    assert "https://vzhg.nl/agenda/" in hrefs and "https://vng.nl/trainingen" in hrefs
    for part in (result.html, result.text, result.web_html, result.mjml):
        assert "safelinks" not in part and "secretariaat" not in part


def test_merge_field_survives_markdown_mjml_and_premailer(project: Path) -> None:
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("subject: 'Voor [[name|lezer]]'\ndate: 2025-09-25\nintro:\n  heading: 'Beste [[name|lezer]],'\n"
                    "  body: |\n    Hallo **[[name|lezer]]**, zie [uw pagina [[name]]](https://vzhg.nl/).\n",
                    encoding="utf-8")
    result = render(load(path), Theme())
    assert result.html.count("[[name|lezer]]") == 4  # <title>, the wrapper's aria-label, heading, body
    assert "<strong>[[name|lezer]]</strong>" in result.html
    assert "uw pagina [[name]]</a>" in result.html
    assert "[[unsubscribe_url]]" in Page(result.html).hrefs()
    assert "Beste [[name|lezer]]," in result.text and "Hallo [[name|lezer]], zie uw pagina [[name]]." in result.text


def test_english_edition(project: Path) -> None:
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("subject: News\ndate: 2025-11-03\nlocale: en\nsections:\n  - title: S\n    items:\n"
                    "      - title: Congress\n        event: {date: 2025-11-21, time: '9:30', location: The Hague}\n"
                    "agenda:\n  title: Agenda\n  rows:\n    - {date: [2025-10-09, 2025-12-04], what: Board}\n",
                    encoding="utf-8")
    result = render(load(path), Theme())
    page = Page(result.html)
    assert page.tags[0][1]["lang"] == "en"
    for part in (page.text, result.text):
        assert "Friday 21 November 2025" in part
        assert "9 October and 4 December 2025" in part  # the year once, as people write it
        assert "November 2025" in part
        assert "Practical information" in part
        assert "vrijdag" not in part and "Praktische" not in part


def test_dutch_is_the_default(project: Path) -> None:
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("subject: x\ndate: 2025-11-03\nsections:\n  - title: S\n    items:\n"
                    "      - title: C\n        event: {date: [2025-11-21, 2025-11-22]}\n", encoding="utf-8")
    result = render(load(path), Theme())
    assert "vrijdag 21 november en zaterdag 22 november 2025" in Page(result.html).text
    assert "Datum: vrijdag 21 november en zaterdag 22 november 2025" in result.text
    assert Page(result.html).tags[0][1]["lang"] == "nl"


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way out to the network raises; returns the list of attempts (to assert it stays empty)."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise NetworkUsed(f"network access during the build: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_the_network_block_works(no_network: list[str]) -> None:
    import urllib.request

    with pytest.raises(Exception):
        urllib.request.urlopen("http://example.org/", timeout=1)
    assert no_network


def test_offline_build_of_the_example(project: Path, no_network: list[str]) -> None:
    result = build(project / "editions" / "2025-09" / "edition.yaml", theme=Theme(), project=Project(project))
    assert (project / "editions" / "2025-09" / "build" / "email.html").stat().st_size > 50_000
    assert result.rendered.items == 16
    assert no_network == []


def test_offline_build_with_remote_css_and_images(project: Path, no_network: list[str]) -> None:
    """Remote stylesheets in allowed raw HTML and https images are not fetched by premailer or anything else."""
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "subject: x\ndate: 2025-09-25\nallow_html: true\nsections:\n  - title: S\n    items:\n      - title: T\n"
        "        image: {src: 'https://example.org/a.png', alt: ''}\n        body: |\n"
        "          <link rel=\"stylesheet\" href=\"https://example.org/x.css\"/>\n\n"
        "          <style>@import url(https://example.org/y.css); p { color: red; }</style>\n\n"
        "          Tekst.\n", encoding="utf-8")
    theme = Theme(logo="https://example.org/logo.png")
    result = build(path, theme=theme, project=Project(project))
    assert "https://example.org/a.png" in result.rendered.html
    assert no_network == []


@pytest.mark.parametrize("preheader", ["Kort", "Najaarscongres 21 november: Een weerbaar Zuid-Holland", "x " * 90])
def test_the_preheader_fills_the_inbox_snippet_without_a_colour(project: Path, preheader: str) -> None:
    """The inbox snippet shows the preheader and then blanks up to 200 characters (Outlook's three lines,
    Gmail on a wide screen), never the masthead's text; no white-on-white colour (spam filters' low-contrast
    rule), hidden by display:none and friends instead."""
    path = project / "editions" / "2025-09" / "edition.yaml"
    source = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^preheader: .*$", f'preheader: "{preheader}"', source), encoding="utf-8")
    html = render(load(path), Theme()).html
    match = re.search(r'<div class="nl-preheader" style="([^"]*)">([^<]*)</div>', html)
    assert match, "no preheader"
    style, content = match.groups()
    assert "color" not in style and "display:none" in style
    shown = content.replace("&#847;", "").replace("&zwnj;", "").replace("&nbsp;", " ")
    assert shown.startswith(preheader)
    assert len(shown) == max(200, len(preheader) + 20)
    assert shown[len(preheader):].strip() == ""
    assert html.index("nl-preheader") < html.index("nl-masthead\"")  # the first text of the body


def test_outlook_for_windows_gets_spacing_fonts_and_a_whole_clickable_button(example) -> None:
    """Word pads no link and honours no padding outside table cells, and gives headings its own fonts: the
    margins and the font stack stand on each element, the button's link is the whole coloured block (with
    Word's em-space padding), and lists are indented with a margin."""
    page = Page(example.html)
    styles = {tag: [(attrs.get("style") or "").replace(" ", "") for t, attrs in page.tags if t == tag]
              for tag in ("h2", "h3", "p", "ul", "li")}
    for tag in ("h2", "h3"):
        assert styles[tag] and all("font-family:\"SegoeUI\"" in s or "font-family:'SegoeUI'" in s
                                   for s in styles[tag]), tag
    assert all("margin:" in s for s in styles["p"] + styles["li"])
    assert styles["ul"] and all("margin:0014px24px" in s and "padding:0" in s for s in styles["ul"])
    button = re.search(r'class="nl-button".*?</table>', example.html, re.DOTALL)
    assert button
    link = re.search(r"<a [^>]*style=(['\"])(.*?)\1[^>]*>(.*?)</a>", button.group(0), re.DOTALL)
    assert link
    style = link.group(2).replace(" ", "")
    assert "padding:12px22px" in style and "mso-padding-alt:0" in style and "background:#00566e" in style
    assert "mso-padding-alt:12px" not in button.group(0)  # the cell does not pad outside the link in Word
    assert link.group(3).count("<!--[if mso]><i ") == 2 and "mso-text-raise" in link.group(3)


def test_one_copy_of_the_outlook_com_dark_rules_with_both_prefixes(example) -> None:
    """The dark rules twice in all: in the media query, and once for Outlook.com with each selector under both
    [data-ogsc] and [data-ogsb] (a second copy per prefix was dead weight); dividers included."""
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", example.html, re.DOTALL))
    card = re.findall(r"([^{}]*)\{ background: #1d2327 !important", styles)
    assert len(card) == 2
    outlook = card[1]
    assert "[data-ogsc] .nl-card," in outlook and "[data-ogsb] .nl-card," in outlook
    assert styles.count("[data-ogsc] .nl-divider p") == styles.count("[data-ogsb] .nl-divider p") == 1
def test_short_lines_a_timetable_and_a_subheading_inside_an_item(project):
    """Issue 20: `<br>` was printed literally; a `###` inside an item looked like the item's title (h3). Now
    `<br>` is a line break (as two spaces at a line's end), a heading in a text is an h4, smaller than the
    title, and a table in the middle of a text is a table, in the email and in the plain-text part."""
    from click.testing import CliRunner

    from newsletter_cli.cli import cli

    yaml_file = project / "editions" / "2025-09" / "edition.yaml"
    text = yaml_file.read_text(encoding="utf-8")
    first = '      - title: "Najaarscongres 21 november"\n        body: |\n'
    assert first in text
    body = ("          Kom langs:<br>maandag 9.00 uur<br />\n          dinsdag 10.00 uur  \n          woensdag 11.00 uur\n\n"
            "          ### Programma van de dag\n\n          | tijd | wat |\n          | --- | --- |\n"
            "          | 9.30 | ontvangst |\n          | 10.00 | opening |\n\n          Daarna volgt de lunch.\n\n")
    yaml_file.write_text(text.replace(first, first + body, 1), encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", "2025-09"])
    assert result.exit_code == 0, result.output
    build_dir = project / "editions" / "2025-09" / "build"
    html = (build_dir / "email.html").read_text(encoding="utf-8")
    assert "&lt;br" not in html
    assert re.search(r"Kom langs:<br ?/?>\s*maandag 9.00 uur<br ?/?>\s*dinsdag 10.00 uur<br ?/?>\s*woensdag", html)
    subheading = re.search(r"<h4[^>]*>Programma van de dag</h4>", html)
    title = re.search(r"<h3[^>]*>Najaarscongres 21 november</h3>", html)
    assert subheading and title and title.start() < subheading.start()
    assert "Programma van de dag</h3>" not in html
    size = {tag: int(re.search(rf"<{tag} style=[^>]*?font-size: ?(\d+)px", html).group(1)) for tag in ("h3", "h4")}
    assert size["h4"] < size["h3"]
    assert re.search(r"<td[^>]*>9.30</td>\s*<td[^>]*>ontvangst</td>", html)
    plain = (build_dir / "email.txt").read_text(encoding="utf-8")
    assert "Kom langs:\nmaandag 9.00 uur\ndinsdag 10.00 uur\nwoensdag 11.00 uur" in plain
    assert "9.30 | ontvangst" in plain and "<br" not in plain
