"""Test sends and real sends: plan, confirm, send over N connections with retries and resume, or write .eml files.

A real send loads the recipient list into the edition's journal and sends from it (`JournalQueue`); the
workers (deliver/workers.py) record every step there. No click here: the command line passes `confirm`,
`progress` and `notify` callbacks.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from newsletter_cli.compose import merge
from newsletter_cli.compose.build import Build, fingerprint
from newsletter_cli.compose.build import build as run_build
from newsletter_cli.deliver.journal import (
    JOURNAL_FILE,
    SENDABLE,
    Journal,
    exclusive,
    now,
    remember_tested_build,
    tested_builds,
)
from newsletter_cli.deliver.message import MessageFactory
from newsletter_cli.deliver.ratelimit import RateLimiter, shared_limiter
from newsletter_cli.deliver.recipients import (
    Recipient,
    RecipientList,
    problem_lines,
    read_recipients,
    require_recipients,
)
from newsletter_cli.deliver.recipients import summary as list_summary
from newsletter_cli.deliver.smtp import Connection
from newsletter_cli.deliver.workers import RECONNECT_DELAYS, Progress, Sender
from newsletter_cli.errors import InputError, NewsletterError
from newsletter_cli.project import Project, current, display, display_dir
from newsletter_cli.settings import Settings

RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)
OUTBOX = "outbox"
OUTBOX_SAMPLE = 100  # a dry run writes at most this many .eml files (50,000 would be gigabytes)
M365_DAILY_LIMIT = 10_000


class JournalQueue:
    """The members a real send goes to, read from the journal a batch at a time, in list order.

    `count` is how many that is, counted when the plan was made (up to `limit`). Iterating again starts over
    with the members still in `states` then.
    """

    def __init__(self, journal: Journal, states: Sequence[str], limit: int | None = None):
        self.journal, self.states, self.limit = journal, tuple(states), limit
        counts = journal.listed_counts()
        self.count = sum(counts[s] for s in self.states)
        if limit is not None:
            self.count = min(self.count, limit)

    def _all(self) -> Iterator[Recipient]:
        after = 0
        while True:
            batch = self.journal.queue(self.states, after)
            if not batch:
                return
            for _place, recipient in batch:
                yield recipient
            after = batch[-1][0]

    def __iter__(self) -> Iterator[Recipient]:
        return itertools.islice(self._all(), self.limit)

    def __len__(self) -> int:
        return self.count


@dataclass
class Plan:
    """What a send will do, shown to the user before anything goes out."""

    build: Build
    settings: Settings
    factory: MessageFactory
    test: bool
    outbox: bool  # write .eml files instead of sending (--dry-run, or no SMTP_HOST)
    recipients: Sequence[Recipient] | JournalQueue  # those this run sends to, in order (a real send: streamed)
    listing: RecipientList | None = None
    already_sent: int = 0
    uncertain: int = 0
    failed: int = 0  # marked failed earlier: sent again only with --retry-failed
    retry_failed: bool = False
    resend_uncertain: bool = False
    tested: str | None = None  # when this build was test-sent, or None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # `newsletter check`'s errors: they block a real send
    ignore_check_errors: bool = False

    @property
    def folder(self) -> Path:
        return self.build.loaded.folder

    @cached_property
    def fingerprint(self) -> str:
        """The build's fingerprint, hashed once (it is recorded with every message sent)."""
        return fingerprint(self.build.rendered)


@dataclass
class SendResult:
    plan: Plan
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    uncertain: int = 0
    written: int = 0
    stopped: str | None = None  # why the send stopped early
    quota: bool = False
    seconds: float = 0.0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (address, state, reply)
    aborted: list[str] = field(default_factory=list)  # left uncertain by a second Ctrl+C

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

    def recover(self) -> list[str]:
        return []


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    return f"about {minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"about {minutes} min"


def _review_recipients(settings: Settings, to: Sequence[str],
                       project: Project) -> tuple[list[Recipient], RecipientList | None]:
    from email_validator import EmailNotValidError, validate_email

    if to:
        out = []
        for address in to:
            try:
                out.append(Recipient(validate_email(address, check_deliverability=False,
                                                    allow_smtputf8=False).normalized))
            except EmailNotValidError as exc:
                raise InputError(f"--to {address}: not a valid email address: {exc}") from None
        return out, None
    if not settings.review_list:
        raise InputError("No review list: set REVIEW_LIST=review.csv in .env (a CSV with an email column), "
                         "or name the addresses with --to a@example.org --to b@example.org.")
    review_list = project.root / settings.review_list  # a relative path is the project folder's, like .env
    if not review_list.is_file():
        raise InputError(f"{settings.source('REVIEW_LIST')}: REVIEW_LIST '{settings.review_list}' does not exist; "
                         "make it (a CSV with an email column) or use --to a@example.org.")
    listing = read_recipients(review_list, project=project)
    require_recipients(listing)
    return listing.recipients, listing


