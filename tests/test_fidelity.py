"""Fidelity: the example edition says what the real September 2025 newsletter says, and so do the three things
members read (email.html, web.html, email.txt): every sentence, link, emoji and date as written, in order, and
nothing the author did not write apart from the template's own frame (masthead, labels, footer).

The reference is the text extracted from the PDF (../shared/reference/ beside the repository, as on the
developers' machines and in CI; the tests are skipped where that folder is absent): its line breaks are the PDF's, its links are listed after each page, some are Outlook
safelinks. The only deliberate changes are listed in EDITS, each with the reason.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from newsletter_cli.compose import i18n, merge
from newsletter_cli.compose.build import build, load_theme
from newsletter_cli.project import Project

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference" / "vzhg-nieuwsbrief-2025-09.txt"
if not REFERENCE.is_file():
    pytest.skip(f"the reference text {REFERENCE} is not on this machine", allow_module_level=True)
EXAMPLE = REPO / "editions" / "2025-09" / "edition.yaml"

# Where the example deliberately differs from the reference: `newsletter check` flags vague link texts
# (WCAG 2.4.4), so those three links name their destination; the timetable became a table with a header row.
EDITS = {
    "kunt u gebruikmaken van deze link": "kunt u gebruikmaken van de inschrijfpagina van de Zeeland Academie",
    "Meld je snel aan via deze link": "Meld je snel aan via de aanmeldpagina van Digital Democracy The Hague",
    "Dat kan hier.": "Dat kan hier: SER-advies AI en werk (pdf).",
    "Programma Landelijk Gebied en geven we": "Programma Landelijk Gebied en geven we",
}
TABLE_HEADER = ["Tijd", "Programma"]
SHORT_LINE = 75  # the PDF's body lines are longer; a shorter one ends a block
_ADDRESS_RE = re.compile(r"^(https?://|mailto:)")
_EDGE = ".,:;!?()[]“”\"‘’'|*•–—-_\\ "
_BULLETS = ("•", "*", "-")


def words(text: str) -> list[str]:
    """The words of a text, without the punctuation around them, in lower case; emoji are words. Addresses
    are left out: the plain text puts them on lines of their own, the links are compared separately."""
    out = []
    for raw in text.split():
        word = raw.strip(_EDGE).lower()
        if word and not _ADDRESS_RE.match(word):
            out.append(word)
    return out


def _unwrap(url: str) -> str:
    if "safelinks.protection.outlook.com" in url:
        return parse_qs(urlsplit(url).query)["url"][0]
    return url


def reference() -> tuple[str, list[str]]:
    """The reference's text (PDF line breaks and hyphenation undone) and its links (safelinks unwrapped)."""
    text_lines, links = [], []
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if re.match(r"^(https?://|mailto:)\S+$", stripped):
            links.append(_unwrap(stripped))
        elif stripped:
            text_lines.append(stripped)
    text, previous = "", ""
    for line in text_lines:  # a short line ends a heading, a list item or a paragraph: a boundary ("\n")
        if text.endswith("-") and text[-2:-1].isalpha():  # "Zuid-" + "Holland", "VNG-" + "commissie"
            text += line
        else:
            text += (" " if len(previous) > SHORT_LINE else "\n") + line
        previous = line
    text = "\n".join(" ".join(part.split()) for part in text.split("\n"))
    for before, after in EDITS.items():
        assert before in text, before
        text = text.replace(before, after)
    return text, links


def sentences(text: str) -> list[list[str]]:
    """The reference cut into sentences (and the short lines of agenda and timetable), as word lists."""
    parts = re.split(r"(?<=[.!?])\s+|\n", text)
    # A list's "1." is the <ol>'s own numbering in HTML, not text: not a sentence of its own.
    return [w for w in (words(part) for part in parts) if w and not (len(w) == 1 and w[0].isdigit())]


def find_in_order(needles: list[list[str]], haystack: list[str]) -> list[str]:
    """Each needle as a contiguous run of `haystack`, each after the previous; the ones not found."""
    missing, at = [], 0
    joined = " " + " ".join(haystack) + " "
    offsets = [0]
    for word in haystack:
        offsets.append(offsets[-1] + len(word) + 1)
    for needle in needles:
        where = joined.find(" " + " ".join(needle) + " ", offsets[at])
        if where < 0:
            missing.append(" ".join(needle))
            continue
        at = next(n for n, offset in enumerate(offsets) if offset >= where)
    return missing


