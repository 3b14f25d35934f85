"""The YAML mistakes people make when they edit an edition by hand, recognised from the text around the place
where the parser or the validator stopped, so that the message names the real mistake and its line.

The parser's own words ("could not find expected ':'", "mapping values are not allowed here") describe where
it got lost, often lines after the mistake, and suggest nothing a secretary can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from pydantic import BaseModel

from newsletter_cli.compose.model import (
    Agenda,
    AgendaRow,
    Button,
    Edition,
    Event,
    Image,
    Intro,
    Item,
    ScheduleRow,
    Section,
    YamlPath,
    value_at,
)

MODELS: tuple[type[BaseModel], ...] = (Edition, Intro, Section, Item, Image, Event, ScheduleRow, Button, Agenda,
                                       AgendaRow)
FIELD_NAMES = frozenset(name for model in MODELS for name in model.model_fields)
CURLY_QUOTES = "“”„‟‘’‚‛«»"
# `key:` at the start of a line, after any list dashes: (indent of the key, key, the rest of the line)
_KEY = re.compile(r"^((?: *- +)* *)([A-Za-z_][\w-]*):(?=\s|$)(.*)$")
_BLOCK = re.compile(r"^((?: *- +)* *)([A-Za-z_][\w-]*): *([|>])[-+0-9]* *(?:#.*)?$")
_NO_SPACE = re.compile(r"^((?: *- +)* *)([A-Za-z_][\w-]*):([\"'\w“‘].*)$")
ENTRY = {"items": "item", "sections": "section", "rows": "agenda row", "schedule": "schedule row",
         "buttons": "button"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _structural(line: str) -> bool:
    """A line that YAML may well take as part of the structure: a key, a list entry, a comment, `---`; or one
    indented with a tab, which has a message of its own."""
    stripped = line.strip()
    if "\t" in line[:_indent(line) + 1]:
        return True
    if stripped.startswith("- "):  # an entry: a group of fields, a date, a {...}; not a pasted bullet point
        entry = stripped.lstrip("- ")
        return bool(_KEY.match(entry)) or entry[:1] in "{[\"'&*!" or bool(re.match(r"\d{4}-\d", entry))
    return bool(_KEY.match(line)) or stripped.startswith(("#", "---", "...")) or stripped == "-"


def pasted_text(lines: list[str]) -> list[tuple[int, str]]:
    """Text that belongs to a `body: |` block but starts at a smaller indent than the block's first line
    (a paragraph pasted at column 0): YAML ends the block there and reads the text as structure."""
    found: list[tuple[int, str]] = []
    number = 0
    while number < len(lines):
        header = _BLOCK.match(lines[number])
        number += 1
        if not header:
            continue
        key_indent = len(header.group(1))
        content = next((n for n in range(number, len(lines)) if lines[n].strip()), None)
        if content is None:
            break
        block_indent = max(_indent(lines[content]), key_indent + 1)
        end = next((n for n in range(content, len(lines))
                    if lines[n].strip() and _indent(lines[n]) < block_indent), None)
        if end is not None and not _structural(lines[end]):
            spaces, like = ((block_indent, "like the text above") if end > content
                            else (key_indent + 2, f"2 more than '{header.group(2)}:'"))
            found.append((end + 1, (f"this line is not indented, so YAML ends the '{header.group(2)}: "
                                    f"{header.group(3)}' text of line {number} above it and cannot read this "
                                    f"line: indent it (and every line pasted with it) by {spaces} spaces, {like}")))
        number = end if end is not None else len(lines)
    return found


def syntax_error(exc: yaml.MarkedYAMLError, source: list[str]) -> tuple[int | None, str]:
    """(line, message) for a YAML syntax error: the mistake that caused it when the text shows it, else the
    parser's words with a hint for the usual cause."""
    mark = exc.problem_mark or exc.context_mark
    explained = explain_syntax_error(source, mark.line, mark.column) if mark else None
    if explained:
        return explained
    line = mark.line + 1 if mark else None
    column = f", column {mark.column + 1}" if mark else ""
    problem = exc.problem or exc.context or "invalid YAML"
    context = exc.context or ""
    at = source[mark.line][mark.column:mark.column + 1] if mark and mark.line < len(source) else ""
    hint = ""
    if at == "\t" or "'\\t'" in problem:
        hint = "; indent with spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        hint = "; put text that contains ': ' between quotes"
    elif "expected a single document" in context or "another document" in problem:
        hint = "; remove the '---' line"
    elif "quoted scalar" in context and exc.context_mark:
        opened = exc.context_mark
        line, column = opened.line + 1, f", column {opened.column + 1}"
        problem = "the quote that starts here is never closed; add the closing quote"
    elif ("flow mapping" in context or "flow sequence" in context) and exc.context_mark:
        hint = (f"; a '[' or '{{' opened on line {exc.context_mark.line + 1} is not closed, "
                "or a comma is missing")
    elif "flow" in context:
        hint = "; a '[' or '{' is not closed, or a comma is missing"
    elif "block" in context:
        hint = "; check the indentation: this line does not line up with the lines above it"
    return line, f"YAML syntax error{column}: {problem}{hint}"


