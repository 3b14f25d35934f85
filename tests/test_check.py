"""newsletter check: one defect at a time in the small clean edition of fixtures/check/, and the example."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.check.content import run_checks
from newsletter_cli.cli import cli
from newsletter_cli.compose.build import build
from newsletter_cli.errors import Diagnostic
from newsletter_cli.project import Project

BASE = (Path(__file__).parent / "fixtures" / "check" / "base.yaml").read_text(encoding="utf-8")
EDITION_ID = "2025-10"


def edit(*replacements: tuple[str, str], text: str = BASE) -> str:
    """The base edition with each (old, new) applied once; fails loudly when `old` is not there."""
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} is not once in the base edition"
        text = text.replace(old, new)
    return text


def write_edition(project: Path, text: str) -> Path:
    path = project / "editions" / EDITION_ID / "edition.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check_text(project: Path, text: str, **options: object) -> list[Diagnostic]:
    """Write `text` as an edition, build it and return the findings."""
    return run_checks(build(write_edition(project, text), project=Project(project)), **options, project=Project(project))  # type: ignore[arg-type]


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line containing `needle`."""
    for number, row in enumerate(text.splitlines(), start=1):
        if needle in row:
            return number
    raise AssertionError(f"{needle!r} not in the edition")


def only(findings: list[Diagnostic], code: str) -> Diagnostic:
    """The one finding with `code`; fails with all findings shown otherwise."""
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, f"expected one '{code}' finding, got: {[str(f) for f in findings]}"
    return matching[0]


CONGRES = 'item "Najaarscongres 21 november"'
LEERGANG = 'item "Leergang voor raadsleden"'
SAFELINK = ("https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fvzhg.nl%2Fcongres"
            "&data=05%7C02%7Csecretariaat%40vzhg.nl&reserved=0")
PHOTO = '        image: {src: "https://vzhg.nl/zaal.jpg", alt: "Raadsleden in de zaal", width: 300}\n'
LEERGANG_BODY = "      - title: \"Leergang voor raadsleden\"\n        body: |\n"


def with_image(image_line: str) -> tuple[str, str]:
    """Put an image (one YAML line) in the second item."""
    return LEERGANG_BODY, "      - title: \"Leergang voor raadsleden\"\n" + image_line + "        body: |\n"


def test_the_small_base_edition_is_clean(project):
    assert check_text(project, BASE) == []


def test_the_example_edition_is_clean(project):
    """The shipped example is ready to send: no errors and no warnings (`make demo`)."""
    findings = run_checks(build(project / "editions" / "2025-09" / "edition.yaml", project=Project(project)), project=Project(project))
    assert [str(f) for f in findings] == []


