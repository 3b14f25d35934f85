"""The project folder: where editions, templates, the theme and `.env` are, and which edition an id means.

One `Project` is made in `cli.py` and handed down (as mkdocs hands its config to `build()`), so the folder and
the settings are read in one place, and the library never falls back to the current folder: every package takes
the project as a required argument (tests pass `Project(folder)`, or `Project(folder).using(settings)`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePath
from urllib.parse import quote, urlencode

from newsletter_cli.envfile import ENV_FILE, RawSettings, read_raw
from newsletter_cli.errors import InputError
from newsletter_cli.settings import Settings, validate

EDITION_FILE = "edition.yaml"
EDITIONS_DIR = "editions"
TEMPLATES_DIR = "templates"
THEME_FILE = "theme.yaml"


def display(path: Path) -> str:
    """A path as the user should see it: relative to the current folder when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def display_dir(path: Path) -> str:
    """A folder as the user should see it, ending in the platform's separator (editions/ or editions\\)."""
    return os.path.join(display(path), "")


def sqlite_uri(path: PurePath, **query: str) -> str:
    """SQLite's `file:` URI for an absolute path (e.g. to open a database read-only with mode=ro).

    pathlib's as_uri() writes a UNC path (\\\\server\\share\\...) as file://server/share/..., which SQLite
    refuses (its URIs take no host). SQLite wants an empty host and the whole path after it:
    file:////server/share/..., file:///C:/Users/..., file:///home/...; %, ? and # are escaped.
    """
    text = path.as_posix()  # /home/x, C:/Users/x, //server/share/x
    if not text.startswith("/"):
        text = f"/{text}"  # a drive letter: /C:/Users/x
    uri = f"file://{quote(text, safe='/:')}"
    return f"{uri}?{urlencode(query)}" if query else uri


@dataclass
class Project:
    """One project folder. Settings are read on first use, so `build` works without a `.env`."""

    root: Path
    editions_dir: Path = field(init=False)
    templates_dir: Path = field(init=False)  # the project's own templates, when it has them
    theme_file: Path = field(init=False)
    env_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.editions_dir, self.templates_dir = self.root / EDITIONS_DIR, self.root / TEMPLATES_DIR
        self.theme_file, self.env_file = self.root / THEME_FILE, self.root / ENV_FILE

    @classmethod
    def here(cls) -> Project:
        """The project in the current folder (where the user runs the commands)."""
        return cls(Path.cwd())

    @cached_property
    def raw(self) -> RawSettings:
        """`.env` and the environment as text, read once; nothing validated yet."""
        return read_raw(self.env_file)

    @cached_property
    def settings(self) -> Settings:
        """Every setting, validated (what `send` and `doctor` need); a bad `.env` line is an error here."""
        return validate(self.raw, self.env_file)

    def using(self, settings: Settings) -> Project:
        """This project folder with `settings` instead of its `.env` (tests and scripts that make their own)."""
        other = Project(self.root)
        other.__dict__["settings"] = settings
        return other

    def reload(self) -> None:
        """Read `.env` again on next use (the preview, which runs while the user edits it)."""
        for name in ("raw", "settings"):
            self.__dict__.pop(name, None)

    @property
    def warnings(self) -> list[str]:
        """Warnings about the settings file (e.g. readable by others), for the command line to print."""
        return self.raw.warnings

    @property
    def archive_base_url(self) -> str | None:
        """ARCHIVE_BASE_URL as written; `build` needs only this setting, so the others are not validated."""
        return self.raw.values.get("ARCHIVE_BASE_URL")

    def setting_text(self, name: str) -> str:
        """One setting as written ('' when not set), for display only (the preview's sender)."""
        return self.raw.values.get(name, "")

    def list_editions(self) -> list[str]:
        """Edition ids, oldest first: YYYY-MM ids by date, after any other folder names (made by hand, or by
        an older version), so that the newest edition is always the latest month."""
        if not self.editions_dir.is_dir():
            return []
        ids = [p.name for p in self.editions_dir.iterdir() if (p / EDITION_FILE).is_file()]
        return sorted(ids, key=lambda name: (re.fullmatch(r"\d{4}-\d{2}", name) is not None, name))

    def resolve(self, edition: str | None) -> Path:
        """The edition.yaml for an edition id, a folder or a file; None means the newest edition."""
        base = self.editions_dir
        if edition is None:
            ids = self.list_editions()
            if not ids:
                raise InputError(f"No editions in {display_dir(base)}. Start one with: newsletter new YYYY-MM")
            return base / ids[-1] / EDITION_FILE
        candidate = Path(edition)
        if candidate.is_file():
            return candidate
        if candidate.is_dir() and (candidate / EDITION_FILE).is_file():
            return candidate / EDITION_FILE
        by_id = base / edition / EDITION_FILE
        if by_id.is_file():
            return by_id
        have = ", ".join(self.list_editions()) or "none"
        raise InputError(f"No edition '{edition}': {display(by_id)} does not exist (editions here: {have}).")

