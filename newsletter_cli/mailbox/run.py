"""`newsletter mailbox`: read the bounces and unsubscribe requests, update suppressions.csv, file the messages.

Every message is first understood, then everything learned is written (suppressions.csv, mailbox.sqlite),
and only then are the handled messages moved: a run that stops halfway loses nothing, and the next run does
the rest (adding an address twice is a no-op). Messages a person must look at are listed, never moved.
"""

from __future__ import annotations

import email
import email.header
import imaplib
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses

from newsletter_cli.errors import NewsletterError
from newsletter_cli.mailbox import classify as bounces
from newsletter_cli.mailbox import record as feedback
from newsletter_cli.mailbox.imap import MAX_MESSAGE_BYTES, Fetched, Mailbox
from newsletter_cli.members import suppressions, unsubscribe
from newsletter_cli.project import Project
from newsletter_cli.settings import Settings

WORDS_CHECKED_UP_TO = 1_000_000  # ordinary mail up to this size is read for "graag afmelden" in words


@dataclass
class Action:
    uid: str
    kind: str  # 'unsubscribed', 'permanent', 'temporary'
    email: str
    edition: str
    detail: str = ""


@dataclass
class ForYou:
    uid: str
    sender: str
    subject: str
    why: str


@dataclass
class Result:
    folder: str
    processed_folder: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    for_you: list[ForYou] = field(default_factory=list)
    left_alone: int = 0  # auto-replies and ordinary mail
    suppressed: list[suppressions.Suppression] = field(default_factory=list)  # newly added to the file
    moved: int = 0
    created_folder: bool = False


def _header(msg: Message, name: str) -> str:
    """A header as one line of plain text: decoded, without control characters (a stranger's subject must not
    send escape sequences to the terminal)."""
    raw = msg.get(name)
    if raw is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(raw))))
    except (ValueError, LookupError, UnicodeError):
        text = str(raw)
    return bounces.one_line(text)[:200]


class _Tokens:
    """Which member a token belongs to: the sender's own address first, then everyone the journals know."""

    def __init__(self, secret: str | None, sent: feedback.Sent):
        self.secret, self.sent = secret, sent
        self._all: dict[str, str] | None = None

    def member(self, token: str, candidates: list[str]) -> str | None:
        if not self.secret:
            return None
        for address in candidates:
            if address and unsubscribe.token(address, self.secret) == token:
                return self.sent.addresses.get(address.lower(), address)
        if self._all is None:
            self._all = {unsubscribe.token(a, self.secret): a for a in self.sent.addresses.values()}
        return self._all.get(token)


def _for_you(fetched: Fetched, msg: Message | None, why: str) -> ForYou:
    if msg is None:
        msg = email.message_from_bytes(fetched.header)
    return ForYou(fetched.uid, _header(msg, "From"), _header(msg, "Subject"),
                  bounces.one_line(why))


def classify(fetched: Fetched, sent: feedback.Sent, tokens: _Tokens) -> Action | ForYou | None:
    """What to do with one message: an action, a note for a person, or None (leave it alone)."""
    if fetched.data is None and fetched.size <= MAX_MESSAGE_BYTES:
        return None  # its header showed an auto-reply or a large ordinary message: left alone unread
    if fetched.data is None:
        return _for_you(fetched, None, f"too large to check here ({fetched.size / 1e6:.1f} MB; messages over "
                                       f"{MAX_MESSAGE_BYTES / 1e6:.0f} MB are not read): left in the folder")
    try:
        msg = email.message_from_bytes(fetched.data)
        bounce = bounces.parse_bounce(msg, fetched.data)
    except Exception as exc:  # a stranger's message must not stop the run: it is listed instead
        return _for_you(fetched, None, f"cannot be read ({type(exc).__name__}): left in the folder")
    if bounce is not None:
        if not bounce.failures:
            return _for_you(fetched, msg, "looks like a bounce but its report cannot be read: left in the folder")
        match = sent.match(bounce.message_ids)
        if match is None:
            ids = ", ".join(bounce.message_ids) or "none"
            return _for_you(fetched, msg, f"a bounce of a message the send journals do not know (Message-ID {ids}; "
                                          f"{bounce.failures[0].address}): not acted on")
        edition, member = match
        worst = next((f for f in bounce.failures if f.permanent), bounce.failures[0])
        return Action(fetched.uid, "permanent" if worst.permanent else "temporary", member, edition, worst.detail)
    if bounces.is_auto_reply(msg):
        return None
    subject = _header(msg, "Subject")
    token = unsubscribe.find_token(subject)
    if token:
        senders = [a for _, a in getaddresses([_header(msg, "From"), _header(msg, "Reply-To"), _header(msg, "Sender")])]
        found = tokens.member(token, senders)
        if found is None:
            return _for_you(fetched, msg, "an unsubscribe request whose token does not belong to any member: "
                                          "not acted on")
        return Action(fetched.uid, "unsubscribed", found, sent.latest_edition(found))
    if unsubscribe.looks_like_request(subject) or unsubscribe.looks_like_request(_first_text(msg)):
        return _for_you(fetched, msg, "asks to unsubscribe without a token: check who it is, then "
                                      "newsletter suppress ADDRESS")
    return None


def worth_reading(size: int, header: bytes) -> bool:
    """Whether a message must be downloaded: a possible bounce or unsubscribe, or a small mail that may ask in
    words. Auto-replies and large ordinary mail are judged by their header alone (a mailbox of months of
    out-of-office replies is not downloaded every run)."""
    head = email.message_from_bytes(header)
    if bounces.looks_like_bounce(head) or unsubscribe.find_token(_header(head, "Subject")):
        return True
    return not bounces.is_auto_reply(head) and size <= WORDS_CHECKED_UP_TO


