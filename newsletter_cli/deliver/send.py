"""Test sends and real sends: plan, confirm, send over N connections with retries and resume, or write .eml files.

No click here: the command line passes `confirm` and `progress` callbacks.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections import Counter
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
    remember_tested_build,
    tested_builds,
)
from newsletter_cli.deliver.message import MessageFactory
from newsletter_cli.deliver.ratelimit import RateLimiter
from newsletter_cli.deliver.recipients import (
    Recipient,
    RecipientList,
    problem_lines,
    read_recipients,
    require_recipients,
)
from newsletter_cli.deliver.recipients import summary as list_summary
from newsletter_cli.deliver.smtp import Connection, Fatal, Permanent, Temporary
from newsletter_cli.errors import InputError, NewsletterError
from newsletter_cli.project import Project, current, display, display_dir
from newsletter_cli.settings import Settings

RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)
MAX_FAILURES_IN_A_ROW = 10
OUTBOX = "outbox"
M365_DAILY_LIMIT = 10_000


@dataclass
class Progress:
    total: int
    sent: int = 0
    failed: int = 0
    deferred: int = 0


class Selection:
    """The recipients a send goes to, in list order: read from the list as they are needed, never all held.

    `wanted` says by address (lower case) who is still to be sent to (from the journal); `count` is how many
    that is, counted when the plan was made (up to `limit`).
    """

    def __init__(self, listing: RecipientList, wanted: Callable[[str], bool] | None = None,
                 limit: int | None = None):
        self.listing, self.wanted, self.limit = listing, wanted, limit
        self.count = sum(1 for _ in self._select()) if wanted is not None else listing.count
        if limit is not None:
            self.count = min(self.count, limit)

    def _select(self) -> Iterator[Recipient]:
        wanted = self.wanted
        return iter(self.listing) if wanted is None else (r for r in self.listing if wanted(r.key))

    def __iter__(self) -> Iterator[Recipient]:
        return itertools.islice(self._select(), self.limit)

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
    recipients: Sequence[Recipient] | Selection  # those this run sends to, in order (a real send: streamed)
    listing: RecipientList | None = None
    already_sent: int = 0
    uncertain: int = 0
    tested: str | None = None  # when this build was test-sent, or None
    warnings: list[str] = field(default_factory=list)

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
    written: int = 0
    stopped: str | None = None  # why the send stopped early
    quota: bool = False
    seconds: float = 0.0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (address, state, reply)


class NullJournal:
    """A test send's journal: remembers nothing (the real send's journal is never touched)."""

    def mark_sending(self, *_: object) -> None: ...

    def mark(self, *_: object) -> None: ...


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


def _check_warnings(build: Build, project: Project, shown: int = 3) -> list[str]:
    """`newsletter check`'s errors (offline), so nobody sends an edition with a placeholder or a safelink left."""
    from newsletter_cli.check.content import run_checks

    errors = [finding for finding in run_checks(build, project=project) if finding.severity == "error"]
    if not errors:
        return []
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    return [f"`newsletter check` FINDS {len(errors)} ERROR(S){more}; fix them before sending:",
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
              dry_run: bool = False, limit: int | None = None, resend_uncertain: bool = False,
              settings: Settings | None = None, journal: Journal | None = None,
              project: Project | None = None) -> Plan:
    """Build the edition, read the recipients and the journal: everything but sending."""
    project = current(project)
    settings = settings or project.settings
    built = run_build(project.resolve(edition), project=project)
    if not test:
        _require_postal_address(project)
    factory = MessageFactory(built, settings, test=test)
    plan = Plan(built, settings, factory, test, outbox=dry_run or not settings.smtp_host, recipients=[])
    if test:
        plan.recipients, plan.listing = _review_recipients(settings, to, project)
        if limit is not None:
            plan.recipients = plan.recipients[:limit]
    else:
        if recipients is None:
            raise InputError("Name the recipient list: newsletter send EDITION --recipients leden.csv "
                             "(or --test for the review list).")
        plan.listing = listing = read_recipients(recipients, project=project)
        require_recipients(listing)
        wanted = None
        if journal is not None:
            journal.recover()
            states = journal.states()
            sendable = SENDABLE + (("uncertain",) if resend_uncertain else ())
            found = Counter(states.get(r.key, "pending") for r in listing)
            plan.already_sent, plan.uncertain = found["sent"], found["uncertain"]
            if any(state not in sendable for state in found):
                wanted = lambda key: states.get(key, "pending") in sendable  # noqa: E731
            earlier = journal.meta("fingerprint")
            if plan.already_sent and earlier and earlier != plan.fingerprint:
                plan.warnings.append(f"the edition changed since the send began: the {plan.already_sent} recipients "
                                     "already sent got the earlier version and will not get this one")
        plan.recipients = Selection(listing, wanted, limit)
    sent_before = tested_builds(plan.folder).get(plan.fingerprint)
    plan.tested = sent_before["time"] if sent_before else None
    if not test and not plan.tested:
        plan.warnings.append(f"THIS BUILD ({plan.fingerprint}) WAS NEVER TEST-SENT: the edition changed since the "
                             "last test send, or there was none. Run `newsletter send EDITION --test` and check it.")
    plan.warnings += _check_warnings(built, project)
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
    if plan.already_sent or plan.uncertain:
        lines.append(f"Journal:    {plan.already_sent} already sent (skipped), {plan.uncertain} uncertain"
                     + (" (they may have arrived; sent again only with --resend-uncertain)" if plan.uncertain else ""))
    lines.append(f"To send:    {len(plan.recipients)}")
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
    """Every message as an .eml file in editions/<id>/outbox/ (old ones removed first)."""
    result = SendResult(plan)
    outbox = plan.folder / OUTBOX
    outbox.mkdir(parents=True, exist_ok=True)
    for old in outbox.glob("*.eml"):
        old.unlink()
    prefix = "test-" if plan.test else ""
    for n, recipient in enumerate(plan.recipients, 1):
        safe = re.sub(r"[^A-Za-z0-9@._-]", "_", recipient.email)
        (outbox / f"{prefix}{n:05d}-{safe}.eml").write_bytes(plan.factory.for_recipient(recipient))
        result.written += 1
    return result


