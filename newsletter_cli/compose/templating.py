"""The email's templates: the package's own, overridden file by file by the project's `templates/` folder.

A secretariat changes the house layout by copying a template into `<project>/templates/` (``newsletter templates
copy``) and editing it. A mistake there must read like any other input error: the file, the
line and the problem, never a traceback.
"""

from __future__ import annotations

import re
import traceback
from functools import lru_cache
from pathlib import Path

import jinja2

from newsletter_cli.errors import InputError
from newsletter_cli.project import TEMPLATES_DIR, display
from newsletter_cli.textfile import decode_utf8

TEMPLATES = Path(__file__).parent / "templates"
_MJ_TAG = re.compile(r"<(/?)(mj-[a-z-]+)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*?(/?)>")
_JINJA_BLOCK = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)


def environment(override: Path | None = None) -> jinja2.Environment:
    """The Jinja environment: `override` (a project's templates/ folder) first, then the package's templates."""
    folder = str(override.resolve()) if override is not None and override.is_dir() else None
    return _environment(folder)


@lru_cache(maxsize=1)
def bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs in the user's cache folder, so a build does not compile them again
    (Jinja checks each template's source, so an edited template is compiled anew). None when it cannot be made."""
    from platformdirs import user_cache_path

    folder = user_cache_path("newsletter", appauthor=False) / "jinja2"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


@lru_cache(maxsize=8)
def _environment(override: str | None) -> jinja2.Environment:
    # utf-8-sig: a template saved by Notepad as "UTF-8 with BOM" must not start the email with a stray U+FEFF.
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(override, encoding="utf-8-sig")] if override else []
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        bytecode_cache=bytecode_cache(),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=True,  # the preview picks up an edited template without a restart
    )


def email_template_files() -> list[Path]:
    """The package's email templates (what a project may override), relative to TEMPLATES."""
    return sorted(p.relative_to(TEMPLATES) for p in TEMPLATES.rglob("*.j2") if p.name != "new_edition.yaml.j2")


def overridden(override: Path | None) -> list[Path]:
    """The project's templates that replace one of the package's, as files."""
    if override is None or not override.is_dir():
        return []
    return [override / rel for rel in email_template_files() if (override / rel).is_file()]


def render_template(override: Path | None, name: str, data: dict[str, object]) -> str:
    """Render one template (`override`: the project's templates/ folder); a broken template raises InputError
    naming its file and line."""
    try:
        return environment(override).get_template(name).render(data)
    except UnicodeDecodeError:  # a project template saved in Windows-1252: say which, and where
        for path in overridden(override):
            decode_utf8(path.read_bytes(), display(path), "in Notepad, Save As with Encoding: UTF-8",
                        what="the template")
        raise
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(_problem(exc.filename, exc.lineno, exc.message or str(exc))) from None
    except jinja2.TemplateNotFound as exc:
        raise InputError(f"a template includes '{exc.name}', which is neither in "
                         f"{display(Path(TEMPLATES_DIR))} nor built in; fix the name in the include") from None
    except Exception as exc:  # raised while rendering: UndefinedError, TypeError, ...
        filename, line = _template_frame(exc)
        if filename is None:
            raise
        raise InputError(_problem(filename, line, f"{type(exc).__name__}: {exc}")) from None


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost traceback frame that runs a template file (Jinja maps it to the template's line)."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(".j2") and Path(frame.filename).is_file():
            found = (frame.filename, frame.lineno)
    return found


def _problem(filename: str | None, line: int | None, message: str) -> str:
    place = display(Path(filename)) if filename else "a template"
    place = f"{place}:{line}" if line else place
    hint = ("fix the template, or delete it to go back to the built-in one"
            if filename and not _is_builtin(Path(filename)) else "this is a bug in newsletter; please report it")
    return f"{place}: {message} ({hint})"


def _is_builtin(path: Path) -> bool:
    try:
        path.resolve().relative_to(TEMPLATES.resolve())
    except ValueError:
        return False
    return True


def mjml_problem(override: Path | None, detail: str) -> str | None:
    """When MJML cannot compile the email and the project overrides templates: which template (and line,
    when its <mj-...> tags do not pair up) is to blame. None when no override is involved."""
    files = overridden(override)
    if not files:
        return None
    for path in files:
        line = unbalanced_line(path.read_text(encoding="utf-8", errors="replace"))
        if line is not None:
            return _problem(str(path), line, f"MJML cannot compile the email ({detail}): an <mj-...> tag here "
                                             "is not closed, or closed twice")
    names = ", ".join(display(p) for p in files)
    return (f"MJML cannot compile the email ({detail}); the problem is in one of the project's templates: {names} "
            "(check that every <mj-...> tag is closed, or delete a template to go back to the built-in one)")


def unbalanced_line(source: str) -> int | None:
    """The line of the first <mj-...> tag that does not pair up in a template, ignoring Jinja code."""
    text = _JINJA_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), source)
    stack: list[tuple[str, int]] = []
    for match in _MJ_TAG.finditer(text):
        closing, name, selfclosing = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        if selfclosing:
            continue
        if not closing:
            stack.append((name, line))
        elif not stack or stack[-1][0] != name:
            return line
        else:
            stack.pop()
    return stack[-1][1] if stack else None
