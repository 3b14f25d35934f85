"""The send journal: each recipient's state, durable across crashes (SQLite, WAL, synchronous=FULL).

(The outcome marks skip the fsync, see `Journal._tx`: safe, and it halves the disk syncs per message.)

One journal per edition (`editions/<id>/journal.sqlite`), keyed by the lower-case address, NOT by the build:
rebuilding an edition after a partial send does not make anyone already sent get it again. Each row records
the build fingerprint it was sent with. A row is marked `sending` (committed) when the server has said 354
to DATA, just before the message itself goes out, and `sent`/`deferred`/`failed` after the reply; a `sending`
row found by the next run means the process died in between and becomes `uncertain`, re-sent only on
request. The journal never holds a password.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter_cli.errors import NewsletterError

JOURNAL_FILE = "journal.sqlite"
TEST_SENDS_FILE = "test-sends.json"  # which builds were test-sent, per edition
STATES = ("pending", "sending", "sent", "deferred", "failed", "uncertain")
SENDABLE = ("pending", "deferred")
SCHEMA = """
CREATE TABLE IF NOT EXISTS recipients (
    key TEXT PRIMARY KEY,          -- the address in lower case
    email TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reply TEXT NOT NULL DEFAULT '', -- the server's last reply, or what went wrong
    attempts INTEGER NOT NULL DEFAULT 0,
    updated TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    email: str
    state: str
    reply: str
    attempts: int
    updated: str
    fingerprint: str


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Journal:
    """Thread-safe: one connection behind a lock; every state change is committed before returning."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._synchronous = ""  # as last set, so a commit sets it only when it changes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise NewsletterError(f"{path}: cannot open the send journal: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction; `durable` ones are on disk (fsync) before this returns.

        Any commit survives the process being killed (WAL). Only a record whose loss is safe skips the fsync:
        a lost 'sent' leaves the row 'sending', reported as uncertain and never re-sent on its own. The next
        durable commit flushes it anyway (the WAL is written in order).
        """
        with self._lock:
            synchronous = "FULL" if durable else "NORMAL"
            if synchronous != self._synchronous:
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._synchronous = synchronous
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def recover(self) -> int:
        """Rows left `sending` by a process that died mid-transaction become `uncertain`; returns how many."""
        with self._tx() as db:
            cursor = db.execute("UPDATE recipients SET state='uncertain', updated=?, reply=? WHERE state='sending'",
                                (now(), "the sending process stopped during the SMTP transaction; "
                                        "the server may or may not have accepted the message"))
            return cursor.rowcount

    def add(self, addresses: Iterable[str]) -> None:
        """Record recipients as pending; known ones keep their state."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO recipients(key, email, updated) VALUES (?, ?, ?)",
                           ((a.lower(), a, now()) for a in addresses))

    def states(self) -> dict[str, str]:
        """Lower-case address -> state."""
        with self._lock:
            return dict(self._db.execute("SELECT key, state FROM recipients"))

    def mark_sending(self, address: str, fingerprint: str, message_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE recipients SET state='sending', attempts=attempts+1, updated=?, fingerprint=?, "
                       "message_id=? WHERE key=?", (now(), fingerprint, message_id, address.lower()))

    def mark(self, address: str, state: str, reply: str = "") -> None:
        """The outcome of a transaction (or 'pending' again); see `_tx` on why this needs no fsync."""
        assert state in STATES, state
        with self._tx(durable=state in ("pending", "deferred")) as db:
            db.execute("UPDATE recipients SET state=?, reply=?, updated=? WHERE key=?",
                       (state, reply[:1000], now(), address.lower()))

    def counts(self) -> dict[str, int]:
        with self._lock:
            found = dict(self._db.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))
        return {state: found.get(state, 0) for state in STATES}

    def entries(self, states: Iterable[str] = STATES) -> list[Entry]:
        wanted = tuple(states)
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(f"SELECT email, state, reply, attempts, updated, fingerprint FROM recipients "
                                    f"WHERE state IN ({marks}) ORDER BY updated, email", wanted).fetchall()
        return [Entry(*row) for row in rows]

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Only one send of an edition at a time (the lock goes away by itself when the process dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".send.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NewsletterError(f"Another send of this edition is running (lock: {folder / '.send.lock'}). "
                                  "Wait for it to finish, or stop it first.") from None
        yield
    finally:
        os.close(fd)


def status(folder: Path) -> dict[str, Any]:
    """Counts and the addresses that need attention, for `newsletter status` (and --json)."""
    path = folder / JOURNAL_FILE
    report: dict[str, Any] = {"edition": folder.name, "journal": str(path), "counts": dict.fromkeys(STATES, 0),
                              "problems": [], "test_sends": tested_builds(folder)}
    if not path.is_file():
        return report
    with Journal(path) as journal:
        counts = journal.counts()
        report["counts"] = counts
        report["total"] = sum(counts.values())
        report["fingerprint"] = journal.meta("fingerprint")
        report["problems"] = [
            {"email": e.email, "state": "uncertain" if e.state == "sending" else e.state, "reply": e.reply,
             "attempts": e.attempts, "updated": e.updated}
            for e in journal.entries(("failed", "deferred", "uncertain", "sending"))]
    return report


def status_lines(report: dict[str, Any]) -> list[str]:
    counts = report["counts"]
    tests = [f"Test send of build {fp} at {t['time']} to {', '.join(t['to'])}"
             for fp, t in report.get("test_sends", {}).items()]
    if not any(counts.values()):
        return [f"Edition {report['edition']}: nothing has been sent yet (no journal at {report['journal']}).",
                *tests]
    lines = [f"Edition {report['edition']}: " + ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s]), *tests]
    if counts.get("sending"):
        lines.append("  (a send is running now, or stopped during a transaction: those are uncertain)")
    for problem in report["problems"]:
        lines.append(f"  {problem['state']:<9} {problem['email']}: {problem['reply']} ({problem['updated']})")
    if counts["pending"] or counts["deferred"]:
        lines.append("Run the same send command again to send the pending and deferred ones.")
    if counts["uncertain"] or counts["sending"]:
        lines.append("Uncertain ones may or may not have arrived; add --resend-uncertain to send them again.")
    return lines


def tested_builds(folder: Path) -> dict[str, dict[str, Any]]:
    """Build fingerprint -> when and to whom it was test-sent."""
    path = folder / TEST_SENDS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def remember_tested_build(folder: Path, fp: str, addresses: Sequence[str]) -> None:
    data = tested_builds(folder)
    data[fp] = {"time": now(), "to": list(addresses)}
    tmp = folder / f".{TEST_SENDS_FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(folder / TEST_SENDS_FILE)