def explain_syntax_error(lines: list[str], line: int, column: int) -> tuple[int, str] | None:
    """(line, message) for a syntax error the parser reported at `line`/`column` (both 0-based), when the text
    shows which mistake caused it."""
    if line >= len(lines) or "\t" in lines[line][:_indent(lines[line]) + 1]:
        return None
    for number in _this_and_previous(lines, line):
        missing_space = _NO_SPACE.match(lines[number])
        if missing_space and missing_space.group(2) in FIELD_NAMES:
            key, value = missing_space.group(2), missing_space.group(3)
            return number + 1, (f"put a space after '{key}:': YAML reads '{key}:{value[:20]}' as one piece of "
                                f"text. Write {key}: {value}")
    text = lines[line]
    key = _KEY.match(text)
    if key:
        value = key.group(3).strip()
        if value[:1] in CURLY_QUOTES:
            return line + 1, curly_quotes(key.group(2), value)
        key_column = len(key.group(1))
        if key.group(2) in FIELD_NAMES and column <= key_column + len(key.group(2)):
            return line + 1, _misaligned(lines, line, key_column, key.group(2))
    return None


def curly_quotes(key: str, value: str) -> str:
    """The message for a value typed between curly quotes, with the line as it should be."""
    closed = len(value) > 1 and value[-1] in CURLY_QUOTES + "\"'"  # “...” or a mix such as “..."
    inner = value[1:-1] if closed else value[1:]
    straight = '"' + inner.replace("\\", "\\\\").replace('"', '\\"') + '"'
    shown = f"{value[0]}...{value[-1]}" if closed else f"{value[0]}..."
    return (f"the text after '{key}:' is between curly quotes ({shown}), which YAML does not take for quotes "
            f"(Word and Outlook type them): use straight quotes, {key}: {straight}")


def _this_and_previous(lines: list[str], line: int) -> Iterable[int]:
    """The error's line and the nearest line above it that holds something (the parser often stops one late)."""
    yield line
    above = next((n for n in range(line - 1, -1, -1) if lines[n].strip() and not lines[n].lstrip().startswith("#")),
                 None)
    if above is not None:
        yield above


def _misaligned(lines: list[str], line: int, column: int, key: str) -> str:
    """'date:' indented to no level of the fields above it: name the levels it could have meant."""
    levels: dict[int, tuple[str, int]] = {}
    for number in range(line - 1, -1, -1):
        match = _KEY.match(lines[number])
        if match:
            levels.setdefault(len(match.group(1)), (match.group(2), number + 1))
            if len(match.group(1)) < column:
                break  # the field that this one belongs under, or beside
    options = [f"{_spaces(indent)} like '{name}:' on line {number}"
               for indent, (name, number) in sorted(levels.items(), reverse=True)[:2]]
    return (f"'{key}:' is indented {_spaces(column)}, which lines up with none of the fields above it: give it the "
            f"indentation of the fields it belongs with, {', or '.join(options)}")


