"""Planning a send: build the edition, load the recipients (a real send: into the journal), gather the
warnings and `newsletter check`'s errors, and the summary shown before anything goes out (send.py runs it).

`plan(request, project, journal)` is everything but sending: what it reads comes from the `SendRequest`
(request.py) and the project (its settings, its folder), nothing from the current folder or the environment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from newsletter_cli.compose import merge
from newsletter_cli.compose.build import Build, fingerprint
from newsletter_cli.compose.build import build as run_build
from newsletter_cli.deliver.message import MessageFactory
from newsletter_cli.deliver.ratelimit import RateLimiter
from newsletter_cli.deliver.request import MemberList, SendRequest
from newsletter_cli.errors import InputError, NewsletterError
from newsletter_cli.members.journal import SENDABLE, Journal
from newsletter_cli.members.recipients import (
    Recipient,
    RecipientList,
    problem_lines,
    read_recipients,
    require_recipients,
)
from newsletter_cli.members.recipients import summary as list_summary
from newsletter_cli.members.testsends import never_tested, when_tested
from newsletter_cli.project import Project, display, display_dir
from newsletter_cli.settings import Settings
from newsletter_cli.words import count

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
    """What a send will do, shown to the user before anything goes out; what was asked is in `request`."""

    request: SendRequest
    build: Build
    settings: Settings
    factory: MessageFactory
    outbox: bool  # write .eml files instead of sending (--dry-run, or no SMTP_HOST)
    recipients: Sequence[Recipient] | JournalQueue  # those this run sends to, in order (a real send: streamed)
    listing: RecipientList | None = None
    already_sent: int = 0
    uncertain: int = 0
    failed: int = 0  # marked failed earlier: sent again only with --retry-failed
    tested: str | None = None  # when this build was test-sent, or None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # `newsletter check`'s errors: they block a real send

    @property
    def test(self) -> bool:
        return self.request.test

    @property
    def retry_failed(self) -> bool:
        return self.request.retry_failed

    @property
    def resend_uncertain(self) -> bool:
        return self.request.resend_uncertain

    @property
    def ignore_check_errors(self) -> bool:
        return self.request.ignore_check_errors

    @property
    def folder(self) -> Path:
        return self.build.loaded.folder

    @cached_property
    def fingerprint(self) -> str:
        """The build's fingerprint, hashed once (it is recorded with every message sent)."""
        return fingerprint(self.build.rendered)


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


def used_fields(build: Build, factory: MessageFactory) -> set[str]:
    """The columns a message of this build uses (lower case): only those go into the journal (AVG: data
    minimisation; a member list's phone numbers, dates of birth and notes stay in the list)."""
    return {name.lower() for name in merge.fields(build.rendered.html + build.rendered.text + factory.subject)
            } | {"email"}


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


def _require_postal_address(built: Build, project: Project) -> None:
    """A real send needs the association's postal address in the footer, not the built-in placeholder (in the
    house style the build used)."""
    from newsletter_cli.compose.model import PLACEHOLDER_ADDRESS

    if " ".join(built.theme.theme.address.split()) in ("", PLACEHOLDER_ADDRESS):
        shown = display(project.theme_file)
        raise InputError(f"{shown}: the footer's postal address is the placeholder '{PLACEHOLDER_ADDRESS}' "
                         "(or empty); every newsletter must show the sender's real postal address. Set address: "
                         f"in {shown} and build again.")


