"""What to do with one message in the mailbox: act on it, file it, list it for a person, or leave it alone.

Mail from outside is hostile until proven otherwise: only a report that proves itself (proof.py) or a
verified unsubscribe token leads to an action; everything doubtful is listed for a person. Every header and
body is decoded tolerantly (unknown charsets, broken encoded words, broken MIME), and a message that still
cannot be read is listed and moved to a folder of its own: no message can stop the run.
"""

from __future__ import annotations

import email
import email.header
import hashlib
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from newsletter_cli.mailbox import classify, mailtext, proof
from newsletter_cli.mailbox.classify import Kind, Verdict
from newsletter_cli.mailbox.imap import MAX_MESSAGE_BYTES, Fetched
from newsletter_cli.mailbox.record import Sent
from newsletter_cli.members import unsubscribe
from newsletter_cli.members.lists import normal_address

WORDS_CHECKED_UP_TO = 1_000_000  # ordinary mail up to this size is read for "graag afmelden" in words
FILED_KINDS = (Kind.AUTO_REPLY, Kind.DELAY, Kind.DELIVERED, Kind.READ_RECEIPT)


@dataclass
class Action:
    """Something a proven report or a verified request asks for; the message is filed afterwards."""

    uid: str
    kind: str  # 'unsubscribed', 'permanent', 'temporary', 'refused', 'complaint'
    email: str
    edition: str
    detail: str = ""
    explanation: str = ""  # refused: the reason in plain words and what to check
    sender: str = ""  # unsubscribed: who sent the request, when that is not the member


@dataclass
class Filed:
    """A report that needs nothing done (auto-reply, delay, delivered, read receipt): filed, never listed."""

    uid: str
    kind: str


@dataclass
class ForYou:
    """A message a person must look at; listed once (`key` is remembered in mailbox.sqlite)."""

    uid: str
    sender: str
    subject: str
    why: str
    key: str
    unreadable: bool = False  # moved to IMAP_UNREADABLE_FOLDER


Outcome = Action | Filed | ForYou | None


def header(msg: Message, name: str) -> str:
    """A header as one line of plain text for the terminal and Excel: decoded where it can be, without control
    characters (a stranger's subject must not send escape sequences to the terminal), at most 200 characters.
    Never raises."""
    return mailtext.header(msg, name)[:200]


def message_key(fetched: Fetched) -> str:
    """What a listed message is remembered by: the hash of its text (see record.py), or of its header block and
    size when it was not downloaded (whether it is, is decided the same way on every run)."""
    if fetched.data is not None:
        return hashlib.sha256(fetched.data).hexdigest()
    return hashlib.sha256(fetched.header + f"\0{fetched.size}".encode()).hexdigest()


def _head(fetched: Fetched) -> Message:
    return email.message_from_bytes(fetched.header or (fetched.data or b"").split(b"\r\n\r\n", 1)[0])


def _for_you(fetched: Fetched, msg: Message | None, why: str, *, unreadable: bool = False) -> ForYou:
    try:
        msg = msg if msg is not None else _head(fetched)
        sender, subject = header(msg, "From"), header(msg, "Subject")
    except Exception:
        sender, subject = "", ""
    return ForYou(fetched.uid, sender, subject, classify.one_line(why), message_key(fetched), unreadable)


class Tokens:
    """Which member an unsubscribe token belongs to: the sender's own address first, then every member the
    journals know, under every secret a token may have been made with (unsubscribe.secrets_to_verify)."""

    def __init__(self, secrets: list[str], sent: Sent):
        self.secrets, self.sent = secrets, sent
        self._all: dict[str, str] | None = None

    def member(self, token: str, candidates: list[str]) -> str | None:
        for secret in self.secrets:
            for address in candidates:
                if address and unsubscribe.token(address, secret) == token:
                    return self.sent.addresses.get(address.lower(), address)
        if self._all is None:
            self._all = {unsubscribe.token(a, s): a for s in self.secrets for a in self.sent.addresses.values()}
        return self._all.get(token)


def worth_reading(size: int, head_bytes: bytes) -> bool:
    """Whether a message must be downloaded: a possible report or unsubscribe, or a small mail that may ask in
    words. Auto-replies and large ordinary mail are judged by their header alone (a mailbox of months of
    out-of-office replies is not downloaded every run)."""
    try:
        head = email.message_from_bytes(head_bytes)
        if classify.looks_like_bounce(head) or unsubscribe.find_token(header(head, "Subject")):
            return True
        return not classify.is_auto_reply(head) and size <= WORDS_CHECKED_UP_TO
    except Exception:
        return size <= MAX_MESSAGE_BYTES  # read it whole; judge() copes


