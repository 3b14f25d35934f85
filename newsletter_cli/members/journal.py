"""The send journal: each recipient's state, durable across crashes (SQLite, WAL, synchronous=FULL).

(The outcome marks skip the fsync, see `Journal._tx`: safe, and it halves the disk syncs per message.)

The journal is also the send's queue: each run loads the checked recipient list into it (`load`), in list
order, with each member's merge fields, and the send reads the members still to do from it a batch at a
time (`queue`), so memory stays flat however long the list. Rows no longer in the list are kept (what was
sent stays known) but marked unlisted and are not sent.

One journal per edition (`editions/<id>/journal.sqlite`), keyed by the lower-case address, NOT by the build:
rebuilding an edition after a partial send does not make anyone already sent get it again. Each row records
the build fingerprint it was sent with. A row is marked `sending` (committed) when the server has said 354
to DATA, just before the message itself goes out, and `sent`/`deferred`/`failed` after the reply; a `sending`
row found by the next run means the process died in between and becomes `uncertain`, re-sent only on
request. The journal never holds a password, and of each member only the address, the name and the merge fields the
edition uses (not the list's other columns: phone, date of birth, notes); it is readable by its owner only.

Other modules never touch its tables: they use `Journal` (a send) or `Journal.open_read_only` (the mailbox,
reading which Message-IDs went out, alongside a running send). The send lock, the status report and the
record of test sends live in sendlock.py, status.py and testsends.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from newsletter_cli.errors import NewsletterError
from newsletter_cli.members.recipients import Recipient
from newsletter_cli.project import display, sqlite_uri

JOURNAL_FILE = "journal.sqlite"  # in each edition's folder
STATES = ("pending", "sending", "sent", "deferred", "failed", "uncertain")
MAY_HAVE_GONE_OUT = ("sent", "uncertain", "sending")  # a report about such a member's message can be real
ADDED_COLUMNS = {"position": "INTEGER NOT NULL DEFAULT 0", "listed": "INTEGER NOT NULL DEFAULT 1",
                 "name": "TEXT NOT NULL DEFAULT ''", "fields": "TEXT NOT NULL DEFAULT '{}'"}
BATCH = 500  # rows read from the queue, or written while loading, at a time
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
    message_id TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL DEFAULT 0,  -- the row's place in the list as last loaded
    listed INTEGER NOT NULL DEFAULT 1,    -- 0: no longer in the list, not sent to
    name TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL DEFAULT '{}'      -- the row's columns (merge fields), JSON
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SentMessage:
    """A member's message that may have gone out (sent, or uncertain): what a bounce or a complaint can name."""

    edition: str  # the edition folder's name
    address: str  # as sent
    message_id: str  # as recorded ("" in journals from before Message-IDs were kept)

    @property
    def key(self) -> str:
        return self.address.lower()


@dataclass(frozen=True)
class Entry:
    email: str
    state: str
    reply: str
    attempts: int
    updated: str
    fingerprint: str


def untrusted(path: Path, why: str) -> NewsletterError:
    """A journal that exists but cannot be trusted: never replaced silently (that would send twice)."""
    return NewsletterError(
        f"{path}: the send journal cannot be trusted: {why}. Nothing was sent. It records who already got this "
        "edition, so a new one would send to them again. Restore it from a backup if you have one. If nothing of "
        "this edition was sent yet, move the file away and run the command again.")


def unwritable(path: Path, exc: BaseException) -> NewsletterError:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        what = "it is read-only: make the file (and its folder) writable"
    elif "full" in text:
        what = "the disk is full: free some space"
    else:
        what = f"{text}: check that the file and its folder are writable and the disk has space"
    return NewsletterError(f"{path}: cannot write the send journal ({what}), then run the same command again. "
                           "Who was already sent stays recorded.")


def foreign(path: Path, edition: str, was: str, here: str) -> NewsletterError:
    """A journal of another edition, e.g. in a folder copied from last month's."""
    where = f" (in {was})" if was else ""
    return NewsletterError(
        f"{path}: this send journal belongs to edition {edition}{where}, not to {here}: the folder was copied "
        f"or renamed. Nothing was sent. If {here} is a copy of {edition}, delete (or rename) journal.sqlite in "
        f"this folder, and the build/ and outbox/ folders, and run the command again; next time start an edition "
        f"with `newsletter new {here}` (or copy only edition.yaml and images/). If you renamed {edition}'s folder "
        f"yourself, give it its old name back.")