def _field_warnings(build: Build, listing: RecipientList | None) -> list[str]:
    if listing is None:
        return []
    used = merge.fields(build.rendered.html + build.rendered.text) - {"unsubscribe_url", "email", "name"}
    missing = sorted(f for f in used if f.lower() not in listing.columns)
    return [f"the edition uses [[{f}]] but {display(listing.path)} has no '{f}' column: its default "
            "(or nothing) is used" for f in missing]


def _check_errors(build: Build, project: Project, shown: int = 5) -> list[str]:
    """`newsletter check`'s errors (offline), counted with its warnings, so nobody sends an edition with a
    placeholder or a safelink left: they block a real send."""
    from newsletter_cli.check.content import run_checks

    findings = run_checks(build, project=project)
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity != "error"]
    if not errors:
        return []
    more = f" ({len(errors) - shown} more: run `newsletter check`)" if len(errors) > shown else ""
    counts = f"{len(errors)} error{'s' * (len(errors) != 1)}, {len(warnings)} warning{'s' * (len(warnings) != 1)}"
    return [f"`newsletter check` finds {counts}{more}; fix the errors before sending:",
            *(f"  {finding}" for finding in errors[:shown])]


def _require_postal_address(project: Project) -> None:
    """A real send needs the association's postal address in the footer, not the built-in placeholder."""
    from newsletter_cli.compose.build import load_theme
    from newsletter_cli.compose.model import PLACEHOLDER_ADDRESS

    if " ".join(load_theme(project).address.split()) in ("", PLACEHOLDER_ADDRESS):
        shown = display(project.theme_file)
        raise InputError(f"{shown}: the footer's postal address is the placeholder '{PLACEHOLDER_ADDRESS}' "
                         "(or empty); every newsletter must show the sender's real postal address. Set address: "
                         f"in {shown} and build again.")


def plan_send(edition: str | None, *, test: bool = False, to: Sequence[str] = (), recipients: Path | None = None,
              sheet: str | None = None, dry_run: bool = False, limit: int | None = None, resend_uncertain: bool = False,
              retry_failed: bool = False, ignore_check_errors: bool = False,
              settings: Settings | None = None, journal: Journal | None = None,
              project: Project | None = None) -> Plan:
    """Build the edition, load the recipients into the journal: everything but sending.

    A real send (or a dry run, into a throwaway journal) needs `journal`.
    """
    project = current(project)
    settings = settings or project.settings
    built = run_build(project.resolve(edition), project=project)
    if not test:
        _require_postal_address(project)
    factory = MessageFactory(built, settings, test=test)
    plan = Plan(built, settings, factory, test, outbox=dry_run or not settings.smtp_host, recipients=[],
                retry_failed=retry_failed, resend_uncertain=resend_uncertain,
                ignore_check_errors=ignore_check_errors)
    if test:
        plan.recipients, plan.listing = _review_recipients(settings, to, project)
        if limit is not None:
            plan.recipients = plan.recipients[:limit]
    else:
        if recipients is None:
            raise InputError("Name the recipient list: newsletter send EDITION --recipients leden.csv "
                             "(or --test for the review list).")
        if journal is None:
            raise NewsletterError("internal: a real send needs its journal")
        journal.recover()
        with journal.loading() as add:
            plan.listing = listing = read_recipients(recipients, project=project, sink=add, sheet=sheet)
            require_recipients(listing)
        counts = journal.listed_counts()
        plan.already_sent, plan.uncertain, plan.failed = counts["sent"], counts["uncertain"], counts["failed"]
        sendable = SENDABLE + (("uncertain",) if resend_uncertain else ()) + (("failed",) if retry_failed else ())
        plan.recipients = JournalQueue(journal, sendable, limit)
        earlier = journal.meta("fingerprint")
        if plan.already_sent and earlier and earlier != plan.fingerprint:
            plan.warnings.append(f"the edition changed since the send began: the {plan.already_sent} recipients "
                                 "already sent got the earlier version and will not get this one")
    sent_before = tested_builds(plan.folder).get(plan.fingerprint)
    plan.tested = sent_before["time"] if sent_before else None
    if not test and not plan.tested:
        plan.warnings.append(f"THIS BUILD ({plan.fingerprint}) WAS NEVER TEST-SENT: the edition changed since the "
                             "last test send, or there was none. Run `newsletter send EDITION --test` and check it.")
    plan.errors = _check_errors(built, project)
    plan.warnings += _field_warnings(built, plan.listing)
    if plan.listing is not None:
        plan.warnings += problem_lines(plan.listing)
    if not test and len(plan.recipients) > M365_DAILY_LIMIT and not plan.outbox:
        plan.warnings.append(f"Microsoft 365 accepts {M365_DAILY_LIMIT:,} recipients a day: if the server stops "
                             "the send, run the same command again tomorrow to go on")
    return plan