def judge(fetched: Fetched, sent: Sent, tokens: Tokens, problems: list[str] | None = None) -> Outcome:
    """What to do with one message. Never raises: what cannot be read is listed and set apart, and what went
    wrong on the way is added to `problems` (for the mailbox's error log)."""
    problems = [] if problems is None else problems
    try:
        return _judge(fetched, sent, tokens, problems)
    except Exception as exc:  # a stranger's message must not stop the run
        problems.append(classify.one_line(f"judging the message: {type(exc).__name__}: {exc}"))
        return _for_you(fetched, None, f"cannot be read ({type(exc).__name__}): moved to the folder for "
                                       "unreadable messages", unreadable=True)


def _judge(fetched: Fetched, sent: Sent, tokens: Tokens, problems: list[str]) -> Outcome:
    if fetched.data is None:
        if fetched.error:
            return _for_you(fetched, None, f"the server did not give the message ({fetched.error}): left in the "
                                           "folder; the next run tries again")
        if fetched.size > MAX_MESSAGE_BYTES:
            return _for_you(fetched, None, f"too large to check here ({fetched.size / 1e6:.1f} MB; messages over "
                                           f"{MAX_MESSAGE_BYTES / 1e6:.0f} MB are not read): left in the folder")
        if classify.is_auto_reply(_head(fetched)):
            return Filed(fetched.uid, Kind.AUTO_REPLY.value)
        return None  # large ordinary mail, judged by its header: left alone
    msg = email.message_from_bytes(fetched.data)
    if not msg.keys():
        return _for_you(fetched, msg, "cannot be read (no mail header): moved to the folder for unreadable "
                                      "messages", unreadable=True)
    report = classify.read_report(msg, fetched.data, problems)
    if report is not None:
        return _report(fetched, msg, report, sent)
    return _request(fetched, msg, tokens, sent)


def _report(fetched: Fetched, msg: Message, report: classify.Report, sent: Sent) -> Outcome:
    if report.kind in FILED_KINDS:
        return Filed(fetched.uid, report.kind.value)
    if report.kind is Kind.COMPLAINT:
        proven = proof.prove_complaint(report, sent)
        if isinstance(proven, str):
            return _for_you(fetched, msg, proven)
        return Action(fetched.uid, "complaint", proven.member, proven.edition,
                      "spam complaint (feedback report), Message-ID verified")
    if not report.failures:
        if report.unreadable:
            return _for_you(fetched, msg, f"a report that {report.unreadable}: moved to the folder for unreadable "
                                          "messages", unreadable=True)
        return _for_you(fetched, msg, "looks like a bounce but its report cannot be read: left in the folder")
    proven = proof.prove_bounce(report, sent)
    if isinstance(proven, str):
        return _for_you(fetched, msg, proven)
    failure = proven.failure
    assert failure is not None
    detail = failure.detail
    if failure.verdict is Verdict.DEAD:
        return Action(fetched.uid, "permanent", proven.member, proven.edition, detail)
    if failure.verdict is Verdict.SOFT:
        return Action(fetched.uid, "temporary", proven.member, proven.edition, detail)
    if failure.verdict is Verdict.REFUSED:
        return Action(fetched.uid, "refused", proven.member, proven.edition, detail,
                      failure.explanation or failure.reason or "refused by the receiving server")
    return _for_you(fetched, msg, f"a bounce for {proven.member} ({proven.edition}) that cannot be judged "
                                  f"({detail or 'no reason given'}): not acted on; if the address is dead, "
                                  f"run newsletter suppress {proven.member}")


def _first_text(msg: Message) -> str:
    """The start of the first plain-text part, read as tolerantly as a report's text (mailtext.py)."""
    part = next((p for p in mailtext.parts(msg) if p.get_content_type() == "text/plain"), None)
    return "" if part is None else mailtext.text_of(part, 2000)


def _request(fetched: Fetched, msg: Message, tokens: Tokens, sent: Sent) -> Outcome:
    """An unsubscribe request with a token (acted on), in words only (listed), or ordinary mail (left)."""
    if classify.is_auto_reply(msg):
        return Filed(fetched.uid, Kind.AUTO_REPLY.value)
    subject = header(msg, "Subject")
    token = unsubscribe.find_token(subject)
    if token:
        senders = [a for _, a in getaddresses([header(msg, "From"), header(msg, "Reply-To"), header(msg, "Sender")])]
        found = tokens.member(token, senders)
        if found is None:
            return _for_you(fetched, msg, "an unsubscribe request whose token does not belong to any member: "
                                          "not acted on")
        sender = next((a for a in senders if a), "")
        other = sender if sender and normal_address(sender) != normal_address(found) else ""
        detail = "unsubscribe request by email, token verified" + (f" (sent from {other})" if other else "")
        return Action(fetched.uid, "unsubscribed", found, sent.latest_edition(found), detail, sender=other)
    if unsubscribe.looks_like_request(subject) or unsubscribe.looks_like_request(_first_text(msg)):
        return _for_you(fetched, msg, "asks to unsubscribe without a token: check who it is, then "
                                      "newsletter suppress ADDRESS")
    return None
