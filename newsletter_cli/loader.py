"""edition.yaml -> Edition, with every problem reported as `file:line: message`, all at once."""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from . import links, markup
from .errors import Diagnostic, EditionError, InputError
from .model import URL_SCHEMES, Edition, LoadedEdition, YamlPath

MAX_BYTES = 1_000_000  # a real edition is ~30 KB
MAX_NODES = 50_000  # guards against alias bombs ("billion laughs")
EDITION_FILE = "edition.yaml"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL = "tag:yaml.org,2002:null"


def display(path: Path) -> str:
    """A path as the user should see it: relative to the current folder when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def editions_root(root: Path | None = None) -> Path:
    return (root or Path.cwd()) / "editions"


def resolve(edition: str | None, root: Path | None = None) -> Path:
    """The edition.yaml for an edition id, a folder or a file; None means the newest edition."""
    base = editions_root(root)
    if edition is None:
        ids = list_editions(root)
        if not ids:
            raise InputError(f"No editions in {display(base)}/. Start one with: newsletter new YYYY-MM")
        return base / ids[-1] / EDITION_FILE
    candidate = Path(edition)
    if candidate.is_file():
        return candidate
    if candidate.is_dir() and (candidate / EDITION_FILE).is_file():
        return candidate / EDITION_FILE
    by_id = base / edition / EDITION_FILE
    if by_id.is_file():
        return by_id
    have = ", ".join(list_editions(root)) or "none"
    raise InputError(f"No edition '{edition}': {display(by_id)} does not exist (editions here: {have}).")


def list_editions(root: Path | None = None) -> list[str]:
    """Edition ids, oldest first (ids sort by date: YYYY-MM)."""
    base = editions_root(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / EDITION_FILE).is_file())


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
        raise InputError(f"{shown}: this is not a text file. An edition is a YAML text file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{shown}:{line}: the file is not UTF-8 (byte 0x{data[exc.start]:02x}). "
                         "Save it as UTF-8 in your editor.") from None
    if not text.strip():
        raise InputError(f"{shown}: the file is empty. Start from the last edition: newsletter new YYYY-MM")
    return text


def parse_yaml(text: str, shown: str) -> tuple[Any, dict[YamlPath, int], list[Diagnostic]]:
    """YAML text -> plain data (every scalar a string or None) plus the line of each value."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f", column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        hint = ""
        if "\t" in problem or "'\\t'" in problem:
            hint = "; indent with spaces, not tabs"
        elif "mapping values are not allowed" in problem:
            hint = "; put text that contains ': ' between quotes"
        elif "expected a single document" in problem:
            hint = "; remove the '---' line"
        raise EditionError([Diagnostic("error", shown, line, "", f"YAML syntax error{column}: {problem}{hint}")])
    except yaml.YAMLError as exc:
        raise EditionError([Diagnostic("error", shown, None, "", f"YAML error: {exc}")])
    lines: dict[YamlPath, int] = {}
    problems: list[Diagnostic] = []
    budget = [MAX_NODES]

    def build(node: yaml.Node, path: YamlPath) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise EditionError([Diagnostic("error", shown, node.start_mark.line + 1, "",
                                           "the file expands to too much data (nested anchors and aliases?)")])
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        lines.setdefault(path, node.start_mark.line + (2 if block else 1))
        if isinstance(node, yaml.ScalarNode):
            return None if node.tag == _NULL and not node.style else node.value
        if isinstance(node, yaml.SequenceNode):
            return [build(child, (*path, i)) for i, child in enumerate(node.value)]
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Diagnostic("error", shown, key_node.start_mark.line + 1, "",
                                           "a key must be a plain name"))
                continue
            key = key_node.value
            if key in result:
                problems.append(Diagnostic("error", shown, key_node.start_mark.line + 1, "",
                                           f"duplicate key '{key}' (it is also on line {lines[(*path, key)]}); "
                                           "keep one"))
                continue
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = build(value_node, (*path, key))
            if isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">"):
                lines[(*path, key, "#text")] = value_node.start_mark.line + 2
        return result

    return (build(root, ()) if root is not None else None), lines, problems


def _where(data: Any, loc: YamlPath) -> str:
    """'item "Title"' / 'section "Title"' for a location inside the edition, for messages."""

    def title(*keys: str | int) -> str | None:
        try:
            value = data_at(data, keys)["title"]
        except (KeyError, IndexError, TypeError):
            return None
        return value if isinstance(value, str) else None

    if len(loc) >= 4 and loc[0] == "sections" and loc[2] == "items" and isinstance(loc[3], int):
        name = title("sections", loc[1], "items", loc[3])
        return f'item "{name}"' if name else f"item {loc[3] + 1} of section {int(loc[1]) + 1}"
    if len(loc) >= 2 and loc[0] == "sections" and isinstance(loc[1], int):
        name = title("sections", loc[1])
        return f'section "{name}"' if name else f"section {loc[1] + 1}"
    if loc and loc[0] in ("intro", "agenda"):
        return str(loc[0])
    return ""