def summary(plan: Plan) -> list[str]:
    """The lines shown before a send asks for confirmation."""
    s = plan.settings
    lines = [f"Edition:    {plan.build.loaded.display_path}",
             f"Subject:    {plan.factory.subject}",
             f"From:       {s.newsletter_from}" + (f"   Reply-To: {s.reply_to}" if s.reply_to else "")]
    if plan.listing is not None:
        lines.append(f"Recipients: {list_summary(plan.listing)} in {display(plan.listing.path)}")
        lines += [f"            note: {notice}" for notice in plan.listing.notices]
    if plan.already_sent or plan.uncertain or plan.failed:
        lines.append(f"Journal:    {plan.already_sent} already sent (skipped), {plan.uncertain} uncertain, "
                     f"{plan.failed} failed")
        if plan.uncertain:
            lines.append("            uncertain: they may have arrived; "
                         + ("sent again now (--resend-uncertain)" if plan.resend_uncertain else
                            "sent again only with --resend-uncertain"))
        if plan.failed:
            lines.append("            failed: refused by the server earlier; "
                         + ("sent again now (--retry-failed)" if plan.retry_failed else
                            "sent again only with --retry-failed (after fixing the cause)"))
    lines.append(f"To send:    {len(plan.recipients)}")
    if plan.errors and plan.ignore_check_errors and not plan.test and not plan.outbox:
        lines.append("Check:      ERRORS IGNORED (--ignore-check-errors): this is recorded in the journal")
    if plan.outbox:
        lines.append(f"Mode:       nothing is sent; every message is written to {display_dir(plan.folder / OUTBOX)}")
    else:
        limiter = RateLimiter(s.send_rate)
        rate = f"{s.send_rate} per minute" if s.send_rate else "no rate limit"
        lines.append(f"Server:     {s.smtp_host}:{s.smtp_port} ({s.smtp_security})"
                     + (f" as {s.smtp_username}" if s.smtp_username else ""))
        lines.append(f"Rate:       {rate}, {s.send_connections} connection(s); "
                     f"{duration(limiter.seconds_for(len(plan.recipients)))}")
    if not plan.test:
        lines.append(f"Build:      {plan.fingerprint}, test-sent {plan.tested}" if plan.tested else
                     f"Build:      {plan.fingerprint}: WARNING: THIS BUILD WAS NEVER TEST-SENT. "
                     "Run `newsletter send EDITION --test` first and check it.")
    return lines


def write_outbox(plan: Plan) -> SendResult:
    """The messages as .eml files in editions/<id>/outbox/ (old ones removed first): at most OUTBOX_SAMPLE."""
    result = SendResult(plan)
    outbox = plan.folder / OUTBOX
    outbox.mkdir(parents=True, exist_ok=True)
    for old in outbox.glob("*.eml"):
        old.unlink()
    prefix = "test-" if plan.test else ""
    for n, recipient in enumerate(itertools.islice(plan.recipients, OUTBOX_SAMPLE), 1):
        safe = re.sub(r"[^A-Za-z0-9@._-]", "_", recipient.email)
        (outbox / f"{prefix}{n:05d}-{safe}.eml").write_bytes(plan.factory.for_recipient(recipient))
        result.written += 1
    return result


def send_smtp(plan: Plan, journal: Journal | None, *, progress: Callable[[Progress], None] | None = None,
              notify: Callable[[str], None] | None = None, retry_delays: Sequence[float] = RETRY_DELAYS,
              reconnect_delays: Sequence[float] = RECONNECT_DELAYS, limiter: RateLimiter | None = None,
              connect: Callable[[Settings], Connection] = Connection) -> SendResult:
    """Send the plan's messages over SMTP; the journal (None for a test send) records every step."""
    if journal is not None:
        journal.set_meta("fingerprint", plan.fingerprint)
        if plan.errors and plan.ignore_check_errors:
            journal.set_meta("ignored_check_errors", f"{now()}: {plan.errors[0]}")
    sender = Sender(plan.settings, plan.recipients, len(plan.recipients), plan.factory, plan.fingerprint,
                    journal or NullJournal(), limiter or shared_limiter(plan.settings), progress=progress,
                    notify=notify, retry_delays=retry_delays, reconnect_delays=reconnect_delays, connect=connect)
    outcome = sender.run()
    result = SendResult(plan, sent=outcome.sent, failed=outcome.failed, deferred=outcome.deferred,
                        uncertain=outcome.uncertain, stopped=outcome.stopped, quota=outcome.quota,
                        failures=outcome.failures, aborted=outcome.aborted)
    if plan.test and result.sent:
        remember_tested_build(plan.folder, plan.fingerprint, outcome.sent_to)
    return result


