"""What a message in the mailbox reports: a bounce (and per failed recipient, what failed), a spam complaint,
an auto-reply, a delay notice, a delivered report, a read receipt, or nothing (None: ordinary mail).

`read_report` is the entry point; what each failure means comes from the rule table in rules.py. Delivery
status notifications (RFC 3464: Exchange Online, Gmail, Postfix, ... all send them), feedback reports (ARF,
RFC 5965) and read receipts (RFC 8098) are read with the standard library; older plain-text formats (qmail,
Exim, Yahoo, ...) with flufl.bounce, which knows dozens of them. The original Message-ID, which the send journal
keeps per member, ties a report to the edition and the member.

Every message here comes from a stranger: nothing in it may stop the run. Headers and bodies are decoded
tolerantly (broken encoded words, unknown charsets, broken MIME), only the first TEXT_LIMIT characters of a
part are read, and every text that leaves this module is one printable line.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from enum import StrEnum

from newsletter_cli.mailbox import rules
from newsletter_cli.mailbox.mailtext import TEXT_LIMIT, attached, fields, header, one_line, parts, text_of
from newsletter_cli.mailbox.rules import Verdict

__all__ = ["Failure", "Kind", "Report", "Verdict", "is_auto_reply", "looks_like_bounce", "one_line", "read_report"]

MESSAGE_ID_RE = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
REPLY_CODE_RE = re.compile(r"(?<![\d.#-])([245]\d\d)(?=[ \-:]|$)")
BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "post_master", "mail-delivery")
BOUNCE_SUBJECT = re.compile(r"undeliver|unzustellbar|onbestelbaar|niet bezorgd|delivery (status|failure|has failed)|"
                            r"failure notice|returned mail|mail delivery failed|non-?delivery|delivery problem|"
                            r"could not be delivered|mail system error|delivery notification|エラー通知", re.IGNORECASE)
AUTO_REPLY_SUBJECT = re.compile(r"^\s*(automatic reply|automatisch antwoord|out of (the )?office|afwezig|"
                                r"auto ?-?reply|autorespon|abwesenheit|r[ée]ponse automatique|vacation)",
                                re.IGNORECASE)
COPY_STARTS = re.compile(r"^(?:received|return-path|dkim-signature|message-id|x-[\w-]+|content-type):|"
                         r"^[ \t]*-+ ?(?:original message|below this line|the header of the original)",
                         re.IGNORECASE | re.MULTILINE)
RCPT_TO_RE = re.compile(r"RCPT TO:\s*<?([^\s<>@]+@[\w.-]+)", re.IGNORECASE)
FORWARDED = re.compile(r"^\s*(fwd?|wg|doorst|tr|rv)\s*:", re.IGNORECASE)
EMBEDDED_DSN = re.compile(r"^(Reporting-MTA|Final-Recipient):", re.IGNORECASE | re.MULTILINE)
ADDRESS_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
NOT_FAILED = {"delivered", "relayed", "expanded", "delayed", "deliverable"}  # a DSN's Action values (and -bv's)
DELAY_TEXT = re.compile(r"has been delayed|will be retried|delivery (is )?delayed|not yet been delivered|"
                        r"still trying|will (continue|keep) trying|only a temporary failure|\(delay\)|"
                        r"warning: message .* still undelivered|do not need to re-?send", re.IGNORECASE)
FINAL_TEXT = re.compile(r"failed permanently|permanent (fatal )?error|giving up|given up|will be deleted|"
                        r"could not be delivered for|not going to try again|retry time(out)? (not )?(exceeded|reached)",
                        re.IGNORECASE)


# flufl.bounce logs a detector that trips over a stranger's message with its traceback; we carry on without that
# detector, and a traceback must not reach the secretariat's terminal: what it says is kept as one line for the
# mailbox's error log instead (_Tripped).
_FLUFL_LOG = logging.getLogger("flufl.bounce")
_FLUFL_LOG.addHandler(logging.NullHandler())
_FLUFL_LOG.propagate = False


class _Tripped(logging.Handler):
    """flufl.bounce's errors while it reads one message, as lines in `into`."""

    def __init__(self, into: list[str]):
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.into.append(one_line(f"flufl.bounce: {record.getMessage()}"
                                  + (f": {type(exc).__name__}: {exc}" if exc is not None else "")))


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
    reason: str  # short stable name of the rule that matched ('user-unknown', 'dmarc', ...: rules.REASONS)
    explanation: str  # plain English for the secretariat: what it means and what to check

    @property
    def detail(self) -> str:
        return " ".join(part for part in (self.status, self.diagnostic) if part)[:300]


