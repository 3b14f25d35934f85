"""What came back from the members: who was sent what (the send journals, read only) and a record of bounces.

The send journal (members/journal.py) keeps each member's Message-ID; it is read here through its read-only
API (`Journal.open_read_only`) and never changed. What `newsletter mailbox` learned is kept in `mailbox.sqlite` in the
project folder: each bounce, complaint, refusal and unsubscribe per edition and member, so that `newsletter
status` can show them and a member who bounces temporarily on three editions in a row can be suppressed; and
the messages already listed for a person, so that a later run does not list them again.

A listed message is remembered by a hash of its text (of its header block and size when it is too large to
download), not by IMAP UIDVALIDITY+UID: a UID changes when the message is moved out and back, or the
mailbox is migrated to another server (a new UIDVALIDITY), the text of a message never does; and it tells
apart two messages that share a header (a forger's seven reports with one Message-ID).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.errors import NewsletterError
from newsletter_cli.members.journal import JOURNAL_FILE, Journal, now
from newsletter_cli.project import Project, display, sqlite_uri

RECORD_FILE = "mailbox.sqlite"
SOFT_LIMIT = 3  # temporary bounces on this many editions in a row suppress the member
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    edition TEXT NOT NULL,
    key TEXT NOT NULL,            -- the member's address in lower case
    email TEXT NOT NULL,
    kind TEXT NOT NULL,           -- 'permanent', 'temporary', 'refused', 'complaint' or 'unsubscribed'
    detail TEXT NOT NULL DEFAULT '',
    date TEXT NOT NULL,
    PRIMARY KEY (edition, key, kind)
);
CREATE TABLE IF NOT EXISTS listed (
    key TEXT PRIMARY KEY,         -- sha256 of the message (judge.message_key)
    sender TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    why TEXT NOT NULL DEFAULT '',
    date TEXT NOT NULL
);
"""
# Before issue 18 a Message-ID was the send's start time, a random part for the run and a counter: one
# member's copy gives everyone's. A report naming one proves nothing; it is listed for a person.
OLD_MESSAGE_ID = re.compile(r"\d{9,11}\.[0-9a-f]{12}\.\d+@.+")


def _normal_id(message_id: str) -> str:
    return message_id.strip().strip("<>").strip()


@dataclass
class Sent:
    """Who was sent which edition, from every edition's journal."""

    by_message_id: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (edition, address)
    guessable: dict[str, tuple[str, str]] = field(default_factory=dict)  # the same, for Message-IDs of the old form
    editions_of: dict[str, list[str]] = field(default_factory=dict)  # address (lower) -> editions sent, oldest first
    addresses: dict[str, str] = field(default_factory=dict)  # lower -> as sent

    def match(self, message_ids: list[str]) -> tuple[str, str] | None:
        """(edition, address) of the first Message-ID a journal knows."""
        for message_id in message_ids:
            found = self.by_message_id.get(_normal_id(message_id))
            if found:
                return found
        return None

    def match_guessable(self, message_ids: list[str]) -> tuple[str, str] | None:
        """(edition, address) of a Message-ID of the old, guessable form (a run prefix and a counter)."""
        for message_id in message_ids:
            found = self.guessable.get(_normal_id(message_id))
            if found:
                return found
        return None

    def latest_edition(self, address: str) -> str:
        editions = self.editions_of.get(address.lower())
        return editions[-1] if editions else ""


def read_sent(project: Project) -> Sent:
    """Every edition's journal, opened read-only (a send may be running: WAL lets us read alongside)."""
    sent = Sent()
    for edition in project.list_editions():
        path = project.editions_dir / edition / JOURNAL_FILE
        if not path.is_file():
            continue
        with Journal.open_read_only(path) as journal:
            messages = list(journal.sent_messages())  # only those that may have gone out
        for message in messages:
            if message.message_id:  # journals from before Message-IDs were kept have none
                normal = _normal_id(message.message_id)
                known = sent.guessable if OLD_MESSAGE_ID.fullmatch(normal) else sent.by_message_id
                known[normal] = (edition, message.address)
            sent.editions_of.setdefault(message.key, []).append(edition)
            sent.addresses[message.key] = message.address
    return sent


