"""The edition as typed data: what `edition.yaml` may contain, and nothing else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from newsletter_cli.errors import Diagnostic

URL_SCHEMES = ("https://", "http://", "mailto:")


def is_web_address(src: str) -> bool:
    """An image or logo given as an http(s) address (any case), not as a file that travels with the email."""
    return src.lower().startswith(("http://", "https://"))


def _check_url(value: str) -> str:
    value = value.strip()
    if not value.lower().startswith(URL_SCHEMES):
        raise ValueError(f"'{value}' is not a web or mail address: start it with https://, http:// or mailto:")
    if any(ch.isspace() for ch in value):
        raise ValueError(f"'{value}' contains a space: remove it, or write it as %20")
    return value


def _one_line(value: str) -> str:
    """A mail header: one line, no control characters (a line break would let text into the headers)."""
    value = value.strip()
    if any(ch in "\r\n\u2028\u2029" for ch in value):
        raise ValueError("contains a line break; write it on one line")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("contains a control character (such as a tab or NUL); remove it")
    return value


def _one_or_more(value: object) -> object:
    return value if isinstance(value, list) else [value]


Url = Annotated[str, AfterValidator(_check_url)]
OneLine = Annotated[str, AfterValidator(_one_line)]
Dates = Annotated[list[dt.date], BeforeValidator(_one_or_more), Field(min_length=1)]


class Strict(BaseModel):
    """Unknown keys are errors; numbers are accepted where text is expected (`title: 2025`)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


class Button(Strict):
    label: str
    url: Url


class Image(Strict):
    src: str
    alt: str  # required; "" marks a decorative image
    width: int | None = Field(default=None, gt=0, le=600)
    link: Url | None = None


class EventLabels(Strict):
    """The event box's own words, when the edition writes them: text ("Wanneer"), an emoji ("📅") or both
    ("📅 Datum"); an empty heading leaves the heading out. Unset: the template's words for the locale."""

    heading: str | None = None
    date: str | None = None
    time: str | None = None
    location: str | None = None


class Event(Strict):
    date: Dates
    time: str | None = None
    location: str | None = None
    labels: EventLabels = EventLabels()


class ScheduleRow(Strict):
    time: str
    what: str


class Item(Strict):
    title: str
    body: str = ""
    image: Image | None = None
    event: Event | None = None
    schedule: list[ScheduleRow] = []
    button: Button | None = None
    buttons: list[Button] = []

    @property
    def all_buttons(self) -> list[Button]:
        return ([self.button] if self.button else []) + list(self.buttons)


class Section(Strict):
    title: str
    intro: str = ""
    items: list[Item] = []


class Intro(Strict):
    heading: str = ""
    body: str = ""
    signature: str = ""


class AgendaRow(Strict):
    date: Dates
    what: str


class Agenda(Strict):
    title: str
    rows: list[AgendaRow] = []


class Edition(Strict):
    subject: OneLine
    preheader: str = ""
    date: dt.date
    locale: Literal["nl", "en"] = "nl"
    allow_html: bool = False  # raw HTML in Markdown is escaped unless this is true
    intro: Intro | None = None
    sections: list[Section] = []
    agenda: Agenda | None = None


# The colours the templates use besides the theme's; `newsletter check` measures the theme's contrast against them.
WHITE = "#ffffff"  # the content background, and text on the primary colour (masthead, buttons)
MUTED = "#52606d"  # the grey of the footer and of the 'view in your browser' line
TEMPLATE_COLOURS = {"white": WHITE, "muted": MUTED}


# The built-in default footer address: fine for a first look, never for a real send. A bulk sender must
# show its real postal address (the law and the big mail providers require it); `check` and `send` refuse this.
PLACEHOLDER_ADDRESS = "Postbus 00000, 2500 AA Den Haag"


class Theme(Strict):
    """House style: one place for the association's name, colours, logo and footer."""

    name: str = "Vereniging Zuid-Hollandse Gemeenten"
    short_name: str = "VZHG"
    website: Url = "https://vzhg.nl/"
    address: str = PLACEHOLDER_ADDRESS
    logo: str | None = None  # a local path relative to the project, or an https URL
    logo_width: int = Field(default=160, gt=0, le=600)
    logo_dark: str | None = None  # optional: the logo for dark mode (e.g. a light version), same size
    primary: str = Field(default="#00566e", pattern=r"^#[0-9a-fA-F]{6}$")
    accent: str = Field(default="#e8a33d", pattern=r"^#[0-9a-fA-F]{6}$")
    text: str = Field(default="#1f2933", pattern=r"^#[0-9a-fA-F]{6}$")
    background: str = Field(default="#f2f4f5", pattern=r"^#[0-9a-fA-F]{6}$")
    font: str = "Segoe UI, Helvetica, Arial, sans-serif"


YamlPath = tuple[str | int, ...]


def value_at(data: Any, path: YamlPath) -> Any:
    """The value at `path` in an Edition or in the raw YAML data (dicts and lists); None when it is not there."""
    for key in path:
        if isinstance(data, BaseModel) and isinstance(key, str):
            data = getattr(data, key, None)
        elif isinstance(data, dict) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, (list, tuple)) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def where(data: Any, path: YamlPath) -> str:
    """The label of a place in an edition, for messages: 'item "Title"', 'section "Title"', 'intro', 'agenda'
    or '' for the edition as a whole. Works on the raw YAML data too (a title may be missing there)."""

    def title(*keys: str | int) -> str | None:
        value = value_at(data, (*keys, "title"))
        return value if isinstance(value, str) else None

    if len(path) >= 4 and path[0] == "sections" and path[2] == "items" and isinstance(path[3], int):
        name = title("sections", path[1], "items", path[3])
        return f'item "{name}"' if name else f"item {path[3] + 1} of section {int(path[1]) + 1}"
    if len(path) >= 2 and path[0] == "sections" and isinstance(path[1], int):
        name = title("sections", path[1])
        return f'section "{name}"' if name else f"section {path[1] + 1}"
    if path and path[0] in ("intro", "agenda"):
        return str(path[0])
    return ""


@dataclass(frozen=True)
class Text:
    """One Markdown field of an edition: its YAML path, its text and the label of its place."""

    field: YamlPath
    text: str
    place: str


def iter_texts(data: Any) -> Iterator[Text]:
    """Every non-empty Markdown field in reading order: the one list of what is Markdown in an edition.

    `data` is an Edition or the raw YAML data (the loader checks links before validation, so that they are
    reported together with every other problem of the file).
    """
    def seq(value: Any) -> list[Any]:
        return list(value) if isinstance(value, (list, tuple)) else []

    paths: list[YamlPath] = [("intro", "body"), ("intro", "signature")]
    for s, section in enumerate(seq(value_at(data, ("sections",)))):
        paths.append(("sections", s, "intro"))
        paths += [("sections", s, "items", i, "body") for i in range(len(seq(value_at(section, ("items",)))))]
    for path in paths:
        text = value_at(data, path)
        if isinstance(text, str) and text:
            yield Text(path, text, where(data, path))


@dataclass
class LoadedEdition:
    """An edition as loaded from disk: the model plus where each value came from."""

    edition: Edition
    path: Path  # the edition.yaml file
    display_path: str  # as shown in messages, e.g. editions/2025-09/edition.yaml
    lines: dict[YamlPath, int] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)
    safelinks: list[Diagnostic] = field(default_factory=list)  # what the loader unwrapped

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def id(self) -> str:
        return self.path.parent.name

    def line_of(self, path: YamlPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)
