"""The plain-text part: written from the model, wrapped for reading, every link's URL on its own line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter_cli.compose.load import load
from newsletter_cli.compose.model import Theme
from newsletter_cli.compose.plaintext import markdown_to_text, render_text
from newsletter_cli.compose.render import render

REPO = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"^\s*(https?://|mailto:|\[\[)\S+$")


@pytest.fixture(scope="module")
def example_text() -> str:
    return render(load(REPO / "editions" / "2025-09" / "edition.yaml"), Theme()).text


def long_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > 78 and not URL_LINE.match(line)]


def test_example_wraps_at_78_columns_except_lone_urls(example_text: str) -> None:
    assert long_lines(example_text) == []
    lone_urls = [line for line in example_text.splitlines() if len(line) > 78]
    assert lone_urls and all(URL_LINE.match(line) for line in lone_urls)  # the exception is really used
    assert max(len(line) for line in example_text.splitlines() if not URL_LINE.match(line)) >= 70  # not too narrow


def test_long_everything_wraps(project: Path) -> None:
    long = "woord " * 40
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"subject: x\ndate: 2025-09-25\nintro:\n  heading: '{long}'\n  body: '{long}'\n  signature: '{long}'\n"
        f"sections:\n  - title: '{long}'\n    intro: '{long}'\n    items:\n      - title: '{long}'\n"
        f"        body: '- {long}\n\n          1. {long}'\n"
        f"        event: {{date: 2025-11-21, time: '{long}', location: '{long}'}}\n"
        f"        schedule: [{{time: '09:00', what: '{long}'}}]\n"
        f"        button: {{label: '{long}', url: 'https://vzhg.nl/{'x' * 100}'}}\n"
        f"agenda:\n  title: '{long}'\n  rows:\n    - {{date: 2025-10-01, what: '{long}'}}\n", encoding="utf-8")
    text = render(load(path), Theme(name="Vereniging " * 10)).text
    assert long_lines(text) == []
    assert f"https://vzhg.nl/{'x' * 100}" in text.splitlines()


def test_nested_lists_and_multi_paragraph_items() -> None:
    source = """\
Inleiding.

- Eerste punt

  Tweede alinea van het eerste punt.

- Tweede punt

Na de lijst.

1. een
   - sub a
   - sub b
     1. diep
2. twee
"""
    assert markdown_to_text(source) == """\
Inleiding.

- Eerste punt

  Tweede alinea van het eerste punt.

- Tweede punt

Na de lijst.

1. een
   - sub a
   - sub b
     1. diep
