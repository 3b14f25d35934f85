"""The SMTP transport: one connection reused for many messages, TLS always verified, AUTH and XOAUTH2.

What each failure means for the send (Temporary, ReplyLost, Permanent, Fatal) is decided in replies.py.
Nothing here ever prints, logs or puts the password or a token in an exception.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from functools import lru_cache

from pydantic import SecretStr

from newsletter_cli.account.oauth import oauth_token
from newsletter_cli.account.refusals import is_microsoft, smtp_refusal
from newsletter_cli.account.tokens import command_line as command_line  # re-exported for tests
from newsletter_cli.deliver.replies import Fatal, Permanent, ReplyLost, Temporary, classify, describe, reply_text
from newsletter_cli.errors import NewsletterError
from newsletter_cli.settings import Settings

LINE_DOT_RE = re.compile(rb"\n\.")  # a line starting with a dot (dot-stuffing)
CA_HINT = ("Certificate checks are never skipped. If your organisation uses its own certificate authority, set "
           "SMTP_CA_FILE to its certificate (.pem); otherwise check that SMTP_HOST is the server's real name.")


@lru_cache(maxsize=1)
def local_hostname() -> str:
    """The name we greet the server with (looked up once)."""
    return socket.getfqdn() or "localhost"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Verifying context: the system's CAs, or only SMTP_CA_FILE when it is set."""
    try:
        return ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise Fatal(f"SMTP_CA_FILE {settings.smtp_ca_file}: not a usable certificate file: {exc}") from None


DOCTOR_HINT = "`newsletter doctor` tests them."


PORTS = ("Port 587 is for STARTTLS (SMTP_SECURITY=starttls: the connection starts plain and then switches to "
         "encryption); port 465 is for SSL (SMTP_SECURITY=ssl: encrypted from the first byte).")