class _Sender:
    """Runs the workers: each has its own connection; all share the rate limiter, queue and journal."""

    def __init__(self, plan: Plan, journal: Journal | NullJournal, limiter: RateLimiter,
                 progress: Callable[[Progress], None] | None, retry_delays: Sequence[float],
                 connect: Callable[[Settings], Connection]):
        self.plan, self.journal, self.limiter = plan, journal, limiter
        self.progress_cb, self.retry_delays, self.connect = progress, retry_delays, connect
        self.result = SendResult(plan)
        self.progress = Progress(total=len(plan.recipients))
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.failures_in_a_row = 0
        self.work = iter(plan.recipients)  # shared by the workers, taken under `work_lock`
        self.work_lock = threading.Lock()

    def run(self) -> SendResult:
        count = max(1, min(self.plan.settings.send_connections, len(self.plan.recipients)))
        threads = [threading.Thread(target=self.worker, name=f"smtp-{n}", daemon=True) for n in range(count)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except KeyboardInterrupt:
            self.halt("interrupted (Ctrl+C); the message being sent was finished")
            for thread in threads:
                thread.join()
        return self.result

    def halt(self, reason: str, quota: bool = False) -> None:
        with self.lock:
            if self.result.stopped is None:
                self.result.stopped, self.result.quota = reason, quota
        self.stop.set()

    def worker(self) -> None:
        connection = self.connect(self.plan.settings)
        try:
            while not self.stop.is_set():
                with self.work_lock:
                    recipient = next(self.work, None)
                if recipient is None:
                    return
                self.send_one(connection, recipient)
        except NewsletterError as exc:
            self.halt(exc.message)
        except Exception as exc:  # a bug must not leave the other workers sending forever
            self.halt(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def record(self, recipient: Recipient, state: str, reply: str) -> None:
        with self.lock:
            if state == "sent":
                self.result.sent += 1
                self.progress.sent += 1
                self.failures_in_a_row = 0
            else:
                self.result.failures.append((recipient.email, state, reply))
                if state == "failed":
                    self.result.failed += 1
                    self.progress.failed += 1
                    self.failures_in_a_row += 1
                else:
                    self.result.deferred += 1
                    self.progress.deferred += 1
            snapshot = Progress(**vars(self.progress))
            too_many = self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW
        if too_many:
            self.halt(f"{MAX_FAILURES_IN_A_ROW} messages in a row were refused (last: {reply}); stopped so as not "
                      "to harm the sender's reputation. Check `newsletter status`, fix the cause and run again.")
        if self.progress_cb:
            self.progress_cb(snapshot)

    def send_one(self, connection: Connection, recipient: Recipient) -> None:
        """Send with retries; the journal says `sending` during each transaction."""
        message_id = self.plan.factory.message_id()
        data = self.plan.factory.for_recipient(recipient, message_id)
        sender = self.plan.factory.from_address
        attempt = 0
        while True:
            if not self.limiter.acquire(self.stop):
                return
            try:
                if connection.smtp is None:
                    connection.open()
                reply = connection.send(sender, recipient.email, data, before_data=lambda: self.journal.mark_sending(
                    recipient.email, self.plan.fingerprint, message_id))
            except Fatal as exc:
                self.journal.mark(recipient.email, "pending", exc.reply)
                self.halt(exc.message, exc.quota)
                return
            except Permanent as exc:
                self.journal.mark(recipient.email, "failed", exc.reply)
                self.record(recipient, "failed", exc.reply)
                return
            except Temporary as exc:
                self.journal.mark(recipient.email, "deferred", exc.reply)
                if attempt >= len(self.retry_delays):
                    self.record(recipient, "deferred", exc.reply)
                    return
                if self.stop.wait(self.retry_delays[attempt]):
                    return
                attempt += 1
                continue
            self.journal.mark(recipient.email, "sent", reply)
            self.record(recipient, "sent", reply)
            return


def send_smtp(plan: Plan, journal: Journal | None, *, progress: Callable[[Progress], None] | None = None,
              retry_delays: Sequence[float] = RETRY_DELAYS, limiter: RateLimiter | None = None,
              connect: Callable[[Settings], Connection] = Connection) -> SendResult:
    """Send the plan's messages over SMTP; the journal (None for a test send) records every step."""
    if journal is not None:
        journal.set_meta("fingerprint", plan.fingerprint)
    sender = _Sender(plan, journal or NullJournal(), limiter or RateLimiter(plan.settings.send_rate),
                     progress, retry_delays, connect)
    result = sender.run()
    if plan.test and result.sent:
        remember_tested_build(plan.folder, plan.fingerprint, [r.email for r in plan.recipients])
    return result


def retry_delays_from_env() -> tuple[float, ...]:
    """NEWSLETTER_RETRY_DELAYS=0,0 (seconds between tries) shortens the waits for test servers."""
    raw = os.environ.get("NEWSLETTER_RETRY_DELAYS", "").strip()
    if not raw:
        return RETRY_DELAYS
    try:
        return tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise InputError(f"NEWSLETTER_RETRY_DELAYS '{raw}' is not a list of seconds, e.g. 5,30,120") from None


def run_send(edition: str | None, *, test: bool = False, to: Sequence[str] = (), recipients: Path | None = None,
             dry_run: bool = False, limit: int | None = None, resend_uncertain: bool = False,
             confirm: Callable[[Plan], bool] | None = None, progress: Callable[[Progress], None] | None = None,
             settings: Settings | None = None, retry_delays: Sequence[float] | None = None,
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
            if (folder / JOURNAL_FILE).is_file():
                journal = stack.enter_context(Journal(folder / JOURNAL_FILE))
        plan = plan_send(edition, test=test, to=to, recipients=recipients, dry_run=dry_run, limit=limit,
                         resend_uncertain=resend_uncertain, settings=settings, journal=journal,
                         project=project)
        if confirm is not None and not confirm(plan):
            raise NewsletterError("Nothing was sent.")
        if plan.outbox:
            return write_outbox(plan)
        if real and plan.recipients:  # the journal is created only when something is about to be sent
            journal = journal or stack.enter_context(Journal(folder / JOURNAL_FILE))
            journal.add(r.email for r in (plan.listing if plan.listing is not None else plan.recipients))
        started = time.monotonic()
        delays = retry_delays if retry_delays is not None else retry_delays_from_env()
        result = send_smtp(plan, journal, progress=progress, retry_delays=delays, limiter=limiter)
        result.seconds = time.monotonic() - started
    return result


def result_lines(result: SendResult) -> list[str]:
    """What the command prints after a send or a dry run."""
    plan = result.plan
    if plan.outbox:
        why = "--dry-run" if plan.settings.smtp_host else "SMTP_HOST is not set"
        return [f"NOTHING WAS SENT ({why}): {result.written} messages written to "
                f"{display_dir(plan.folder / OUTBOX)} (open an .eml file with your mail program to look at it)."]
    lines = [f"{'Test send' if plan.test else 'Send'}: {result.sent} sent, {result.failed} failed, "
             f"{result.deferred} deferred, in {result.seconds:.0f} s"]
    lines += [f"  {state}: {address}: {reply}" for address, state, reply in result.failures]
    if plan.test and result.sent:
        lines.append(f"This build ({plan.fingerprint}) is now marked as test-sent.")
    if not plan.test and (result.deferred or result.stopped or result.failed):
        lines.append(f"Details: newsletter status {plan.build.loaded.id}")
    if result.stopped:
        lines.append(f"STOPPED: {result.stopped}")
        if not plan.test:
            lines.append("Everyone sent so far is recorded; run the same command again to resume.")
    return lines
