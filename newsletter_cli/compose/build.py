"""The build stage: load -> render -> write, shared by `build`, `preview` and `send`.

The project's theme.yaml is read once per build and the Build carries it (`Build.theme`): the checks, the
send's postal-address check and the record of what was built all use that one copy.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import ValidationError

from newsletter_cli.compose.images import Fitted, fit_images
from newsletter_cli.compose.load import load, parse_yaml, read_text
from newsletter_cli.compose.model import LoadedEdition, Theme, YamlPath, is_web_address
from newsletter_cli.compose.render import Rendered, render
from newsletter_cli.errors import InputError
from newsletter_cli.project import Project, display, display_dir

OUTPUT_FILES = ("email.html", "email.txt", "email.mjml", "web.html")


@dataclass
class ThemeFile:
    """The house style a build used: theme.yaml as read (once), or the built-in style (`file` empty)."""

    theme: Theme = field(default_factory=Theme)
    file: str = ""  # theme.yaml as the user sees its path, when the project has one
    text: str = ""  # its text, for the line numbers of the checks' findings

    @cached_property
    def lines(self) -> dict[YamlPath, int]:
        """The line of each value in theme.yaml (what a finding about the house style points at)."""
        return parse_yaml(self.text, self.file)[1] if self.file else {}


@dataclass
class Build:
    loaded: LoadedEdition
    rendered: Rendered
    out_dir: Path
    images: list[Fitted] = field(default_factory=list)  # local images made fit to send (smaller, no EXIF)
    theme: ThemeFile = field(default_factory=ThemeFile)  # the house style it was built with


def load_theme(project: Project) -> Theme:
    """theme.yaml in the project folder, or the default house style."""
    return read_theme(project).theme


def read_theme(project: Project) -> ThemeFile:
    """theme.yaml in the project folder, read and validated once (or the default house style)."""
    path = project.theme_file
    if not path.is_file():
        return ThemeFile()
    shown = display(path)
    text = read_text(path, shown)
    try:
        data = yaml.safe_load(text) or {}
        theme = Theme.model_validate(data)
    except yaml.YAMLError as exc:
        raise InputError(f"{shown}: YAML syntax error: {exc}") from None
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{shown}: {details}") from None
    for key, logo in (("logo", theme.logo), ("logo_dark", theme.logo_dark)):
        if not logo or is_web_address(logo):
            continue
        if not (path.parent / logo).resolve().is_relative_to(path.parent.resolve()):
            # the logo travels with every message: a path out of the project folder could attach any file
            line = next((n for n, row in enumerate(text.splitlines(), 1) if re.match(rf"\s*{key}\s*:", row)), None)
            raise InputError(f"{shown}{f':{line}' if line else ''}: {key} '{logo}' is outside the project folder "
                             f"({display_dir(path.parent)}); copy the file into that folder and write its name "
                             "there, e.g. logo: logo.png")
        if not (path.parent / logo).is_file():
            raise InputError(f"{shown}: {key} '{logo}' does not exist in {display_dir(path.parent)}; "
                             "put the file there or fix the name")
    return ThemeFile(theme, shown, text)


def archive_url(project: Project, edition_id: str) -> str | None:
    """The edition's page in the published archive, when ARCHIVE_BASE_URL is set (environment or .env)."""
    base = project.archive_base_url
    return f"{base.rstrip('/')}/{edition_id}/" if base else None


def build(edition_yaml: Path, out_dir: Path | None = None, theme: ThemeFile | Theme | None = None, *,
          project: Project) -> Build:
    """Build one edition and write its files; raises EditionError on bad input. Local photos are made fit to
    send (compose/images.py), cached in the build folder, the originals untouched."""
    built = build_in_memory(edition_yaml, theme, project=project)
    if out_dir is not None:
        built.out_dir = out_dir
    built.images = fit_images(built.loaded, built.theme.theme, built.rendered, built.out_dir)
    write_outputs(built.rendered, built.out_dir)
    return built


def build_in_memory(edition_yaml: Path, theme: ThemeFile | Theme | None = None, *, project: Project) -> Build:
    """Load and render, writing nothing (what `check` needs); `out_dir` is where `build` would write. Without
    `theme`, the project's theme.yaml (read here, once); a bare Theme is a house style without a file."""
    used = read_theme(project) if theme is None else theme if isinstance(theme, ThemeFile) else ThemeFile(theme)
    loaded = load(edition_yaml)
    rendered = render(loaded, used.theme, web_url=archive_url(project, loaded.id), root=project.root)
    return Build(loaded, rendered, loaded.folder / "build", theme=used)


def fingerprint(rendered: Rendered) -> str:
    """Identifies one build's content (what a test send approved); short enough to show."""
    digest = hashlib.sha256(rendered.html.encode("utf-8") + b"\0" + rendered.text.encode("utf-8"))
    return digest.hexdigest()[:16]


def write_outputs(rendered: Rendered, target: Path) -> None:
    """Write the four files atomically: a reader never sees half a file."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, content in zip(OUTPUT_FILES, (rendered.html, rendered.text, rendered.mjml, rendered.web_html)):
            tmp = target / f".{name}.tmp"
            tmp.write_text(content, encoding="utf-8")
            tmp.replace(target / name)
    except OSError as exc:
        raise InputError(f"Cannot write the build to {display(target)}: {exc.strerror}") from None
