"""What a message in the mailbox is: a bounce (and for whom, how bad), an auto-reply, or something else.

Delivery status notifications (RFC 3464: Exchange Online, Gmail, Postfix, ... all send them) are read with
the standard library; older formats that are not RFC 3464 (qmail, Exim's plain text, ...) with flufl.bounce,
which knows dozens of them. The original Message-ID, which the send journal keeps per member, ties a bounce
to the edition and the member.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

MESSAGE_ID_RE = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
BOUNCE_SUBJECT = re.compile(r"undeliver|unzustellbar|onbestelbaar|niet bezorgd|delivery (status|failure|has failed)|"
                            r"failure notice|returned mail|mail delivery failed|non-?delivery", re.IGNORECASE)
AUTO_REPLY_SUBJECT = re.compile(r"^\s*(automatic reply|automatisch antwoord|out of (the )?office|afwezig|"
                                r"autoreply|auto-reply|abwesenheit)", re.IGNORECASE)
MAILBOX_FULL = "5.2.2"  # permanent by its class, temporary by its nature: the member may empty the mailbox


@dataclass(frozen=True)
class Failure:
    """One recipient in a bounce."""

    address: str
    status: str  # '5.1.1', '4.2.2' or '' when the report does not say
    permanent: bool
    diagnostic: str = ""

    @property
    def detail(self) -> str:
        return " ".join(part for part in (self.status, self.diagnostic) if part)[:300]


@dataclass
class Bounce:
    failures: list[Failure] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)  # of the message that bounced
    standard: bool = True  # RFC 3464, or recognised by flufl.bounce


def one_line(value: object) -> str:
    """One line of printable text (what a stranger's server wrote goes to the terminal and to Excel)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(value or "")).split())


def is_permanent(status: str, action: str = "failed") -> bool:
    """5.x.x is permanent, except 5.2.2 (mailbox full); 4.x.x and unknown statuses are temporary."""
    return action == "failed" and status.startswith("5") and status != MAILBOX_FULL


def _address(field_value: str) -> str:
    """'rfc822; user@example.org' -> 'user@example.org'."""
    value = one_line(field_value)
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip()


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


def parse_dsn(msg: Message) -> list[Failure] | None:
    """The failed recipients of an RFC 3464 report, or None when the message is not one."""
    blocks = _delivery_status(msg)
    if blocks is None:
        return None
    failures: list[Failure] = []
    for block in blocks:
        recipient = block["Final-Recipient"] or block["Original-Recipient"]
        action = one_line(block["Action"]).lower()
        if not recipient or action not in ("failed", "delayed"):
            continue
        match = STATUS_RE.search(one_line(block["Status"])) or STATUS_RE.search(one_line(block["Diagnostic-Code"]))
        status = ".".join(match.groups()) if match else ""
        if action == "delayed":
            continue  # still being tried: not a bounce (yet)
        diagnostic = one_line(block["Diagnostic-Code"])
        if diagnostic.lower().startswith(("smtp;", "x-")):  # the type of the code, not the code
            diagnostic = diagnostic.split(";", 1)[1].strip()
        failures.append(Failure(_address(str(recipient)), status, is_permanent(status, action), diagnostic))
    return failures


def _sender(msg: Message) -> str:
    pairs = getaddresses([str(msg["From"] or "")])
    return pairs[0][1].lower() if pairs else ""


def _from_mail_system(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report" or one_line(msg["Return-Path"]) == "<>"
            or _sender(msg).split("@")[0] in BOUNCE_SENDERS)


def looks_like_bounce(msg: Message) -> bool:
    """From a mail system, not a person: only then are the heuristics of flufl.bounce worth asking."""
    return _from_mail_system(msg) or bool(BOUNCE_SUBJECT.search(one_line(msg["Subject"])))


def parse_bounce(msg: Message, raw: bytes) -> Bounce | None:
    """The bounce in a message, or None when it is not one. A report that cannot be read has no failures."""
    failures = parse_dsn(msg)
    if failures is not None:
        return Bounce(failures, original_message_ids(msg, raw))
    if not looks_like_bounce(msg):
        return None
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a third-party heuristic on a stranger's message: never let it stop the run
        temporary, permanent = frozenset(), frozenset()
    text = _text(msg)
    found: list[Failure] = []
    for addresses, hard in ((permanent, True), (temporary - permanent, False)):
        for raw_address in sorted(addresses):
            address = raw_address.decode("utf-8", "replace") if isinstance(raw_address, bytes) else str(raw_address)
            status, diagnostic = _nearby_status(text, address)
            found.append(Failure(address, status, hard if not status else is_permanent(status), diagnostic))
    if not found and not _from_mail_system(msg):
        return None  # only its subject sounded like a bounce
    return Bounce(found, original_message_ids(msg, raw), standard=bool(found))


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
