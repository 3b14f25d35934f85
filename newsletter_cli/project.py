"""The project folder: where editions live, and which edition.yaml an id, a folder or a file means."""

from __future__ import annotations

import os
from pathlib import Path

from newsletter_cli.errors import InputError

EDITION_FILE = "edition.yaml"


def display(path: Path) -> str:
    """A path as the user should see it: relative to the current folder when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def display_dir(path: Path) -> str:
    """A folder as the user should see it, ending in the platform's separator (editions/ or editions\\)."""
    return os.path.join(display(path), "")


def editions_root(root: Path | None = None) -> Path:
    return (root or Path.cwd()) / "editions"


def resolve(edition: str | None, root: Path | None = None) -> Path:
    """The edition.yaml for an edition id, a folder or a file; None means the newest edition."""
    base = editions_root(root)
    if edition is None:
        ids = list_editions(root)
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
    have = ", ".join(list_editions(root)) or "none"
    raise InputError(f"No edition '{edition}': {display(by_id)} does not exist (editions here: {have}).")


def list_editions(root: Path | None = None) -> list[str]:
    """Edition ids, oldest first (ids sort by date: YYYY-MM)."""
    base = editions_root(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / EDITION_FILE).is_file())
