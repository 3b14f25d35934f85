"""edition.yaml -> Edition, with every problem reported as `file:line: message`, all at once."""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from newsletter_cli.compose import markdown as markup
from newsletter_cli.compose import safelinks as links
from newsletter_cli.compose import yaml_mistakes as mistakes
from newsletter_cli.compose.merge import FIELD_RE
from newsletter_cli.compose.model import (
    URL_SCHEMES,
    Edition,
    LoadedEdition,
    YamlPath,
    is_web_address,
    iter_texts,
    value_at,
    where,
)
from newsletter_cli.errors import Diagnostic, EditionError, InputError
from newsletter_cli.project import display, display_dir
from newsletter_cli.textfile import decode_utf8

MAX_BYTES = 1_000_000  # a real edition is ~30 KB
MAX_NODES = 50_000  # guards against alias bombs ("billion laughs")
MAX_DEPTH = 40  # an edition is ~8 levels deep; this keeps recursion far from Python's limit
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL = "tag:yaml.org,2002:null"


def read_text(path: Path, shown: str) -> str:
    """The file's text, or an InputError that says what is wrong with it and what to do."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{shown}: the file is {size / 1e6:.1f} MB; an edition is a few dozen KB. "
                             "Is this the right file?")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{shown}: cannot read the file: {exc.strerror}") from None
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise InputError(f"{shown}:{line}: this is not a text file (it contains binary data). "
                         "An edition is a YAML text file.")
    text = decode_utf8(data, shown, "in your editor, Save As with the encoding UTF-8")
    if not text.strip():
        raise InputError(f"{shown}: the file is empty. Start from the last edition: newsletter new YYYY-MM")
    return text


def parse_yaml(text: str, shown: str, warnings: list[Diagnostic] | None = None
               ) -> tuple[Any, dict[YamlPath, int], list[Diagnostic]]:
    """YAML text -> plain data (every scalar a string or None) plus the line of each value; `warnings`
    collects texts that an unquoted ' #' cut short."""
    source = text.splitlines()
    pasted = mistakes.pasted_text(source)
    if pasted:  # what YAML makes of the rest of the file is a consequence: report only this
        raise EditionError([Diagnostic("error", shown, line, "", message) for line, message in pasted])
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        line, message = mistakes.syntax_error(exc, source)
        raise EditionError([Diagnostic("error", shown, line, "", message)]) from None
    except yaml.YAMLError as exc:
        raise EditionError([Diagnostic("error", shown, None, "", f"YAML error: {exc}")]) from None
    lines: dict[YamlPath, int] = {}
    found: list[tuple[int, YamlPath, str]] = []  # (line, where, message): made Diagnostics once built
    budget = [MAX_NODES]

    ancestors: set[int] = set()

    def build(node: yaml.Node, path: YamlPath) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise EditionError([Diagnostic("error", shown, node.start_mark.line + 1, "",
                                           "the file expands to too much data (nested anchors and aliases?)")])
        if id(node) in ancestors:
            raise EditionError([Diagnostic("error", shown, node.start_mark.line + 1, "",
                                           "an alias (*name) refers to the block that contains it; remove it")])
        if len(path) > MAX_DEPTH:
            raise EditionError([Diagnostic("error", shown, node.start_mark.line + 1, "",
                                           f"the file is nested more than {MAX_DEPTH} levels deep; an edition "
                                           "needs fewer than ten")])
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            ancestors.add(id(node))
            try:
                return build_node(node, path)
            finally:
                ancestors.discard(id(node))
        return build_node(node, path)

    def build_node(node: yaml.Node, path: YamlPath) -> Any:
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        lines.setdefault(path, node.start_mark.line + (2 if block else 1))
        if isinstance(node, yaml.ScalarNode):
            if warnings is not None and not node.style and path and isinstance(path[-1], str):
                _comment_cut(node, path)
            return None if node.tag == _NULL and not node.style else node.value
        if isinstance(node, yaml.SequenceNode):
            return [build(child, (*path, i)) for i, child in enumerate(node.value)]
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                found.append((key_node.start_mark.line + 1, path, "a key must be a plain name"))
                continue
            key = key_node.value
            if key in result:
                first = lines[(*path, key)]
                new_entry = mistakes.new_entry_without_dash(path, key, next(iter(result)), first)
                found.append((key_node.start_mark.line + 1, (*path, key),
                              new_entry or f"duplicate key '{key}' (it is also on line {first}); keep one"))
                if new_entry:
                    break  # the rest is the new entry's: its own keys are no duplicates
                continue
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = build(value_node, (*path, key))
            if isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">"):
                lines[(*path, key, "#text")] = value_node.start_mark.line + 2
        return result

    def _comment_cut(node: yaml.ScalarNode, path: YamlPath) -> None:
        end = node.end_mark
        if node.start_mark.line == end.line and end.line < len(source):
            message = mistakes.comment_cut(str(path[-1]), node.value, source[end.line][end.column:])
            if message and warnings is not None:
                warnings.append(Diagnostic("warning", shown, end.line + 1, "", message, code="comment-cut"))

    data = build(root, ()) if root is not None else None
    problems = [Diagnostic("error", shown, line, _place(data, loc), message) for line, loc, message in found]
    return data, lines, problems


def _place(data: Any, loc: YamlPath) -> str:
    """`where()` for a problem of the file; a top-level field ('intro') is named by the message itself."""
    return where(data, loc) if len(loc) > 1 else ""


def _model_at(loc: YamlPath) -> type[BaseModel] | None:
    """The pydantic model that the mapping at `loc` is validated against."""
    current: Any = Edition
    for part in loc:
        while True:  # unwrap Optional/list/Annotated to reach a model
            origin = typing.get_origin(current)
            if origin in (list, typing.Union, typing.Annotated, types.UnionType):
                args = [a for a in typing.get_args(current) if a is not type(None)]
                current = args[0] if args else None
                continue
            break
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = current.model_fields[part].annotation
    while typing.get_origin(current) in (list, typing.Union, types.UnionType):
        args = [a for a in typing.get_args(current) if a is not type(None)]
        current = args[0] if args else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(value: object) -> str:
    """A value as the user typed it, for messages: text is quoted, structures are named."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a group of fields"
    if isinstance(value, list):
        return "a list"
    text = str(value)
    return f"'{text[:40]}...'" if len(text) > 40 else f"'{text}'"


