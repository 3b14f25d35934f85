"""The mailbox over IMAP, through IMAPClient: TLS from the start (port 993), the certificate verified, password or
XOAUTH2 login.

IMAPClient does the protocol (modified UTF-7 folder names, quoting, parsing the answers); what is ours is the
policy. Messages are read with BODY.PEEK, so reading does not mark them as read; processed ones are moved (MOVE,
or COPY and then removing only that message) to a folder of their own, never deleted. Nothing here prints, logs
or puts the password or a token in an exception.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient  # type: ignore[import-untyped]
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


def access_token(settings: Settings) -> SecretStr:
    """The OAuth access token for IMAP when no sign-in session was handed over: a session for this one call."""
    from newsletter_cli.account.oauth import SignIn

    return SignIn(settings).imap_token(settings)


def _refused(exc: BaseException) -> bool:
    """The server said NO or BAD (IMAPClient raises that as IMAP4.error); not a broken connection."""
    return isinstance(exc, imaplib.IMAP4.error) and not isinstance(exc, imaplib.IMAP4.abort)


class Mailbox:
    """One IMAP session; a context manager that logs out at the end."""

    def __init__(self, settings: Settings, *, token: Callable[[Settings], SecretStr] = access_token):
        self.settings = settings
        self._token = token
        self.imap: Any = None  # an IMAPClient (the library has no type hints)
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
            self.imap = IMAPClient(s.imap_host, s.imap_port, ssl=True, ssl_context=context, timeout=TIMEOUT)
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

                imap.sasl_login("XOAUTH2", xoauth2)  # not oauth2_login: it would send the token a second time
            elif s.imap_password:
                password = s.imap_password.get_secret_value()
                if imap.has_capability("AUTH=PLAIN"):  # UTF-8 passwords work here, not with LOGIN
                    imap.plain_login(user, password)
                else:
                    imap.login(user, password)
            else:
                raise missing(s, "IMAP_PASSWORD", "the mailbox needs a login (it defaults to SMTP_PASSWORD; or "
                              "set SMTP_OAUTH_TOKEN_COMMAND for the OAuth sign-in)", "...")
        except imaplib.IMAP4.error as exc:
            if not _refused(exc):
                raise NewsletterError(f"IMAP server {self.where}: the connection broke during the login "
                                      f"({_describe(exc)}).") from None
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

    def _ask(self, what: str, command: Callable[..., Any], *args: Any) -> Any:
        """A command whose refusal stops the run with a message; a broken connection goes up as it is."""
        try:
            return command(*args)
        except imaplib.IMAP4.error as exc:
            if not _refused(exc):
                raise
            raise NewsletterError(f"IMAP server {self.where}: {what} failed: {str(exc)[:200]}") from None

    def folders(self) -> list[str]:
        """The folder names, as the server lists them (decoded from modified UTF-7)."""
        assert self.imap is not None
        return [str(name) for _flags, _delimiter, name in self._ask("listing the folders", self.imap.list_folders)]

    def select(self, folder: str, *, read_only: bool) -> int:
        """Open a folder (read-only for --dry-run); the number of messages in it."""
        assert self.imap is not None
        try:
            info = self.imap.select_folder(folder, readonly=read_only)
        except (OSError, imaplib.IMAP4.error) as exc:
            if not _refused(exc):
                raise NewsletterError(f"IMAP server {self.where}: cannot open the folder '{folder}': "
                                      f"{_describe(exc)}") from None
            have = ", ".join(self.folders())
            raise NewsletterError(f"The folder '{folder}' does not exist in the mailbox {self.settings.imap_username} "
                                  f"(folders there: {have}). Set IMAP_FOLDER to one of them.") from None
        return int(info.get(b"EXISTS", 0))

    def ensure_folder(self, folder: str) -> bool:
        """Create the folder for processed messages if needed; True if it was created."""
        assert self.imap is not None
        if folder in self.folders():
            return False
        try:
            self.imap.create_folder(folder)
        except imaplib.IMAP4.error as exc:
            if not _refused(exc):
                raise
            if "ALREADYEXISTS" in str(exc).upper():  # created in the meantime by another client
                return False
            raise NewsletterError(f"IMAP server {self.where}: cannot create the folder '{folder}' for the processed "
                                  f"messages: {str(exc)[:200]}. Create it in your mail program, or set "
                                  "IMAP_PROCESSED_FOLDER to an existing folder.") from None
        self.imap.subscribe_folder(folder)
        return True

    def uids(self) -> list[str]:
        assert self.imap is not None
        found = self._ask("searching the folder", self.imap.search, ["UNDELETED"])  # not those moved by COPY
        return [str(uid) for uid in found]

    def fetch(self, uids: list[str], wanted: Callable[[int, bytes], bool]) -> Iterator[Fetched]:
        """Each message's header and size (HEADER_BATCH at a time, one round trip each), and its whole text
        when `wanted(size, header)` says so and it is not too large. Unread messages stay unread (PEEK)."""
        assert self.imap is not None
        for start in range(0, len(uids), HEADER_BATCH):
            batch = [int(uid) for uid in uids[start:start + HEADER_BATCH]]
            heads = self._ask("reading the messages", self.imap.fetch, batch, ["RFC822.SIZE", "BODY.PEEK[HEADER]"])
            for number in batch:
                item = heads.get(number, {})
                length, header = item.get(b"RFC822.SIZE"), item.get(b"BODY[HEADER]")
                if not (isinstance(length, int) and isinstance(header, bytes)):
                    continue  # gone in the meantime (another client moved it)
                uid = str(number)
                if length > MAX_MESSAGE_BYTES or not wanted(length, header):
                    yield Fetched(uid, length, None, header)
                    continue
                try:
                    body = self.imap.fetch([number], ["BODY.PEEK[]"])
                except imaplib.IMAP4.error as exc:
                    if not _refused(exc):
                        raise
                    yield Fetched(uid, length, None, header, str(exc)[:200] or "NO")  # one message must not stop
                    continue
                text = body.get(number, {}).get(b"BODY[]")
                if isinstance(text, bytes):  # else gone in the meantime (another client moved it)
                    yield Fetched(uid, length, text, header)

    def move(self, uid: str, folder: str) -> None:
        """Move one message: MOVE where the server has it, else COPY, flag it deleted and expunge only it."""
        assert self.imap is not None
        imap, which = self.imap, [int(uid)]
        if imap.has_capability("MOVE"):
            self._ask("moving a message", imap.move, which, folder)
            return
        self._ask("copying a message", imap.copy, which, folder)
        self._ask("moving a message", imap.delete_messages, which, True)
        if imap.has_capability("UIDPLUS"):  # else left flagged deleted: a plain EXPUNGE would remove others too
            self._ask("moving a message", imap.uid_expunge, which)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return f"no answer within {TIMEOUT} seconds"
    if isinstance(exc, socket.gaierror):
        return "the server name is not known"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens on that port"
    return str(exc) or type(exc).__name__
