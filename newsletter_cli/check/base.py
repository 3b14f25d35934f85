"""What every check needs: the build, the theme, and a way to name the exact place of a finding."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter_cli.compose.model import Theme, YamlPath, where
from newsletter_cli.errors import Diagnostic, Severity

if TYPE_CHECKING:
    from newsletter_cli.compose.build import Build


@dataclass
class Context:
    """One build under check, with helpers that turn a YAML path or a source line into a place."""

    build: Build
    theme: Theme
    theme_file: str = ""  # "theme.yaml" when the project has one, else ""
    theme_lines: dict[YamlPath, int] = field(default_factory=dict)
    root: Path = field(kw_only=True)  # the project folder: a local theme logo is there

    @property
    def file(self) -> str:
        return self.build.loaded.display_path

    @cached_property
    def source_lines(self) -> list[str]:
        """The edition.yaml as written (safelinks and all)."""
        try:
            return self.build.loaded.path.read_text(encoding="utf-8-sig").splitlines()
        except OSError:
            return []

    def where(self, path: YamlPath) -> str:
        """'item "Title"', 'section "Title"', 'intro', 'agenda' or '' for a YAML path."""
        return where(self.build.loaded.edition, path)

    def at(self, severity: Severity, path: YamlPath, message: str, fix: str = "", code: str = "",
           offset: int | None = None) -> Diagnostic:
        """A finding at a YAML path; `offset` counts lines from the first text line of a block (`|`) field."""
        lines = self.build.loaded.lines
        line = self.build.loaded.line_of(path) if path else None
        if offset is not None:
            first = lines.get((*path, "#text"))
            line = first + offset if first else line
        return Diagnostic(severity, self.file, line, self.where(path), message, fix, code)

    def at_line(self, severity: Severity, line: int | None, message: str, fix: str = "",
                code: str = "") -> Diagnostic:
        """A finding at a source line; the item/section around it is named."""
        return Diagnostic(severity, self.file, line, self.where(self.path_at(line)) if line else "",
                          message, fix, code)

    def for_theme(self, severity: Severity, key: str, message: str, fix: str = "", code: str = "") -> Diagnostic:
        """A finding about the house style: in theme.yaml when there is one."""
        if self.theme_file:
            return Diagnostic(severity, self.theme_file, self.theme_lines.get((key,)), "theme", message, fix, code)
        return Diagnostic(severity, self.file, None, "the built-in house style (no theme.yaml)", message, fix, code)

    @cached_property
    def _spans(self) -> tuple[list[int], list[YamlPath]]:
        """Start lines of intro, sections, items and agenda, sorted, for `path_at`."""
        starts: list[tuple[int, YamlPath]] = []
        for path, line in self.build.loaded.lines.items():
            if path in (("intro",), ("agenda",)) or (len(path) == 2 and path[0] == "sections") or (
                    len(path) == 4 and path[0] == "sections" and path[2] == "items"):
                starts.append((line, path))
        for key in ("subject", "preheader", "date", "locale", "allow_html"):
            if (key,) in self.build.loaded.lines:
                starts.append((self.build.loaded.lines[(key,)], ()))
        starts.sort()
        return [s for s, _ in starts], [p for _, p in starts]

    def path_at(self, line: int) -> YamlPath:
        """The innermost item/section/intro/agenda that `line` lies in."""
        starts, paths = self._spans
        index = bisect_right(starts, line) - 1
        return paths[index] if index >= 0 else ()

    def find_line(self, needle: str, *, markdown_heading: bool = False) -> int | None:
        """The first source line containing `needle` (case-insensitive, whitespace-tolerant)."""
        words = needle.split()
        if not words:
            return None
        pattern = r"\s+".join(re.escape(w) for w in words)
        if markdown_heading:
            pattern = r"^\s*#{1,6}\s+" + pattern
        regex = re.compile(pattern, re.IGNORECASE)
        for number, row in enumerate(self.source_lines, start=1):
            if regex.search(row):
                return number
        return None
