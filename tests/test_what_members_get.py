"""What members get (issue 14, defects 2 and 5-8): images with any file name, a real postal address, standards
mode, the inbox snippet, iOS and screen readers, vague link texts, and no emoji the author did not write."""

from __future__ import annotations

import email
import email.policy
import html
import re
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from click.testing import CliRunner

from newsletter_cli.check.content import run_checks
from newsletter_cli.check.links import is_vague
from newsletter_cli.cli import cli
from newsletter_cli.compose.build import build
from newsletter_cli.deliver.message import MessageFactory
from newsletter_cli.deliver.plan import plan
from newsletter_cli.deliver.request import MemberList, SendRequest
from newsletter_cli.errors import InputError
from newsletter_cli.members.recipients import Recipient
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings
from newsletter_cli.web.archive import build_archive
from newsletter_cli.web.preview import PreviewServer

from test_preview_support import get, png

SETTINGS = {"NEWSLETTER_FROM": "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>"}
NAMES = ["foto congres.png", "Raad & college.png", "café.png"]


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def with_images(project: Path, names: list[str]) -> Path:
    """The example with one local image per name, in the first items."""
    folder = project / "editions" / "2025-09"
    (folder / "images").mkdir(exist_ok=True)
    text = (folder / "edition.yaml").read_text(encoding="utf-8")
    titles = re.findall(r'^      - title: "(.*)"$', text, re.MULTILINE)
    for n, name in enumerate(names):
        (folder / "images" / name).write_bytes(png(40 + n, 20))
        old = f'      - title: "{titles[n]}"\n'
        text = text.replace(old, old + f'        image: {{src: "images/{name}", alt: "Foto {n}", width: 200}}\n', 1)
    (folder / "edition.yaml").write_text(text, encoding="utf-8")
    return folder / "edition.yaml"


def under_item(project: Path, title: str, lines: str) -> tuple[Path, str]:
    """The example with YAML `lines` added under the item `title`; the path and the new text."""
    path = project / "editions" / "2025-09" / "edition.yaml"
    old = f'      - title: "{title}"\n'
    text = path.read_text(encoding="utf-8").replace(old, old + lines, 1)
    path.write_text(text, encoding="utf-8")
    return path, text


# --- defect 2 ---------------------------------------------------------------------------------------------------

def test_images_with_spaces_ampersands_and_accents_are_embedded(project: Path) -> None:
    path = with_images(project, NAMES)
    built = build(path, project=Project(project))
    assert [f for f in run_checks(built, project=Project(project)) if f.severity == "error"] == []
    mine = parse(MessageFactory(built, parse_settings(SETTINGS, {}), project=Project(project)).for_recipient(Recipient("a@example.org")))
    html = mine.get_body(("html",)).get_content()
    parts = {p["Content-ID"].strip("<>"): p for p in mine.walk() if p["Content-ID"]}
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(srcs) == 3 and all(src.startswith("cid:") for src in srcs), srcs
    assert sorted(parts) == sorted(src[4:] for src in srcs)
    assert sorted(p.get_filename() for p in parts.values()) == sorted(NAMES)
    for n, name in enumerate(NAMES):
        assert any(p.get_content() == png(40 + n, 20) and p.get_filename() == name for p in parts.values())


def test_preview_and_archive_show_the_same_images(project: Path) -> None:
    path = with_images(project, NAMES)
    with PreviewServer(path, "127.0.0.1", 0, project=Project(project)) as server:
        for page in ("/email.html", "/web.html"):
            srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', get(server, page)[1].decode())
            assert len(srcs) == 3
            for src in srcs:
                assert get(server, "/" + quote(unquote(html.unescape(src))))[0] == 200, src
    build_archive(project / "site", Project(project), include_future=True)
    for name in NAMES:
        assert (project / "site" / "2025-09" / "images" / name).is_file()


def test_check_reports_an_image_the_email_would_not_carry(project: Path) -> None:
    built = build(with_images(project, NAMES[:1]), project=Project(project))
    built.rendered.html = built.rendered.html.replace("foto%20congres.png", "foto%20kongres.png")
    found = [f for f in run_checks(built, project=Project(project)) if f.code == "image-not-embedded"]
    assert len(found) == 1 and found[0].severity == "error" and "foto kongres.png" in found[0].message


# --- defect 5 ---------------------------------------------------------------------------------------------------

