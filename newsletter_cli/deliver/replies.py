"""What an SMTP reply or failure means for the send (the SMTP conversation itself is in smtp.py).

Every failure is sorted into the kinds that decide what `send` does next: Temporary (retry later; with
`connection` set it concerns the connection or the account, not the recipient: the worker pauses and
reconnects), ReplyLost (the message went out but its reply never came: the outcome is unknown, never retried
on its own), Permanent (this recipient only) and Fatal (stop the send).
Nothing here ever prints, logs or puts the password or a token in an exception.
"""

from __future__ import annotations

import re
import smtplib
import socket

from newsletter_cli.account.refusals import SEND_AS_RE, smtp_refusal
from newsletter_cli.errors import NewsletterError
from newsletter_cli.settings import Settings

# Replies about the connection or the account rather than the recipient: Microsoft 365's concurrency limit
# (4.3.2) and throttling ("server busy", 4.7.500).
ACCOUNT_RE = re.compile(r"\b4\.3\.2\b|\b4\.7\.500\b|throttl|concurren", re.IGNORECASE)
QUOTA_RE = re.compile(r"SubmissionQuotaExceeded|\b5\.2\.25[1-5]\b|RecipientRateLimitExceeded|"
                      r"\b5\.2\.0\b.*(quota|limit)", re.IGNORECASE)


def quota_advice(settings: Settings | None) -> str:
    """What Microsoft 365's sending limit means for the secretariat: the block, a smaller send, the time it takes."""
    rate = settings.send_rate if settings is not None and settings.send_rate else 30
    minutes = -(-1000 // rate)
    return ("This is Microsoft 365's sending limit (at most 10,000 recipients a day): the mailbox may be blocked from "
            "sending for up to 24 hours, also for ordinary mail. Wait, then run the same command again to resume; "
            "everyone already sent is skipped. To stay under the limit, send in parts with `--limit` (e.g. "
            f"`--limit 5000` today, the rest tomorrow). At SEND_RATE {rate} a minute, 1,000 members take about "
            f"{minutes} minutes: keep the computer awake (no sleep, lid open) until the send has finished.")


class SendFailure(Exception):
    """A failed SMTP step, with the server's reply (or what went wrong) as `reply`."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


class Temporary(SendFailure):
    """4xx or a lost connection: try again later; `reconnect` when the connection is gone; `connection` when
    the reply concerns the connection or the account (421, 4.3.2, throttling, no connection), not the member."""

    def __init__(self, reply: str, reconnect: bool = False, connection: bool = False):
        super().__init__(reply)
        self.reconnect = reconnect
        self.connection = connection or reconnect


class ReplyLost(SendFailure):
    """The whole message went out but no reply to its final dot came (timeout or disconnect): the server
    may have stored it (RFC 5321 section 4.5.3.2.6), so it is uncertain and must not be sent again by itself."""


class Permanent(SendFailure):
    """5xx for this recipient: mark it failed and carry on."""


class Fatal(NewsletterError):
    """Stop the whole send: connection refused, TLS, authentication, sender refused, quota."""

    def __init__(self, message: str, reply: str = "", quota: bool = False):
        super().__init__(message)
        self.reply = reply or message
        self.quota = quota


def reply_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server name and port right? is a firewall in the way?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host name"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(exc, smtplib.SMTPResponseException):
        return reply_text(exc.smtp_code, exc.smtp_error)
    return str(exc) or type(exc).__name__



def classify(stage: str, code: int, reply: str, settings: Settings | None = None) -> SendFailure | Fatal:
    """What a non-success reply means for the send."""
    plain = smtp_refusal(reply, settings) if settings is not None and code >= 500 else None
    if QUOTA_RE.search(reply) and not SEND_AS_RE.search(reply):  # 5.2.252 SendAsDenied is no quota
        return Fatal(f"The server stopped accepting messages: {reply}. {quota_advice(settings)}", reply, quota=True)
    if plain:  # e.g. SendAsDenied: every message would be refused the same way
        return Fatal(f"The server refused the message: {reply}. {plain}", reply)
    if code == 421:
        return Temporary(reply, reconnect=True)
    if 400 <= code < 500:
        return Temporary(reply, connection=bool(ACCOUNT_RE.search(reply)))
    if code in (530, 534, 535, 538):
        return Fatal(f"The server requires (other) authentication: {reply}. Check SMTP_USERNAME and SMTP_PASSWORD.",
                     reply)
    if stage == "MAIL FROM":
        return Fatal(f"The server refuses the sender address: {reply}. Check NEWSLETTER_FROM: the account in "
                     "SMTP_USERNAME must be allowed to send as that address.", reply)
    return Permanent(reply)