@dataclass
class Report:
    """What one message reports."""

    kind: Kind
    failures: list[Failure]  # BOUNCE: each failed recipient; COMPLAINT: none
    message_ids: list[str]  # the original message's Message-ID(s)
    complained_about: str = ""  # COMPLAINT: the recipient the feedback report names
    unreadable: str = ""  # why (part of) the report could not be read; "" when it was read


def _report_text(msg: Message) -> str:
    """The human-readable words of the report itself: its text parts, up to where a copy of the returned
    message starts (pasted headers), and never the attached message."""
    own = parts(msg, inside_attachments=False)
    texts = [text_of(part) for part in own
             if (part.get_content_maintype() == "text" and part.get_content_subtype() not in ("html", "rfc822-headers"))
             or (part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), str))]  # broken MIME
    if not any(text.strip() for text in texts):  # an HTML-only report: its words without the markup
        texts = [html.unescape(re.sub(r"<style.*?</style>|<(/?[a-zA-Z][^<>@]*)>", " ", text_of(part),
                                      flags=re.IGNORECASE | re.DOTALL))
                 for part in own if part.get_content_type() == "text/html"]
    return COPY_STARTS.split("\n".join(texts)[:TEXT_LIMIT], maxsplit=1)[0]


# --- the parts of a report ---------------------------------------------------------------------------------------

def _address(field_value: str) -> str:
    """'rfc822; user@example.org' -> 'user@example.org'."""
    value = one_line(field_value)
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip()


def _status(*texts: str) -> str:
    for text in texts:
        match = STATUS_RE.search(text)
        if match:
            return ".".join(match.groups())
    return ""


def _failure(address: str, original: str, status: str, diagnostic: str, context: str = "",
             whole: str = "") -> Failure:
    """A failure judged by the rule table on its diagnostic and the report's words about it (`context`); when
    these say nothing, on all of the report's words (`whole`: given only when it has a single recipient)."""
    code = REPLY_CODE_RE.search(diagnostic) or REPLY_CODE_RE.search(context)
    reply_code = code.group(1) if code else ""
    if not (status or reply_code) and whole:
        status = _status(whole)
        code = REPLY_CODE_RE.search(whole)
        reply_code = code.group(1) if code else ""
    judged = rules.judge(status, reply_code, f"{diagnostic} {context}".strip(), whole)
    diagnostic = diagnostic or context or whole
    return Failure(address, original, judged.verdict, status, reply_code, one_line(diagnostic or context)[:300],
                   judged.reason, judged.explanation)


def _nearby(text: str, address: str) -> str:
    """What a report's text says about an address: from the start of each line that names it to the end of
    that paragraph (plain-text formats put the reason there; an address quoted in a To: line adds little)."""
    if not address:
        return ""
    lowered, needle, found = text.lower(), address.lower(), list[str]()
    at = lowered.find(needle)
    while at >= 0 and len(found) < 5:
        start = text.rfind("\n", 0, at) + 1
        paragraph = re.split(r"\r?\n[ \t]*\r?\n", text[start: at + len(address) + 1500], maxsplit=1)[0]
        found.append(one_line(paragraph)[:1000])
        at = lowered.find(needle, at + len(needle))
    return " | ".join(dict.fromkeys(found))