def private(path: Path) -> None:
    """The journal holds members' addresses and merge fields: readable by the owner only (0600) where the
    platform has file modes, with its -wal and -shm files (SQLite gives new ones the database's mode)."""
    if os.name != "posix":
        return  # Windows: the user's profile folder is private already; chmod only sets read-only there
    for suffix in ("", "-wal", "-shm"):
        try:
            Path(f"{path}{suffix}").chmod(0o600)
        except FileNotFoundError:
            pass
        except OSError:
            return  # a file system without modes (a FAT stick, a share): nothing to tighten


def now() -> str:
    """The one time format every record of the tool writes: ISO 8601 in UTC, to the second (2025-09-30T08:15:02Z).

    Sorts as text; older records in other forms (mailbox.sqlite's `2025-09-30 08:15`) are read as they are.
    """
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Journal:
    """Thread-safe: one connection behind a lock; every state change is committed before returning."""

    def __init__(self, path: Path, *, create: bool = True):
        self.path = path
        self._lock = threading.Lock()
        self._synchronous = ""  # as last set, so a commit sets it only when it changes
        existed = path.is_file()
        if existed and path.stat().st_size == 0:
            raise untrusted(path, "it is empty (0 bytes)")
        if not existed and not create:
            raise NewsletterError(f"{path}: there is no send journal here.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        except (sqlite3.Error, OSError) as exc:
            raise NewsletterError(f"{path}: cannot open the send journal: {exc}") from None
        try:
            if existed:
                self._verify()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._migrate()
            private(path)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if existed and not isinstance(exc, sqlite3.OperationalError):
                raise untrusted(path, f"it cannot be read ({exc})") from None
            raise unwritable(path, exc) from None
        except NewsletterError:
            self._db.close()
            raise

    @classmethod
    def open_read_only(cls, path: Path) -> Journal:
        """The journal opened for reading only (SQLite mode=ro): never created, migrated or changed, and
        readable while a send writes to it (WAL). A journal that cannot be read is an error naming the file."""
        journal = cls.__new__(cls)
        journal.path, journal._lock, journal._synchronous = path, threading.Lock(), ""
        try:
            journal._db = sqlite3.connect(sqlite_uri(path.resolve(), mode="ro"), uri=True, check_same_thread=False,
                                          timeout=30)
        except sqlite3.Error as exc:
            raise NewsletterError(f"{display(path)}: cannot read the send journal: {exc}") from None
        return journal

    def sent_messages(self) -> Iterator[SentMessage]:
        """Each member's message that may have gone out (sent, uncertain, or in a transaction), in no order."""
        marks = ",".join("?" * len(MAY_HAVE_GONE_OUT))
        try:
            with self._lock:
                rows = self._db.execute(f"SELECT email, message_id FROM recipients WHERE state IN ({marks})",
                                        MAY_HAVE_GONE_OUT).fetchall()
        except sqlite3.Error as exc:
            raise NewsletterError(f"{display(self.path)}: cannot read the send journal: {exc}") from None
        edition = self.path.parent.name
        for email, message_id in rows:
            yield SentMessage(edition, email, message_id or "")

    def _verify(self) -> None:
        """An existing journal must be an intact SQLite database with the recipients table."""
        (check,) = self._db.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise untrusted(self.path, f"SQLite finds it damaged ({check})")
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "recipients" not in tables:
            raise untrusted(self.path, "it has no recipients table")

    def _migrate(self) -> None:
        """Journals from before the journal was the queue lack some columns."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(recipients)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE recipients ADD COLUMN {column} {kind}")
        self._db.execute("CREATE INDEX IF NOT EXISTS queue ON recipients(listed, state, position)")

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
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise unwritable(self.path, exc) from None

    def recover(self) -> list[str]:
        """Rows left `sending` by a process that died mid-transaction become `uncertain`; returns them."""
        with self._tx() as db:
            found = [row[0] for row in db.execute("SELECT email FROM recipients WHERE state='sending'")]
            db.execute("UPDATE recipients SET state='uncertain', updated=?, reply=? WHERE state='sending'",
                       (now(), "the sending process stopped during the SMTP transaction; "
                               "the server may or may not have accepted the message"))
            return found

    def add(self, addresses: Iterable[str]) -> None:
        """Record recipients as pending; known ones keep their state."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO recipients(key, email, updated) VALUES (?, ?, ?)",
                           ((a.lower(), a, now()) for a in addresses))

    @contextmanager
    def loading(self, new_id: Callable[[], str] | None = None) -> Iterator[Callable[[Recipient], None]]:
        """Load a recipient list, in order, as one transaction: yields `add(recipient)`.

        New rows are pending, known ones keep their state and get the list's place and fields; rows not
        added are marked unlisted. An exception (a bad line in the file) leaves the journal as it was.
        `new_id` gives each member without one its Message-ID for this edition, kept for every attempt
        (a retry or re-send is the same message: mail programs fold the copies).
        """
        stamp = now()
        batch: list[tuple[str, str, str, str, int, str, str]] = []
        counter = iter(range(1, 1 << 62))
        insert = ("INSERT INTO recipients(key, email, name, fields, position, listed, updated, message_id) "
                  "VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT(key) DO UPDATE SET email=excluded.email, "
                  "name=excluded.name, fields=excluded.fields, position=excluded.position, listed=1, "
                  "message_id=CASE WHEN message_id='' THEN excluded.message_id ELSE message_id END")
        with self._tx() as db:
            db.execute("UPDATE recipients SET listed=0")

            def add(recipient: Recipient) -> None:
                batch.append((recipient.key, recipient.email, recipient.name,
                              json.dumps(recipient.fields, ensure_ascii=False), next(counter), stamp,
                              new_id() if new_id else ""))
                if len(batch) >= BATCH:
                    db.executemany(insert, batch)
                    batch.clear()

            yield add
            db.executemany(insert, batch)

    def queue(self, states: Sequence[str], after: int = 0, size: int = BATCH) -> list[tuple[int, Recipient]]:
        """The next listed members in `states` after list place `after`, in list order: (place, Recipient)."""
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self._db.execute(f"SELECT position, email, name, fields FROM recipients WHERE listed=1 AND "
                                    f"state IN ({marks}) AND position > ? ORDER BY position LIMIT ?",
                                    (*states, after, size)).fetchall()
        return [(place, Recipient(email, name, json.loads(fields))) for place, email, name, fields in rows]

    def listed_counts(self) -> dict[str, int]:
        """State -> how many members of the list as last loaded are in it."""
        with self._lock:
            found = dict(self._db.execute("SELECT state, COUNT(*) FROM recipients WHERE listed=1 GROUP BY state"))
        return {state: found.get(state, 0) for state in STATES}

    def states(self) -> dict[str, str]:
        """Lower-case address -> state."""
        with self._lock:
            return dict(self._db.execute("SELECT key, state FROM recipients"))

    def mark_sending(self, address: str, fingerprint: str, message_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE recipients SET state='sending', attempts=attempts+1, updated=?, fingerprint=?, "
                       "message_id=? WHERE key=?", (now(), fingerprint, message_id, address.lower()))

    def message_id(self, address: str) -> str:
        """The Message-ID the member's message of this edition went out with, or "" when none did yet."""
        with self._lock:
            row = self._db.execute("SELECT message_id FROM recipients WHERE key=?", (address.lower(),)).fetchone()
        return str(row[0]) if row and row[0] else ""

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

    def copy_to(self, target: Path) -> None:
        """A consistent copy of the journal (SQLite's backup: safe while a send writes to it)."""
        with self._lock:
            try:
                copy = sqlite3.connect(str(target))
                try:
                    self._db.backup(copy)
                finally:
                    copy.close()
            except sqlite3.Error as exc:
                raise unwritable(target, exc) from None

    def claim(self, folder: Path, adopt: bool = True) -> None:
        """Tie the journal to its edition (the folder's name, and where it was); refuse one of another edition.

        A folder copied in Explorer from last month's carries its journal along: without this, the send of the
        new edition would skip everyone as "already sent". A journal from before this was recorded adopts the
        edition it is found in, once.
        """
        edition = self.meta("edition")
        if edition is None:
            if adopt:
                self.set_meta("edition", folder.name)
                self.set_meta("folder", str(folder.resolve()))
            return
        if edition != folder.name:
            raise foreign(self.path, edition, self.meta("folder") or "", folder.name)