# (replacements, code, severity, where, the text on the reported line or None, message part)
DEFECTS = {
    "safelink": ([("(https://vzhg.nl/congres)", f"({SAFELINK})")],
                 "safelink", "error", CONGRES, "safelinks.protection", "Outlook safelink"),
    "http link": ([("(https://vzhg.nl/congres)", "(http://vzhg.nl/congres)")],
                  "link-http", "warning", CONGRES, "http://vzhg.nl/congres", "insecure address: http://vzhg.nl/congres"),
    "double dot in domain": ([("(https://vzhg.nl/congres)", "(https://vzhg..nl/congres)")],
                             "link-malformed", "error", CONGRES, "vzhg..nl", "'vzhg..nl' as website name"),
    "https twice": ([("(https://vzhg.nl/congres)", "(https://https://vzhg.nl/congres)")],
                    "link-malformed", "error", CONGRES, "https://https://", "not a valid domain"),
    "bad mail address": ([("mailto:info@vzhg.nl", "mailto:info@vzhg")],
                         "link-malformed", "error", LEERGANG, "mailto:info@vzhg", "not a valid e-mail address"),
    "mailto without address": ([("mailto:info@vzhg.nl", "mailto:")],
                               "link-malformed", "error", LEERGANG, "(mailto:)", "without an e-mail address"),
    "klik hier": ([("[programma van het congres]", "[klik hier]")],
                  "link-text", "warning", CONGRES, "[klik hier]", "link text 'klik hier' does not say where"),
    "lees meer button": ([('label: "Meld u aan voor het congres"', 'label: "Lees meer"')],
                         "link-text", "warning", CONGRES, "Lees meer", "button text 'Lees meer'"),
    "same button twice": ([('url: "https://vzhg.nl/congres/aanmelden"}\n',
                            'url: "https://vzhg.nl/congres/aanmelden"}\n        buttons: '
                            '[{label: "Naar het programma", url: "https://vzhg.nl/congres/aanmelden"}]\n')],
                          "button-duplicate", "warning", CONGRES, "Naar het programma", "same address"),
    "alt only spaces": ([with_image('        image: {src: "https://vzhg.nl/zaal.jpg", alt: "  ", width: 300}\n')],
                        "image-alt", "warning", LEERGANG, "zaal.jpg", "alt text is only spaces"),
    "alt is a file name": ([with_image('        image: {src: "https://vzhg.nl/zaal.jpg", alt: "IMG_1234.jpg", '
                                       'width: 300}\n')],
                           "image-alt", "warning", LEERGANG, "zaal.jpg", "looks like a file name"),
    "linked image with empty alt": ([with_image('        image: {src: "https://vzhg.nl/zaal.jpg", alt: "", width: 300, '
                                                'link: "https://vzhg.nl/"}\n')],
                                    "image-alt", "warning", LEERGANG, "zaal.jpg", "is a link but has an empty alt"),
    "image without width": ([with_image('        image: {src: "https://vzhg.nl/zaal.jpg", alt: "Raadsleden"}\n')],
                            "image-width", "warning", LEERGANG, "zaal.jpg", "has no width"),
    "image over http": ([with_image(PHOTO.replace("https://", "http://"))],
                        "image-http", "warning", LEERGANG, "zaal.jpg", "loaded over http://"),
    "local image inside the text": ([("Vragen? Mail", "![De zaal](zaal.jpg) Vragen? Mail")],
                                    "image-local", "error", LEERGANG, "![De zaal]", "will not travel with the email"),
    "empty subject": ([('subject: "Nieuwsbrief VZHG - oktober 2025"', 'subject: " "')],
                      "subject", "error", "", "subject:", "the subject is empty"),
    "long subject": ([("Nieuwsbrief VZHG - oktober 2025", "Nieuwsbrief VZHG - oktober 2025 - " + "x" * 60)],
                     "subject-long", "warning", "", "subject:", "the subject is 94 characters"),
    "subject in capitals": ([("Nieuwsbrief VZHG - oktober 2025", "NIEUWSBRIEF VZHG - OKTOBER 2025")],
                            "subject-caps", "warning", "", "subject:", "CAPITALS"),
    "exclamation marks": ([("Nieuwsbrief VZHG - oktober 2025", "Nieuwsbrief oktober!! Niet missen!")],
                          "subject-exclamation", "warning", "", "subject:", "3 exclamation marks"),
    "no preheader": ([('preheader: "Het najaarscongres komt eraan"\n', "")],
                     "preheader", "warning", "", None, "no preheader"),
    "empty section": ([("agenda:\n", '  - title: "Leeg"\n    items: []\nagenda:\n')],
                      "section-empty", "error", 'section "Leeg"', '- title: "Leeg"', "the section is empty"),
    "item with only a title": ([(LEERGANG_BODY + "          De leergang begint in januari. Vragen? Mail naar "
                                 "[het secretariaat](mailto:info@vzhg.nl).\n",
                                 '      - title: "Leergang voor raadsleden"\n')],
                               "item-empty", "error", LEERGANG, 'title: "Leergang', "has no text (body) and nothing else"),
    "event date in the past": ([("date: 2025-11-21\n          time", "date: 2025-09-21\n          time")],
                               "date-past", "warning", CONGRES, "date: 2025-09-21", "2025-09-21, before the edition date"),
    "agenda row in the past": ([('{date: 2025-11-21, what: "Najaarscongres"}', '{date: 2025-09-01, what: "Heisessie"}')],
                               "date-past", "warning", "agenda", "Heisessie", "agenda row 'Heisessie' is on 2025-09-01"),
    "placeholder left": ([("De leergang begint in januari.", "Schrijf hier de tekst van het bericht.")],
                         "placeholder", "error", LEERGANG, "Schrijf hier", "placeholder text"),
    "heading level skipped": ([("De leergang begint", "##### Praktisch\n\n          De leergang begint")],
                              "heading-order", "warning", LEERGANG, "##### Praktisch", "h5) where h4 is expected"),
}