def original_message_ids(msg: Message, raw: bytes) -> list[str]:
    """The returned message's Message-ID: from the attached message or headers, else from the text."""
    found: list[str] = []
    for part in parts(msg):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner["Message-ID"]:
                found.append(header(inner, "Message-ID"))
        elif kind in ("text/rfc822-headers", "message/global-headers"):
            headers = HeaderParser().parsestr(text_of(part))
            if headers["Message-ID"]:
                found.append(header(headers, "Message-ID"))
    if not found:  # a copy pasted into the text (qmail and friends): search below the bounce's own headers
        body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
        found = [m.decode("ascii", "replace") for m in MESSAGE_ID_RE.findall(body[: TEXT_LIMIT * 5])]
    if not found:
        found = [m for m in (header(msg, "In-Reply-To") + " " + header(msg, "References")).split()
                 if m.startswith("<")]
    return [one_line(m)[:300] for m in dict.fromkeys(m.strip() for m in found if m.strip())]


def _part(msg: Message, *types: str) -> Message | None:
    return next((p for p in parts(msg, inside_attachments=False) if p.get_content_type() in types), None)


def _dsn(msg: Message, part: Message | str, problems: list[str]) -> tuple[Kind, list[Failure]]:
    """An RFC 3464 report: one failure per recipient whose Action is failed."""
    found: list[tuple[str, str, str, str]] = []  # address, original recipient, status, diagnostic
    actions: set[str] = set()
    text = _report_text(msg)
    for block in fields(part):
        recipient = block.get("final-recipient") or block.get("original-recipient", "")
        if not recipient:
            continue
        action = block.get("action", "").lower()
        actions.add(action)
        field_status = _status(block.get("status", ""))
        if action in NOT_FAILED or field_status[:1] == "2" or (not action and field_status[:1] != "5"):
            continue  # anything else that names a recipient ('failed', 'expired', ...) is a failure
        diagnostic = block.get("diagnostic-code", "")
        if re.match(r"(smtp|x-[\w-]+|[\w-]+)\s*;", diagnostic, re.IGNORECASE):  # the type of the code: not the code
            diagnostic = diagnostic.split(";", 1)[1].strip()
        status = field_status
        if not status or status.endswith(".0.0"):  # the generic code: the diagnostic may say more
            status = _status(diagnostic) or status
        address = _address(recipient)
        original = _address(block.get("original-recipient", ""))
        found.append((address, original, status, diagnostic))
    whole = "" if len(found) != 1 else one_line(f"{header(msg, 'Subject')}. {text}")[:3000]
    failures = [_failure(address, original, status, diagnostic, _nearby(text, address), whole)
                for address, original, status, diagnostic in found]
    if not failures and actions and actions <= {"delayed"}:
        return Kind.DELAY, []
    if not failures and actions and actions <= NOT_FAILED - {"delayed"}:
        return Kind.DELIVERED, []
    if not actions:  # a report that names no recipient: read its text as in the older formats
        return _plain_bounce(msg, problems) or (Kind.BOUNCE, [])
    return Kind.BOUNCE, _doubted(failures, text)


def _about_us(msg: Message, failures: list[Failure]) -> list[Failure]:
    """A 'does not exist' that names our own domain (the bounce's addressee, the returned message's sender) is
    about our sender address, not the member's: refused, never dead."""
    inner = attached(msg)
    ours = {a.rsplit("@", 1)[-1].lower() for _, a in getaddresses(
        [header(msg, "To"), header(inner, "From") if inner is not None else ""]) if "@" in a}
    out = []
    for failure in failures:
        named = [d for d in ours if not failure.address.lower().endswith("@" + d) and re.search(
            rf"(?<![\w.@-]){re.escape(d)}>?:? (does not exist|not found|unknown|is unknown)", failure.diagnostic,
            re.IGNORECASE)]
        if failure.verdict is Verdict.DEAD and named:
            judged = rules.REASONS["sender-address"]
            failure = Failure(failure.address, failure.original_recipient, judged[0], failure.status,
                              failure.reply_code, failure.diagnostic, "sender-address",
                              f"{judged[1]} (the report says our domain {named[0]} does not exist)")
        out.append(failure)
    return out


