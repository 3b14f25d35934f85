"""Content cannot inject markup or templates: every text field renders literally, in HTML and text, and
never breaks the build (MRML is a strict XML parser)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from test_render import Page

from newsletter_cli.compose.load import load
from newsletter_cli.compose.model import Theme
from newsletter_cli.compose.render import render

PAYLOAD = ("A & B < C > D \"q\" 'a' {{ 7*7 }} {% if true %}IF{% endif %} <script>alert(1)</script> "
           "<img src=x onerror=alert(2)> </mj-text></mj-column> ]]> <![CDATA[ x <!-- c --> &amp; &#60;")

BASE = {
    "subject": "Onderwerp",
    "preheader": "Voorvertoning",
    "date": "2025-09-25",
    "intro": {"heading": "Beste lezer,", "body": "Inleiding.", "signature": "De voorzitter"},
    "sections": [{
        "title": "Bestuur", "intro": "Over het bestuur.",
        "items": [{
            "title": "Congres", "body": "Tekst.",
            "image": {"src": "https://example.org/a.png", "alt": "Foto"},
            "event": {"date": "2025-11-21", "time": "09:30", "location": "Den Haag"},
            "schedule": [{"time": "09:30", "what": "Inloop"}],
            "button": {"label": "Aanmelden", "url": "https://vzhg.nl/agenda/"},
        }],
    }],
    "agenda": {"title": "Agenda", "rows": [{"date": "2025-10-01", "what": "Bestuursvergadering"}]},
}

FIELDS = [
    ("subject",), ("preheader",), ("intro", "heading"), ("intro", "body"), ("intro", "signature"),
    ("sections", 0, "title"), ("sections", 0, "intro"), ("sections", 0, "items", 0, "title"),
    ("sections", 0, "items", 0, "body"), ("sections", 0, "items", 0, "image", "alt"),
    ("sections", 0, "items", 0, "event", "time"), ("sections", 0, "items", 0, "event", "location"),
    ("sections", 0, "items", 0, "schedule", 0, "time"), ("sections", 0, "items", 0, "schedule", 0, "what"),
    ("sections", 0, "items", 0, "button", "label"), ("agenda", "title"), ("agenda", "rows", 0, "what"),
]
MARKDOWN = {("intro", "body"), ("intro", "signature"), ("sections", 0, "intro"), ("sections", 0, "items", 0, "body")}


def write(project: Path, data: dict) -> Path:
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def with_value(path: tuple, value: str) -> dict:
    data = copy.deepcopy(BASE)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def assert_inert(html: str) -> Page:
    """No element or attribute came from the content: no script, no event handler, no stray img."""
    page = Page(html)
    assert "script" not in [tag for tag, _ in page.tags]
    handlers = [(tag, name) for tag, attrs in page.tags for name in attrs if name.lower().startswith("on")]
    assert handlers == []
    assert [attrs.get("src") for tag, attrs in page.tags if tag == "img" and attrs.get("src") == "x"] == []
    assert "mj-" not in "".join(tag for tag, _ in page.tags)
    return page


@pytest.mark.parametrize("field", FIELDS, ids=[".".join(map(str, f)) for f in FIELDS])
def test_payload_in_every_field_renders_literally(project: Path, field: tuple) -> None:
    result = render(load(write(project, with_value(field, PAYLOAD))), Theme())
    for html in (result.html, result.web_html):
        page = assert_inert(html)
        if field[-1] == "alt":
            assert [a["alt"] for t, a in page.tags if t == "img" and a.get("src", "").startswith("https:")] == [PAYLOAD]
            continue
        # What the reader sees is the text as typed; Markdown fields decode entities (&amp; is "&"), as
        # CommonMark says, the others show them as typed.
        shown = " ".join(PAYLOAD.split())
        if field in MARKDOWN:
            shown = shown.replace("&amp; &#60;", "& <")
        assert shown in page.text
        assert "49" not in page.text.replace("2025", "")
    text = " ".join(result.text.split())
    if field[-1] != "alt" and field not in (("preheader",), ("subject",)):  # those two are headers/hidden
        expected = " ".join(PAYLOAD.split())
        if field in MARKDOWN:
            expected = expected.replace("&amp; &#60;", "& <")
        if field == ("sections", 0, "title"):
            expected = expected.upper()
        assert expected in text
    assert "IF{% endif %}" in result.mjml or field[-1] == "alt"


def test_template_syntax_in_the_theme_is_not_evaluated(project: Path) -> None:
    theme = Theme(name="Vereniging {{ 7*7 }} <script>x</script>", address="Postbus {% if 1 %}1{% endif %} &")
    result = render(load(write(project, BASE)), theme)
    page = assert_inert(result.html)
    assert "Vereniging {{ 7*7 }} <script>x</script>" in page.text
    assert "Postbus {% if 1 %}1{% endif %} &" in page.text
    assert "Vereniging {{ 7*7 }} <script>x</script>" in result.text


def test_raw_html_in_markdown_is_escaped_by_default(project: Path) -> None:
    data = with_value(("sections", 0, "items", 0, "body"), 'Dit is <b class="x">vet</b> en <em>schuin</em>.')
    result = render(load(write(project, data)), Theme())
    page = Page(result.html)
    assert page.text_of.get("b", []) == []
    assert 'Dit is <b class="x">vet</b> en <em>schuin</em>.' in page.text


def test_raw_html_in_markdown_is_kept_when_allowed(project: Path) -> None:
    data = with_value(("sections", 0, "items", 0, "body"), 'Dit is <b class="x">vet</b>.')
    data["allow_html"] = True
    result = render(load(write(project, data)), Theme())
    assert Page(result.html).text_of["b"] == ["vet"]
    assert "<b" not in Page(result.html).text


def test_allowed_raw_html_that_mrml_cannot_parse_is_an_error_not_a_traceback(project: Path) -> None:
    from newsletter_cli.errors import EditionError

    data = with_value(("sections", 0, "items", 0, "body"), "Regel<br>twee <span>open")
    data["allow_html"] = True
    path = write(project, data)
    with pytest.raises(EditionError) as caught:
        render(load(path), Theme())
    (problem,) = caught.value.problems
    assert problem.where == 'item "Congres"' and problem.line is not None
    assert "close every tag" in problem.message
    line = path.read_text(encoding="utf-8").splitlines()[problem.line - 1]
    assert "Regel<br>" in line


def test_javascript_link_in_allowed_raw_html_is_refused(project: Path) -> None:
    from newsletter_cli.errors import EditionError

    data = with_value(("sections", 0, "items", 0, "body"), '<a href="javascript:alert(1)">klik</a>')
    data["allow_html"] = True
    with pytest.raises(EditionError) as caught:
        load(write(project, data))
    assert [p.message for p in caught.value.problems] == [
        "a link points to 'javascript:alert(1)', which is not a web or mail address; start it with https://, "
        "http:// or mailto:"]


@pytest.mark.parametrize("href", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>",
                                  "vbscript:msgbox", "file:///etc/passwd"])
def test_dangerous_markdown_links_are_refused(project: Path, href: str) -> None:
    from newsletter_cli.errors import EditionError

    data = with_value(("sections", 0, "items", 0, "body"), f"[klik]({href})")
    with pytest.raises(EditionError) as caught:
        load(write(project, data))
    assert len(caught.value.problems) == 1 and "not a web or mail address" in caught.value.problems[0].message
