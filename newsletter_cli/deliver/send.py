"""Test sends and real sends: plan, confirm, send over N connections with retries and resume, or write .eml files.

`cli.py` builds a `SendRequest` (request.py) and runs `send_journal` -> `plan` -> `send`: the plan (plan.py)
loads a real send's recipient list into the edition's journal, and the send reads it from there
(`JournalQueue`); the workers (deliver/workers.py) record every step there. No click here: the command line
passes its `Hooks` (confirm, progress, notify) and the `Tuning` (delays, the rate limiter).
"""

from __future__ import annotations

import errno
import itertools
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.deliver.plan import OUTBOX, OUTBOX_SAMPLE, Plan, duration, plan
from newsletter_cli.deliver.ratelimit import RateLimiter, shared_limiter
from newsletter_cli.deliver.request import REAL_TUNING, SendRequest, Tuning
from newsletter_cli.deliver.workers import NO_HOOKS, Hooks, Outcome, Sender
from newsletter_cli.errors import NewsletterError
from newsletter_cli.members.journal import JOURNAL_FILE, Journal, now
from newsletter_cli.members.sendlock import exclusive
from newsletter_cli.members.testsends import remember_tested_build, reserved
from newsletter_cli.project import Project, display_dir
from newsletter_cli.words import count


@dataclass
class SendResult(Outcome):
    """The workers' Outcome (nothing sent for a dry run) with the plan it ran, the .eml files written and the time."""

    plan: Plan = field(kw_only=True)
    written: int = 0
    seconds: float = 0.0

    @property
    def blocked(self) -> str | None:
        """Why a real send must not start (check errors), or None."""
        plan = self.plan
        if plan.test or plan.outbox or not plan.errors or plan.ignore_check_errors:
            return None
        return ("Not sending: `newsletter check` finds errors in this edition (listed above). Fix them and run "
                "the command again, or add --ignore-check-errors to send anyway (recorded in the journal).")


class NullJournal:
    """A test send's journal: remembers nothing (the real send's journal is never touched)."""

    def mark_sending(self, *_: object) -> None: ...

    def mark(self, *_: object) -> None: ...

    def message_id(self, _address: str) -> str:
        return ""  # each test send is a new message

    def recover(self) -> list[str]:
        return []


def write_outbox(plan: Plan) -> SendResult:
    """The messages as .eml files in editions/<id>/outbox/ (old ones removed first): at most OUTBOX_SAMPLE."""
    result = SendResult(plan=plan)
    outbox = plan.folder / OUTBOX
    prefix = "test-" if plan.test else ""
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        for old in outbox.glob("*.eml"):
            old.unlink()
        for n, recipient in enumerate(itertools.islice(plan.recipients, OUTBOX_SAMPLE), 1):
            safe = re.sub(r"[^A-Za-z0-9@._-]", "_", recipient.email)
            (outbox / f"{prefix}{n:05d}-{safe}.eml").write_bytes(plan.factory.for_recipient(recipient))
            result.written += 1
    except OSError as exc:
        raise outbox_unwritable(outbox, exc, result.written) from None
    return result


def outbox_unwritable(outbox: Path, exc: OSError, written: int) -> NewsletterError:
    """A plain message for a dry run that cannot write its sample (a full disk, a file named outbox, ...)."""
    if exc.errno == errno.ENOSPC:
        what = "the disk is full: free some space"
    elif isinstance(exc, (FileExistsError, NotADirectoryError)):
        what = f"there is a file named {outbox.name} where its folder should be: move that file away"
    elif isinstance(exc, PermissionError):
        what = "it is not writable: make the folder writable"
    else:
        what = f"{exc.strerror or exc}: check that the folder is writable and the disk has space"
    done = f" ({written} written before it failed)" if written else ""
    return NewsletterError(f"{display_dir(outbox)}: cannot write the sample messages of the dry run ({what}), then "
                           f"run the same command again. Nothing was sent{done}.")


def send_smtp(plan: Plan, journal: Journal | None, hooks: Hooks = NO_HOOKS, tuning: Tuning = REAL_TUNING) -> SendResult:
    """Send the plan's messages over SMTP; the journal (None for a test send) records every step."""
    if journal is not None:
        journal.set_meta("fingerprint", plan.fingerprint)
        if plan.errors and plan.ignore_check_errors:
            journal.set_meta("ignored_check_errors", f"{now()}: {plan.errors[0]}")
    limiter = tuning.limiter or shared_limiter(plan.settings, tuning.state_dir)
    outcome = Sender(plan, journal or NullJournal(), limiter, hooks, tuning).run()
    result = SendResult(plan=plan, **vars(outcome))
    readers = [address for address in outcome.sent_to if not reserved(address)]
    if plan.test and readers:
        remember_tested_build(plan.folder, plan.fingerprint, readers)
    return result


def _remove_unused(path: Path) -> None:
    """Remove a journal this run created if nothing was ever sent from it (declined, or refused)."""
    try:
        with Journal(path, create=False) as journal:
            if journal.meta("fingerprint") is not None:
                return
    except NewsletterError:
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _scratch_journal(real: Path, stack: ExitStack) -> Journal:
    """A throwaway copy of the edition's journal (or an empty one) for a dry run, so that it skips those
    already sent as the real send would, and never changes the real journal."""
    try:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="newsletter-dry-run-")))
    except OSError as exc:
        raise NewsletterError(f"Cannot make a scratch folder for the dry run in {tempfile.gettempdir()} "
                              f"({exc.strerror or exc}): free some disk space, then run the command again.") from None
    if real.is_file():
        with Journal(real, create=False) as journal:  # refuses a damaged one, as the real send does
            journal.claim(real.parent, adopt=False)
            journal.copy_to(scratch / JOURNAL_FILE)
    return Journal(scratch / JOURNAL_FILE)


