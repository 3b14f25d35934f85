"""`newsletter preview`: a local web server that shows an edition at desktop and phone width.

Like a static-site dev server: it builds with `build()` into a temporary folder, watches the edition
folder, the templates, theme.yaml and .env, rebuilds on every save and tells the open page to reload over
Server-Sent Events. A failed rebuild is shown on the page while the last good render stays visible.
Only the build's outputs and the edition's images are served (preview_http.py answers the requests);
nothing else on disk is reachable.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from newsletter_cli.compose.build import load_theme
from newsletter_cli.compose.model import is_web_address
from newsletter_cli.compose.render import TEMPLATES
from newsletter_cli.errors import NewsletterError
from newsletter_cli.project import Project, display
from newsletter_cli.web import PAGE_TEMPLATES
from newsletter_cli.web.preview_http import PreviewHandler
from newsletter_cli.web.preview_state import PreviewState, StateServer
from newsletter_cli.words import count

Echo = Callable[[str], None]
IGNORED_DIRS = {"build", "outbox", "__pycache__"}


def load_theme_logo(project: Project) -> Path | None:
    """The theme's logo file, when it is a local file inside the project folder."""
    root = project.root
    try:
        logo = load_theme(project).logo
    except NewsletterError:
        return None
    if not logo or is_web_address(logo):
        return None
    path = (root / logo).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


class PreviewServer(StateServer):
    """The HTTP server plus the watcher threads that rebuild the edition."""

    daemon_threads = True

    def __init__(self, edition_yaml: Path, host: str = "127.0.0.1", port: int = 0,
                 echo: Echo | None = None, *, project: Project):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host  # as given with --host: the one name besides localhost that requests may use
        self.project = project
        self.root = self.project.root.resolve()
        self.echo = echo or (lambda _line: None)
        self.state = PreviewState(edition_yaml, Path(tempfile.mkdtemp(prefix="newsletter-preview-")), self.project)
        self.stop_event = threading.Event()
        self.watchers: list[threading.Thread] = []
        self.watching: list[threading.Event] = []
        self._serving: threading.Thread | None = None
        try:
            super().__init__((host, port), PreviewHandler)
        except OSError as exc:
            shutil.rmtree(self.state.out_dir, ignore_errors=True)
            raise NewsletterError(_bind_problem(host, port, exc)) from None
        self.report(self.state.rebuild())

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"

    def report(self, error: str | None) -> None:
        """One terminal line per rebuild."""
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        snap = self.state.good
        if error:
            self.echo(f"{stamp} build failed (the page shows the last good version):\n{error}")
        elif snap:
            errors = sum(1 for d in snap.findings if d.severity == "error")
            self.echo(f"{stamp} built in {snap.seconds:.2f} s: {count(errors, 'error')}, "
                      f"{count(len(snap.findings) - errors, 'warning')} (listed on the page)")

    def watch(self) -> None:
        """Start the watcher threads: edition folder and templates (recursive), theme.yaml and .env (not)."""
        folder = self.state.edition_yaml.parent.resolve()
        logo = load_theme_logo(self.project)
        own = self.project.templates_dir  # the project's overrides, when it has any
        plans: list[tuple[list[Path], bool, Callable[[object, str], bool]]] = [
            ([folder, TEMPLATES, PAGE_TEMPLATES, *([own] if own.is_dir() else [])], True,
             lambda _c, p: _is_source(Path(p), folder)),
            (list(dict.fromkeys([self.root, *([logo.parent] if logo else [])])), False,
             lambda _c, p: Path(p).name in ("theme.yaml", ".env") or (logo is not None and Path(p) == logo)),
        ]
        for paths, recursive, keep in plans:
            ready = threading.Event()
            thread = threading.Thread(target=self._watch_loop, args=(paths, recursive, keep, ready),
                                      name="preview-watch", daemon=True)
            thread.start()
            self.watchers.append(thread)
            self.watching.append(ready)

    def wait_until_watching(self, timeout: float = 10.0) -> bool:
        """True once every watcher is set up (a save from then on is seen)."""
        return all(ready.wait(timeout) for ready in self.watching)

    def _watch_loop(self, paths: Iterable[Path], recursive: bool, keep: Callable[[object, str], bool],
                    ready: threading.Event) -> None:
        from watchfiles import watch

        try:  # an empty set of changes is a timeout: proof that the watcher is running
            for changes in watch(*paths, watch_filter=keep, stop_event=self.stop_event, recursive=recursive,
                                 debounce=400, raise_interrupt=False, rust_timeout=250, yield_on_timeout=True):
                ready.set()
                if changes:
                    self.report(self.state.rebuild())
        except Exception as exc:
            if not self.stop_event.is_set():
                self.echo(f"Live reload stopped: {exc}. Restart the preview to get it back.")
        finally:
            ready.set()

    def start(self) -> PreviewServer:
        """Serve and watch in background threads (for tests and tools); stop() ends both."""
        self.watch()
        self._serving = threading.Thread(target=self.serve_forever, args=(0.1,), name="preview-http", daemon=True)
        self._serving.start()
        self.wait_until_watching()
        return self

    def stop(self) -> None:
        """Stop serving (from another thread than serve_forever) and clean up."""
        if self._serving:
            self.shutdown()
            self._serving.join(timeout=5)
        self.close()

    def close(self) -> None:
        """Stop the watchers and the event streams, close the socket, remove the temporary build."""
        self.stop_event.set()
        self.state.close()
        for thread in self.watchers:
            thread.join(timeout=5)
        self.server_close()
        shutil.rmtree(self.state.out_dir, ignore_errors=True)

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _is_source(path: Path, folder: Path) -> bool:
    """A file whose change should rebuild: not build output, not hidden or editor temp files."""
    try:
        rel = path.resolve().relative_to(folder)
    except ValueError:
        return path.suffix == ".j2"  # the templates folder
    name = path.name
    if (rel.parts and rel.parts[0] in IGNORED_DIRS) or name.startswith((".", "~", "#")):
        return False
    return not name.endswith(("~", ".swp", ".swx", ".tmp", ".part"))


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"Port {port} on {host} is already in use (is another preview running?). "
                f"Stop that one, or pick another port: newsletter preview --port {port + 1} (0 picks a free one).")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"Not allowed to use port {port}; pick one above 1024, e.g. --port 8000."
    return f"Cannot serve on {host}:{port}: {exc.strerror or exc}. Check --host and --port."


def _can_open_browser() -> bool:
    """On Linux without a desktop, webbrowser would start a text browser in this terminal."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def serve(edition_yaml: Path, project: Project, echo: Echo, *, host: str = "127.0.0.1", port: int = 8000,
          open_browser: bool = True) -> None:
    """Run the preview until Ctrl-C; `echo` prints a line (the command line's)."""
    server = PreviewServer(edition_yaml, host, port, echo, project=project)
    server.watch()
    echo(f"Preview of {display(edition_yaml)}: {server.url}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        echo(f"Note: serving on {host}, so other computers on the network can see this preview.")
    if open_browser and _can_open_browser():
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    elif open_browser:
        echo("Open that address in your browser.")
    echo("Watching the edition, its images and the templates; press Ctrl-C to stop.")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        echo("Preview stopped.")
