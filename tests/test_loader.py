"""The loader: each kind of bad edition gets one exact, plain-English message naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.compose.load import load
from newsletter_cli.errors import EditionError, InputError
from newsletter_cli.project import Project

from helpers import assert_no_traceback

F = "editions/x/edition.yaml"  # as the messages show it, relative to the project folder

HEAD = 'subject: "Nieuwsbrief"\ndate: 2025-09-25\n'  # lines 1-2 of most cases below


def item(*lines: str) -> str:
    """An edition whose only item (line 6 onwards) has the given lines; its title is on line 6."""
    body = "".join(f"        {line}\n" for line in lines)
    return HEAD + "sections:\n  - title: Bestuur\n    items:\n      - title: Congres\n" + body


# (id, edition.yaml text, the exact problem lines the user must see)
CASES = [
    ("unknown field with suggestion", HEAD + "sections:\n  - title: Bestuur\n    items:\n"
     "      - title: Najaarscongres\n        tittle: x\n",
     [f'{F}:7: item "Najaarscongres": unknown field \'tittle\' (did you mean \'title\'?)']),
    ("typo of a required field is reported once", HEAD + "sections:\n  - title: Bestuur\n    items:\n"
     "      - tittle: Congres\n",
     [f"{F}:6: item 1 of section 1: unknown field 'tittle' (did you mean 'title'?)"]),
    ("unknown top-level field lists the allowed ones", HEAD + "colour: red\n",
     [f"{F}:3: unknown field 'colour' (allowed: subject, preheader, date, locale, allow_html, intro, "
      "sections, agenda)"]),
    ("unknown field in a button", item("button: {label: Aanmelden, link: 'https://vzhg.nl/'}"),
     [f'{F}:7: item "Congres": unknown field \'link\' (did you mean \'url\'?)']),
    ("Dutch field name", item("datum: 2025-11-21"),
     [f'{F}:7: item "Congres": unknown field \'datum\' (allowed: title, body, image, event, schedule, button, '
      "buttons)"]),
    ("Dutch field name in an event", item("event: {datum: 2025-11-21}"),
     [f'{F}:7: item "Congres": unknown field \'datum\' (did you mean \'date\'?)']),
    ("YAML syntax: unclosed bracket", HEAD + "sections: [\n",
     [f"{F}:4: YAML syntax error, column 1: did not find expected node content; a '[' or '{{' is not closed, "
      "or a comma is missing"]),
    ("YAML syntax: unclosed quote", 'subject: "Nieuwsbrief\ndate: 2025-09-25\n',
     [f"{F}:1: YAML syntax error, column 10: the quote that starts here is never closed; add the closing quote"]),
    ("YAML syntax: indentation", HEAD + "sections:\n  - title: Bestuur\n   items: []\n",
     [f"{F}:5: 'items:' is indented 3 spaces, which lines up with none of the fields above it: give it the "
      "indentation of the fields it belongs with, 4 spaces like 'title:' on line 4, or 0 spaces like 'sections:' "
      "on line 3"]),
    ("YAML syntax: colon in unquoted text", "subject: Thema: weerbaar\ndate: 2025-09-25\n",
     [f"{F}:1: YAML syntax error, column 15: mapping values are not allowed in this context; "
      "put text that contains ': ' between quotes"]),
    ("tab indentation", HEAD + "sections:\n\t- title: Bestuur\n",
     [f"{F}:4: YAML syntax error, column 1: found character that cannot start any token; "
      "indent with spaces, not tabs"]),
    ("two documents", HEAD + "---\nsubject: twee\n",
     [f"{F}:3: YAML syntax error, column 1: but found another document; remove the '---' line"]),
    ("duplicate key", HEAD + "subject: nog een\n",
     [f"{F}:3: duplicate key 'subject' (it is also on line 1); keep one"]),
    ("duplicate key in an item", item("body: een", "body: twee"),
     [f"{F}:8: item \"Congres\": duplicate key 'body' (it is also on line 7); keep one"]),
    ("missing subject", "date: 2025-09-25\n", [f"{F}:1: missing required field 'subject'"]),
    ("missing titles", HEAD + "sections:\n  - items:\n      - body: tekst\n",
     [f"{F}:4: section 1: missing required field 'title'",
      f"{F}:5: item 1 of section 1: missing required field 'title'"]),
    ("image without alt", item("image: {src: 'https://vzhg.nl/a.png'}"),
     [f'{F}:7: item "Congres": missing required field \'alt\'']),
    ("sections is a text", HEAD + "sections: Vanuit het bestuur\n",
     [f"{F}:3: 'sections' should be a list (lines starting with '- '), not 'Vanuit het bestuur'"]),
    ("items is a text", HEAD + "sections:\n  - title: Bestuur\n    items: geen\n",
     [f"{F}:5: section \"Bestuur\": 'items' should be a list (lines starting with '- '), not 'geen'"]),
    ("intro is a text", HEAD + "intro: Beste lezer\n",
     [f"{F}:3: 'intro' should be a group of fields (key: value lines), not 'Beste lezer'"]),
    ("agenda row is a text", HEAD + "agenda:\n  title: Agenda\n  rows:\n    - 2025-10-01 vergadering\n",
     [f"{F}:6: agenda: each entry of 'rows' should be a group of fields (key: value lines), "
      "not '2025-10-01 vergadering'"]),
    ("subject is a list", "subject: [a, b]\ndate: 2025-09-25\n",
     [f"{F}:1: 'subject' should be a text, not a list"]),
    ("subject is empty", "subject:\ndate: 2025-09-25\n",
     [f"{F}:1: 'subject' is empty; write a text after 'subject:'"]),
    ("line break in the subject (header injection)", 'subject: "Nieuws\\nBcc: x@example.org"\ndate: 2025-09-25\n',
     [f"{F}:1: 'subject': contains a line break; write it on one line"]),
    ("NUL in the subject", 'subject: "Nieuws\\0"\ndate: 2025-09-25\n',
     [f"{F}:1: 'subject': contains a control character (such as a tab or NUL); remove it"]),
    ("allow_html is not a yes/no", HEAD + "allow_html: misschien\n",
     [f"{F}:3: 'allow_html' should be true or false, not 'misschien'"]),
    ("image width is not a number", item("image: {src: 'https://vzhg.nl/a.png', alt: '', width: breed}"),
     [f"{F}:7: item \"Congres\": 'width' should be a whole number, not 'breed'"]),
    ("image wider than the email", item("image: {src: 'https://vzhg.nl/a.png', alt: '', width: 900}"),
     [f"{F}:7: item \"Congres\": 'width' should be at most 600, not '900'"]),
    ("no dates in an agenda row", HEAD + "agenda:\n  title: Agenda\n  rows:\n    - {date: [], what: x}\n",
     [f"{F}:6: agenda: 'date' is empty; give at least one value"]),
    ("impossible date", "subject: x\ndate: 2025-02-30\n",
     [f"{F}:2: 'date': '2025-02-30' is not a valid date; write it as YYYY-MM-DD, e.g. 2025-11-21"]),
    ("date in words", "subject: x\ndate: morgen\n",
     [f"{F}:2: 'date': 'morgen' is not a valid date; write it as YYYY-MM-DD, e.g. 2025-11-21"]),
    ("impossible event date in a list", item("event: {date: [2025-11-21, 2025-13-01]}"),
     [f"{F}:7: item \"Congres\": 'date': '2025-13-01' is not a valid date; write it as YYYY-MM-DD, "
      "e.g. 2025-11-21"]),
    ("unsupported locale", HEAD + "locale: de\n", [f"{F}:3: locale 'de' is not supported; use nl or en"]),
    ("button URL without scheme", item("button: {label: Aanmelden, url: 'www.vzhg.nl'}"),
     [f"{F}:7: item \"Congres\": 'url': 'www.vzhg.nl' is not a web or mail address: start it with "
      "https://, http:// or mailto:"]),
    ("button URL with a space", item("button: {label: Aanmelden, url: 'https://vzhg.nl/de agenda'}"),
     [f"{F}:7: item \"Congres\": 'url': 'https://vzhg.nl/de agenda' contains a space: remove it, "
      "or write it as %20"]),
    ("button javascript: URL", item("buttons:", "  - {label: Klik, url: 'javascript:alert(1)'}"),
     [f"{F}:8: item \"Congres\": 'url': 'javascript:alert(1)' is not a web or mail address: start it "
      "with https://, http:// or mailto:"]),
    ("Markdown link without scheme", item("body: |", "  Eerste alinea.", "", "  Zie [de site](vzhg.nl/agenda)."),
     [f"{F}:10: item \"Congres\": link 'de site' points to 'vzhg.nl/agenda', which is not a web or mail "
      "address; start it with https://, http:// or mailto:"]),
    ("Markdown javascript: link", item("body: |", "  [klik](javascript:alert(1))"),
     [f"{F}:8: item \"Congres\": link 'klik' points to 'javascript:alert(1)', which is not a web or mail "
      "address; start it with https://, http:// or mailto:"]),
    ("Markdown link with a space", item("body: |", "  Tekst", "  en [de agenda](https://vzhg.nl/de agenda)."),
     [f"{F}:9: item \"Congres\": link 'de agenda' is not a link; its address 'https://vzhg.nl/de agenda' "
      "contains a space: remove it, or write it as %20"]),
    ("Markdown link in the intro", HEAD + "intro:\n  body: |\n    Lees [dit](ftp://vzhg.nl/x).\n",
     [f"{F}:5: intro: link 'dit' points to 'ftp://vzhg.nl/x', which is not a web or mail address; "
      "start it with https://, http:// or mailto:"]),
    ("a list at top level", "- subject: x\n- date: 2025-09-25\n",
     [f"{F}:1: an edition is a set of fields (subject:, date:, sections:, ...)"]),
    ("only a comment", "# nog leeg\n", [f"{F}:1: an edition is a set of fields (subject:, date:, sections:, ...)"]),
    ("a key that is a list", HEAD + "[a]: b\n", [f"{F}:3: a key must be a plain name"]),
    ("missing local image", item("image: {src: images/nope.jpg, alt: ''}"),
     [f"{F}:7: item \"Congres\": image 'images/nope.jpg' does not exist in editions/x/; put the file there "
      "or fix the name"]),
    ("bad link in folded text (>) points at its own line",
     item("body: >", "  Eerste regel", "  tweede regel met [een link](ftp://x.nl/a)", "  derde."),
     [f"{F}:9: item \"Congres\": link 'een link' points to 'ftp://x.nl/a', which is not a web or mail address; "
      "start it with https://, http:// or mailto:"]),
    ("bad link in quoted text over two lines", item('body: "Eerste regel', '  tweede [b](https://a b) regel"'),
     [f"{F}:8: item \"Congres\": link 'b' is not a link; its address 'https://a b' contains a space: remove it, "
      "or write it as %20"]),
    ("local image outside the edition folder", item("image: {src: ../../theme.yaml, alt: ''}"),
     [f"{F}:7: item \"Congres\": image '../../theme.yaml' is outside the edition's folder; put it in "
      "editions/x/images/ and write images/NAME"]),
    ("all problems of a file at once",
     "subjct: x\ndate: 2025-02-30\nlocale: fr\nsections:\n  - title: Bestuur\n    items:\n"
     "      - title: Congres\n        body: '[a](ftp://x)'\n        button: {label: L, url: 'www.x.nl'}\n",
     [f"{F}:1: unknown field 'subjct' (did you mean 'subject'?)",
      f"{F}:2: 'date': '2025-02-30' is not a valid date; write it as YYYY-MM-DD, e.g. 2025-11-21",
      f"{F}:3: locale 'fr' is not supported; use nl or en",
      f"{F}:8: item \"Congres\": link 'a' points to 'ftp://x', which is not a web or mail address; start it "
      "with https://, http:// or mailto:",
      f"{F}:9: item \"Congres\": 'url': 'www.x.nl' is not a web or mail address: start it with https://, "
      "http:// or mailto:"]),
]


def write(project: Path, text: str | bytes, edition_id: str = "x") -> Path:
    path = project / "editions" / edition_id / "edition.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_edition_gets_exact_messages(project: Path, text: str, expected: list[str]) -> None:
    path = write(project, text)
    with pytest.raises(EditionError) as caught:
        load(path)
    assert [str(p) for p in caught.value.problems] == expected
    head = f"{len(expected)} problem{'s' if len(expected) > 1 else ''} in the edition; nothing was built:"
    assert caught.value.format_message().splitlines() == [head, *expected]
    assert caught.value.exit_code == 2


# Problems with the file itself: one message, InputError (exit status 2).
FILE_CASES = [
    ("not UTF-8", "subject: café\ndate: 2025-09-25\n".encode("cp1252"),
     f"{F}:1: the file is not UTF-8 (byte 0xe9); it looks like Windows-1252 ('subject: café'). Save it as UTF-8: in your editor, Save As with the encoding UTF-8."),
    ("not UTF-8 further down", "subject: x\ndate: 2025-09-25\nintro:\n  body: Zoë\n".encode("latin-1"),
     f"{F}:4: the file is not UTF-8 (byte 0xeb); it looks like Windows-1252 ('body: Zoë'). Save it as UTF-8: in your "
     "editor, Save As with the encoding UTF-8."),
    ("empty", b"", f"{F}: the file is empty. Start from the last edition: newsletter new YYYY-MM"),
    ("only blank lines", b"\n  \n\n", f"{F}: the file is empty. Start from the last edition: newsletter new YYYY-MM"),
    ("binary", b"subject: x\n\x89PNG\x00\x01\x02", f"{F}:2: this is not a text file (it contains binary data). "
     "An edition is a YAML text file."),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_unreadable_file_gets_one_message(project: Path, data: bytes, expected: str) -> None:
    path = write(project, data)
    with pytest.raises(InputError) as caught:
        load(path)
    assert caught.value.format_message() == expected
    assert caught.value.exit_code == 2


def test_utf8_with_bom_and_windows_line_ends_load(project: Path) -> None:
    path = write(project, b"\xef\xbb\xbfsubject: Caf\xc3\xa9\r\ndate: 2025-09-25\r\nlocale: en\r\n")
    edition = load(path).edition
    assert (edition.subject, edition.locale, edition.date.isoformat()) == ("Café", "en", "2025-09-25")


def test_line_numbers_survive_windows_line_ends(project: Path) -> None:
    path = write(project, "subject: x\r\ndate: 2025-09-25\r\n\r\nlocale: xx\r\n")
    with pytest.raises(EditionError) as caught:
        load(path)
    assert [p.line for p in caught.value.problems] == [4]


def test_billion_laughs_is_refused(project: Path) -> None:
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, prev in zip("bcdefghi", "abcdefgh"):
        rows.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(project, "\n".join(rows) + "\n")
    with pytest.raises(EditionError) as caught:
        load(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{F}:1: the file expands to too much data (nested anchors and aliases?)"]  # where the anchor is


def test_yaml_tags_are_not_executed(project: Path) -> None:
    """A python/object tag is data (a string to validate), never constructed."""
    path = write(project, 'subject: !!python/object/apply:os.system ["touch pwned"]\ndate: 2025-09-25\n')
    with pytest.raises(EditionError) as caught:
        load(path)
    assert [str(p) for p in caught.value.problems] == [f"{F}:1: 'subject' should be a text, not a list"]
    assert not (project / "pwned").exists()


def test_missing_edition(project: Path) -> None:
    with pytest.raises(InputError) as caught:
        Project(project).resolve("2031-01")
    assert caught.value.format_message() == (
        "No edition '2031-01': editions/2031-01/edition.yaml does not exist (editions here: 2025-09).")


def test_no_editions_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        Project.here().resolve(None)
    assert caught.value.format_message() == "No editions in editions/. Start one with: newsletter new YYYY-MM"


def test_resolve_accepts_id_folder_and_file(project: Path) -> None:
    wanted = (project / "editions" / "2025-09" / "edition.yaml").resolve()
    for given in ("2025-09", "editions/2025-09", "editions/2025-09/edition.yaml", str(wanted)):
        assert Project(project).resolve(given).resolve() == wanted


def test_the_example_loads_without_problems(project: Path) -> None:
    loaded = load(Project(project).resolve("2025-09"))
    assert loaded.warnings == []
    assert [len(s.items) for s in loaded.edition.sections] == [5, 4, 4, 3]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES[:6] + CASES[-1:]],
                         ids=[c[0] for c in CASES[:6] + CASES[-1:]])
def test_cli_reports_every_problem_with_exit_status_2(project: Path, text: str, expected: list[str]) -> None:
    write(project, text)
    result = CliRunner().invoke(cli, ["build", "x"])
    assert result.exit_code == 2
    assert result.output.splitlines()[1:] == expected
    assert result.output.startswith("Error: ")
    assert_no_traceback(result)
    assert not (project / "editions" / "x" / "build").exists()


def test_example_typo_in_the_real_edition(project: Path) -> None:
    """The issue's own example: a typo in the shipped edition names the item and its line."""
    path = project / "editions" / "2025-09" / "edition.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('      - title: "Najaarscongres 21 november"\n',
                        '      - title: "Najaarscongres 21 november"\n        tittle: x\n', 1)
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("        tittle: x") + 1
    with pytest.raises(EditionError) as caught:
        load(path)
    assert [str(p) for p in caught.value.problems] == [
        f"editions/2025-09/edition.yaml:{line}: item \"Najaarscongres 21 november\": unknown field 'tittle' "
        "(did you mean 'title'?)"]