def _spaces(count: int) -> str:
    return f"{count} space" if count == 1 else f"{count} spaces"


def new_entry_without_dash(path: YamlPath, key: str, first_key: str, line: int) -> str | None:
    """A duplicate key that starts a new list entry whose `- ` is missing (a second `title:` in one item):
    'keep one' would delete the new entry."""
    if not (len(path) >= 2 and isinstance(path[-1], int) and isinstance(path[-2], str)):
        return None
    if key != first_key and key != "title":
        return None
    kind = ENTRY.get(path[-2], "entry")
    return (f"a second '{key}:' in one {kind} (the first is on line {line}): to start a new {kind}, write '- ' "
            f"before '{key}:' on this line, the dash right under the one on line {line}")


def misplaced_fields(data: Any, lines: dict[YamlPath, int], unknown: list[YamlPath],
                     model_at: Callable[[YamlPath], type[BaseModel] | None]) -> dict[YamlPath, str]:
    """Unknown fields that are fields of a neighbour (`time:` under `event:` not indented): the message for
    the first of each group, "" for the others. The caller drops the errors these explain."""
    out: dict[YamlPath, str] = {}
    groups: dict[YamlPath, list[YamlPath]] = {}
    for loc in unknown:
        parent = loc[:-1]
        mapping = value_at(data, parent)
        if not isinstance(mapping, dict):
            continue
        owner = next((key for key in mapping if key != loc[-1] and (model := model_at((*parent, key)))
                      and str(loc[-1]) in model.model_fields), None)
        if owner is not None:
            groups.setdefault((*parent, owner), []).append(loc)
    for owner_loc, locs in groups.items():
        owner = str(owner_loc[-1])
        locs.sort(key=lambda loc: lines.get(loc, 0))
        names = " and ".join(f"'{loc[-1]}:'" for loc in locs)
        verb = "belongs" if len(locs) == 1 else "belong"
        value = value_at(data, owner_loc)
        inside = next(iter(value), None) if isinstance(value, dict) else None
        them = "it" if len(locs) == 1 else "them"
        if inside is not None:
            how = f"indent {them} like '{inside}:' on line {lines.get((*owner_loc, inside))}"
        else:
            how = f"'{owner}:' is empty: indent {them} 2 spaces more than '{owner}:'"
        out[locs[0]] = f"{names} {verb} to '{owner}:' on line {lines.get(owner_loc)}; {how}"
        out.update(dict.fromkeys(locs[1:], ""))
        out.update({(*owner_loc, str(loc[-1])): "" for loc in locs})  # its "missing required field" errors
    return out


def comment_cut(key: str, value: str, rest_of_line: str) -> str | None:
    """A warning when an unquoted text stops at ' #' (YAML starts a comment there) and the comment reads like
    the rest of the text ('title: Vergadering #3'), not like a note ('date: 2025-10-23  # the day it goes')."""
    comment = rest_of_line.lstrip()
    if not comment.startswith("#") or key in {"date", "width", "locale", "allow_html"}:
        return None
    if rest_of_line.startswith("  ") and comment[1:2] == " ":  # '  # note': a comment written as one
        return None
    if value[:1] in CURLY_QUOTES:  # “Vergadering #3”: the quotes were meant to keep the '#'
        return curly_quotes(key, f"{value}{rest_of_line}".rstrip())
    return (f"the text of '{key}' stops before '{comment[:30]}': an unquoted ' #' starts a comment in YAML, so "
            f"'{key}' is '{value}'. Put the whole text between quotes: {key}: \"{value} {comment}\" (a note meant "
            "as a comment: two spaces before the '# ')")