@pytest.mark.parametrize("name", list(DEFECTS))
def test_each_defect_gives_its_finding(project, name):
    replacements, code, severity, where, line_text, message = DEFECTS[name]
    text = edit(*replacements)
    finding = only(check_text(project, text), code)
    assert (finding.severity, finding.where) == (severity, where)
    assert finding.file == f"editions/{EDITION_ID}/edition.yaml"
    assert finding.line == (line_of(text, line_text) if line_text else None)
    assert message in finding.message


@pytest.mark.parametrize("marks", ["#", "##", "###", "####"])
def test_a_heading_inside_a_text_is_a_subheading_whatever_its_marks(project, marks):
    """Issue 20: `###` in an item looked like the item's title and `#` was a second main heading; every heading
    in a text is now an h4 under the item's h3, so the heading order is right and check says nothing."""
    text = edit(("De leergang begint", f"{marks} Praktisch\n\n          De leergang begint"))
    findings = check_text(project, text)
    assert [f for f in findings if f.code == "heading-order"] == []
    html = (project / "editions" / EDITION_ID / "build" / "email.html").read_text(encoding="utf-8")
    assert re.search(r"<h4[^>]*>Praktisch</h4>", html)


def test_safelink_fix_names_the_real_address(project):
    finding = only(check_text(project, edit(("(https://vzhg.nl/congres)", f"({SAFELINK})"))), "safelink")
    assert "https://vzhg.nl/congres" in finding.fix and "safelinks" not in finding.fix


def test_item_without_body_but_with_a_button_is_a_warning(project):
    text = edit(("        body: |\n          Op 21 november organiseren we samen met de provincie het jaarlijkse "
                 "najaarscongres over een\n          weerbaar Zuid-Holland. Bekijk het [programma van het congres]"
                 "(https://vzhg.nl/congres) en\n          schrijf u in voor de workshops.\n", ""))
    finding = only(check_text(project, text), "item-empty")
    assert (finding.severity, finding.where, finding.line) == ("warning", CONGRES, line_of(text, "Najaarscongres 21"))


def test_image_over_200_kb(project):
    folder = project / "editions" / EDITION_ID
    folder.mkdir(parents=True)
    (folder / "zaal.jpg").write_bytes(b"\xff\xd8" + bytes(250_000))
    text = edit(with_image('        image: {src: "zaal.jpg", alt: "Raadsleden in de zaal", width: 300}\n'))
    finding = only(check_text(project, text), "image-heavy")
    assert (finding.severity, finding.where, finding.line) == ("warning", LEERGANG, line_of(text, "zaal.jpg"))
    assert "250 KB" in finding.message


def test_whole_message_with_images_over_2_mb(project):
    folder = project / "editions" / EDITION_ID
    folder.mkdir(parents=True)
    (folder / "zaal.jpg").write_bytes(bytes(1_600_000))  # base64 makes it 2.2 MB
    text = edit(with_image('        image: {src: "zaal.jpg", alt: "Raadsleden in de zaal", width: 300}\n'))
    finding = only(check_text(project, text), "message-size")
    assert finding.severity == "warning" and "2.2 MB" in finding.message