2. twee"""


def test_list_item_text_wraps_under_its_marker() -> None:
    text = markdown_to_text("10. " + "lang " * 30 + "\n")
    lines = text.splitlines()
    assert lines[0].startswith("10. lang") and len(lines) > 1
    assert all(line.startswith("    lang") for line in lines[1:])


def test_link_urls_on_their_own_line_under_the_paragraph() -> None:
    text = markdown_to_text("Zie [de agenda](https://vzhg.nl/agenda/) en [mail ons](mailto:info@vzhg.nl).\n\n"
                            "- [Punt](https://vng.nl/)\n")
    assert text.splitlines() == ["Zie de agenda en mail ons.", "https://vzhg.nl/agenda/", "info@vzhg.nl", "",
                                 "- Punt", "  https://vng.nl/"]


def test_a_bare_url_as_link_text_is_not_repeated() -> None:
    assert markdown_to_text("[https://vzhg.nl/](https://vzhg.nl/)") == "https://vzhg.nl/"


def test_headings_emphasis_and_code() -> None:
    text = markdown_to_text("## Kop\n\n**vet** en *schuin* en `code`\n\n```\nregel 1\n  regel 2\n```\n")
    assert text.splitlines() == ["Kop", "", "vet en schuin en code", "", "regel 1", "  regel 2"]


def test_markdown_table_rows_stay_rows() -> None:
    text = markdown_to_text("| Tijd | Wat |\n| --- | --- |\n| 09:00 | Inloop |\n| 10:00 | [Start](https://a.nl) |\n\nNa")
    assert text.splitlines() == ["Tijd | Wat", "09:00 | Inloop", "10:00 | Start", "https://a.nl", "", "Na"]


def test_hard_line_break_keeps_the_break() -> None:
    assert markdown_to_text("Met vriendelijke groet,  \nJan de Vries\n").splitlines() == [
        "Met vriendelijke groet,", "Jan de Vries"]


def test_raw_html_is_shown_as_text_unless_allowed() -> None:
    assert markdown_to_text("Dit is <b>vet</b>.") == "Dit is <b>vet</b>."


def test_event_schedule_and_buttons_in_text(project: Path) -> None:
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("subject: x\ndate: 2025-09-25\nsections:\n  - title: Bestuur\n    items:\n      - title: Congres\n"
                    "        event: {date: 2025-11-21, time: '09.30 - 12.30 uur', location: Den Haag}\n"
                    "        schedule: [{time: '09:30', what: Inloop}, {time: '10:00 - 11:00', what: Keynote}]\n"
                    "        buttons: [{label: Aanmelden, url: 'https://vzhg.nl/a'}, "
                    "{label: Mail, url: 'mailto:info@vzhg.nl'}]\n", encoding="utf-8")
    loaded = load(path)
    text = render_text(loaded.edition, Theme(), web_url="https://archief.example.org/2025-10/",
                       unsubscribe_url="[[unsubscribe_url]]")
    assert text.splitlines()[:2] == ["Bekijk deze nieuwsbrief in uw browser:", "https://archief.example.org/2025-10/"]
    block = text[text.index("BESTUUR"):]
    assert block.splitlines()[:20] == [
        "BESTUUR", "=======", "", "Congres", "-------", "",
        "Praktische informatie", "Datum: vrijdag 21 november 2025", "Tijd: 09.30 - 12.30 uur", "Locatie: Den Haag", "",
        "Programma", "09:30          Inloop", "10:00 - 11:00  Keynote", "",
        "Aanmelden:", "https://vzhg.nl/a", "", "Mail:", "info@vzhg.nl"]
    assert text.rstrip().endswith("Meld u af:\n[[unsubscribe_url]]")


def test_merge_fields_in_links_are_encoded_as_in_the_html_part(project: Path) -> None:
    """A value with a space and `&` in an https link and in a mailto: link (Markdown and button): the text
    part carries it percent-encoded on one line, as the HTML part's href does, never split at the space."""
    from urllib.parse import unquote

    from newsletter_cli.compose import merge

    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "subject: x\ndate: 2025-09-25\nsections:\n  - title: Bestuur\n    items:\n      - title: Reacties\n"
        "        body: |\n"
        "          [Uw pagina](https://vzhg.nl/reactie?gemeente=[[gemeente|onbekend]]) of\n"
        "          [mail de wethouder](mailto:info@vzhg.nl?subject=Reactie%20wethouder%20[[gemeente]]).\n"
        "        buttons: [{label: Mail ons, url: 'mailto:info@vzhg.nl?subject=Vraag%20[[gemeente]]'}]\n",
        encoding="utf-8")
    rendered = render(load(path), Theme())
    value = {"gemeente": "Gemeente Alphen aan den Rijn & Kaag"}
    text = merge.fill(rendered.text, value, "text")
    html = merge.fill(rendered.html, value, "html")
    encoded = "Gemeente%20Alphen%20aan%20den%20Rijn%20%26%20Kaag"
    lines = text.splitlines()
    expected = [f"https://vzhg.nl/reactie?gemeente={encoded}",
                f"mailto:info@vzhg.nl?subject=Reactie%20wethouder%20{encoded}",
                f"mailto:info@vzhg.nl?subject=Vraag%20{encoded}"]
    for url in expected:
        assert url in lines, (url, text)  # a whole line: the URL is not wrapped
        assert f'href="{url}"' in html  # the same address in both parts
        assert unquote(url).endswith(value["gemeente"])
    assert "Rijn & Kaag" not in text
    assert "mailto:" not in text.replace("mailto:info@vzhg.nl?subject=", "")  # bare addresses stay bare


def test_event_labels_as_text_or_emoji_as_in_the_reference(project: Path) -> None:
    """The reference's two event boxes: "📅 Datum: ..." under "Praktische informatie", and emoji alone
    ("🗓️ 13 november 2025") without a heading; HTML and text both, emoji-only labels named for screen readers."""
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "subject: x\ndate: 2025-09-25\nsections:\n  - title: Bestuur\n    items:\n"
        "      - title: TCAM\n"
        "        event:\n          date: 2025-10-06\n          time: 17.00 – 18.00 uur\n"
        "          location: Online via Teams\n"
        "          labels: {date: 📅 Datum, time: 🕔 Tijd, location: 💻 Locatie}\n"
        "      - title: Festival\n"
        "        event:\n          date: 2025-11-13\n          time: 12.30 – 18.30\n"
        "          location: New Babylon Den Haag\n"
        "          labels: {heading: '', date: 🗓️, time: ⏲️, location: 📍}\n", encoding="utf-8")
    rendered = render(load(path), Theme())
    lines = rendered.text.splitlines()
    start = lines.index("TCAM")
    assert lines[start + 3:start + 7] == ["Praktische informatie", "📅 Datum: maandag 6 oktober 2025",
                                          "🕔 Tijd: 17.00 – 18.00 uur", "💻 Locatie: Online via Teams"]
    start = lines.index("Festival")
    assert lines[start + 3:start + 6] == ["🗓️ donderdag 13 november 2025", "⏲️ 12.30 – 18.30", "📍 New Babylon Den Haag"]
    assert rendered.text.count("Praktische informatie") == 1
    html = rendered.html
    assert re.search(r'<th scope="row" class="nl-label"[^>]*>📅 Datum</th>\s*<td[^>]*>maandag 6 oktober 2025</td>', html)
    assert "aria-label" not in html.split("📅 Datum")[0].rsplit("<th", 1)[1]  # a word needs no name
    assert re.search(r'<th scope="row" class="nl-label"[^>]*aria-label="Datum"[^>]*>🗓️</th>', html)
    assert re.search(r'aria-label="Locatie"[^>]*>📍</th>\s*<td[^>]*>New Babylon Den Haag</td>', html)
    assert html.count("Praktische informatie") == 1