def test_what_the_mistake_finder_must_leave_alone(project: Path) -> None:
    """Comments written as comments, a comment at column 0 after a `|` text, a key that follows one, text
    indented deeper than its first line: no error, no warning."""
    text = (HEAD.replace("2025-09-25", "2025-09-25  # the day it goes out") + "intro:\n  body: |\n    Eerste.\n\n"
            "      Dieper ingesprongen.\n# een opmerking\n  signature: Het bestuur  # wie tekent\n"
            "sections:\n  - title: \"Vergadering #3\"\n    items:\n      - title: 'Nr. #4'\n        body: >\n"
            "          Gevouwen tekst.\n        event:\n          date: 2025-11-21\n          time: 10.00 uur\n")
    loaded = load(write(project, text))
    assert loaded.warnings == []
    assert loaded.edition.intro.signature == "Het bestuur"
    assert [s.title for s in loaded.edition.sections] == ["Vergadering #3"]
    assert loaded.edition.sections[0].items[0].event.time == "10.00 uur"


def test_a_field_beside_its_group_names_the_group(project: Path) -> None:
    with pytest.raises(EditionError) as caught:
        load(write(project, item("time: 10.00 uur")))
    assert [str(p) for p in caught.value.problems] == [
        (f"{F}:7: item \"Congres\": 'time' is not a field here but of 'event:' or 'schedule:': write it "
         "indented under 'event:' or 'schedule:'")]


def test_curly_quotes_around_a_hash_are_named_as_curly_quotes(project: Path) -> None:
    loaded = load(write(project, HEAD + "sections:\n  - title: “Vergadering #3”\n"))
    assert [str(w) for w in loaded.warnings] == [
        (f"{F}:4: the text after 'title:' is between curly quotes (“...”), which YAML does not take for quotes "
         "(Word and Outlook type them): use straight quotes, title: \"Vergadering #3\"")]


def test_a_first_line_not_indented_under_a_folded_text(project: Path) -> None:
    with pytest.raises(EditionError) as caught:
        load(write(project, HEAD + "intro:\n  body: >\nEerste regel zonder inspringing.\n"))
    assert [str(p) for p in caught.value.problems] == [
        (f"{F}:5: this line is not indented, so YAML ends the 'body: >' text of line 4 above it and cannot read "
         "this line: indent it (and every line pasted with it) by 4 spaces, 2 more than 'body:'")]