def plan(request: SendRequest, project: Project, journal: Journal | None = None) -> Plan:
    """Build the edition, load the recipients into the journal: everything but sending.

    A real send (or a dry run, into a throwaway journal) needs `journal` (send.py's `send_journal`).
    """
    settings, test, who = project.settings, request.test, request.who
    built = run_build(project.resolve(request.edition), project=project)
    if not test:
        _require_postal_address(built, project)
    factory = MessageFactory(built, settings, test=test, project=project)
    made = Plan(request, built, settings, factory, outbox=request.dry_run or not settings.smtp_host, recipients=[])
    limit = request.limit
    if not isinstance(who, MemberList):
        made.recipients, made.listing = _review_recipients(settings, who.to, project)
        if limit is not None:
            made.recipients = made.recipients[:limit]
    else:
        if journal is None:
            raise NewsletterError("internal: a real send needs its journal")
        journal.recover()
        keep = used_fields(built, factory)
        with journal.loading(factory.message_id) as add:
            def add_used(recipient: Recipient) -> None:
                add(Recipient(recipient.email, recipient.name,
                              {k: v for k, v in recipient.fields.items() if k in keep}))

            made.listing = listing = read_recipients(who.path, project=project, sink=add_used, sheet=who.sheet)
            require_recipients(listing)
        counts = journal.listed_counts()
        made.already_sent, made.uncertain, made.failed = counts["sent"], counts["uncertain"], counts["failed"]
        sendable = (SENDABLE + (("uncertain",) if request.resend_uncertain else ())
                    + (("failed",) if request.retry_failed else ()))
        made.recipients = JournalQueue(journal, sendable, limit)
        earlier = journal.meta("fingerprint")
        if made.already_sent and earlier and earlier != made.fingerprint:
            made.warnings.append(f"the edition changed since the send began: the {made.already_sent} recipients "
                                 "already sent got the earlier version and will not get this one")
    made.tested = when_tested(made.folder, made.fingerprint)
    if not test and not made.tested:
        made.warnings.append(never_tested(made.fingerprint))
    made.errors = _check_errors(built, project)
    made.warnings += _field_warnings(built, made.listing)
    if made.listing is not None:
        made.warnings += made.listing.warnings + problem_lines(made.listing)
    if not test and len(made.recipients) > M365_DAILY_LIMIT and not made.outbox:
        made.warnings.append(f"Microsoft 365 accepts {M365_DAILY_LIMIT:,} recipients a day: if the server stops "
                             "the send, run the same command again tomorrow to go on")
    return made


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
        lines.append(f"Journal:    {plan.already_sent:,} already sent (skipped), {plan.uncertain:,} uncertain, "
                     f"{plan.failed:,} failed")
        if plan.uncertain:
            lines.append("            uncertain: they may have arrived; "
                         + ("sent again now (--resend-uncertain)" if plan.resend_uncertain else
                            "sent again only with --resend-uncertain"))
        if plan.failed:
            lines.append("            failed: refused by the server earlier; "
                         + ("sent again now (--retry-failed)" if plan.retry_failed else
                            "sent again only with --retry-failed (after fixing the cause)"))
    lines.append(f"To send:    {len(plan.recipients):,}")
    if plan.errors and plan.ignore_check_errors and not plan.test and not plan.outbox:
        lines.append("Check:      ERRORS IGNORED (--ignore-check-errors): this is recorded in the journal")
    if plan.outbox:
        lines.append(f"Mode:       nothing is sent; a sample (the first {min(len(plan.recipients), OUTBOX_SAMPLE)} "
                     f"of these, at most {OUTBOX_SAMPLE}) is written to {display_dir(plan.folder / OUTBOX)}")
    else:
        limiter = RateLimiter(s.send_rate)
        rate = f"{s.send_rate} per minute" if s.send_rate else "no rate limit"
        lines.append(f"Server:     {s.smtp_host}:{s.smtp_port} ({s.smtp_security})"
                     + (f" as {s.smtp_username}" if s.smtp_username else ""))
        lines.append(f"Rate:       {rate}, {count(s.send_connections, 'connection')}; "
                     f"{duration(limiter.seconds_for(len(plan.recipients)))}")
    if not plan.test:
        lines.append(f"Build:      {plan.fingerprint}, test-sent {plan.tested}" if plan.tested else
                     f"Build:      {never_tested(plan.fingerprint, short=True)}")
    return lines