class Visible(HTMLParser):
    """The text a reader sees in an HTML page: no <head>, no <style>, no hidden preheader; links collected."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self.hidden = 0
        self.stack: list[bool] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        if tag in ("br", "img", "meta", "link", "hr", "input"):
            self.parts.append(" ")
            return
        hide = tag in ("head", "style", "script", "title") or "display:none" in (values.get("style") or "").replace(" ", "")
        self.stack.append(hide)
        self.hidden += hide
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "img", "meta", "link", "hr", "input"):
            return
        if self.stack:
            self.hidden -= self.stack.pop()
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    return build(EXAMPLE, tmp_path_factory.mktemp("build"), theme=load_theme(Project(REPO)), project=Project.here())


@pytest.fixture(scope="module")
def outputs(built) -> dict[str, tuple[str, list[str]]]:
    """email.html, web.html and email.txt as a reader without own values gets them: (visible text, links)."""
    email_page = Visible(merge.defaults(built.rendered.html, "html"))
    web_page = Visible(built.rendered.web_html)
    text = merge.defaults(built.rendered.text, "text")
    text_links = re.findall(r"(?:https?://|mailto:)\S+|\S+@\S+\.\w+", text)
    return {"email.html": (email_page.text, email_page.links), "web.html": (web_page.text, web_page.links),
            "email.txt": (text, text_links)}


def frame_words(built) -> set[str]:
    """Words the template itself writes: masthead, labels, footer, and the edition's subject and preheader."""
    edition, theme = built.loaded.edition, load_theme(Project(REPO))
    frame = [*i18n.strings(edition.locale).values(), theme.name, theme.short_name, theme.address, theme.website, re.sub(r"^https?://|/$", "", theme.website),
             edition.subject, edition.preheader, i18n.month_year(edition.date, edition.locale), *TABLE_HEADER]
    found = set()
    for text in frame:
        found |= set(words(text.format(name=theme.name) if "{name}" in text else text))
    return found | {"=" * n for n in range(1, 200)} | {"-" * n for n in range(1, 200)}


def test_the_example_holds_every_sentence_of_the_reference_in_order() -> None:
    """The edition.yaml itself (its text fields in reading order), as the tightened coverage test."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    parts = [data["intro"]["heading"], data["intro"]["body"], i18n.month_year(data["date"], "nl")]
    for section in data["sections"]:
        parts.append(section["title"])
        for item in section["items"]:
            parts += [item["title"], item.get("body", ""), item.get("button", {}).get("label", "")]
    parts.append(data["agenda"]["title"])
    for row in data["agenda"]["rows"]:
        days = row["date"] if isinstance(row["date"], list) else [row["date"]]
        parts += [row["what"], i18n.date_list(days, "nl")]
    source = words(re.sub(r"\]\([^)]*\)|[\[\]]", " ", merge.defaults("\n".join(parts), "text")))
    text, _ = reference()
    # The foreword's date line ("september 2025") stands after the foreword in the PDF: compare without it.
    assert find_in_order([s for s in sentences(text) if s != ["september", "2025"]], source) == []


@pytest.mark.parametrize("name", ["email.html", "web.html", "email.txt"])
def test_what_members_read_has_every_sentence_link_emoji_and_date(outputs, name: str) -> None:
    text, links = outputs[name]
    reference_text, reference_links = reference()
    found = words(text)
    # The masthead's "september 2025" comes before the foreword, the PDF puts it after: checked on its own.
    needles = [s for s in sentences(reference_text) if s != ["september", "2025"]]
    assert find_in_order(needles, found) == [], name
    assert "september 2025" in text
    targets = {link.removeprefix("mailto:") for link in links}
    assert [link for link in reference_links if link.strip().removeprefix("mailto:") not in targets] == []
    emoji = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]\ufe0f?")
    assert emoji.findall(text) == emoji.findall(reference_text)


@pytest.mark.parametrize("name", ["email.html", "web.html", "email.txt"])
def test_what_members_read_adds_nothing_but_the_frame(outputs, built, name: str) -> None:
    text, _ = outputs[name]
    reference_words = set(words(reference()[0]))
    extra = set(words(text)) - reference_words - frame_words(built)
    assert extra == set(), name
