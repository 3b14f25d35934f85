"""What came back from the members: who was sent what (the send journals, read only) and a record of bounces.

The send journal (`editions/<id>/journal.sqlite`, table `recipients`) keeps each member's Message-ID; it is
opened read-only here and never changed. What `newsletter mailbox` learned is kept in `mailbox.sqlite` in the
project folder: each bounce, complaint, refusal and unsubscribe per edition and member, so that `newsletter
status` can show them and a member who bounces temporarily on three editions in a row can be suppressed; and
the messages already listed for a person, so that a later run does not list them again.

A listed message is remembered by a hash of its text (of its header block and size when it is too large to
download), not by IMAP UIDVALIDITY+UID: a UID changes when the message is moved out and back, or the
mailbox is migrated to another server (a new UIDVALIDITY), the text of a message never does; and it tells
apart two messages that share a header (a forger's seven reports with one Message-ID).
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.errors import NewsletterError
from newsletter_cli.project import Project, current, display, sqlite_uri

JOURNAL_FILE = "journal.sqlite"  # the send journal's name (members/journal.py)
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
SENT_STATES = ("sent", "uncertain", "sending")  # a message may have gone out: a report about it can be real


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


def read_sent(project: Project | None = None) -> Sent:
    """Every edition's journal, opened read-only (a send may be running: WAL lets us read alongside)."""
    sent = Sent()
    here = current(project)
    for edition in here.list_editions():
        path = here.editions_dir / edition / JOURNAL_FILE
        if not path.is_file():
            continue
        try:
            db = sqlite3.connect(sqlite_uri(path.resolve(), mode="ro"), uri=True, timeout=30)
            try:
                rows = db.execute("SELECT key, email, state, message_id FROM recipients").fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise NewsletterError(f"{display(path)}: cannot read the send journal: {exc}") from None
        for key, email, state, message_id in rows:
            if state not in SENT_STATES:
                continue  # nothing went out (a Message-ID is given when the list is loaded)
            if message_id:
                known = sent.guessable if OLD_MESSAGE_ID.fullmatch(_normal_id(message_id)) else sent.by_message_id
                known[_normal_id(message_id)] = (edition, email)
            sent.editions_of.setdefault(key, []).append(edition)
            sent.addresses[key] = email
    return sent


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")


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
def record(project: Project | None = None, *, read_only: bool = False) -> Iterator[Record]:
    with Record(current(project).root / RECORD_FILE, read_only=read_only) as rec:
        yield rec


def status_report(edition: str, project: Project | None = None) -> dict[str, object]:
    """For `newsletter status EDITION`: that edition's bounces and unsubscribes, once the mailbox was read."""
    if not (current(project).root / RECORD_FILE).is_file():
        return {"read": False}
    with record(project, read_only=True) as rec:
        events = rec.for_edition(edition)
    return {"read": True,
            "bounced": [{"email": e, "kind": k, "detail": d, "date": t}
                        for k, e, d, t in events if k in ("permanent", "temporary")],
            "refused": [{"email": e, "detail": d, "date": t} for k, e, d, t in events if k == "refused"],
            "complaints": [{"email": e, "date": t} for k, e, _, t in events if k == "complaint"],
            "unsubscribed": [{"email": e, "date": t} for k, e, _, t in events if k == "unsubscribed"]}


def status_lines(report: dict[str, object]) -> list[str]:
    if not report.get("read"):
        return [("Mailbox: not read yet; run `newsletter mailbox` a day after the send to see bounces and "
                 "unsubscribes.")]
    bounced = report["bounced"]
    unsubscribed = report["unsubscribed"]
    assert isinstance(bounced, list) and isinstance(unsubscribed, list)
    permanent = sum(1 for b in bounced if b["kind"] == "permanent")
    refused = report.get("refused") or []
    complaints = report.get("complaints") or []
    assert isinstance(refused, list) and isinstance(complaints, list)
    lines = [(f"Mailbox: {len(bounced)} bounced ({permanent} permanent, {len(bounced) - permanent} temporary), "
              f"{len(unsubscribed)} unsubscribed"
              + (f", {len(complaints)} spam complaint(s)" if complaints else "")
              + (f", {len(refused)} refused our sending (addresses fine)" if refused else ""))]
    lines += [f"  bounced   {b['email']}: {b['kind']} {b['detail']}".rstrip() for b in bounced]
    lines += [f"  unsubscribed {u['email']} ({u['date']})" for u in unsubscribed]
    lines += [f"  complaint {c['email']} ({c['date']})" for c in complaints]
    lines += [f"  refused   {r['email']}: {r['detail']}".rstrip() for r in refused]
    return lines
