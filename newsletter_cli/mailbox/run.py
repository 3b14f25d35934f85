"""`newsletter mailbox`: read the bounces, complaints and unsubscribe requests, update suppressions.csv, file
the messages.

Each message is judged first (judge.py: act, file, list for a person, or leave alone), then everything
learned is written (mailbox.sqlite, suppressions.csv), and only then are messages moved: a run that stops
halfway loses nothing, and the next run does the rest (adding an address twice is a no-op). Messages a person
must look at are listed once (remembered in mailbox.sqlite) and left where they are; messages that cannot be
read at all are listed and moved to IMAP_UNREADABLE_FOLDER. One run at a time per project (a lock next to
mailbox.sqlite).
"""

from __future__ import annotations

import datetime as dt
import email
import imaplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from newsletter_cli.errors import NewsletterError
from newsletter_cli.mailbox import mailtext
from newsletter_cli.mailbox import record as mailbox_record
from newsletter_cli.mailbox.imap import Fetched, Mailbox, access_token
from newsletter_cli.mailbox.judge import Action, Filed, ForYou, Tokens, judge, worth_reading
from newsletter_cli.members import suppressions, unsubscribe
from newsletter_cli.project import Project
from newsletter_cli.settings import Settings

LOCK_FILE = ".mailbox.lock"
ERROR_LOG = "mailbox-errors.log"  # what went wrong reading a message (the bounce library tripping, ...)


@dataclass
class Result:
    folder: str
    processed_folder: str
    unreadable_folder: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    filed: list[Filed] = field(default_factory=list)  # auto-replies, delays, delivered and read reports
    for_you: list[ForYou] = field(default_factory=list)  # listed now (new ones)
    listed_before: int = 0  # listed on an earlier run, still in the folder
    left_alone: int = 0  # ordinary mail
    suppressed: list[suppressions.Suppression] = field(default_factory=list)  # newly added to the file
    moved: int = 0
    created_folders: list[str] = field(default_factory=list)


def _suppressions_for(actions: list[Action], record: mailbox_record.Record,
                      sent: mailbox_record.Sent) -> list[suppressions.Suppression]:
    """Record each event; who is to be suppressed now (dead address, unsubscribed, a spam complaint, or soft
    bounces on 3 editions in a row). A refusal of our sending never suppresses."""
    out: list[suppressions.Suppression] = []
    for action in actions:
        record.add(action.edition, action.email, action.kind, action.detail)
    for action in actions:
        if action.kind == "unsubscribed":
            out.append(suppressions.Suppression(action.email, "unsubscribed", edition=action.edition,
                                                detail=action.detail))
        elif action.kind == "complaint":
            out.append(suppressions.Suppression(action.email, "complaint", edition=action.edition,
                                                detail=action.detail))
        elif action.kind == "refused":
            continue
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


def log_problems(path: Path, fetched: Fetched, problems: list[str]) -> None:
    """One line per problem, naming the message (UID, Message-ID, sender, subject): the run goes on, and what
    was swallowed can still be looked up. A log that cannot be written does not stop the run either."""
    try:
        head = email.message_from_bytes(fetched.header or (fetched.data or b"").split(b"\r\n\r\n", 1)[0])
        about = (f"message UID {fetched.uid} (Message-ID {mailtext.header(head, 'Message-ID')[:200] or '-'}, "
                 f"from {mailtext.header(head, 'From')[:200] or '-'}, "
                 f"subject {mailtext.header(head, 'Subject')[:200] or '-'})")
    except Exception:  # a header the parser cannot even return
        about = f"message UID {fetched.uid}"
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        with path.open("a", encoding="utf-8", newline="\n") as log:
            log.writelines(f"{now} {about}: {mailtext.one_line(problem)[:1000]}\n" for problem in problems)
    except OSError:
        pass


@contextmanager
def one_run_at_a_time(project: Project) -> Iterator[None]:
    """A lock next to mailbox.sqlite: a second `newsletter mailbox` stops with a clear message (the lock goes
    away by itself when the process dies)."""
    from filelock import FileLock, Timeout

    path = project.root / LOCK_FILE
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise NewsletterError("Another `newsletter mailbox` is running for this project (lock: "
                              f"{LOCK_FILE}). Wait for it to finish, then run it again if needed.") from None
    try:
        yield
    finally:
        lock.release()


def run(settings: Settings, project: Project, *, dry_run: bool = False,
        token: Callable[[Settings], SecretStr] = access_token) -> Result:
    """Read the mailbox once; with dry_run, change nothing (not the mailbox, not a file). `token`: the
    command's sign-in, for an IMAP login with OAuth (XOAUTH2)."""
    if dry_run:
        return _run(settings, project, dry_run=True, token=token)
    with one_run_at_a_time(project):
        return _run(settings, project, dry_run=False, token=token)


def _run(settings: Settings, project: Project, *, dry_run: bool, token: Callable[[Settings], SecretStr]) -> Result:
    sent = mailbox_record.read_sent(project)
    tokens = Tokens(unsubscribe.secrets_to_verify(settings, project, create=not dry_run), sent)
    result = Result(settings.imap_folder, settings.imap_processed_folder, settings.imap_unreadable_folder, dry_run)
    try:
        _session(settings, result, sent, tokens, project, token)
    except (OSError, imaplib.IMAP4.error) as exc:  # the connection broke: what was written stays, nothing is lost
        why = str(exc) or type(exc).__name__
        raise NewsletterError(f"The connection to the IMAP server {settings.imap_host} broke ({why}). Nothing is "
                              f"lost: run newsletter mailbox again ({result.moved} message(s) were moved "
                              "already).") from None
    return result


def _session(settings: Settings, result: Result, sent: mailbox_record.Sent, tokens: Tokens,
             project: Project, token: Callable[[Settings], SecretStr]) -> None:
    dry_run = result.dry_run
    with Mailbox(settings, token=token) as box:
        box.select(settings.imap_folder, read_only=dry_run)
        listed: list[ForYou] = []
        for fetched in box.fetch(box.uids(), worth_reading):
            problems: list[str] = []
            outcome = judge(fetched, sent, tokens, problems)
            if problems and not dry_run:
                log_problems(project.root / ERROR_LOG, fetched, problems)
            if isinstance(outcome, Action):
                result.actions.append(outcome)
            elif isinstance(outcome, Filed):
                result.filed.append(outcome)
            elif isinstance(outcome, ForYou):
                listed.append(outcome)
            else:
                result.left_alone += 1
        with mailbox_record.record(project, read_only=dry_run) as record:
            for item in listed:  # each message once: a later run does not list it again
                if record.listed_before(item.key):
                    result.listed_before += 1
                else:
                    result.for_you.append(item)
                    record.remember_listed(item.key, item.sender, item.subject, item.why)
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
        to_move = [(a.uid, settings.imap_processed_folder) for a in result.actions]
        to_move += [(f.uid, settings.imap_processed_folder) for f in result.filed]
        to_move += [(f.uid, settings.imap_unreadable_folder) for f in listed if f.unreadable]
        for folder in dict.fromkeys(folder for _, folder in to_move):
            if box.ensure_folder(folder):
                result.created_folders.append(folder)
        for uid, folder in to_move:
            box.move(uid, folder)
            result.moved += 1