def _first_text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload[:2000].decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def _suppressions_for(actions: list[Action], record: feedback.Record,
                      sent: feedback.Sent) -> list[suppressions.Suppression]:
    """Record each event; who is to be suppressed now (permanent, unsubscribed, or soft on 3 editions in a row)."""
    out: list[suppressions.Suppression] = []
    for action in actions:
        record.add(action.edition, action.email, action.kind, action.detail)
    for action in actions:
        if action.kind == "unsubscribed":
            out.append(suppressions.Suppression(action.email, "unsubscribed", edition=action.edition,
                                                detail="unsubscribe request by email, token verified"))
        elif action.kind == "permanent":
            out.append(suppressions.Suppression(action.email, "bounced", edition=action.edition,
                                                detail=action.detail or "permanent failure"))
        else:
            streak = record.soft_streak(action.email, sent)
            if streak:
                out.append(suppressions.Suppression(
                    action.email, "bounced", edition=action.edition,
                    detail=f"temporary failures on {len(streak)} editions in a row ({', '.join(streak)}): "
                           f"{action.detail}"))
    return out


def run(settings: Settings, project: Project | None = None, *, dry_run: bool = False) -> Result:
    """Read the mailbox once; with dry_run, change nothing (not the mailbox, not a file)."""
    sent = feedback.read_sent(project)
    secret: str | None = None
    if settings.list_unsubscribe_secret or unsubscribe.secret_path().is_file() or not dry_run:
        secret = unsubscribe.load_secret(settings)
    tokens = _Tokens(secret, sent)
    result = Result(settings.imap_folder, settings.imap_processed_folder, dry_run)
    try:
        _session(settings, result, sent, tokens, project)
    except (OSError, imaplib.IMAP4.error) as exc:  # the connection broke: what was written stays, nothing is lost
        why = str(exc) or type(exc).__name__
        raise NewsletterError(f"The connection to the IMAP server {settings.imap_host} broke ({why}). Nothing is "
                              f"lost: run newsletter mailbox again ({result.moved} message(s) were moved "
                              "already).") from None
    return result


def _session(settings: Settings, result: Result, sent: feedback.Sent, tokens: _Tokens, project: Project | None) -> None:
    dry_run = result.dry_run
    with Mailbox(settings) as box:
        box.select(settings.imap_folder, read_only=dry_run)
        for fetched in box.fetch(box.uids(), worth_reading):
            outcome = classify(fetched, sent, tokens)
            if isinstance(outcome, Action):
                result.actions.append(outcome)
            elif isinstance(outcome, ForYou):
                result.for_you.append(outcome)
            else:
                result.left_alone += 1
        with feedback.record(project, read_only=dry_run) as record:
            wanted = _suppressions_for(result.actions, record, sent)
        path = suppressions.default_path(project)
        if dry_run:
            have = suppressions.read(path)
            for entry in wanted:
                if entry.key not in have:
                    have[entry.key] = entry
                    result.suppressed.append(entry)
            return
        result.suppressed = suppressions.add(path, wanted)
        if result.actions:
            result.created_folder = box.ensure_folder(settings.imap_processed_folder)
        for action in result.actions:
            box.move(action.uid, settings.imap_processed_folder)
            result.moved += 1


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def summary_line(result: Result) -> str:
    """'3 afmeldingen, 7 bounces: 5 permanent, 2 tijdelijk; 2 berichten voor u om te lezen' (Dutch, as asked)."""
    unsubscribed = sum(1 for a in result.actions if a.kind == "unsubscribed")
    permanent = sum(1 for a in result.actions if a.kind == "permanent")
    temporary = sum(1 for a in result.actions if a.kind == "temporary")
    return (f"{_plural(unsubscribed, 'afmelding', 'afmeldingen')}, "
            f"{_plural(permanent + temporary, 'bounce', 'bounces')}: {permanent} permanent, {temporary} tijdelijk; "
            f"{_plural(len(result.for_you), 'bericht', 'berichten')} voor u om te lezen")


def report_lines(result: Result) -> list[str]:
    """What `newsletter mailbox` prints: each action, each message for a person, the summary."""
    verb = "would suppress" if result.dry_run else "suppressed"
    new = {s.key for s in result.suppressed}
    lines = []
    for a in result.actions:
        what = {"unsubscribed": "unsubscribed", "permanent": "bounced (permanent)",
                "temporary": "bounced (temporary)"}[a.kind]
        after = f"{verb}" if a.email.lower() in new else ("already on the suppression list"
                                                          if a.kind != "temporary" else "counted")
        lines.append(f"  {what:<20} {a.email} ({a.edition or 'no edition'}){': ' + a.detail if a.detail else ''}"
                     f" -> {after}")
    if result.for_you:
        lines.append(f"For you to read (left in {result.folder}):")
        lines += [f"  {f.sender or '(no sender)'}: \"{f.subject}\": {f.why}" for f in result.for_you]
    if result.left_alone:
        lines.append(f"  {result.left_alone} other message(s) (auto-replies, ordinary mail) left alone in "
                     f"{result.folder}")
    if result.dry_run:
        lines.append(f"Dry run: nothing was changed; {len(result.actions)} message(s) would be moved to "
                     f"'{result.processed_folder}' and {len(result.suppressed)} address(es) added to "
                     f"{suppressions.FILE}.")
    else:
        lines.append(f"{len(result.suppressed)} address(es) added to {suppressions.FILE}; "
                     f"{result.moved} message(s) moved to '{result.processed_folder}'"
                     + (" (folder created)" if result.created_folder else "") + ".")
    lines.append(summary_line(result))
    return lines