@contextmanager
def send_journal(request: SendRequest, project: Project) -> Iterator[Journal | None]:
    """The journal a send plans into and records in: the edition's own (locked: one send at a time) for a real
    send over SMTP, a throwaway copy for a dry run, none for a test send."""
    folder = project.resolve(request.edition).parent
    real = not request.test and not request.dry_run and bool(project.settings.smtp_host)
    with ExitStack() as stack:
        journal = None
        if real:
            stack.enter_context(exclusive(folder))
            if not (folder / JOURNAL_FILE).exists():  # a send that never starts leaves no journal behind
                stack.callback(_remove_unused, folder / JOURNAL_FILE)
            journal = stack.enter_context(Journal(folder / JOURNAL_FILE))
            journal.claim(folder)
        elif not request.test:  # a dry run reads the list through a copy of the journal: the real one is not touched
            journal = stack.enter_context(_scratch_journal(folder / JOURNAL_FILE, stack))
        yield journal


def send(plan: Plan, journal: Journal | None, hooks: Hooks = NO_HOOKS, tuning: Tuning = REAL_TUNING) -> SendResult:
    """Ask `hooks.confirm`, then send the plan over SMTP or write the outbox (a dry run, or no SMTP_HOST).

    `journal` is the one `send_journal` gave the plan; only a real send records in it."""
    blocked = SendResult(plan=plan).blocked
    if hooks.confirm is not None and not hooks.confirm(plan):
        raise NewsletterError("Nothing was sent.")
    if blocked:
        raise NewsletterError(blocked)
    if plan.outbox:
        return write_outbox(plan)
    started = time.monotonic()
    result = send_smtp(plan, None if plan.test else journal, hooks, tuning)
    result.seconds = time.monotonic() - started
    return result


def run_send(request: SendRequest, project: Project, hooks: Hooks = NO_HOOKS,
             tuning: Tuning = REAL_TUNING) -> SendResult:
    """The whole send in one call (what `newsletter send` does): the journal, the plan, then the send."""
    with send_journal(request, project) as journal:
        return send(plan(request, project, journal), journal, hooks, tuning)


def result_lines(result: SendResult) -> list[str]:
    """What the command prints after a send or a dry run."""
    plan = result.plan
    if plan.outbox:
        why = "--dry-run" if plan.settings.smtp_host else "SMTP_HOST is not set"
        total = len(plan.recipients)
        sample = (f" (a sample: the first {result.written:,} of the {total:,} messages this send would make)"
                  if total > result.written else "")
        return [f"NOTHING WAS SENT ({why}): {count(result.written, 'message')} written to "
                f"{display_dir(plan.folder / OUTBOX)}{sample} (open an .eml file with your mail program to look "
                "at it)."]
    lines = [f"{'Test send' if plan.test else 'Send'}: {result.sent:,} sent, {result.failed:,} failed, "
             f"{result.deferred:,} deferred, {result.uncertain:,} uncertain, in {result.seconds:.0f} s"]
    lines += [f"  {state}: {address}: {reply}" for address, state, reply in result.failures]
    if plan.test and result.sent:
        readers = [address for address in result.sent_to if not reserved(address)]
        if readers:
            lines.append(f"This build ({plan.fingerprint}) is now marked as test-sent.")
        else:
            lines.append(f"This build ({plan.fingerprint}) is NOT marked as test-sent: every address is a reserved "
                         "example name (example.org, example.com, .test, ...) that nobody reads. Send the test to a "
                         "real person: set REVIEW_LIST in .env to a list of the reviewers, or use --to.")
    if not plan.test:
        lines += next_steps(plan.build.loaded.id, failed=result.failed, deferred=result.deferred,
                            uncertain=result.uncertain, stopped=bool(result.stopped))
    lines += [f"Note: {note}" for note in result.notes]
    if result.stopped:
        lines.append(f"STOPPED: {result.stopped}")
        if not plan.test:
            lines.append("Everyone sent so far is recorded; run the same command again to resume.")
        left = len(plan.recipients) - result.sent
        if result.quota and left > 0 and not plan.test:  # what the rest will take once the block is lifted
            rate = plan.settings.send_rate
            lines.append(f"Not sent yet: {left:,}; at {rate or 'no'} per minute that takes "
                         f"{duration(RateLimiter(rate).seconds_for(left))}: keep the computer awake (no sleep) until "
                         "it ends, or send part of them with --limit.")
    return lines


def next_steps(edition: str, *, failed: int, deferred: int, uncertain: int, stopped: bool) -> list[str]:
    """What to run for each kind of member not sent (the same words as README and the handbook)."""
    lines = []
    if deferred:
        lines.append(f"Deferred ({deferred}): the server said 'try later'. Run the same command again later: "
                     "they are sent then.")
    if failed:
        lines.append(f"Failed ({failed}): the server refused them. Check the reasons (newsletter status {edition}); "
                     "once the cause is fixed, run the same command with --retry-failed.")
    if uncertain:
        lines.append(f"Uncertain ({uncertain}): the message went out but the server's reply was lost, so they may "
                     "have it. Ask them, or run the same command with --resend-uncertain (they may get it twice).")
    if failed or deferred or uncertain or stopped:
        lines.append(f"Details: newsletter status {edition}")
    return lines