def _doubted(failures: list[Failure], text: str) -> list[Failure]:
    """A dead verdict that the report's own words contradict ('Not enough disk space' above a 5.1.1, and no word
    of an unknown address) is unknown: listed for a person."""
    if len(failures) != 1 or failures[0].verdict is not Verdict.DEAD:
        return failures
    own = rules.contradicting_wording(text[:5000])
    if own is None:
        return failures
    failure = failures[0]
    return [Failure(failure.address, failure.original_recipient, Verdict.UNKNOWN, failure.status,
                    failure.reply_code, failure.diagnostic, "contradictory",
                    f"the report contradicts itself: its code says {failure.reason}, its text says {own.reason}: "
                    f"look at it yourself.")]


def _complaint(msg: Message, part: Message, raw: bytes) -> Report:
    """An ARF spam complaint (RFC 5965): who complained, about which message."""
    about = ""
    for block in fields(part):
        about = about or _address(block.get("original-rcpt-to", ""))
    if not about:
        original = _part(msg, "message/rfc822", "text/rfc822-headers")
        inner: Message | None = None
        if original is not None and original.get_content_type() == "message/rfc822" and original.is_multipart():
            first = original.get_payload(0)
            inner = first if isinstance(first, Message) else None
        elif original is not None:
            inner = HeaderParser().parsestr(text_of(original))
        if inner is not None:
            pairs = getaddresses([header(inner, "To")])
            about = pairs[0][1] if pairs else ""
    return Report(Kind.COMPLAINT, [], original_message_ids(msg, raw), complained_about=one_line(about)[:300])


def _sender(msg: Message) -> str:
    pairs = getaddresses([header(msg, "From")])
    return pairs[0][1].lower() if pairs else ""


def _system_sender(msg: Message) -> bool:
    """From MAILER-DAEMON, postmaster, ... (the address, or the name when the address is empty)."""
    sender = _sender(msg)
    name = sender.split("@")[0] if sender else header(msg, "From").lower()
    return any(name.startswith(word) or f"{word}@" in name for word in BOUNCE_SENDERS)


def _from_mail_system(msg: Message) -> bool:
    return msg.get_content_type() == "multipart/report" or header(msg, "Return-Path") == "<>" or _system_sender(msg)


def looks_like_bounce(msg: Message) -> bool:
    """From a mail system, not a person: only then are the heuristics of flufl.bounce worth asking."""
    return _from_mail_system(msg) or bool(BOUNCE_SUBJECT.search(header(msg, "Subject")))


def _plain_bounce(msg: Message, problems: list[str]) -> tuple[Kind, list[Failure]] | None:
    """A bounce in one of the older plain-text formats, read by flufl.bounce; None when it is none. What
    flufl.bounce trips over is added to `problems`."""
    from flufl.bounce import all_failures

    tripped = _Tripped(problems)
    _FLUFL_LOG.addHandler(tripped)
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # a third-party heuristic on a stranger's message: never let it stop the run
        problems.append(one_line(f"flufl.bounce: {type(exc).__name__}: {exc}"))
        temporary, permanent = frozenset(), frozenset()
    finally:
        _FLUFL_LOG.removeHandler(tripped)
    text = _report_text(msg)
    words = f"{header(msg, 'Subject')}\n{text[:5000]}"
    if DELAY_TEXT.search(words) and not FINAL_TEXT.search(words):
        return Kind.DELAY, []  # a warning: the message is still being tried (a bounce follows if it fails)
    addresses = [one_line(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)).strip("<>")
                 for a in sorted(set(permanent) | set(temporary))] or _named_in(msg, text)
    whole = "" if len(addresses) != 1 else one_line(f"{header(msg, 'Subject')}. {text}")[:3000]
    found = [_failure(address, "", _status(_nearby(text, address)), "", _nearby(text, address), whole)
             for address in addresses]
    if not found and not _from_mail_system(msg):
        return None  # only its subject sounded like a bounce
    return Kind.BOUNCE, _doubted(found, text)