class Connection:
    """One SMTP session, opened on first use and reopened after a drop."""

    def __init__(self, settings: Settings, *, token: Callable[[Settings, bool], SecretStr] = oauth_token):
        """`token`: the command's sign-in session (oauth.SignIn.smtp_token), shared by its connections."""
        self.settings = settings
        self.data_timeout = float(getattr(settings, "smtp_data_timeout", 600.0))
        self.where = f"{settings.smtp_host}:{settings.smtp_port}"
        self._token = token
        self.smtp: smtplib.SMTP | None = None
        self.log: list[str] = []  # steps, for `doctor`

    def _get_token(self, fresh: bool) -> SecretStr:
        """The access token from the sign-in session handed over (`token`); not signed in, sign-in expired, a bad
        OAUTH_CERTIFICATE or a failing SMTP_OAUTH_TOKEN_COMMAND stops the send."""
        try:
            return self._token(self.settings, fresh)
        except NewsletterError as exc:
            raise Fatal(exc.message) from None

    def _step(self, text: str) -> None:
        self.log.append(text)

    def open(self) -> None:
        """Connect, negotiate TLS, authenticate; Fatal with what to change when a step fails."""
        s = self.settings
        host = s.smtp_host or ""
        if s.smtp_security == "none" and (s.smtp_username or s.smtp_auth == "oauth") and not is_loopback(host):
            what = "the sign-in token (a bearer token: whoever reads it can send as you)" \
                if s.smtp_auth == "oauth" else "the password"
            raise Fatal(f"{self.where}: SMTP_SECURITY=none would send {what} unencrypted, so it is not sent; "
                        "use starttls (port 587) or ssl (port 465).")
        context = tls_context(s) if s.smtp_security != "none" else None
        try:
            if s.smtp_security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, s.smtp_port, local_hostname=local_hostname(),
                                                      timeout=s.smtp_timeout, context=context)
            else:
                smtp = smtplib.SMTP(host, s.smtp_port, local_hostname=local_hostname(), timeout=s.smtp_timeout)
            self.smtp = smtp
            if smtp.sock is not None:  # no Nagle delay on the last segment of each message
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._step(f"connected to {self.where}" + (" (TLS: certificate verified)" if s.smtp_security == "ssl"
                                                       else ""))
            smtp.ehlo()
            if s.smtp_security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise Fatal(f"{self.where}: the server does not offer STARTTLS. Use SMTP_SECURITY=ssl with "
                                "SMTP_PORT=465 if it expects TLS from the start.")
                smtp.starttls(context=context)
                smtp.ehlo()
                self._step("STARTTLS: certificate verified")
            self._authenticate(smtp)
        except Fatal:
            self.close()
            raise
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise Fatal(f"{self.where}: the server's TLS certificate is not trusted "
                        f"({exc.verify_message or exc.reason}). {CA_HINT}") from None
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            reply = reply_text(exc.smtp_code, exc.smtp_error)
            raise Fatal(f"{self.where}: login refused ({reply}). " + (smtp_refusal(reply, s) or (
                "Check SMTP_USERNAME and SMTP_PASSWORD (or the OAuth token)." + (
                    " Microsoft 365 needs SMTP AUTH enabled for this mailbox." if is_microsoft(s) else ""))),
                reply) from None
        except smtplib.SMTPNotSupportedError as exc:
            self.close()
            raise Fatal(f"{self.where}: {exc}. Check SMTP_SECURITY and SMTP_PORT (587 with starttls).") from None
        except smtplib.SMTPConnectError as exc:
            self.close()
            if 400 <= exc.smtp_code < 500:  # e.g. 421 at the greeting: busy, try again later
                raise Temporary(f"{self.where}: the server is busy: {describe(exc)}", reconnect=True) from None
            raise Fatal(f"{self.where}: the server refused the connection: {describe(exc)}.") from None
        except (ConnectionError, TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            self.close()
            silent = s.smtp_security == "starttls" and (isinstance(exc, TimeoutError) or "timed out" in str(exc))
            raise Temporary(f"{self.where}: failed to connect: {describe(exc)}" + (
                f". If this port expects TLS from the first byte, set SMTP_SECURITY=ssl. {PORTS}" if silent else ""),
                reconnect=True) from None
        except ssl.SSLError as exc:
            self.close()
            what = ("the server does not speak TLS from the first byte on this port"
                    if exc.reason == "WRONG_VERSION_NUMBER" else "the TLS handshake failed")
            raise Fatal(f"{self.where}: {what} ({exc.reason or describe(exc)}). {PORTS} {DOCTOR_HINT}") from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise Fatal(f"{self.where}: failed to connect: {describe(exc)}. Check SMTP_HOST, SMTP_PORT and "
                        f"SMTP_SECURITY. {PORTS} {DOCTOR_HINT}") from None

    def _authenticate(self, smtp: smtplib.SMTP) -> None:
        s = self.settings
        if s.smtp_auth == "oauth":
            user, token = s.mailbox, self._get_token(False)
            if not smtp.has_extn("auth") or "XOAUTH2" not in smtp.esmtp_features.get("auth", "").upper():
                raise Fatal(f"{self.where}: the server does not offer AUTH XOAUTH2 (it offers: "
                            f"{smtp.esmtp_features.get('auth', 'no AUTH').strip()}).")
            try:
                _xoauth2(smtp, user, token)
            except smtplib.SMTPAuthenticationError as exc:
                # A cached token the server no longer takes (revoked, or expired by its clock): one fresh token,
                # one more try, never more. Only with the Microsoft 365 sign-in, which can get a fresh one.
                if (not s.oauth_client_id or s.unattended or exc.smtp_code != 535
                        or "5.7.139" in reply_text(0, exc.smtp_error)):
                    raise
                _xoauth2(smtp, user, self._get_token(True))
            self._step(f"authenticated as {user} (XOAUTH2)")
        elif s.smtp_username:
            if not smtp.has_extn("auth"):
                raise Fatal(f"{self.where}: the server offers no AUTH here; check SMTP_SECURITY, or remove "
                            "SMTP_USERNAME if it needs no login.")
            offered = smtp.esmtp_features.get("auth", "").upper().split()
            mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
            if mechanism is None:
                raise Fatal(f"{self.where}: the server offers no AUTH PLAIN or LOGIN (it offers: "
                            f"{' '.join(offered)}); for Microsoft 365 use SMTP_OAUTH_TOKEN_COMMAND (XOAUTH2).")
            # One mechanism, one try: repeated failed logins can lock the mailbox.
            _login(smtp, mechanism, s.smtp_username, s.smtp_password.get_secret_value())
            self._step(f"authenticated as {s.smtp_username} (AUTH {mechanism})")

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            try:
                smtp.close()
            except OSError:
                pass

    def drop(self) -> None:
        """Forget a broken connection without talking to the server."""
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def send(self, sender: str, recipient: str, data: bytes, before_data: Callable[[], None] | None = None) -> str:
        """One transaction (MAIL, RCPT, DATA); returns the server's final reply or raises a SendFailure/Fatal.

        `before_data` runs once the server said 354, just before the message goes out: from then until the
        reply, the outcome is unknown if this process dies. A connection lost before the server answered is
        Temporary (RFC 5321 section 3.8).
        """
        if self.smtp is None:
            self.open()
        smtp = self.smtp
        assert smtp is not None
        utf8 = smtp.has_extn("smtputf8")
        sender, sender_utf8 = envelope_address(sender, utf8)
        recipient, recipient_utf8 = envelope_address(recipient, utf8)
        options = ["SMTPUTF8"] if sender_utf8 or recipient_utf8 else []
        if self.pipelining:
            return self._send_pipelined(smtp, sender, recipient, data, before_data, options)
        stage = "MAIL FROM"
        try:
            code, message = smtp.mail(sender, options)
            if code == 250:
                stage = "RCPT TO"
                code, message = smtp.rcpt(recipient)
                if code in (250, 251):
                    stage = "DATA"
                    code, message = self._transmit(smtp, *smtp.docmd("data"), data, before_data)
        except ReplyLost:
            self.drop()
            raise
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            raise Temporary(f"connection lost during {stage}: {describe(exc)}", reconnect=True) from None
        return self._outcome(stage, code, message)

    @property
    def pipelining(self) -> bool:
        """The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA can go in one write."""
        smtp = self.smtp
        return smtp is not None and smtp.does_esmtp and smtp.has_extn("pipelining")

    def _send_pipelined(self, smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes,
                        before_data: Callable[[], None] | None, options: list[str]) -> str:
        """`send` with MAIL, RCPT and DATA in one write and their three replies read in order (RFC 2920):
        two round trips a message instead of four. The message itself still goes only after the 354."""
        for address in (sender, recipient):
            if any(ch in address for ch in "\r\n\0<>"):
                raise Permanent(f"not sent: the address {address!r} contains a line break or an angle bracket")
        stages = ("MAIL FROM", "RCPT TO", "DATA")
        stage = stages[0]
        replies: list[tuple[int, bytes]] = []
        try:
            option = "".join(f" {o}" for o in options)
            smtp.send(f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
            for stage in stages:  # noqa: B007 - the reply being waited for names the stage if the connection is lost
                replies.append(smtp.getreply())
            refused = _first_refusal(replies)
            if refused is not None:
                if replies[2][0] == 354:  # DATA accepted after a refusal (RFC 2920 says it must not be): end it empty
                    smtp.send(b".\r\n")
                    smtp.getreply()
                return self._outcome(stages[refused], *replies[refused])
            code, message = self._transmit(smtp, *replies[2], data, before_data)
        except ReplyLost:
            self.drop()
            raise
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            refused = _first_refusal(replies)
            if refused is not None:  # refused, then disconnected: the refusal says what happened (e.g. a quota)
                return self._outcome(stages[refused], *replies[refused])
            raise Temporary(f"connection lost during {stage}: {describe(exc)}", reconnect=True) from None
        return self._outcome("DATA", code, message)

    def _transmit(self, smtp: smtplib.SMTP, code: int, message: bytes, data: bytes,
                  before_data: Callable[[], None] | None) -> tuple[int, bytes]:
        """After the reply to DATA: on 354, mark the message as going (`before_data`), send it and wait up to
        `data_timeout` for the server's verdict; any other reply is returned as it is.

        A failure while writing (the final dot never left) is a lost connection, retried; a timeout or a
        disconnect while waiting for the verdict is ReplyLost: the server may have the message.
        """
        if 200 <= code < 300:  # smtplib refuses this too: nothing was transmitted, the server is confused
            raise Fatal(f"{self.where}: the server answered DATA with '{reply_text(code, message)}' instead of "
                        "354, so the message could not be transmitted. This server does not follow SMTP; "
                        "nothing was marked as sent.", reply_text(code, message))
        if code != 354:
            return code, message
        if before_data is not None:
            before_data()
        smtp.send(_dot_stuffed(data))
        sock = getattr(smtp, "sock", None)
        try:
            if sock is not None:
                sock.settimeout(self.data_timeout)
            reply = smtp.getreply()
            if sock is not None and smtp.sock is not None:
                sock.settimeout(self.settings.smtp_timeout)
            return reply
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise ReplyLost(f"the message was sent but the server's reply to it never came ({describe(exc)}): "
                            "it may or may not have been accepted") from None

    def _outcome(self, stage: str, code: int, message: bytes | str) -> str:
        """The final reply of a transaction, or the failure it means (the connection reset or dropped)."""
        reply = reply_text(code, message)
        if code == 250:
            return reply
        failure = classify(stage, code, reply, self.settings)
        if isinstance(failure, Temporary) and failure.reconnect:
            self.drop()
        else:
            self.reset()
        raise failure

    def reset(self) -> None:
        """RSET after a failed transaction; a connection that cannot even do that is dropped."""
        if self.smtp is None:
            return
        try:
            code, _ = self.smtp.rset()
            if code != 250:
                self.drop()
        except (smtplib.SMTPException, OSError):
            self.drop()


def _xoauth2(smtp: smtplib.SMTP, user: str, token: SecretStr) -> None:
    def answer(challenge: bytes | None = None) -> str:
        # A 334 challenge after the first response carries the error; answer empty to get the 5xx.
        return f"user={user}\x01auth=Bearer {token.get_secret_value()}\x01\x01" if challenge is None else ""

    smtp.auth("XOAUTH2", answer)


def _first_refusal(replies: list[tuple[int, bytes]]) -> int | None:
    """Index of the first refused command among pipelined MAIL and RCPT replies, or None."""
    if replies and replies[0][0] != 250:
        return 0
    if len(replies) > 1 and replies[1][0] not in (250, 251):
        return 1
    return None


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: leading dots doubled, ending in CRLF . CRLF (what smtplib.SMTP.data does).

    The same bytes as smtplib's `re.sub(rb"(?m)^\\.", b"..", data)` (a line starts at the very start or after
    LF), ten times faster on a 100 KB message: `(?m)^` has no literal to scan for, so that pattern is tried
    at every byte; LF-dot is a literal prefix the regex engine scans for quickly. (Quoted-printable bodies
    do have such lines: a soft line break can fall just before a '.'.)
    """
    if data.startswith(b"."):
        data = b"." + data
    data = LINE_DOT_RE.sub(b"\n..", data)
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


def envelope_address(address: str, smtputf8: bool) -> tuple[str, bool]:
    """The address as it goes into MAIL FROM or RCPT TO, and whether it needs SMTPUTF8 (RFC 6531).

    An internationalized domain with an ASCII mailbox name is IDNA-encoded (xn--), which every server takes;
    a non-ASCII mailbox name needs a server that offers SMTPUTF8.
    """
    if address.isascii():
        return address, False
    local, _, domain = address.rpartition("@")
    if local.isascii():
        import idna

        try:
            return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}", False
        except idna.IDNAError as exc:
            raise Permanent(f"not sent: the domain of {address} is not a valid international name ({exc})") from None
    if smtputf8:
        return address, True
    raise Permanent(f"not sent: {address} has non-ASCII characters before the @ and the server does not accept "
                    "such addresses (it offers no SMTPUTF8); ask the member for another address")


def _login(smtp: smtplib.SMTP, mechanism: str, user: str, password: str) -> None:
    """AUTH PLAIN or LOGIN with the username and password as UTF-8 (RFC 4616), so any character works:
    smtplib encodes them as ASCII and fails, naming the character. Raises SMTPAuthenticationError."""
    def b64(data: str) -> str:
        return base64.b64encode(data.encode("utf-8")).decode("ascii")

    if mechanism == "PLAIN":
        code, reply = smtp.docmd("AUTH", "PLAIN " + b64(f"\0{user}\0{password}"))
    else:
        code, reply = smtp.docmd("AUTH", "LOGIN " + b64(user))
        if code == 334:
            code, reply = smtp.docmd(b64(password))
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, reply)