# Words people reach for (often in Dutch) instead of the field names; checked before spelling suggestions.
SYNONYMS = {
    "link": "url", "href": "url", "adres": "url", "text": "label", "tekst": "body", "titel": "title",
    "kop": "title", "onderwerp": "subject", "datum": "date", "tijd": "time", "locatie": "location",
    "plaats": "location", "afbeelding": "image", "plaatje": "image", "knop": "button", "knoppen": "buttons",
    "programma": "schedule", "rubrieken": "sections", "secties": "sections", "berichten": "items",
    "taal": "locale", "language": "locale", "lang": "locale", "wat": "what", "dates": "date",
}


def _suggest(name: str, known: list[str]) -> str | None:
    """The field the user probably meant by `name`, if any."""
    if SYNONYMS.get(name.lower()) in known:
        return SYNONYMS[name.lower()]
    close = difflib.get_close_matches(name, known, n=1)
    return close[0] if close else None


def _fields_at(loc: YamlPath) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model else []


def _message(error: ErrorDetails, loc: YamlPath) -> str:
    """One pydantic error as a sentence a secretary can act on."""
    kind = error["type"]
    names = [part for part in loc if isinstance(part, str)]
    name = names[-1] if names else ""
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = list(model.model_fields) if model else []
        owners = [field for field in known if (child := _model_at((*loc[:-1], field))) and name in child.model_fields]
        if owners:  # `time:` written beside `event:` instead of under it
            under = " or ".join(f"'{field}:'" for field in owners)
            return f"'{name}' is not a field here but of {under}: write it indented under {under}"
        close = _suggest(name, known)
        hint = f" (did you mean '{close}'?)" if close else (f" (allowed: {', '.join(known)})" if known else "")
        return f"unknown field '{name}'{hint}"
    if kind == "missing":
        return f"missing required field '{name}'"
    if kind.startswith(("date_", "datetime_")):
        return f"'{name}': {_describe(value)} is not a valid date; write it as YYYY-MM-DD, e.g. 2025-11-21"
    if kind == "literal_error" and name == "locale":
        return f"locale {_describe(value)} is not supported; use nl or en"
    if kind == "literal_error":
        return f"'{name}' must be one of {ctx.get('expected', '')}, not {_describe(value)}"
    if kind == "list_type":
        return f"'{name}' should be a list (lines starting with '- '), not {_describe(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        entry = f"each entry of '{name}'" if loc and isinstance(loc[-1], int) else f"'{name}'"
        return f"{entry} should be a group of fields (key: value lines), not {_describe(value)}"
    if kind == "string_type":
        if value is None:
            return f"'{name}' is empty; write a text after '{name}:'"
        return f"'{name}' should be a text, not {_describe(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"'{name}' should be true or false, not {_describe(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"'{name}' should be a whole number, not {_describe(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        low, high = ctx.get("gt", ctx.get("ge")), ctx.get("lt", ctx.get("le"))
        bound = f"more than {low}" if low is not None else f"at most {high}"
        return f"'{name}' should be {bound}, not {_describe(value)}"
    if kind == "too_short":
        return f"'{name}' is empty; give at least one value"
    if kind == "string_pattern_mismatch":
        return f"'{name}': {_describe(value)} does not have the right form ({ctx.get('pattern', '')})"
    if isinstance(value, str) and value[:1] in mistakes.CURLY_QUOTES and kind in ("value_error", "url_parsing"):
        return mistakes.curly_quotes(name, value)
    if kind == "value_error":
        return f"'{name}': {str(error['msg']).removeprefix('Value error, ')}"
    return f"'{name}': {error['msg']}" if name else str(error["msg"])


def validate(data: Any, lines: dict[YamlPath, int], shown: str) -> tuple[Edition | None, list[Diagnostic]]:
    if not isinstance(data, dict):
        return None, [Diagnostic("error", shown, 1, "",
                                 "an edition is a set of fields (subject:, date:, sections:, ...)")]
    try:
        return Edition.model_validate(data), []
    except ValidationError as exc:
        problems = []
        errors = exc.errors()
        suggested = {(tuple(e["loc"][:-1]), _suggest(str(e["loc"][-1]), _fields_at(tuple(e["loc"][:-1]))))
                     for e in errors if e["type"] == "extra_forbidden"}
        misplaced = mistakes.misplaced_fields(
            data, lines, [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"], _model_at)
        for error in errors:
            loc = tuple(error["loc"])
            if (error["type"] == "missing" and (loc[:-1], loc[-1]) in suggested) or misplaced.get(loc) == "":
                continue
            path = loc
            while path and path not in lines:
                path = path[:-1]
            message = misplaced.get(loc) or _message(error, loc)
            problems.append(Diagnostic("error", shown, lines.get(path), _place(data, loc), message))
        return None, problems


def _source_line(source: list[str], first: int | None, offset: int, needles: list[str]) -> int | None:
    """The line of a problem inside a text field. `first + offset` is exact for `|` blocks; for quoted or
    folded (`>`) text, whose lines Markdown sees joined, look for the link itself from the field's start."""
    if not first:
        return None
    guess = first + offset
    needles = [n for n in needles if n]
    if 0 < guess <= len(source) and any(n in source[guess - 1] for n in needles):
        return guess
    for number in range(first, min(first + 500, len(source) + 1)):
        if any(n in source[number - 1] for n in needles):
            return number
    return guess


def _check_links(data: Any, lines: dict[YamlPath, int], shown: str, source: list[str] | None = None
                 ) -> list[Diagnostic]:
    """Links inside Markdown: a web or mail address, no spaces, and really a link."""
    source = source or []
    allow_html = isinstance(data, dict) and str(data.get("allow_html", "")).lower() in (
        "true", "yes", "on", "1", "t", "y")
    problems: list[Diagnostic] = []
    for field in iter_texts(data):
        path, text = field.field, field.text
        first = lines.get((*path, "#text")) or lines.get(path)
        for href, label, offset in markup.links(text, allow_html):
            if not href.lower().startswith(URL_SCHEMES) and not FIELD_RE.fullmatch(href):  # [[unsubscribe_url]]
                what = f"link '{label}'" if label else "a link"
                line = _source_line(source, first, offset, [f"]({href}", f"[{label}]", href])
                problems.append(Diagnostic("error", shown, line, field.place,
                                           f"{what} points to '{href}', which is not a web or mail address; "
                                           "start it with https://, http:// or mailto:"))
        for target, label, offset in markup.unparsed_links(text, allow_html):
            if any(ch.isspace() for ch in target):
                why = f"its address '{target}' contains a space: remove it, or write it as %20"
            else:
                why = f"check the brackets around '{target}': write [link text](https://...)"
            line = _source_line(source, first, offset, [f"[{label}]({target}", f"[{label}]"])
            problems.append(Diagnostic("error", shown, line, field.place,
                                       f"link '{label}' is not a link; {why}"))
    return problems


def _check_images(loaded: LoadedEdition) -> list[Diagnostic]:
    """Local image files must exist."""
    problems = []
    for s, section in enumerate(loaded.edition.sections):
        for i, item in enumerate(section.items):
            if item.image and not is_web_address(item.image.src):
                path = ("sections", s, "items", i, "image", "src")
                file = (loaded.folder / item.image.src).resolve()
                if not file.is_relative_to(loaded.folder.resolve()):
                    problems.append(Diagnostic("error", loaded.display_path, loaded.line_of(path),
                                               f'item "{item.title}"',
                                               f"image '{item.image.src}' is outside the edition's folder; put it "
                                               f"in {display_dir(loaded.folder / 'images')} and write images/NAME"))
                elif not file.is_file():
                    problems.append(Diagnostic("error", loaded.display_path, loaded.line_of(path),
                                               f'item "{item.title}"',
                                               f"image '{item.image.src}' does not exist in "
                                               f"{display_dir(loaded.folder)}; put the file there or fix the name"))
    return problems


def _unwrap_safelinks(data: Any, loc: YamlPath, found: list[tuple[YamlPath, str, str]]) -> Any:
    """A copy of `data` with every safelink replaced by its target; `found` collects what was replaced."""
    if isinstance(data, dict):
        return {k: _unwrap_safelinks(v, (*loc, k), found) for k, v in data.items()}
    if isinstance(data, list):
        return [_unwrap_safelinks(v, (*loc, i), found) for i, v in enumerate(data)]
    if isinstance(data, str) and "safelinks" in data.lower():
        text, pairs = links.unwrap_all(data)
        found.extend((loc, wrapped, target) for wrapped, target in pairs)
        return text
    return data


def load(path: Path) -> LoadedEdition:
    """Read, parse and validate one edition; raise EditionError listing every problem."""
    shown = display(path)
    text = read_text(path, shown)
    cut: list[Diagnostic] = []
    data, lines, problems = parse_yaml(text, shown, cut)
    found: list[tuple[YamlPath, str, str]] = []
    clean = _unwrap_safelinks(data, (), found)
    edition, invalid = validate(clean, lines, shown)
    problems += invalid + _check_links(clean, lines, shown, text.splitlines())
    if edition is not None:
        loaded = LoadedEdition(edition=edition, path=path, display_path=shown, lines=lines)
        problems += _check_images(loaded)
    if edition is None or problems:
        raise EditionError(sorted(problems, key=lambda p: p.line or 0))
    for loc, wrapped, target in found:
        text_line = loaded.lines.get((*loc, "#text"))
        line = (text_line + next((n for n, row in enumerate(value_at(data, loc).splitlines()) if wrapped in row), 0)
                if text_line else loaded.line_of(loc))
        loaded.safelinks.append(Diagnostic(
            "warning", shown, line, where(clean, loc),
            f"Outlook safelink unwrapped to {target} (safelinks leak the sender's address and expire)",
            fix=f"replace the link in the YAML by {target}", code="safelink"))
    loaded.warnings.extend(loaded.safelinks + cut)
    return loaded