def _named_in(msg: Message, text: str) -> list[str]:
    """The failed recipients of a plain-text bounce flufl.bounce does not know: the addresses its words name
    (not its own sender's or recipient's, not a mail system's), else the returned message's To."""
    own = {a.lower() for _, a in getaddresses([header(msg, name) for name in ("From", "To", "Return-Path",
                                                                               "Reply-To", "Sender")])}
    envelope = [a.strip(".") for a in RCPT_TO_RE.findall(text)]  # a transcript names the recipient exactly
    named = envelope or [a.strip(".") for a in ADDRESS_RE.findall(text)]
    named = [a for a in dict.fromkeys(named) if a.lower() not in own
             and not a.lower().split("@")[0].startswith(("mailer-daemon", "mail-daemon", "mailerdaemon"))]
    if named:
        return named[:10]
    inner = attached(msg)
    return [] if inner is None else [a for _, a in getaddresses([header(inner, "To")]) if a][:10]


def is_auto_reply(msg: Message) -> bool:
    """Out-of-office and other automatic answers (RFC 3834, Exchange, common headers and subjects)."""
    auto = header(msg, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    if msg["X-Autoreply"] or msg["X-Autorespond"] or msg["X-MS-Exchange-Inbox-Rules-Loop"]:
        return True
    if header(msg, "Precedence").lower() in ("auto_reply", "auto-reply"):
        return True
    return bool(AUTO_REPLY_SUBJECT.search(header(msg, "Subject")))


# --- the entry point ---------------------------------------------------------------------------------------------

def read_report(msg: Message, raw: bytes, problems: list[str] | None = None) -> Report | None:
    """The report in a message, or None when it is none (ordinary mail, an unsubscribe request, ...).
    Never raises: a report that cannot be read is a bounce without failures, `unreadable` saying why. What went
    wrong on the way (flufl.bounce tripping, say) is added to `problems`, for the mailbox's error log."""
    problems = [] if problems is None else problems
    try:
        return _read(msg, raw, problems)
    except Exception as exc:  # a stranger's message must never stop the run
        problems.append(one_line(f"reading the report: {type(exc).__name__}: {exc}"))
        try:
            ids = original_message_ids(msg, raw)
        except Exception:
            ids = []
        return Report(Kind.BOUNCE, [], ids, unreadable=f"cannot be read ({type(exc).__name__})")


def _read(msg: Message, raw: bytes, problems: list[str]) -> Report | None:
    feedback = _part(msg, "message/feedback-report")
    if feedback is not None:
        return _complaint(msg, feedback, raw)
    jmrp = attached(msg)
    if jmrp is not None and jmrp["X-HmXmrOriginalRecipient"]:  # Microsoft's junk mail reporting (JMRP): not ARF
        return Report(Kind.COMPLAINT, [], original_message_ids(msg, raw),
                      complained_about=_address(header(jmrp, "X-HmXmrOriginalRecipient"))[:300])
    if _part(msg, "message/disposition-notification", "message/global-disposition-notification") is not None:
        return Report(Kind.READ_RECEIPT, [], original_message_ids(msg, raw))
    status: Message | str | None = _part(msg, "message/delivery-status", "message/global-delivery-status")
    if status is None:  # a report pasted into a text part without MIME (old Sendmail)
        text = "\n".join(text_of(p) for p in parts(msg, inside_attachments=False)
                         if p.get_content_type() == "text/plain")
        at = EMBEDDED_DSN.search(text)
        status = text[at.start():] if at and looks_like_bounce(msg) else None
    if status is not None:
        kind, failures = _dsn(msg, status, problems)
        return Report(kind, _about_us(msg, failures), original_message_ids(msg, raw))
    if FORWARDED.match(header(msg, "Subject")) and not _from_mail_system(msg):
        return None  # a person forwarded something (a bounce, perhaps): a person's mail is for a person to read
    system = _system_sender(msg) or bool(BOUNCE_SUBJECT.search(header(msg, "Subject")))
    if is_auto_reply(msg) and not system:
        return Report(Kind.AUTO_REPLY, [], original_message_ids(msg, raw))
    if looks_like_bounce(msg):
        plain = _plain_bounce(msg, problems)
        if plain is not None:
            return Report(plain[0], _about_us(msg, plain[1]), original_message_ids(msg, raw))
    if is_auto_reply(msg):
        return Report(Kind.AUTO_REPLY, [], original_message_ids(msg, raw))
    return None
