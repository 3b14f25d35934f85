"""The merge engine: one implementation for the message, the preview, web.html, the archive and the checks,
escaping each value for where its field stands (issue 14, defects 1, 3, 4 and the plain-text wrapping of 9)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter_cli.check.content import run_checks
from newsletter_cli.compose import merge
from newsletter_cli.compose.build import build
from newsletter_cli.deliver.message import MessageFactory
from newsletter_cli.members.recipients import Recipient
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings
from newsletter_cli.web.archive import build_archive
from newsletter_cli.web.preview import PreviewServer

from test_preview_support import get

SETTINGS = {"NEWSLETTER_FROM": "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>",
            "LIST_UNSUBSCRIBE": "afmelden@vzhg.nl https://vzhg.nl/afmelden?e={email}&t={token}",
            "LIST_UNSUBSCRIBE_SECRET": "s3cret-s3cret-s3cret"}
PROFILE = "      - title: \"Najaarscongres 21 november\"\n        body: |\n"
PROFILE_BODY = ("          Bekijk [uw profiel](https://vzhg.nl/profiel?e=[[email]]) of [meld u af]([[unsubscribe_url]]).\n"
                "          Groet aan [[club|Jan & Piet]].\n\n")


def edition_with(project: Path, old: str, new: str) -> Path:
    path = project / "editions" / "2025-09" / "edition.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def message(path: Path, recipient: Recipient) -> EmailMessage:
    built = build(path, project=Project.here())
    return parse(MessageFactory(built, parse_settings(SETTINGS, {}), project=Project.here()).for_recipient(recipient))


# --- the engine ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("html", "values", "expected"), [
    ('<p>[[aanhef|Jan &amp; Piet]],</p>', {}, "<p>Jan &amp; Piet,</p>"),  # the default is HTML already: once
    ('<p>[[aanhef]]</p>', {"aanhef": "<b>&"}, "<p>&lt;b&gt;&amp;</p>"),
    ('<a href="[[unsubscribe_url]]">', {"unsubscribe_url": "https://x.nl/?a=1&b=2"}, '<a href="https://x.nl/?a=1&amp;b=2">'),
    ('<a href="[[unsubscribe_url]]">', {"unsubscribe_url": "javascript:alert(1)"}, '<a href="javascript%3Aalert%281%29">'),
    ('<a href="https://x.nl/?e=[[email]]&amp;b=1">', {"email": "a+b c@d.nl"}, '<a href="https://x.nl/?e=a%2Bb%20c@d.nl&amp;b=1">'),
    ('<img alt="[[naam]]" src="x.png">', {"naam": 'Zeg "hoi"'}, '<img alt="Zeg &quot;hoi&quot;" src="x.png">'),
])
def test_html_values_are_escaped_for_where_the_field_stands(html: str, values: dict, expected: str) -> None:
    assert merge.fill(html, values, "html") == expected


def test_plain_text_urls_headers_and_values_that_look_like_fields() -> None:
    text = "Hallo [[naam|lezer]]\nhttps://vzhg.nl/p?e=[[email]]\n"
    assert merge.fill(text, {"naam": "A & B", "email": "a b@c.nl"}, "text") == "Hallo A & B\nhttps://vzhg.nl/p?e=a%20b@c.nl\n"
    assert merge.fill("Nieuws voor [[naam]]", {"naam": "Jan\r\nBcc: x@y.nl"}, "header") == "Nieuws voor Jan Bcc: x@y.nl"
    assert merge.fill("[[a]] [[b]]", {"a": "[[b]]", "b": "x"}, "text") == "[[b]] x"  # values are not rescanned


def test_plain_text_lines_are_wrapped_after_filling() -> None:
    """Wrapping before the fields are filled let lines reach 82 characters (defect 9, end)."""
    line = "[[aanhef|Beste lezer]], " + "woord " * 9 + "einde."
    filled = merge.fill(f"- {line}\n", {"aanhef": "Zeer geachte mevrouw de burgemeester van Zuid-Holland"}, "text")
    lines = filled.splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= 76
    assert all(row.startswith("  ") for row in lines[1:])  # continuation lines stay under the list marker


# --- defect 1: web.html, the archive and the preview show the defaults ------------------------------------------

def test_web_html_archive_and_preview_show_defaults(project: Path) -> None:
    path = project / "editions" / "2025-09" / "edition.yaml"
    assert "[[aanhef|Beste lezer]]," in path.read_text(encoding="utf-8")
    result = build(path, project=Project(project))
    assert "[[" not in result.rendered.web_html and "Beste lezer," in result.rendered.web_html
    assert "Beste lezer," in (project / "editions" / "2025-09" / "build" / "web.html").read_text(encoding="utf-8")
    build_archive(project / "site", Project(project), include_future=True)
    page = (project / "site" / "2025-09" / "index.html").read_text(encoding="utf-8")
    assert "[[" not in page and "Beste lezer," in page
    with PreviewServer(path, "127.0.0.1", 0, project=Project(project)) as server:
        for url in ("/web.html", "/email.txt", "/email.html"):
            body = get(server, url)[1].decode()
            assert "[[" not in body and "Beste lezer," in body, url


# --- defects 3 and 4: fields in Markdown links; one implementation ----------------------------------------------

def test_merge_fields_in_markdown_links_are_filled_per_recipient(project: Path) -> None:
    path = edition_with(project, PROFILE, PROFILE + PROFILE_BODY)
    built = build(path, project=Project(project))  # `[meld u af]([[unsubscribe_url]])` used to fail the build with %5B%5B
    assert 'href="https://vzhg.nl/profiel?e=[[email]]"' in built.rendered.html
    assert [f for f in run_checks(built, project=Project(project)) if f.severity == "error"] == []
    mine = message(path, Recipient("lois+nl@example.org", "Loïs", {"club": "De <Vries> & Co"}))
    html = mine.get_body(("html",)).get_content()
    assert 'href="https://vzhg.nl/profiel?e=lois%2Bnl@example.org"' in html
    assert 'href="https://vzhg.nl/afmelden?e=lois%2Bnl@example.org&amp;t=' in html
    assert "Groet aan De &lt;Vries&gt; &amp; Co." in html
    text = mine.get_body(("plain",)).get_content()
    assert "https://vzhg.nl/profiel?e=lois%2Bnl@example.org" in text and "Groet aan De <Vries> & Co." in text


def test_preview_and_message_fill_a_default_with_an_ampersand_alike(project: Path) -> None:
    path = edition_with(project, PROFILE, PROFILE + PROFILE_BODY)
    sent = message(path, Recipient("x@example.org")).get_body(("html",)).get_content()
    with PreviewServer(path, "127.0.0.1", 0, project=Project(project)) as server:
        shown = get(server, "/email.html")[1].decode()
        text = get(server, "/email.txt")[1].decode()
    assert "Groet aan Jan &amp; Piet." in sent and "Groet aan Jan &amp; Piet." in shown  # not &amp;amp;
    assert "Groet aan Jan & Piet." in text


def test_the_subject_may_hold_merge_fields(project: Path) -> None:
    path = edition_with(project, 'subject: "Nieuwsbrief VZHG - september 2025"',
                        'subject: "Nieuwsbrief voor [[gemeente|uw gemeente]] - september 2025"')
    assert message(path, Recipient("a@example.org", "", {"gemeente": "Delft"}))["Subject"] == \
        "Nieuwsbrief voor Delft - september 2025"
    assert message(path, Recipient("b@example.org"))["Subject"] == "Nieuwsbrief voor uw gemeente - september 2025"
    built = build(path, project=Project(project))
    assert "<title>Nieuwsbrief voor uw gemeente - september 2025</title>" in built.rendered.web_html
    with PreviewServer(path, "127.0.0.1", 0, project=Project(project)) as server:
        assert "Nieuwsbrief voor uw gemeente - september 2025" in get(server, "/")[1].decode()


def test_plain_text_part_lines_stay_under_77_after_filling(project: Path) -> None:
    path = project / "editions" / "2025-09" / "edition.yaml"
    long_name = "Zeer geachte leden van de gemeenteraad en het college van burgemeester en wethouders"
    text = message(path, Recipient("a@example.org", "", {"aanhef": long_name})).get_body(("plain",)).get_content()
    assert long_name.split()[-1] in text
    assert max(len(line) for line in text.splitlines() if not line.startswith("http")) <= 76
