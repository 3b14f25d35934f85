"""Shared fixtures: a throwaway project folder holding a copy of the shipped example edition."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "editions" / "2025-09"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with editions/2025-09 and theme.yaml copied in, as the current directory; no .env, no SMTP settings."""
    shutil.copytree(EXAMPLE, tmp_path / "editions" / "2025-09", ignore=shutil.ignore_patterns("build", "outbox", "journal*"))
    shutil.copy(REPO / "theme.yaml", tmp_path / "theme.yaml")  # the example's house style, with its postal address
    for name in list(__import__("os").environ):
        if name.startswith(("SMTP_", "NEWSLETTER_", "SEND_", "LIST_UNSUBSCRIBE", "REVIEW_LIST", "ARCHIVE_BASE_URL")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