def _body_of(chars: int) -> str:
    sentence = "De gemeenteraad besprak de begroting en de plannen voor het komende jaar uitgebreid. "
    paragraphs = (sentence * (chars // len(sentence) + 1))[:chars]
    return "\n\n".join(paragraphs[i:i + 400] for i in range(0, len(paragraphs), 400))


def _with_long_item(chars: int) -> str:
    body = "\n".join("          " + row for row in _body_of(chars).splitlines())
    return edit(("agenda:\n", '  - title: "Lang"\n    items:\n      - title: "Een lang verslag"\n'
                              f"        body: |\n{body}\nagenda:\n"))


def test_gmail_clipping_error_and_warning(project):
    findings = check_text(project, _with_long_item(110_000))
    too_big = only(findings, "size")
    assert too_big.severity == "error" and "Gmail clips" in too_big.message and too_big.line is None
    assert '"Een lang verslag"' in too_big.fix
    # Calibrate on this renderer: how many bytes one character of body adds, then aim at 95,000 bytes.
    small = build(write_edition(project, _with_long_item(20_000)), project=Project(project)).rendered.html_bytes_qp
    large = build(write_edition(project, _with_long_item(60_000)), project=Project(project)).rendered.html_bytes_qp
    chars = 20_000 + int((96_000 - small) / ((large - small) / 40_000))
    result = build(write_edition(project, _with_long_item(chars)), project=Project(project))
    assert 90_000 <= result.rendered.html_bytes_qp < 102_000
    close = only(run_checks(result, project=Project(project)), "size")
    assert close.severity == "warning" and "Gmail clips" in close.message


def test_text_part_much_shorter_than_the_html(project):
    words = " ".join(["raadsvergadering"] * 400)
    text = edit(("locale: nl\n", "locale: nl\nallow_html: true\n"),
                ("De leergang begint", f"<div>\n          {words}\n          </div>\n\n          De leergang begint"))
    finding = only(check_text(project, text), "text-part")
    assert finding.severity == "warning" and "plain-text part" in finding.message


def test_mostly_images(project):
    items = "".join(f'      - title: "Foto {n}"\n        image: {{src: "https://vzhg.nl/{n}.jpg", alt: "Foto {n}", '
                    "width: 500}\n" for n in range(4))
    text = edit(("agenda:\n", f'  - title: "Foto\'s"\n    items:\n{items}agenda:\n'))
    findings = check_text(project, text)
    assert only(findings, "text-image-ratio").severity == "warning"
    assert len([f for f in findings if f.code == "item-empty"]) == 4


def test_missing_unsubscribe_link_and_lang_in_the_html(project):
    result = build(write_edition(project, BASE), project=Project(project))
    html = re.sub(r"<p[^>]*>[^<]*<a href=\"\[\[unsubscribe_url\]\]\"[^>]*>[^<]*</a></p>", "", result.rendered.html)
    html = html.replace('<html lang="nl"', "<html")
    assert "unsubscribe_url" not in html
    broken = dataclasses.replace(result, rendered=dataclasses.replace(result.rendered, html=html))
    findings = run_checks(broken, project=Project(project))
    assert only(findings, "unsubscribe").severity == "error"
    assert "no unsubscribe link" in only(findings, "unsubscribe").message
    assert only(findings, "html-lang").severity == "error"


def test_a_link_that_goes_nowhere_in_the_built_html(project):
    result = build(write_edition(project, BASE), project=Project(project))
    html = result.rendered.html.replace('href="https://vzhg.nl/congres"', 'href="#"')
    broken = dataclasses.replace(result, rendered=dataclasses.replace(result.rendered, html=html))
    finding = only(run_checks(broken, project=Project(project)), "link-empty")
    assert finding.severity == "error" and "'programma van het congres'" in finding.message


def test_theme_colours_with_too_little_contrast(project):
    (project / "theme.yaml").write_text('name: "Test"\nprimary: "#7fb3c4"\ntext: "#888888"\n', encoding="utf-8")
    findings = [f for f in check_text(project, BASE) if f.code == "contrast"]
    by_message = {f.message.split(" has a contrast")[0]: f for f in findings}
    assert set(by_message) == {"the body text colour on the white background",
                               "white text on the primary colour (masthead and buttons)",
                               "links and headings in the primary colour on white"}
    body = by_message["the body text colour on the white background"]
    assert (body.severity, body.file, body.line) == ("warning", "theme.yaml", 3)
    assert "3.5:1" in body.message and "4.5:1" in body.message
    buttons = by_message["white text on the primary colour (masthead and buttons)"]
    assert (buttons.severity, buttons.line) == ("error", 2)


# --- the command line ---------------------------------------------------------------------------------------

def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_check_command_on_the_example(project):
    result = run("check", "2025-09")
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings: ready to send" in result.output


def test_strict_makes_warnings_count(project):
    write_edition(project, edit(("(https://vzhg.nl/congres)", "(http://vzhg.nl/congres)")))
    assert run("check", EDITION_ID).exit_code == 0
    strict = run("check", EDITION_ID, "--strict")
    assert strict.exit_code == 1
    assert "0 errors, 1 warning" in strict.output


def test_an_error_gives_exit_status_1(project):
    write_edition(project, edit(("mailto:info@vzhg.nl", "mailto:info@vzhg")))
    result = run("check", EDITION_ID)
    assert result.exit_code == 1
    assert "error: editions/2025-10/edition.yaml:" in result.output
    assert "fix the errors before sending" in result.output


def test_json_output(project):
    write_edition(project, edit(("(https://vzhg.nl/congres)", "(http://vzhg.nl/congres)")))
    result = run("check", EDITION_ID, "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["edition"], data["errors"], data["warnings"]) == ("editions/2025-10/edition.yaml", 0, 1)
    (finding,) = data["findings"]
    assert set(finding) == {"severity", "file", "line", "where", "message", "fix", "code", "place"}
    assert finding["code"] == "link-http" and finding["place"] == f"editions/2025-10/edition.yaml:{finding['line']}"


def test_json_output_for_an_edition_that_does_not_load(project):
    write_edition(project, BASE.replace("locale: nl", "locale: nl\nsubjct: x"))
    result = run("check", EDITION_ID, "--json")
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["edition"] == "editions/2025-10/edition.yaml"
    assert data["errors"] >= 1 and "subjct" in data["findings"][0]["message"]


def test_build_shows_the_findings_after_its_summary(project):
    write_edition(project, edit(("mailto:info@vzhg.nl", "mailto:info@vzhg")))
    result = run("build", EDITION_ID)
    assert result.exit_code == 0
    summary_at = result.output.index("Output:")
    assert result.output.index("error: editions/2025-10/edition.yaml:") > summary_at
    assert "Check: 1 error, 0 warnings" in result.output


@pytest.mark.parametrize(("name", "mode", "ink", "warned"), [
    ("logo.gif", "RGBA", (255, 255, 255, 255), True),  # light and transparent, a format the build cannot plate
    ("logo.png", "RGBA", (255, 255, 255, 255), False),  # the build puts a PNG on a plate in the house colour
    ("logo.gif", "RGBA", (20, 20, 20, 255), False),  # a dark logo: inversion makes the masthead light behind it
    ("logo.gif", "RGB", (255, 255, 255), False),  # opaque: it brings its own background
])
def test_a_light_transparent_logo_that_cannot_be_plated_is_a_warning(project, name, mode, ink, warned):
    from PIL import Image, ImageDraw

    logo = Image.new(mode, (160, 40), (0, 0, 0, 0) if mode == "RGBA" else (0, 86, 110))
    ImageDraw.Draw(logo).rectangle((10, 10, 150, 30), fill=ink)
    (project / "assets").mkdir()
    logo.save(project / "assets" / name)
    theme = project / "theme.yaml"
    theme.write_text(theme.read_text(encoding="utf-8") + f"logo: assets/{name}\n", encoding="utf-8")
    findings = check_text(project, BASE)
    if warned:
        finding = only(findings, "logo")
        assert finding.severity == "warning" and "Gmail app on iPhone" in finding.message
        assert finding.file.endswith("theme.yaml") and finding.line == len(theme.read_text().splitlines())
    else:
        assert [f for f in findings if f.code == "logo"] == []