def test_the_placeholder_postal_address_is_an_error_in_check_and_send(project: Path) -> None:
    (project / "theme.yaml").write_text("name: Vereniging Test\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "2025-09"])
    assert result.exit_code == 1
    assert "theme.yaml: theme: the postal address in the footer is the placeholder" in result.output
    (project / "leden.csv").write_text("email\nlid@example.org\n", encoding="utf-8")
    with pytest.raises(InputError, match="postal address is the placeholder"):
        plan(SendRequest("2025-09", MemberList(project / "leden.csv"), dry_run=True),
             Project(project).using(parse_settings(SETTINGS, {})))
    (project / "theme.yaml").write_text("address: Raadhuisplein 1, 2611 AA Delft\n", encoding="utf-8")
    assert "0 errors" in CliRunner().invoke(cli, ["check", "2025-09"]).output


# --- defects 6 and 7 --------------------------------------------------------------------------------------------

@pytest.fixture
def example_html(project: Path) -> str:
    return build(project / "editions" / "2025-09" / "edition.yaml", project=Project(project)).rendered.html


def test_email_html_has_a_doctype_and_the_meta_tags_for_ios_and_dark_mode(example_html: str) -> None:
    assert example_html.lstrip().lower().startswith("<!doctype html>")
    head = example_html.split("</head>", 1)[0]
    assert '<meta name="x-apple-disable-message-reformatting">' in head
    assert re.search(r'<meta name="format-detection" content="telephone=no, date=no, address=no', head)
    assert '<meta name="color-scheme" content="light dark">' in head
    assert '<meta name="supported-color-schemes" content="light dark">' in head


def test_the_preheader_is_padded_so_the_snippet_stops_there(example_html: str) -> None:
    hidden = re.search(r'<div class="nl-preheader" style="display:none[^>]*>(.*?)</div>', example_html, re.DOTALL)
    assert hidden and hidden.group(1).startswith("Najaarscongres 21 november: Een weerbaar Zuid-Holland")
    padding = html.unescape(hidden.group(1)[len("Najaarscongres 21 november: Een weerbaar Zuid-Holland"):])
    assert len(padding) >= 90 * 3 and not any(ch.isalnum() for ch in padding)


def test_agenda_and_schedule_rows_have_header_cells(project: Path, example_html: str) -> None:
    agenda = example_html.split('role="table"', 1)[1].split('class="nl-footer', 1)[0]
    assert agenda.count('role="row"') == agenda.count('role="rowheader"') == agenda.count('role="cell"') == 6
    assert "white-space:nowrap" not in agenda.replace(" ", "")
    path, _ = under_item(project, "Festival Gezond Verstand", '        schedule: [{time: "12.30", what: "Opening"}]\n'
                         '        event: {date: 2025-11-13, time: "12.30 – 18.30", location: "New Babylon"}\n')
    html = build(path, project=Project(project)).rendered.html
    schedule = html.split('class="nl-schedule"', 1)[1].split("</table>", 1)[0]
    assert re.search(r'<th scope="row"[^>]*>12\.30</th>', schedule)
    facts = html.split('class="nl-facts"', 1)[1].split("</table>", 1)[0]
    assert facts.count('<th scope="row"') == 3
    assert '<th scope="col"' in html  # the Markdown timetable of "Gebiedendag ZH-PLG"


@pytest.mark.parametrize(("label", "vague"), [
    ("Dat kan hier", True), ("U kunt het hier lezen", True), ("deze link", True), ("Klik hier", True),
    ("Klik hier om u aan te melden", False), ("Kijk hier het webinar terug", False),
    ("SER-advies AI en werk (pdf)", False), ("bezoek de website", False),
])
def test_vague_link_texts(label: str, vague: bool) -> None:
    assert is_vague(label) is vague


# --- defect 8 ---------------------------------------------------------------------------------------------------

def test_the_template_adds_no_emoji_of_its_own(project: Path) -> None:
    path, text = under_item(project, "Digital Democracy The Hague",
                            '        event: {date: 2025-10-09, time: "9.00 uur", location: "Den Haag"}\n')
    rendered = build(path, project=Project(project)).rendered
    source_emoji = set(re.findall(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]", text))
    for output in (rendered.html, rendered.web_html, rendered.text):
        assert set(re.findall(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]", output)) == source_emoji
    assert "Datum" in rendered.text and "Locatie" in rendered.text  # the facts are there, without pictures
