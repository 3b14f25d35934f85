"""What a message in the mailbox is: a bounce (and per failed recipient, what failed), a spam complaint, an
auto-reply, a delay notice, a delivered report, a read receipt, or none of these.

`read_report` is the entry point; the meaning of each failure comes from the rule table in rules.py.
Delivery status notifications (RFC 3464: Exchange Online, Gmail, Postfix, ... all send them) are read with
the standard library; older formats that are not RFC 3464 (qmail, Exim's plain text, ...) with flufl.bounce,
which knows dozens of them. The original Message-ID, which the send journal keeps per member, ties a report
to the edition and the member.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from enum import StrEnum

from newsletter_cli.mailbox import rules
from newsletter_cli.mailbox.rules import Verdict

__all__ = ["Failure", "Kind", "Report", "Verdict", "read_report"]

MESSAGE_ID_RE = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
BOUNCE_SUBJECT = re.compile(r"undeliver|unzustellbar|onbestelbaar|niet bezorgd|delivery (status|failure|has failed)|"
                            r"failure notice|returned mail|mail delivery failed|non-?delivery", re.IGNORECASE)
AUTO_REPLY_SUBJECT = re.compile(r"^\s*(automatic reply|automatisch antwoord|out of (the )?office|afwezig|"
                                r"autoreply|auto-reply|abwesenheit)", re.IGNORECASE)


class Kind(StrEnum):
    """What kind of report a message is."""

    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto-reply"
    DELAY = "delay"
    DELIVERED = "delivered"
    READ_RECEIPT = "read-receipt"


@dataclass(frozen=True)
class Failure:
    """One failed recipient in a report, and what it means."""

    address: str  # Final-Recipient, else Original-Recipient, else the address in the text; "" when none
    original_recipient: str  # Original-Recipient when given, else ""
    verdict: Verdict
    status: str  # enhanced status '5.1.1' or ''
    reply_code: str  # '550' or ''
    diagnostic: str  # one printable line, at most 300 characters
    reason: str  # short stable name of the rule that matched ('user-unknown', 'dmarc', ...)
    explanation: str  # plain English for the secretariat: what it means and what to check

    @property
    def permanent(self) -> bool:
        """The old name of 'the address is dead'."""
        return self.verdict is Verdict.DEAD

    @property
    def detail(self) -> str:
        return " ".join(part for part in (self.status, self.diagnostic) if part)[:300]


@dataclass
class Report:
    """What one message reports."""

    kind: Kind
    failures: list[Failure]
    message_ids: list[str]  # the original message's Message-ID(s)
    complained_about: str = ""  # COMPLAINT: the recipient the feedback report names
    unreadable: str = ""  # why part of the report could not be read ("" when all was read)


@dataclass
class Bounce:
    """The old shape of a bounce (kept while mailbox/run.py still uses parse_bounce)."""

    failures: list[Failure] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    standard: bool = True


def one_line(value: object) -> str:
    """One line of printable text (what a stranger's server wrote goes to the terminal and to Excel)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(value or "")).split())


def _address(field_value: str) -> str:
    """'rfc822; user@example.org' -> 'user@example.org'."""
    value = one_line(field_value)
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip()


def _failure(address: str, original: str, status: str, reply_code: str, diagnostic: str) -> Failure:
    rule = rules.judge(status, reply_code, diagnostic)
    if rule is None:
        return Failure(address, original, Verdict.UNKNOWN, status, reply_code, diagnostic[:300], "unknown",
                       "the report does not say clearly what failed: look at it yourself.")
    return Failure(address, original, rule.verdict, status, reply_code, diagnostic[:300], rule.reason,
                   rule.explanation)


def original_message_ids(msg: Message, raw: bytes) -> list[str]:
    """The bounced message's Message-ID: from the attached message or headers, else from the text."""
    found: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner["Message-ID"]:
                found.append(one_line(inner["Message-ID"]))
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = HeaderParser().parsestr(payload.decode("utf-8", "replace"))
                if headers["Message-ID"]:
                    found.append(one_line(headers["Message-ID"]))
    if not found:  # a copy pasted into the text (qmail and friends): search below the bounce's own headers
        body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
        found = [m.decode("ascii", "replace") for m in MESSAGE_ID_RE.findall(body)]
    if not found:
        found = [m for m in one_line(msg["In-Reply-To"]).split() + one_line(msg["References"]).split()
                 if m.startswith("<")]
    return list(dict.fromkeys(found))


def _delivery_status(msg: Message) -> list[Message] | None:
    for part in msg.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            blocks = part.get_payload()
            if isinstance(blocks, list):
                return [b for b in blocks if isinstance(b, Message)]
            if isinstance(blocks, str):  # not parsed into blocks (e.g. global-delivery-status): parse ourselves
                return [HeaderParser().parsestr(b) for b in re.split(r"\r?\n\s*\r?\n", blocks) if b.strip()]
    return None


def _dsn(msg: Message) -> tuple[Kind, list[Failure]] | None:
    blocks = _delivery_status(msg)
    if blocks is None:
        return None
    failures: list[Failure] = []
    actions: set[str] = set()
    for block in blocks:
        recipient = block["Final-Recipient"] or block["Original-Recipient"]
        action = one_line(block["Action"]).lower()
        if not recipient:
            continue
        actions.add(action)
        if action != "failed":
            continue
        match = STATUS_RE.search(one_line(block["Status"])) or STATUS_RE.search(one_line(block["Diagnostic-Code"]))
        status = ".".join(match.groups()) if match else ""
        diagnostic = one_line(block["Diagnostic-Code"])
        if diagnostic.lower().startswith(("smtp;", "x-")):  # the type of the code, not the code
            diagnostic = diagnostic.split(";", 1)[1].strip()
        code = re.match(r"([245]\d\d)\b", diagnostic)
        original = _address(str(block["Original-Recipient"] or ""))
        failures.append(_failure(_address(str(recipient)), original, status, code.group(1) if code else "",
                                 diagnostic))
    if not failures and actions and actions <= {"delayed"}:
        return Kind.DELAY, []
    if not failures and actions and actions <= {"delivered", "relayed", "expanded"}:
        return Kind.DELIVERED, []
    return Kind.BOUNCE, failures


def _sender(msg: Message) -> str:
    pairs = getaddresses([str(msg["From"] or "")])
    return pairs[0][1].lower() if pairs else ""


def _from_mail_system(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report" or one_line(msg["Return-Path"]) == "<>"
            or _sender(msg).split("@")[0] in BOUNCE_SENDERS)


def looks_like_bounce(msg: Message) -> bool:
    """From a mail system, not a person: only then are the heuristics of flufl.bounce worth asking."""
    return _from_mail_system(msg) or bool(BOUNCE_SUBJECT.search(one_line(msg["Subject"])))


def _text(msg: Message) -> str:
    parts: list[str] = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(parts)


def _nearby_status(text: str, address: str) -> tuple[str, str]:
    """The status code and the reason on the lines after the address in a plain-text bounce."""
    text = text.replace("\r\n", "\n")
    at = text.lower().find(address.lower())
    if at < 0:
        return "", ""
    tail = text[at + len(address): at + len(address) + 400].strip(" :>\r\n")
    line = one_line(tail.split("\n\n", 1)[0])
    match = STATUS_RE.search(line)
    return (".".join(match.groups()) if match else ""), line[:200]


def _plain_bounce(msg: Message) -> list[Failure] | None:
    if not looks_like_bounce(msg):
        return None
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a third-party heuristic on a stranger's message: never let it stop the run
        temporary, permanent = frozenset(), frozenset()
    text = _text(msg)
    found: list[Failure] = []
    for raw_address in sorted(set(permanent) | set(temporary)):
        address = raw_address.decode("utf-8", "replace") if isinstance(raw_address, bytes) else str(raw_address)
        status, diagnostic = _nearby_status(text, address)
        code = re.search(r"\b([245]\d\d)\b", diagnostic)
        found.append(_failure(address, "", status, code.group(1) if code else "", diagnostic))
    if not found and not _from_mail_system(msg):
        return None  # only its subject sounded like a bounce
    return found


def read_report(msg: Message, raw: bytes) -> Report | None:
    """The report in a message, or None when it is none (ordinary mail, an unsubscribe request, ...).
    Never raises: a report that cannot be read is a bounce without failures, with `unreadable` saying why."""
    try:
        return _read(msg, raw)
    except Exception as exc:  # a stranger's message must never stop the run
        return Report(Kind.BOUNCE, [], [], unreadable=f"cannot be read ({type(exc).__name__})")


def _read(msg: Message, raw: bytes) -> Report | None:
    dsn = _dsn(msg)
    if dsn is not None:
        return Report(dsn[0], dsn[1], original_message_ids(msg, raw))
    if is_auto_reply(msg):
        return Report(Kind.AUTO_REPLY, [], original_message_ids(msg, raw))
    plain = _plain_bounce(msg)
    if plain is not None:
        return Report(Kind.BOUNCE, plain, original_message_ids(msg, raw))
    return None


def parse_bounce(msg: Message, raw: bytes) -> Bounce | None:
    """The old entry point: the bounce in a message, or None. A report that cannot be read has no failures."""
    report = read_report(msg, raw)
    if report is None or report.kind not in (Kind.BOUNCE, Kind.DELAY):
        return None
    return Bounce(report.failures, report.message_ids, standard=bool(report.failures))


def is_auto_reply(msg: Message) -> bool:
    """Out-of-office and other automatic answers (RFC 3834, Exchange, common headers and subjects)."""
    auto = one_line(msg["Auto-Submitted"]).lower()
    if auto and auto != "no":
        return True
    if msg["X-Autoreply"] or msg["X-Autorespond"] or msg["X-MS-Exchange-Inbox-Rules-Loop"]:
        return True
    if one_line(msg["Precedence"]).lower() in ("auto_reply", "auto-reply"):
        return True
    return bool(AUTO_REPLY_SUBJECT.search(one_line(msg["Subject"])))
