"""Merge fields: `[[name]]` or `[[name|default]]` in edition text, filled per recipient after rendering.

One engine for every place a field is filled: the message per recipient, the preview, web.html and the
archive (defaults), the subject and the checks. The email is rendered once; a text is split once at its
fields (`Template`) and filled many times. Each field knows where it stands and its value is escaped for
that place: HTML text, an HTML attribute, a whole URL, part of a URL, plain text or a mail header. Values
are never rescanned, so a value that itself contains `[[...]]` stays as written.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

FIELD_RE = re.compile(r"\[\[\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(?:\|([^\]\[]*))?\]\]")

Kind = Literal["html", "text", "header"]
Place = Literal["html", "attribute", "url", "url-part", "text", "header"]
TEXT_WIDTH = 76  # the plain-text part's line length (as compose/plaintext.py wraps)
URL_ATTRIBUTES = {"href", "src", "action", "background", "cite", "poster"}
SAFE_URL_STARTS = ("https://", "http://", "mailto:", "#", "/")
_ATTRIBUTE_RE = re.compile(r"""([^\s=<>"'/]+)\s*=\s*(["']?)([^"'<>]*)$""")
_TEXT_URL_RE = re.compile(r"(?:https?://|mailto:)\S*$", re.IGNORECASE)
_LIST_MARKER_RE = re.compile(r"^(\s*)((?:- |\* |\d+\. )?)")


def fields(text: str) -> set[str]:
    """The names of the merge fields used in `text`."""
    return {m.group(1) for m in FIELD_RE.finditer(text)}


@dataclass(frozen=True)
class Field:
    """One `[[name|default]]` in a text, with the place it stands (which decides how a value is escaped)."""

    name: str  # lower case: recipients' columns are matched without regard to case
    default: str  # as the reader should see it (unescaped)
    place: Place

    def value(self, values: Mapping[str, str]) -> str:
        """The escaped value for one recipient: theirs, else the default, else ''."""
        return escape(values.get(self.name) or self.default, self.place)


def escape(value: str, place: Place) -> str:
    """`value` made safe and correct where it stands."""
    if place == "html" or place == "attribute":  # the common case first: this runs per recipient
        return html.escape(value, quote=True)
    if place == "header":
        return " ".join(value.split())  # one line: no header injection
    if place == "text":
        return value.replace("\r", " ").replace("\n", " ")
    if place == "url" and not value.strip().lower().startswith(SAFE_URL_STARTS):
        place = "url-part"  # `javascript:...` as a whole address becomes a harmless relative one
    if place == "url-part":
        value = quote(value, safe="@")
    return html.escape(value, quote=True)


def _html_place(text: str, start: int) -> tuple[Place, bool]:
    """Where the field at `start` stands in HTML, and whether its default is HTML-escaped there."""
    tag_start = text.rfind("<", 0, start)
    if tag_start <= text.rfind(">", 0, start):
        return "html", True
    attribute = _ATTRIBUTE_RE.search(text, tag_start, start)
    if attribute is None:
        return "attribute", True
    if attribute.group(1).lower() in URL_ATTRIBUTES:
        return ("url" if not attribute.group(3).strip() else "url-part"), True
    return "attribute", True


def _text_place(text: str, start: int) -> Place:
    line_start = text.rfind("\n", 0, start) + 1
    before = text[line_start:start].split(" ")[-1]
    return "url-part" if before and _TEXT_URL_RE.match(before) else "text"


def _place(text: str, start: int, kind: Kind) -> tuple[Place, bool]:
    if kind == "html":
        return _html_place(text, start)
    if kind == "header":
        return "header", False
    place = _text_place(text, start)
    return ("text" if place == "text" else "url-part"), False


@dataclass(frozen=True)
class Line:
    """A plain-text line that holds fields: filled, then wrapped again (values change its length)."""

    template: Template

    def value(self, values: Mapping[str, str]) -> str:
        filled = self.template.fill(values)
        if len(filled) <= TEXT_WIDTH or " " not in filled.strip():
            return filled
        indent, marker = _LIST_MARKER_RE.match(filled).groups()  # type: ignore[union-attr]  # always matches
        return "\n".join(textwrap.wrap(filled, TEXT_WIDTH, subsequent_indent=indent + " " * len(marker),
                                       initial_indent="", break_long_words=False, break_on_hyphens=False,
                                       drop_whitespace=True)) or filled


Slot = Field | Line


class Template:
    """A text split once at its merge fields: `pieces[0] slot pieces[1] slot ... pieces[-1]`."""

    def __init__(self, text: str, kind: Kind, *, by_line: bool = True):
        self.kind = kind
        self.pieces: list[str] = []
        self.slots: list[Slot] = []
        if kind == "text" and by_line:
            self._split_lines(text)
            return
        start = 0
        for match in FIELD_RE.finditer(text):
            place, escaped = _place(text, match.start(), kind)
            default = (match.group(2) or "").strip()
            self.pieces.append(text[start:match.start()])
            self.slots.append(Field(match.group(1).lower(), html.unescape(default) if escaped else default, place))
            start = match.end()
        self.pieces.append(text[start:])

    def _split_lines(self, text: str) -> None:
        """Plain text: each line with a field is one slot, so it can be wrapped again once filled."""
        static: list[str] = []
        for line in text.splitlines(keepends=True):
            if not FIELD_RE.search(line):
                static.append(line)
                continue
            self.pieces.append("".join(static))
            static = []
            body = line.rstrip("\r\n")
            self.slots.append(Line(Template(body, "text", by_line=False)))
            static.append(line[len(body):])
        self.pieces.append("".join(static))

    def fill(self, values: Mapping[str, str]) -> str:
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:]):
            out += [slot.value(values), piece]
        return "".join(out)


def fill(text: str, values: Mapping[str, str], kind: Kind) -> str:
    """`text` with each field replaced by its value (or its default, or ''), escaped for where it stands."""
    if "[[" not in text:
        return text
    return Template(text, kind).fill({k.lower(): v for k, v in values.items()})


def defaults(text: str, kind: Kind) -> str:
    """What a reader without their own values sees: every field at its default ("Beste lezer,")."""
    return fill(text, {}, kind)
