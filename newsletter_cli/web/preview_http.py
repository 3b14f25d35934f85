"""The preview's HTTP side: the page, the email and its images, and the reload events, all answered from the
PreviewState that preview.py keeps up to date (nothing else on disk is reachable).
"""

from __future__ import annotations

import ipaddress
import json
from email.utils import parseaddr
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from newsletter_cli.compose import merge
from newsletter_cli.compose.render import GMAIL_CLIP_BYTES
from newsletter_cli.errors import NewsletterError
from newsletter_cli.project import Project, display
from newsletter_cli.web import page_environment
from newsletter_cli.web.preview_state import PreviewState, StateServer

IMAGES_DIR = "images"
IMAGE_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".svg": "image/svg+xml",
}
KEEPALIVE_SECONDS = 15.0
TEXT_PREVIEW_VALUES = {"unsubscribe_url": "<unsubscribe link, one per recipient>"}


def preview_text(text: str) -> str:
    """The plain-text part as a reader without their own values gets it."""
    return merge.fill(text, TEXT_PREVIEW_VALUES, "text")


def sender(project: Project) -> str:
    """NEWSLETTER_FROM as `send` reads it (the project's .env, read once); no SMTP setting is ever shown."""
    try:
        return project.setting_text("NEWSLETTER_FROM")
    except NewsletterError:
        return ""  # `newsletter doctor` explains a broken .env; the page says the sender is not set


LOCAL_NAMES = ("localhost", "localhost.")


def host_allowed(host_header: str | None, listening: str, given: str) -> bool:
    """Whether a request's Host header names this preview: a localhost name, an IP address of this computer's
    loopback, the address the preview listens on (or the name given with --host); any IP address when it
    listens on all of them. Any other name is refused: a web page of another site could otherwise read the
    preview through a name of its own that it points at 127.0.0.1 (DNS rebinding)."""
    if host_header is None:
        return True  # HTTP/1.0 without Host: no browser sends that, so no page of another site can
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host in LOCAL_NAMES or host.endswith(".localhost") or host in (listening.lower(), given.lower()):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: only the ones above
    return address.is_loopback or ipaddress.ip_address(listening).is_unspecified


# The preview's "inverted" view: what a mail app that inverts a message's colours but not its images shows
# (the Gmail app on iPhone; it ignores the email's own dark rules): every colour inverted and turned back to
# its hue, each image inverted twice, so as it is.
INVERTED_CSS = ("html { filter: invert(1) hue-rotate(180deg) !important; }\n"
                "img { filter: invert(1) hue-rotate(180deg) !important; }")


def page_html(state: PreviewState) -> str:
    """The preview page for the current state."""
    snap = state.good
    rendered = snap.build.rendered if snap else None
    name, address = parseaddr(sender(state.project))
    return page_environment().get_template("preview.html.j2").render(
        state=state, snap=snap, rendered=rendered, edition=snap.build.loaded.edition if snap else None,
        source=display(state.edition_yaml), from_name=name or address, from_address=address,
        clip=GMAIL_CLIP_BYTES, diagnostics=snap.findings if snap else [],
        plain_text=preview_text(rendered.text) if rendered else "",
        subject=merge.defaults(snap.build.loaded.edition.subject, "header") if snap else "",
        preheader=merge.defaults(snap.build.loaded.edition.preheader, "header") if snap else "",
        inverted_css=INVERTED_CSS,
    )


def allowed_file(state: PreviewState, url_path: str) -> Path | None:
    """The file a request may see: an image of the edition (or the theme's local logo); else None."""
    rel = unquote(url_path).lstrip("/")
    parts = PurePosixPath(rel).parts
    if not parts or "\\" in rel or "\0" in rel or any(part.startswith(".") for part in parts):
        return None  # no '..', no hidden files such as .env
    referenced = state.good.build.rendered.image_files if state.good else {}  # item images and the theme's logo
    path = referenced.get(PurePosixPath(rel).as_posix())  # as the email sends it: made smaller by the build
    if path and path.is_file():
        return path.resolve()
    folder = state.edition_yaml.parent.resolve()
    candidate = (folder / rel).resolve()  # symlinks are followed, then checked
    return candidate if candidate.is_file() and candidate.is_relative_to(folder / IMAGES_DIR) else None


class PreviewHandler(BaseHTTPRequestHandler):
    """GET only; every response is built from the preview state, never from a path on disk."""

    server: StateServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the terminal shows rebuilds, not requests

    def _respond(self, head: bool) -> None:
        if not host_allowed(self.headers.get("Host"), str(self.server.server_address[0]), self.server.host):
            self.close_connection = True
            return self._send("This preview answers only to http://localhost or the address it runs on (a page "
                              "under another name could be reading it).", "text/plain", head,
                              HTTPStatus.MISDIRECTED_REQUEST)
        state, path = self.server.state, urlsplit(self.path).path
        snap = state.good
        if path in ("/", "/index.html"):
            return self._send(page_html(state), "text/html", head)
        if path == "/events":
            return self._events()
        if path == "/state.json":
            body = {"version": state.version, "error": state.error, "built": snap is not None}
            return self._send(json.dumps(body), "application/json", head)
        if snap and path == "/email.html":
            return self._send(snap.email_html, "text/html", head)
        if snap and path == "/web.html":
            return self._send(snap.build.rendered.web_html, "text/html", head)
        if snap and path == "/email.txt":
            return self._send(preview_text(snap.build.rendered.text), "text/plain", head)
        file = allowed_file(state, path)
        if file and file.suffix.lower() in IMAGE_TYPES:
            return self._send(file.read_bytes(), IMAGE_TYPES[file.suffix.lower()], head)
        self._send("Not found", "text/plain", head, HTTPStatus.NOT_FOUND)

    def _send(self, body: str | bytes, content_type: str, head: bool, status: HTTPStatus = HTTPStatus.OK) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        charset = "; charset=utf-8" if content_type.startswith(("text/", "application/json")) else ""
        self.send_response(status)
        self.send_header("Content-Type", content_type + charset)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _events(self) -> None:
        """Server-Sent Events: the current version now, then each new one as it comes."""
        state = self.server.state
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        version = state.version
        try:
            self.wfile.write(f"retry: 1000\ndata: {version}\n\n".encode())
            self.wfile.flush()
            while True:  # until the preview stops (wait_for_change returns at once then)
                new = state.wait_for_change(version, KEEPALIVE_SECONDS)
                if state.closing:
                    break
                message = f"data: {new}\n\n" if new != version else ": keep-alive\n\n"
                version = new
                self.wfile.write(message.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page was closed or reloaded
