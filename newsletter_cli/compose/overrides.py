"""The project's own copies of the email templates: which exist, copying one, and whether it is out of date.

A project's `templates/` holds only the templates the secretariat changed; every other one comes from the
installed program, so an upgrade (an Outlook or dark-mode fix) reaches them. A copy starts with a header line
that records which version of the program's file it was copied from (a short hash), so that `build` and
`check` can say when the program's own template changed after the copy was made.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from newsletter_cli.compose.templating import TEMPLATES, email_template_files
from newsletter_cli.errors import InputError
from newsletter_cli.project import TEMPLATES_DIR, display

HISTORY = Path(__file__).with_name("template_history.json")
INCLUDE = re.compile(r"""\{%-?\s*(?:include|import|from)\s+["']([^"']+)["']""")
HEADER = re.compile(r"^\{#\s*copied from newsletter (?P<version>\S+) \((?P<name>[^,()]+), (?P<hash>[0-9a-f]{16})\)")


def digest(data: bytes) -> str:
    """A template's identity: the same text with Windows line ends or a BOM (Notepad) hashes the same."""
    data = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()[:16]


def program_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsletter")
    except PackageNotFoundError:
        return "0+unknown"


@lru_cache(maxsize=1)
def _history() -> dict[str, list[str]]:
    """Hashes of the templates older versions shipped (their `init` copied every one, without a header)."""
    data: dict[str, list[str]] = json.loads(HISTORY.read_text(encoding="utf-8"))["templates"]
    return data


@dataclass(frozen=True)
class Template:
    """One of the program's templates, and the project's copy of it when there is one."""

    name: str  # e.g. partials/footer.mjml.j2
    copy: Path | None
    state: str  # "the program's", "the project's copy", "copy out of date", "unchanged copy", ...
    outdated: str = ""  # why the copy is out of date, for a warning; "" when it is not


def _name_of(value: str) -> str:
    name = value.replace("\\", "/").strip()
    name = name.removeprefix(f"{TEMPLATES_DIR}/")
    names = [p.as_posix() for p in email_template_files()]
    if name not in names:
        matches = [n for n in names if n.rsplit("/", 1)[-1] == name]
        if len(matches) != 1:
            raise InputError(f"'{value}' is not one of the program's templates; `newsletter templates` lists them "
                             "(e.g. partials/footer.mjml.j2)")
        name = matches[0]
    return name


def header(name: str) -> str:
    """The first line of a copy: where it came from. A Jinja comment, so it never reaches the email."""
    return (f"{{# copied from newsletter {program_version()} ({name}, {digest((TEMPLATES / name).read_bytes())}) "
            "by `newsletter templates copy`. Keep this line: `newsletter build` uses it to tell you when the "
            "program's own version of this template changes. #}\n")


def copy(templates_dir: Path, value: str) -> Path:
    """Copy one of the program's templates into the project, with the header; never overwrites."""
    name = _name_of(value)
    target = templates_dir / name
    if target.exists():
        raise InputError(f"{display(target)} already exists; the project uses it instead of the program's. To start "
                         f"again from the program's: delete it (or rename it) and run this command again.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source = (TEMPLATES / name).read_text(encoding="utf-8")
        target.write_text(header(name) + source, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"Cannot write {display(target)}: {exc.strerror or exc}") from None
    return target


def includes_from_program(templates_dir: Path, value: str) -> list[str]:
    """The templates a project copy includes that still come from the program (a copied email.mjml.j2 uses the
    program's partials/dark.css.j2: changing the classes in one and not the other mixes old and new)."""
    name = _name_of(value)
    path = templates_dir / name
    text = path.read_text(encoding="utf-8-sig", errors="replace") if path.is_file() else ""
    return [found for found in dict.fromkeys(INCLUDE.findall(text)) if not (templates_dir / found).is_file()]


def program_text(value: str) -> str:
    """The program's own version of a template (to compare with a copy)."""
    return (TEMPLATES / _name_of(value)).read_text(encoding="utf-8")


def templates(templates_dir: Path) -> list[Template]:
    """Every template of the program, with the state of the project's copy."""
    return [_state(templates_dir, rel.as_posix()) for rel in email_template_files()]


def _state(templates_dir: Path, name: str) -> Template:
    path = templates_dir / name
    if not path.is_file():
        return Template(name, None, "the program's")
    current = digest((TEMPLATES / name).read_bytes())
    data = path.read_bytes()
    first = data.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    found = HEADER.match(first)
    if found:
        if found["hash"] == current:
            return Template(name, path, "the project's copy")
        return Template(name, path, "copy out of date", (
            f"copied from newsletter {found['version']}; the program's own {name} has changed since (now "
            f"newsletter {program_version()}), so the email lacks those improvements"))
    mine = digest(data)
    if mine == current:
        return Template(name, path, "unchanged copy", (
            "an unchanged copy of the program's template: after an upgrade it keeps the email at this version"))
    if mine in _history().get(name, ()):
        return Template(name, path, "copy out of date", (
            "an unchanged copy of an older version of the program's template (made by `newsletter init` before "
            "0.2.0); the program's own has changed since, so the email lacks those improvements"))
    return Template(name, path, "the project's copy (made by an older version: cannot tell whether the "
                                "program's has changed since)")


def outdated(templates_dir: Path) -> list[Template]:
    """The project's copies that keep the email at an older version of the program's template."""
    return [t for t in templates(templates_dir) if t.outdated]


def fix_for(template: Template) -> str:
    if template.state == "unchanged copy" or "unchanged copy" in template.outdated:
        return "delete it to use the program's own"
    return (f"compare it with `newsletter templates show {template.name}`, make your change again in a fresh copy "
            f"(delete yours, then `newsletter templates copy {template.name}`), or delete it to use the program's")