def _model_at(loc: YamlPath) -> type[BaseModel] | None:
    """The pydantic model that the mapping at `loc` is validated against."""
    current: Any = Edition
    for part in loc:
        while True:  # unwrap Optional/list/Annotated to reach a model
            origin = typing.get_origin(current)
            if origin in (list, typing.Union, typing.Annotated) or str(origin) == "types.UnionType":
                args = [a for a in typing.get_args(current) if a is not type(None)]
                current = args[0] if args else None
                continue
            break
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = current.model_fields[part].annotation
    while typing.get_origin(current) in (list, typing.Union) or str(typing.get_origin(current)) == "types.UnionType":
        args = [a for a in typing.get_args(current) if a is not type(None)]
        current = args[0] if args else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _message(error: dict, loc: YamlPath) -> str:
    kind = error["type"]
    name = str(loc[-1]) if loc and not isinstance(loc[-1], int) else ""
    value = error.get("input")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else (f" (allowed: {', '.join(known)})" if known else "")
        return f"unknown field '{name}'{hint}"
    if kind == "missing":
        return f"missing required field '{name}'"
    if kind.startswith(("date_", "datetime_")):
        return f"'{name}': '{value}' is not a valid date; write it as YYYY-MM-DD, e.g. 2025-11-21"
    if kind == "literal_error" and name == "locale":
        return f"locale '{value}' is not supported; use nl or en"
    if kind in ("list_type", "model_type", "dict_type", "model_attributes_type"):
        wanted = "a list (lines starting with '- ')" if kind == "list_type" else "a group of fields (key: value lines)"
        return f"'{name or loc[-2]}' should be {wanted}, not '{str(value)[:40]}'"
    if kind == "value_error":
        return f"'{name}': {str(error['msg']).removeprefix('Value error, ')}"
    return f"'{name}': {error['msg']}" if name else str(error["msg"])


def validate(data: Any, lines: dict[YamlPath, int], shown: str) -> tuple[Edition | None, list[Diagnostic]]:
    if not isinstance(data, dict):
        return None, [Diagnostic("error", shown, 1, "", "an edition is a set of fields (subject:, date:, sections:, ...)")]
    try:
        return Edition.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            path = loc
            while path and path not in lines:
                path = path[:-1]
            problems.append(Diagnostic("error", shown, lines.get(path), _where(data, loc), _message(error, loc)))
        return None, problems


def _text_fields(edition: Edition) -> list[tuple[YamlPath, str]]:
    """Every Markdown field with its YAML path."""
    fields: list[tuple[YamlPath, str]] = []
    if edition.intro:
        fields += [(("intro", "body"), edition.intro.body), (("intro", "signature"), edition.intro.signature)]
    for s, section in enumerate(edition.sections):
        fields.append((("sections", s, "intro"), section.intro))
        for i, item in enumerate(section.items):
            fields.append((("sections", s, "items", i, "body"), item.body))
    return [(path, text) for path, text in fields if text]


def _check_content(loaded: LoadedEdition) -> list[Diagnostic]:
    """Links inside Markdown and local image files: errors that need the model and the folder."""
    edition, shown, problems = loaded.edition, loaded.display_path, []
    data_for_where = edition.model_dump()
    for path, text in _text_fields(edition):
        first = loaded.lines.get((*path, "#text")) or loaded.line_of(path)
        for href, label, offset in markup.links(text, edition.allow_html):
            if not href.lower().startswith(URL_SCHEMES):
                problems.append(Diagnostic("error", shown, (first or 0) + offset or None, _where(data_for_where, path),
                                           f"link '{label}' points to '{href}', which is not a web or mail address; "
                                           "start it with https://, http:// or mailto:"))
    for s, section in enumerate(edition.sections):
        for i, item in enumerate(section.items):
            if item.image and not item.image.src.lower().startswith(("https://", "http://")):
                path = ("sections", s, "items", i, "image", "src")
                if not (loaded.folder / item.image.src).is_file():
                    problems.append(Diagnostic("error", shown, loaded.line_of(path), f'item "{item.title}"',
                                               f"image '{item.image.src}' does not exist in {display(loaded.folder)}/; "
                                               "put the file there or fix the name"))
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
    data, lines, problems = parse_yaml(text, shown)
    found: list[tuple[YamlPath, str, str]] = []
    clean = _unwrap_safelinks(data, (), found)
    edition, invalid = validate(clean, lines, shown)
    problems += invalid
    if edition is None or problems:
        raise EditionError(sorted(problems, key=lambda p: p.line or 0))
    loaded = LoadedEdition(edition=edition, path=path, display_path=shown, lines=lines)
    problems = _check_content(loaded)
    if problems:
        raise EditionError(problems)
    for loc, wrapped, target in found:
        text_line = loaded.lines.get((*loc, "#text"))
        line = (text_line + next((n for n, row in enumerate(data_at(data, loc).splitlines()) if wrapped in row), 0)
                if text_line else loaded.line_of(loc))
        loaded.safelinks.append(Diagnostic(
            "warning", shown, line, _where(clean, loc),
            f"Outlook safelink unwrapped to {target} (safelinks leak the sender's address and expire)",
            fix=f"replace the link in the YAML by {target}", code="safelink"))
    loaded.warnings.extend(loaded.safelinks)
    return loaded


def data_at(data: Any, loc: YamlPath) -> Any:
    for part in loc:
        data = data[part]
    return data
