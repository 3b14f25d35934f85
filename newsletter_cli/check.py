"""`newsletter check`: find what embarrasses a secretariat after sending (links, images, size, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import Diagnostic

if TYPE_CHECKING:
    from .build import Build


def run_checks(build: Build, *, online: bool = False) -> list[Diagnostic]:
    """Every finding for one built edition, errors first; `online` also fetches each link."""
    return list(build.loaded.safelinks)