class Record:
    """mailbox.sqlite; read_only works on a copy in memory (what --dry-run uses): the file is not touched."""

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = path
        try:
            if read_only:
                self.db = sqlite3.connect(":memory:")
                if path.is_file():
                    source = sqlite3.connect(sqlite_uri(path.resolve(), mode="ro"), uri=True)
                    source.backup(self.db)
                    source.close()
            else:
                self.db = sqlite3.connect(str(path), timeout=30)
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise NewsletterError(f"{display(path)}: cannot open the record of bounces: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Record:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add(self, edition: str, email: str, kind: str, detail: str) -> bool:
        """Record one event; False when it was already recorded (the same report read twice)."""
        with self.db:
            cursor = self.db.execute("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)",
                                     (edition, email.lower(), email, kind, detail, now()))
        return cursor.rowcount == 1

    def listed_before(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM listed WHERE key=?", (key,)).fetchone() is not None

    def remember_listed(self, key: str, sender: str, subject: str, why: str) -> None:
        """A message listed for a person: not listed again on a later run."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO listed VALUES (?, ?, ?, ?, ?)", (key, sender, subject, why, now()))

    def soft_streak(self, address: str, sent: Sent) -> list[str]:
        """The member's last SOFT_LIMIT editions when each of them bounced (temporarily or not), else []."""
        last = sent.editions_of.get(address.lower(), [])[-SOFT_LIMIT:]
        if len(last) < SOFT_LIMIT:
            return []
        rows = self.db.execute(
            f"SELECT DISTINCT edition FROM events WHERE key=? AND kind IN ('temporary', 'permanent') "
            f"AND edition IN ({','.join('?' * len(last))})", (address.lower(), *last)).fetchall()
        return last if len(rows) == len(last) else []

    def for_edition(self, edition: str) -> list[tuple[str, str, str, str]]:
        """(kind, email, detail, date) of an edition's events."""
        return self.db.execute("SELECT kind, email, detail, date FROM events WHERE edition=? ORDER BY kind, key",
                               (edition,)).fetchall()


@contextmanager
def record(project: Project, *, read_only: bool = False) -> Iterator[Record]:
    with Record(project.root / RECORD_FILE, read_only=read_only) as rec:
        yield rec


@dataclass(frozen=True)
class Event:
    """One thing the mailbox learned about a member for an edition (a row of mailbox.sqlite's events)."""

    kind: str  # 'permanent', 'temporary', 'refused', 'complaint' or 'unsubscribed'
    email: str
    detail: str
    date: str  # journal.now's format; rows from before it read as written (2025-09-30 08:15)


@dataclass
class MailboxStatus:
    """An edition's bounces, refusals, complaints and unsubscribes, for `newsletter status` (and --json)."""

    read: bool = False  # whether `newsletter mailbox` ever ran in this project
    events: list[Event] = field(default_factory=list)

    def of(self, *kinds: str) -> list[Event]:
        return [event for event in self.events if event.kind in kinds]

    @property
    def bounced(self) -> list[Event]:
        return self.of("permanent", "temporary")

    def to_json(self) -> dict[str, object]:
        """The form `newsletter status --json` prints under "mailbox" (its keys do not change)."""
        if not self.read:
            return {"read": False}
        return {"read": True,
                "bounced": [{"email": e.email, "kind": e.kind, "detail": e.detail, "date": e.date}
                            for e in self.bounced],
                "refused": [{"email": e.email, "detail": e.detail, "date": e.date} for e in self.of("refused")],
                "complaints": [{"email": e.email, "date": e.date} for e in self.of("complaint")],
                "unsubscribed": [{"email": e.email, "date": e.date} for e in self.of("unsubscribed")]}


def status_report(edition: str, project: Project) -> MailboxStatus:
    """For `newsletter status EDITION`: that edition's bounces and unsubscribes, once the mailbox was read."""
    if not (project.root / RECORD_FILE).is_file():
        return MailboxStatus()
    with record(project, read_only=True) as rec:
        events = rec.for_edition(edition)
    return MailboxStatus(True, [Event(kind, email, detail, date) for kind, email, detail, date in events])


def status_lines(report: MailboxStatus) -> list[str]:
    if not report.read:
        return [("Mailbox: not read yet; run `newsletter mailbox` a day after the send to see bounces and "
                 "unsubscribes.")]
    bounced, unsubscribed = report.bounced, report.of("unsubscribed")
    permanent = sum(1 for b in bounced if b.kind == "permanent")
    refused, complaints = report.of("refused"), report.of("complaint")
    lines = [(f"Mailbox: {len(bounced)} bounced ({permanent} permanent, {len(bounced) - permanent} temporary), "
              f"{len(unsubscribed)} unsubscribed"
              + (f", {len(complaints)} spam complaint(s)" if complaints else "")
              + (f", {len(refused)} refused our sending (addresses fine)" if refused else ""))]
    lines += [f"  bounced   {b.email}: {b.kind} {b.detail}".rstrip() for b in bounced]
    lines += [f"  unsubscribed {u.email} ({u.date})" for u in unsubscribed]
    lines += [f"  complaint {c.email} ({c.date})" for c in complaints]
    lines += [f"  refused   {r.email}: {r.detail}".rstrip() for r in refused]
    return lines