def delays_from_env(name: str = "NEWSLETTER_RETRY_DELAYS",
                    default: tuple[float, ...] = RETRY_DELAYS) -> tuple[float, ...]:
    """NEWSLETTER_RETRY_DELAYS=0,0 (seconds between tries of a member after a 4xx) and
    NEWSLETTER_RECONNECT_DELAYS (pauses before reconnecting) shorten the waits for test servers."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise InputError(f"{name} '{raw[:60]}' is not a list of seconds, e.g. 5,30,120") from None


retry_delays_from_env = delays_from_env


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


def run_send(edition: str | None, *, test: bool = False, to: Sequence[str] = (), recipients: Path | None = None,
             sheet: str | None = None, dry_run: bool = False, limit: int | None = None, resend_uncertain: bool = False,
             retry_failed: bool = False, ignore_check_errors: bool = False,
             confirm: Callable[[Plan], bool] | None = None, progress: Callable[[Progress], None] | None = None,
             notify: Callable[[str], None] | None = None, settings: Settings | None = None,
             retry_delays: Sequence[float] | None = None, reconnect_delays: Sequence[float] | None = None,
             limiter: RateLimiter | None = None, project: Project | None = None) -> SendResult:
    """The whole send: plan, ask `confirm` (for real sends over SMTP), then send or write the outbox."""
    project = current(project)
    settings = settings or project.settings
    folder = project.resolve(edition).parent
    real = not test and not dry_run and bool(settings.smtp_host)
    with ExitStack() as stack:
        journal = None
        if real:
            stack.enter_context(exclusive(folder))
            if not (folder / JOURNAL_FILE).exists():  # a send that never starts leaves no journal behind
                stack.callback(_remove_unused, folder / JOURNAL_FILE)
            journal = stack.enter_context(Journal(folder / JOURNAL_FILE))
        elif not test:  # a dry run reads the list through a throwaway journal: the real one is not touched
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="newsletter-dry-run-")))
            journal = stack.enter_context(Journal(scratch / JOURNAL_FILE))
        plan = plan_send(edition, test=test, to=to, recipients=recipients, sheet=sheet, dry_run=dry_run,
                         limit=limit,
                         resend_uncertain=resend_uncertain, retry_failed=retry_failed,
                         ignore_check_errors=ignore_check_errors, settings=settings, journal=journal,
                         project=project)
        blocked = SendResult(plan).blocked
        if confirm is not None and not confirm(plan):
            raise NewsletterError("Nothing was sent.")
        if blocked:
            raise NewsletterError(blocked)
        if plan.outbox:
            return write_outbox(plan)
        started = time.monotonic()
        result = send_smtp(plan, journal if real else None, progress=progress, notify=notify,
                           retry_delays=retry_delays if retry_delays is not None else delays_from_env(),
                           reconnect_delays=reconnect_delays if reconnect_delays is not None else
                           delays_from_env("NEWSLETTER_RECONNECT_DELAYS", RECONNECT_DELAYS), limiter=limiter)
        result.seconds = time.monotonic() - started
    return result


def result_lines(result: SendResult) -> list[str]:
    """What the command prints after a send or a dry run."""
    plan = result.plan
    if plan.outbox:
        why = "--dry-run" if plan.settings.smtp_host else "SMTP_HOST is not set"
        total = len(plan.recipients)
        sample = (f" (a sample: the first {result.written} of the {total:,} messages this send would make)"
                  if total > result.written else "")
        return [f"NOTHING WAS SENT ({why}): {result.written} messages written to "
                f"{display_dir(plan.folder / OUTBOX)}{sample} (open an .eml file with your mail program to look "
                "at it)."]
    lines = [f"{'Test send' if plan.test else 'Send'}: {result.sent} sent, {result.failed} failed, "
             f"{result.deferred} deferred, {result.uncertain} uncertain, in {result.seconds:.0f} s"]
    lines += [f"  {state}: {address}: {reply}" for address, state, reply in result.failures]
    if plan.test and result.sent:
        lines.append(f"This build ({plan.fingerprint}) is now marked as test-sent.")
    if not plan.test:
        lines += next_steps(plan.build.loaded.id, failed=result.failed, deferred=result.deferred,
                            uncertain=result.uncertain, stopped=bool(result.stopped))
    if result.stopped:
        lines.append(f"STOPPED: {result.stopped}")
        if not plan.test:
            lines.append("Everyone sent so far is recorded; run the same command again to resume.")
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
