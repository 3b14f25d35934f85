"""The preview's state, shared by the watcher (preview.py) and the HTTP side (preview_http.py): the last good
build, the last error, and a version that changes with every rebuild. A module of its own so that neither of
the two needs the other."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from newsletter_cli.compose import merge
from newsletter_cli.compose.build import Build, build
from newsletter_cli.errors import Diagnostic, EditionError, NewsletterError
from newsletter_cli.project import Project, display

PREVIEW_VALUES = {"unsubscribe_url": "#unsubscribe"}  # merge fields show their defaults


@dataclass
class Snapshot:
    """One good build, as the preview page shows it."""

    build: Build
    email_html: str  # merge fields filled with their defaults
    findings: list[Diagnostic]
    built_at: dt.datetime
    seconds: float  # load + render + write


@dataclass
class PreviewState:
    """The last good build, the last error, and a version that changes with every rebuild."""

    edition_yaml: Path
    out_dir: Path
    project: Project
    good: Snapshot | None = None
    error: str | None = None
    version: int = 0
    closing: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)
    building: threading.Lock = field(default_factory=threading.Lock)  # one build at a time

    def rebuild(self) -> str | None:
        """Build once; on failure keep the last good snapshot. Returns the error message, if any."""
        with self.building:
            return self._rebuild()

    def _rebuild(self) -> str | None:
        started = time.perf_counter()
        self.project.reload()  # .env may have changed (ARCHIVE_BASE_URL, NEWSLETTER_FROM): read it again
        try:
            result = build(self.edition_yaml, self.out_dir, project=self.project)
            snapshot = Snapshot(result, _preview_html(result.rendered.html), _findings(result, self.project),
                                dt.datetime.now(),
                                time.perf_counter() - started)
            error = None
        except EditionError as exc:
            snapshot, error = None, "\n".join(str(p) for p in exc.problems) or exc.message
        except NewsletterError as exc:
            snapshot, error = None, exc.message
        except Exception as exc:  # a template being edited, a file half-written: never kill the server
            snapshot, error = None, _describe(exc)
        with self.changed:
            if snapshot:
                self.good = snapshot
            self.error = error
            self.version += 1
            self.changed.notify_all()
        return error

    def wait_for_change(self, seen: int, timeout: float) -> int:
        """Block until the version differs from `seen` (or timeout, or closing); returns the version."""
        with self.changed:
            self.changed.wait_for(lambda: self.version != seen or self.closing, timeout)
            return self.version

    def close(self) -> None:
        with self.changed:
            self.closing = True
            self.changed.notify_all()



def _describe(exc: Exception) -> str:
    """An unexpected error as `file:line: message` when it has a place (Jinja template errors do)."""
    filename, lineno = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    where = f"{display(Path(filename))}:{lineno}: " if filename and lineno else ""
    return f"{where}{type(exc).__name__}: {exc}"


def _preview_html(html: str) -> str:
    """The email as sent, merge fields at their defaults, links opening in a new tab."""
    filled = merge.fill(html, PREVIEW_VALUES, "html")
    return filled.replace("<head>", '<head><base target="_blank">', 1)


def _findings(result: Build, project: Project) -> list[Diagnostic]:
    """What `build` and `check` report for this build (offline): the same list, so the same counts. check's
    findings already hold the build's warnings, except those it reports in its own words (a safelink is a
    warning of the loader and an error of check): adding the build's warnings again counted them twice."""
    from newsletter_cli.check.content import run_checks

    try:
        return run_checks(result, project=project)
    except Exception as exc:  # the checker is optional here; say so instead of hiding the preview
        return [*result.rendered.warnings,
                Diagnostic("warning", result.loaded.display_path, None, "", f"newsletter check failed: {exc}")]


class StateServer(ThreadingHTTPServer):
    """What the request handler needs of the preview server: its state and the name it was given with --host."""

    state: PreviewState
    host: str
