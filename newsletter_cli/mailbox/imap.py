"""The mailbox over IMAP: TLS from the start (port 993), the certificate verified, password or XOAUTH2 login.

Messages are read with BODY.PEEK, so reading does not mark them as read; processed ones are moved (MOVE, or
COPY and then removing only that message) to a folder of their own, never deleted. Nothing here prints, logs
or puts the password or a token in an exception.
"""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from newsletter_cli.errors import NewsletterError
from newsletter_cli.settings import Settings, missing

MAX_MESSAGE_BYTES = 10_000_000  # larger messages are not downloaded: no bounce or unsubscribe is this big
HEADER_BATCH = 200
TIMEOUT = 60


@dataclass(frozen=True)
class Fetched:
    uid: str
    size: int
    data: bytes | None  # None when it was not downloaded (too large, or its header said enough)
    header: bytes = b""
    error: str = ""  # why the server did not give the whole message ("" when it did, or was not asked)


def mutf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): 'Één' -> '&AMk-&AOk-n' style, '&' -> '&-'."""
    out: list[str] = []
    pending = ""

    def flush() -> None:
        nonlocal pending
        if pending:
            encoded = base64.b64encode(pending.encode("utf-16-be")).decode("ascii").rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending = ""

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending += ch
    flush()
    return "".join(out)


def quoted(name: str) -> str:
    """A folder name as an IMAP quoted string."""
    encoded = mutf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def access_token(settings: Settings) -> SecretStr:
    """The OAuth access token for IMAP when no sign-in session was handed over: a session for this one call."""
    from newsletter_cli.account.oauth import SignIn

    return SignIn(settings).imap_token(settings)


def _text(data: object) -> str:
    if isinstance(data, list):
        return " ".join(_text(d) for d in data)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


class Mailbox:
    """One IMAP session; a context manager that logs out at the end."""

    def __init__(self, settings: Settings, *, token: Callable[[Settings], SecretStr] = access_token):
        self.settings = settings
        self._token = token
        self.imap: imaplib.IMAP4_SSL | None = None
        self.where = f"{settings.imap_host}:{settings.imap_port}"

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self) -> None:
        s = self.settings
        if not s.imap_host:
            raise missing(s, "IMAP_HOST", "`newsletter mailbox` reads bounces and unsubscribes from that mailbox",
                          "outlook.office365.com")
        if not s.imap_username:
            raise missing(s, "IMAP_USERNAME", "the mailbox to log in to (it defaults to SMTP_USERNAME)",
                          "nieuwsbrief@vzhg.nl")
        from newsletter_cli.deliver.replies import Fatal
        from newsletter_cli.deliver.smtp import tls_context

        try:
            context = tls_context(s)
        except Fatal as exc:
            raise NewsletterError(str(exc)) from None
        try:
            self.imap = imaplib.IMAP4_SSL(s.imap_host, s.imap_port, ssl_context=context, timeout=TIMEOUT)
        except ssl.SSLCertVerificationError as exc:
            raise NewsletterError(f"IMAP server {self.where}: its certificate cannot be trusted "
                                  f"({exc.verify_message}). "
                                  "Check IMAP_HOST; for your organisation's own certificate authority set "
                                  "SMTP_CA_FILE.") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise NewsletterError(f"IMAP server {self.where}: cannot connect ({_describe(exc)}). Check IMAP_HOST "
                                  "and IMAP_PORT (993 for IMAP over TLS).") from None
        self._login()

    def _login(self) -> None:
        s, imap = self.settings, self.imap
        assert imap is not None and s.imap_username
        user = s.imap_username
        try:
            if s.smtp_auth == "oauth" and not s.imap_password:
                token = self._token(s)
                sent: list[bool] = []

                def xoauth2(_challenge: bytes) -> bytes:
                    if sent:  # the server's error challenge: answer empty, it then says NO
                        return b""
                    sent.append(True)
                    return f"user={user}\x01auth=Bearer {token.get_secret_value()}\x01\x01".encode()

                imap.authenticate("XOAUTH2", xoauth2)
            elif s.imap_password:
                password = s.imap_password.get_secret_value()
                if "AUTH=PLAIN" in imap.capabilities:  # UTF-8 passwords work here, not with LOGIN
                    imap.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode())
                else:
                    imap.login(user, password)
            else:
                raise missing(s, "IMAP_PASSWORD", "the mailbox needs a login (it defaults to SMTP_PASSWORD; or "
                              "set SMTP_OAUTH_TOKEN_COMMAND for the OAuth sign-in)", "...")
            kind, data = imap.capability()  # they may differ after the login (MOVE, UIDPLUS)
            if kind == "OK":
                imap.capabilities = tuple(_text(data).upper().split())
        except imaplib.IMAP4.error:
            oauth = s.smtp_auth == "oauth" and not s.imap_password
            raise NewsletterError(f"IMAP server {self.where}: the login as {user} was refused. " + (
                "The OAuth sign-in was not accepted for reading: the app registration needs the delegated permission "
                "IMAP.AccessAsUser.All (with consent), and IMAP must be switched on for the mailbox; then run "
                "`newsletter login` again." if oauth else
                "Check IMAP_USERNAME and IMAP_PASSWORD (they default to SMTP_USERNAME and SMTP_PASSWORD); "
                "Microsoft 365 needs IMAP switched on for the mailbox.")) from None
        except OSError as exc:
            raise NewsletterError(f"IMAP server {self.where}: the connection broke during the login "
                                  f"({_describe(exc)}).") from None

    def close(self) -> None:
        if self.imap is not None:
            try:
                self.imap.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
            self.imap = None

    def _ok(self, what: str, result: tuple[str, Any]) -> list[Any]:
        kind, data = result
        if kind != "OK":
            raise NewsletterError(f"IMAP server {self.where}: {what} failed: {_text(data)[:200]}")
        return list(data)

    def folders(self) -> list[str]:
        """The folder names, as the server lists them (modified UTF-7 left as is)."""
        assert self.imap is not None
        names = []
        for line in self._ok("listing the folders", self.imap.list()):
            if isinstance(line, bytes):
                match = re.search(rb'"([^"]*)"\s*$|(\S+)\s*$', line)
                if match:
                    names.append((match.group(1) or match.group(2)).decode("ascii", "replace"))
        return names

    def select(self, folder: str, *, read_only: bool) -> int:
        """Open a folder (read-only for --dry-run); the number of messages in it."""
        assert self.imap is not None
        try:
            kind, data = self.imap.select(quoted(folder), readonly=read_only)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise NewsletterError(f"IMAP server {self.where}: cannot open the folder '{folder}': "
                                  f"{_describe(exc)}") from None
        if kind != "OK":
            have = ", ".join(self.folders())
            raise NewsletterError(f"The folder '{folder}' does not exist in the mailbox {self.settings.imap_username} "
                                  f"(folders there: {have}). Set IMAP_FOLDER to one of them.")
        return int(_text(data).split()[0] or 0)

    def ensure_folder(self, folder: str) -> bool:
        """Create the folder for processed messages if needed; True if it was created."""
        assert self.imap is not None
        if folder in self.folders() or mutf7(folder) in self.folders():
            return False
        kind, data = self.imap.create(quoted(folder))
        if kind != "OK" and "ALREADYEXISTS" not in _text(data).upper():  # listed in a form not parsed above
            raise NewsletterError(f"IMAP server {self.where}: cannot create the folder '{folder}' for the processed "
                                  f"messages: {_text(data)[:200]}. Create it in your mail program, or set "
                                  "IMAP_PROCESSED_FOLDER to an existing folder.")
        self.imap.subscribe(quoted(folder))
        return kind == "OK"

    def uids(self) -> list[str]:
        assert self.imap is not None
        data = self._ok("searching the folder", self.imap.uid("SEARCH", "UNDELETED"))  # not those moved by COPY
        return _text(data).split()

    def fetch(self, uids: list[str], wanted: Callable[[int, bytes], bool]) -> Iterator[Fetched]:
        """Each message's header and size (HEADER_BATCH at a time, one round trip each), and its whole text
        when `wanted(size, header)` says so and it is not too large. Unread messages stay unread (PEEK)."""
        assert self.imap is not None
        for start in range(0, len(uids), HEADER_BATCH):
            batch = ",".join(uids[start:start + HEADER_BATCH])
            data = self._ok("reading the messages", self.imap.uid("FETCH", batch, "(RFC822.SIZE BODY.PEEK[HEADER])"))
            for item in data:
                if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes)):
                    continue
                uid = re.search(rb"UID (\d+)", item[0])
                size = re.search(rb"RFC822\.SIZE (\d+)", item[0])
                if not (uid and size):
                    continue
                number, length, header = uid.group(1).decode(), int(size.group(1)), item[1]
                if length > MAX_MESSAGE_BYTES or not wanted(length, header):
                    yield Fetched(number, length, None, header)
                    continue
                kind, body = self.imap.uid("FETCH", number, "(BODY.PEEK[])")
                if kind != "OK":  # one message the server cannot give must not stop the run
                    yield Fetched(number, length, None, header, _text(body)[:200] or kind)
                    continue
                text = next((d[1] for d in body if isinstance(d, tuple) and len(d) == 2), None)
                if isinstance(text, bytes):  # else gone in the meantime (another client moved it)
                    yield Fetched(number, length, text, header)

    def move(self, uid: str, folder: str) -> None:
        """Move one message: MOVE where the server has it, else COPY, flag it deleted and expunge only it."""
        assert self.imap is not None
        target = quoted(folder)
        if "MOVE" in self.imap.capabilities:
            self._ok("moving a message", self.imap.uid("MOVE", uid, target))
            return
        self._ok("copying a message", self.imap.uid("COPY", uid, target))
        self._ok("moving a message", self.imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"))
        if "UIDPLUS" in self.imap.capabilities:
            self._ok("moving a message", self.imap.uid("EXPUNGE", uid))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return f"no answer within {TIMEOUT} seconds"
    if isinstance(exc, socket.gaierror):
        return "the server name is not known"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens on that port"
    return str(exc) or type(exc).__name__
