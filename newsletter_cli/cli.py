"""The command line: a thin click layer over the library. Heavy modules are imported per command.

One file by design, over the ~400-line guide: it is the click layer that holds every command, and keeping all
printing and prompting here keeps click out of the packages below.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from newsletter_cli.words import count

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from click._termui_impl import ProgressBar

    from newsletter_cli.account.oauth import SignIn
    from newsletter_cli.deliver.plan import Plan
    from newsletter_cli.deliver.request import Tuning
    from newsletter_cli.deliver.workers import Progress
    from newsletter_cli.errors import Diagnostic
    from newsletter_cli.project import Project
    from newsletter_cli.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsletter", prog_name="newsletter")  # read only for --version
def cli() -> None:
    """Compose, preview, check and send the association's email newsletter.

    Run the commands from the project folder (the one with editions/; `newsletter init FOLDER` makes one).
    Typical month:

    \b
      newsletter new 2025-10 --from 2025-09   start from last month
      newsletter build 2025-10                render HTML and text
      newsletter preview 2025-10              look at it in the browser
      newsletter check 2025-10                find broken links, size, ...
      newsletter send 2025-10 --test          send to the review list
      newsletter send 2025-10 --recipients leden.csv
    """


def project() -> Project:
    """The project in the current folder, made once per run and handed to the library (settings load lazily)."""
    root = click.get_current_context().find_root()
    if root.obj is None:
        from newsletter_cli.project import Project

        root.obj = Project.here()
    made: Project = root.obj
    return made


def print_warnings(warnings: Iterable[str]) -> None:
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


def settings_of(current: Project) -> Settings:
    """The validated settings, their warnings (e.g. a .env readable by others) printed once."""
    settings = current.settings
    print_warnings(current.warnings)
    return settings


def _seconds_from_env(name: str, default: float) -> float:
    """An environment-only knob in seconds (NEWSLETTER_DNS_TIMEOUT; tests make it short): read here, at the edge,
    and passed on, so that the library reads no environment. A value that is not a number is the default."""
    import os

    try:
        return max(0.1, float(os.environ.get(name, "") or default))
    except ValueError:
        return default


def sign_in(settings: Settings) -> SignIn:
    """This command's one sign-in session (Microsoft 365, or SMTP_OAUTH_TOKEN_COMMAND with its time limit from
    NEWSLETTER_TOKEN_COMMAND_TIMEOUT, which tests shorten), handed to every connection the command makes."""
    from newsletter_cli.account.oauth import SignIn
    from newsletter_cli.account.tokens import COMMAND_TIMEOUT

    return SignIn(settings, _seconds_from_env("NEWSLETTER_TOKEN_COMMAND_TIMEOUT", COMMAND_TIMEOUT))


def print_findings(findings: list[Diagnostic]) -> None:
    """Each finding as `error: ...` / `warning: ...` in colour."""
    for finding in findings:
        click.secho(f"{finding.severity}: {finding}", fg="red" if finding.severity == "error" else "yellow")


@cli.command()
@click.argument("edition", required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the files here instead of editions/<id>/build/.")
def build(edition: str | None, out_dir: Path | None) -> None:
    """Render an edition to email.html, email.txt, email.mjml and web.html.

    EDITION is an edition id (2025-09), its folder or its edition.yaml; without it, the newest edition.
    Prints a summary: items, links, images and the size as sent against Gmail's clipping limit.
    """
    from newsletter_cli.compose.build import OUTPUT_FILES
    from newsletter_cli.compose.build import build as run_build
    from newsletter_cli.compose.render import GMAIL_CLIP_BYTES
    from newsletter_cli.project import display

    here = project()
    result = run_build(here.resolve(edition), out_dir, project=here)
    r = result.rendered
    size_kb = r.html_bytes_qp / 1000
    verdict = "OK" if r.html_bytes_qp < GMAIL_CLIP_BYTES else "TOO BIG: Gmail will clip it"
    click.echo(f"Built {result.loaded.display_path} in {r.seconds:.2f} s")
    click.echo(f"  {count(r.items, 'item')}, {count(r.links, 'link')}, {count(r.images, 'image')}")
    click.echo(f"  HTML {size_kb:.1f} KB as sent (quoted-printable); Gmail clips at "
               f"{GMAIL_CLIP_BYTES / 1000:.0f} KB: {verdict}")
    for image in result.images:
        click.echo(f"  {image}")
    click.echo(f"  Output: {display(result.out_dir / OUTPUT_FILES[0])}, email.txt, email.mjml, web.html")
    from newsletter_cli.check.content import run_checks, summary

    findings = run_checks(result, project=here)  # offline checks only: fast
    print_findings(findings)
    click.echo(f"Check: {summary(findings)}")


def _can_ask() -> bool:
    """Whether there is someone at a terminal to answer questions."""
    import sys

    return sys.stdin.isatty()


def _starter_check(name: str) -> Callable[..., Any]:
    """A click callback / prompt check from one of starter's checks (its ValueError becomes a usage error)."""
    def check(value: Any, *_context: Any) -> Any:
        value = _context[-1] if _context else value  # as an option callback: (ctx, param, value)
        if not value:
            return value
        from newsletter_cli.compose import starter

        try:
            return getattr(starter, name)(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return check


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The association's name, e.g. 'Vereniging Zuid-Hollandse Gemeenten'.")
@click.option("--short-name", help="Its abbreviation (default: the initials of --name).")
@click.option("--website", callback=_starter_check("check_website"), help="Its website, https://...")
@click.option("--address", help="Postal address for the footer, on one line.")
@click.option("--primary", metavar="#RRGGBB", callback=_starter_check("check_colour"),
              help="Main colour (headings, buttons).")
@click.option("--accent", metavar="#RRGGBB", callback=_starter_check("check_colour"), help="Second colour.")
@click.option("--logo", metavar="FILE", callback=_starter_check("check_logo"),
              help="Logo (PNG or JPEG), copied into the project.")
def init(folder: Path, name: str | None, short_name: str | None, website: str | None, address: str | None,
         primary: str | None, accent: str | None, logo: Path | None) -> None:
    """Create a project folder: editions/ with this month's edition, templates/, theme.yaml, example settings.

    Asks for the house style (name, website, postal address, colours, logo); give them as options to run
    without questions.
    """
    from newsletter_cli.compose import starter
    from newsletter_cli.project import display

    missing = [flag for flag, value in (("--name", name), ("--website", website), ("--address", address)) if not value]
    if missing and not _can_ask():
        raise click.UsageError(f"No terminal to ask for the house style: give {', '.join(missing)} (and optionally "
                               "--short-name, --primary, --accent, --logo).")
    if missing:
        click.echo("The house style of the emails (it goes into theme.yaml; you can change it there later):")
        name = name or click.prompt("Name of the association")
        short_name = short_name or click.prompt("Short name", default=starter.short_name(name))
        website = website or click.prompt("Website (https://...)", value_proc=_starter_check("check_website"))
        address = address or click.prompt("Postal address (one line)")
        colour = _starter_check("check_colour")
        primary = primary or click.prompt("Main colour", default=starter.HouseStyle.primary, value_proc=colour)
        accent = accent or click.prompt("Second colour", default=starter.HouseStyle.accent, value_proc=colour)
        if logo is None:
            logo = click.prompt("Logo file (PNG or JPEG; empty for none)", default="",
                                value_proc=_starter_check("check_logo")) or None
    if not (name and website and address):  # answered above; this is for the type checker
        raise click.UsageError("Give --name, --website and --address.")
    style = starter.HouseStyle(name=name, short_name=short_name or starter.short_name(name), website=website,
                               address=address, primary=primary or starter.HouseStyle.primary,
                               accent=accent or starter.HouseStyle.accent, logo=logo)
    written = starter.create(folder, style)
    click.echo(f"Created the project {display(folder)}:")
    for path in written:
        click.echo(f"  {display(path)}")
    from newsletter_cli.check.location import location_warnings

    print_warnings(location_warnings(folder))
    click.echo(f"Next: cd {display(folder)}  and  newsletter preview  (this month's edition is ready to fill in)")


@cli.group(invoke_without_command=True)
@click.pass_context
def templates(ctx: click.Context) -> None:
    """List the email's templates and which ones this project changes (its own copy in templates/).

    Every template the project has no copy of comes from the program, so an upgrade improves it. To change
    one, copy it first: newsletter templates copy partials/footer.mjml.j2
    """
    if ctx.invoked_subcommand is not None:
        return
    from newsletter_cli.compose.overrides import templates as listing
    from newsletter_cli.project import display, display_dir

    here = project()
    found = listing(here.templates_dir)
    width = max(len(t.name) for t in found)
    click.echo(f"The email's templates (the project's own copies are in {display_dir(here.templates_dir)}):")
    for template in found:
        colour = "yellow" if template.outdated else None
        click.secho(f"  {template.name:<{width}}  {template.state}", fg=colour)
    own = [t for t in found if t.copy is not None]
    if own:
        click.echo(f"The project has its own copy of {count(len(own), 'template')}; delete one in "
                   f"{display_dir(here.templates_dir)} to use the program's again.")
    else:
        click.echo("The project uses the program's templates only.")
    for template in found:
        if template.outdated and template.copy is not None:
            print_warnings([f"{display(template.copy)}: {template.outdated}"])


@templates.command("copy", short_help="Copy one of the program's templates into templates/ to change it.")
@click.argument("name")
def templates_copy(name: str) -> None:
    """Copy one of the program's templates (NAME, e.g. partials/footer.mjml.j2) into templates/ to change it."""
    from newsletter_cli.compose.overrides import copy, includes_from_program
    from newsletter_cli.project import display

    here = project()
    target = copy(here.templates_dir, name)
    click.echo(f"Copied to {display(target)}: change it there; `newsletter preview` shows each change. Delete it "
               "to go back to the program's template.")
    if included := includes_from_program(here.templates_dir, name):
        click.echo(f"It includes {', '.join(included)} from the program (they keep getting its updates); copy one "
                   "of them too if your change must go together with it (e.g. new colour classes in "
                   "partials/dark.css.j2).")
    click.echo("Its first line records which version it was copied from: `newsletter build` says when the "
               "program's own template changes after an upgrade.")


@templates.command("show")
@click.argument("name")
def templates_show(name: str) -> None:
    """Print the program's own version of a template (to compare with the project's copy)."""
    from newsletter_cli.compose.overrides import program_text

    click.echo(program_text(name), nl=False)


@cli.command(short_help="Start a new edition from the structure of an earlier one.")
@click.argument("edition_id")
@click.option("--from", "source", metavar="EDITION", help="Copy the structure of this edition (default: the newest).")
def new(edition_id: str, source: str | None) -> None:
    """Start a new edition (ID is the year and month, e.g. 2025-10) from the structure of an earlier one.

    Copies the sections, intro heading and the agenda rows that are still ahead, with placeholder items.
    The date falls on the same weekday and week of the month as the earlier edition's (it is printed).
    """
    from newsletter_cli.compose.new import create
    from newsletter_cli.project import display

    made = create(edition_id, source, project())
    click.echo(f"Created {display(made.path)}")
    click.echo(f"Date: {made.date.isoformat()}, {made.date_reason}")
    click.echo(f"Edit it, then run: newsletter preview {edition_id}")
    click.echo(f"To reuse a photo, copy it into {display(made.path.parent / 'images')}. Copy nothing else from an "
               "earlier edition's folder (never journal.sqlite, build/ or outbox/: the journal records who got "
               "that edition).")


@cli.command()
@click.argument("edition", required=False)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on (only this computer by default).")
@click.option("--no-open", is_flag=True, help="Do not open the browser.")
def preview(edition: str | None, port: int, host: str, no_open: bool) -> None:
    """Show an edition in the browser at desktop and phone width; reloads on every save. Ctrl-C stops."""
    from newsletter_cli.web.preview import serve

    here = project()
    serve(here.resolve(edition), here, click.echo, host=host, port=port, open_browser=not no_open)


@cli.command()
@click.option("--out", "out_dir", default="site", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the site into.")
@click.option("--all", "include_future", is_flag=True, help="Also include editions dated after today (drafts).")
def archive(out_dir: Path, include_future: bool) -> None:
    """Write a static website with every edition (newest first), ready to publish at ARCHIVE_BASE_URL."""
    from newsletter_cli.web.archive import build_archive, report

    here = project()
    for line in report(build_archive(out_dir, here, include_future=include_future), here):
        click.echo(line)


@cli.command()
@click.argument("edition", required=False)
@click.option("--strict", is_flag=True, help="Warnings also give exit status 1.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for scripts).")
@click.option("--online", is_flag=True, help="Also fetch every link (needs the internet).")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for each website with --online.")
def check(edition: str | None, strict: bool, as_json: bool, online: bool, timeout: float) -> None:
    """Check an edition before sending: size, links, images, content, accessibility, spam signals.

    Exit status 1 when there is an error (or, with --strict, a warning). Nothing is written or sent.
    """
    from newsletter_cli.check.content import (
        check_edition,
        counts,
        findings_json,
        summary,
        verdict,
    )
    from newsletter_cli.errors import EditionError
    from newsletter_cli.project import display

    here = project()
    path = here.resolve(edition)
    try:
        shown, findings = check_edition(path, project=here, online=online, timeout=timeout)
    except EditionError as exc:
        if not as_json or not exc.problems:
            raise
        click.echo(findings_json(display(path), exc.problems))
        raise SystemExit(exc.exit_code) from None
    errors, warnings = counts(findings)
    if as_json:
        click.echo(findings_json(shown, findings))
    else:
        print_findings(findings)
        click.echo(f"Checked {shown}{' with --online' if online else ''}: {summary(findings)}: {verdict(findings)}")
    click.get_current_context().exit(1 if errors or (strict and warnings) else 0)


class _SendProgress:
    """A progress bar on stderr (sent, failed, time left), fed from the sending threads."""

    def __init__(self) -> None:
        import threading

        self.bar: ProgressBar[str | None] | None = None
        self.lock = threading.Lock()

    def __call__(self, p: Progress) -> None:
        import sys

        with self.lock:
            if self.bar is None:
                self.bar = click.progressbar(length=p.total, label="Sending", file=sys.stderr,
                                             show_eta=True, show_pos=True, item_show_func=lambda s: s)
                self.bar.__enter__()
            self.bar.update(1, f"sent {p.sent}, failed {p.failed}, deferred {p.deferred}, uncertain {p.uncertain}")

    def close(self) -> None:
        if self.bar is not None:
            try:
                self.bar.__exit__(None, None, None)
            except Exception:  # only a display: the send's outcome is printed next, whatever happens here
                pass


def send_tuning() -> Tuning:
    """The send's delays and where its shared rate limiter keeps its state: the defaults, unless the environment
    sets NEWSLETTER_RETRY_DELAYS, NEWSLETTER_RECONNECT_DELAYS (e.g. 0,0 for a test server) or
    NEWSLETTER_STATE_DIR. Read here, at the edge, so that the library never reads the environment itself."""
    import os

    from newsletter_cli.deliver.request import RECONNECT_DELAYS, RETRY_DELAYS, Tuning, parse_delays

    env = os.environ
    state = env.get("NEWSLETTER_STATE_DIR", "").strip()
    return Tuning(retry_delays=parse_delays("NEWSLETTER_RETRY_DELAYS", env.get("NEWSLETTER_RETRY_DELAYS", ""),
                                            RETRY_DELAYS),
                  reconnect_delays=parse_delays("NEWSLETTER_RECONNECT_DELAYS",
                                                env.get("NEWSLETTER_RECONNECT_DELAYS", ""), RECONNECT_DELAYS),
                  state_dir=Path(state) if state else None)


def _confirm_send(yes: bool) -> Callable[[Plan], bool]:
    """Print the summary; ask before a real send (refuse without a terminal unless --yes)."""
    import sys

    from newsletter_cli.deliver.plan import summary
    from newsletter_cli.errors import NewsletterError

    def confirm(plan: Plan) -> bool:
        click.echo("\n".join(summary(plan)))
        print_warnings(plan.warnings)
        for line in plan.errors:
            click.secho(("ERROR: " if not line.startswith(" ") else "") + line, fg="red", err=True)
        if yes or plan.outbox or plan.test or not plan.recipients or (plan.errors and not plan.ignore_check_errors):
            return True
        if not sys.stdin.isatty():
            raise NewsletterError("Not sending: there is no terminal to ask for confirmation. Add --yes to send "
                                  "from a script.")
        return click.confirm(f"Send to {count(len(plan.recipients), 'recipient')} now?", default=False)

    return confirm


@cli.command()
@click.argument("edition")
@click.option("--test", is_flag=True, help="Send to the review list (REVIEW_LIST, or --to), subject starting [TEST].")
@click.option("--to", multiple=True, metavar="ADDR", help="With --test: send to this address (repeatable).")
@click.option("--recipients", type=click.Path(dir_okay=False, path_type=Path),
              help="The recipient list (.xlsx, or CSV from Excel).")
@click.option("--sheet", metavar="NAME", help="With an .xlsx list: the sheet to read (default: the first).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option("--dry-run", is_flag=True,
              help="Send nothing: write a sample (the first 100 messages at most) to editions/<id>/outbox/. "
              "Skips those already sent, as the real send would.")
@click.option("--limit", type=click.IntRange(min=1), help="Send only to the first N not sent yet.")
@click.option("--resend-uncertain", is_flag=True,
              help="Also send to the uncertain ones (their reply was lost; they may get it twice).")
@click.option("--retry-failed", is_flag=True,
              help="Also send to those the server refused before (fix the cause first).")
@click.option("--ignore-check-errors", is_flag=True,
              help="Send although `newsletter check` finds errors (recorded in the journal).")
def send(edition: str, test: bool, to: tuple[str, ...], recipients: Path | None, sheet: str | None, yes: bool,
         dry_run: bool, limit: int | None, resend_uncertain: bool, retry_failed: bool,
         ignore_check_errors: bool) -> None:
    """Send an edition: a test to the review list, or the real send to a recipient list (resumable).

    Settings come from .env in this folder (see .env.example). Without SMTP_HOST nothing is sent: a sample of
    the messages is written to editions/<id>/outbox/. Running the same command again goes on where it stopped:
    those already sent are skipped. Errors from `newsletter check` stop a real send.

    \b
    After a send, `newsletter status EDITION` lists who was not sent:
      deferred   the server said "try later": run the same command again later
      failed     the server refused: fix the cause, then add --retry-failed
      uncertain  the message went out but the reply was lost: they may have it;
                 add --resend-uncertain only if you accept a possible second copy

    Ctrl+C (or the window closing) stops after the messages in progress; Ctrl+C twice stops at once.
    """
    from dataclasses import replace
    from functools import partial

    from newsletter_cli.deliver.plan import plan
    from newsletter_cli.deliver.request import MemberList, ReviewList, SendRequest
    from newsletter_cli.deliver.send import result_lines, send_journal
    from newsletter_cli.deliver.send import send as run
    from newsletter_cli.deliver.smtp import Connection
    from newsletter_cli.deliver.workers import Hooks

    if test == bool(recipients) or (to and not test):
        raise click.UsageError("Give either --test [--to ADDR ...] or --recipients FILE.")
    who = ReviewList(tuple(to)) if test or recipients is None else MemberList(recipients, sheet)
    request = SendRequest(edition, who, dry_run=dry_run, limit=limit, resend_uncertain=resend_uncertain,
                          retry_failed=retry_failed, ignore_check_errors=ignore_check_errors)
    here = project()
    settings = settings_of(here)  # validated, its warnings printed once
    connect = partial(Connection, token=sign_in(settings).smtp_token)  # one sign-in for all of this send's connections
    progress = _SendProgress()
    hooks = Hooks(confirm=_confirm_send(yes), progress=progress, notify=lambda text: click.echo(text, err=True))
    try:
        with send_journal(request, here) as journal:
            result = run(plan(request, here, journal), journal, hooks, replace(send_tuning(), connect=connect))
    finally:
        progress.close()
    click.echo("\n".join(result_lines(result)))
    if result.stopped or result.deferred or result.failed or result.uncertain:
        raise SystemExit(1)


@cli.command()
@click.argument("edition", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (for scripts).")
def status(edition: str | None, as_json: bool) -> None:
    """Show who got an edition, and each failed, deferred or uncertain address with the reason."""
    import json

    from newsletter_cli.mailbox.record import status_lines as mailbox_lines
    from newsletter_cli.mailbox.record import status_report as mailbox_report
    from newsletter_cli.members.status import status as journal_status
    from newsletter_cli.members.status import status_lines

    here = project()
    folder = here.resolve(edition).parent
    report = journal_status(folder)
    mailbox = mailbox_report(folder.name, here)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "mailbox": mailbox.to_json()}, indent=2))
        return
    extra = mailbox_lines(mailbox) if report.total else []  # bounces once something was sent
    click.echo("\n".join(status_lines(report) + extra))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing (mailbox and files).")
def mailbox(dry_run: bool) -> None:
    """Read bounces, complaints and unsubscribe requests from the mailbox into suppressions.csv.

    Run it a day after each send. Only reports that prove themselves count (they name a message we sent, to
    that address). Verified unsubscribes, dead addresses and spam complaints are added to suppressions.csv
    (soft bounces on three editions in a row too); refusals of our sending are reported per domain and never
    suppress. Handled messages, auto-replies and delivery reports are moved to IMAP_PROCESSED_FOLDER
    ('Nieuwsbrief verwerkt'), never deleted; unreadable ones to IMAP_UNREADABLE_FOLDER. Messages a person
    must read are listed once and left where they are.
    """
    from newsletter_cli.mailbox.output import report_lines
    from newsletter_cli.mailbox.run import run

    here = project()
    settings = settings_of(here)
    click.echo("\n".join(report_lines(run(settings, here, dry_run=dry_run, token=sign_in(settings).imap_token))))


@cli.command()
@click.argument("address")
@click.option("--reason", default="requested", show_default=True,
              help="Why: requested (asked by phone or letter), unsubscribed, bounced, complaint, or your own word.")
@click.option("--detail", default="", help="A note for later, e.g. 'phoned 3 October'.")
def suppress(address: str, reason: str, detail: str) -> None:
    """Never send to ADDRESS again: add it to suppressions.csv."""
    from newsletter_cli.members import suppressions
    from newsletter_cli.project import display

    path = suppressions.default_path(project())
    entry = suppressions.Suppression(suppressions.check_address(address), reason.strip() or "requested",
                                     detail=detail)
    if suppressions.add(path, [entry]):
        click.echo(f"Added {entry.email} to {display(path)} (reason: {entry.reason}).")
    else:
        click.echo(f"{entry.email} is already in {display(path)}; nothing changed.")


@cli.command(short_help="Send to ADDRESS again: take it off suppressions.csv.")
@click.argument("address")
def unsuppress(address: str) -> None:
    """Send to ADDRESS again: take it off suppressions.csv (e.g. removed by mistake)."""
    from newsletter_cli.errors import InputError
    from newsletter_cli.members import suppressions
    from newsletter_cli.project import display

    path = suppressions.default_path(project())
    gone = suppressions.remove(path, address)
    if gone is None:
        raise InputError(f"{address} is not in {display(path)}; nothing changed.")
    click.echo(f"Removed {gone.email} from {display(path)} (it was there since {gone.date or 'unknown'}, reason: "
               f"{gone.reason or 'none'}). The next send includes it again if it is in the recipient list.")


@cli.command()
@click.option("--no-dns", is_flag=True, help="Skip the checks of the sending domain's DNS (SPF, DKIM, DMARC, MX).")
@click.option("--send-test", is_flag=True,
              help="Also send one test message from NEWSLETTER_FROM to the sending mailbox itself: a server that "
                   "refuses the sender only after the message (Microsoft 365 without Send As) shows now.")
def doctor(no_dns: bool, send_test: bool) -> None:
    """Test the settings before a real send: every "ok" is tested, nothing is assumed.

    \b
    - Where the project folder is: a warning when it is synced to the cloud or on a network drive.
    - SMTP: connect, TLS, sign in (a new token from Microsoft 365, not the cached one), the sender;
      nothing is sent unless --send-test.
    - IMAP (when IMAP_HOST is set): sign in, open the folder, and whether unsubscribe mails reach it.
    - DNS of the sending domain: SPF, DKIM, DMARC, MX.
    Exit status 1 when something failed or could not be tested (e.g. no DNS answer).
    """
    from newsletter_cli.account.domain import DNS_TIMEOUT
    from newsletter_cli.check.location import location_warnings
    from newsletter_cli.doctor.smtp import doctor as run_doctor

    for text in location_warnings(project().root):  # first: it matters even when .env cannot be read
        click.secho(f"WARN    {text}", fg="yellow")
    settings = settings_of(project())
    checks = run_doctor(settings, sign_in(settings), dns=not no_dns, send_test=send_test,
                        dns_timeout=_seconds_from_env("NEWSLETTER_DNS_TIMEOUT", DNS_TIMEOUT))
    for check in checks:
        label, colour = ("WARN  ", "yellow") if check.warning else ("ok    ", None) if check.ok else ("FAILED", "red")
        click.secho(f"{label}  {check.text}", fg=colour)
    if not all(check.ok for check in checks):
        raise SystemExit(1)


@cli.command()
@click.option("--status", "show_status", is_flag=True, help="Say who is signed in and until when; change nothing.")
def login(show_status: bool) -> None:
    """Sign the sending mailbox in to Microsoft 365, once; later sends renew the sign-in by themselves.

    Needs SMTP_AUTH=oauth, OAUTH_CLIENT_ID and OAUTH_TENANT in .env (see the README, Microsoft 365).
    What happens:

    \b
    1. newsletter prints a web address (https://microsoft.com/devicelogin) and a short code.
    2. Open that address in any browser, on this computer or another device (a phone will do).
    3. Type the code, then sign in as the sending mailbox (SMTP_USERNAME) with its password
       (and its second factor, if it has one); allow the app when Microsoft asks.
    4. Back here, newsletter says "Signed in as ..." and keeps the sign-in in a file only you can
       read (encrypted where the computer offers a keystore). No password is stored.
    The code works for 15 minutes. `newsletter login --status` tests the sign-in; `newsletter logout`
    removes it (even a damaged one).
    """
    import datetime as dt

    from newsletter_cli.account import oauth

    settings = settings_of(project())
    session = sign_in(settings)

    def day(when: float | None) -> str:
        return dt.datetime.fromtimestamp(when).strftime("%d-%m-%Y") if when else "an unknown date"

    if show_status:
        if settings.unattended:
            click.echo("The application signs in by itself (OAUTH_CLIENT_SECRET or OAUTH_CERTIFICATE); "
                       "`newsletter doctor` tests it.")
            return
        signed_in = session.status()
        if not signed_in:
            click.echo(f"Nobody is signed in. Run `newsletter login` (signed in as {settings.mailbox}).")
            raise SystemExit(1)
        session.access_token(fresh=True)  # asks the sign-in server: a revoked sign-in shows now
        signed_in = session.status()  # renewed just now
        for who in signed_in:
            click.echo(f"Signed in as {who.username} (renewed {day(who.renewed)}; the sign-in server accepted it "
                       f"just now); every send renews it. It keeps working until about {day(who.expected_until)} "
                       "if nothing is sent before then, unless the password changes or an administrator revokes it.")
        click.echo(session.cache_info().how)
        return
    scopes = (oauth.SMTP_SCOPE, oauth.IMAP_SCOPE) if settings.imap_host else (oauth.SMTP_SCOPE,)  # mailbox reads
    device = session.start_login(scopes)
    click.echo(f"Open {device.url} in a browser and enter code {device.code}; sign in as {settings.mailbox}.")
    click.echo("Waiting for the sign-in (Ctrl+C stops)...")
    who = session.finish_login(device)
    click.echo(f"Signed in as {who.username}. Sends from now on use this sign-in; try `newsletter doctor`.")
    if settings.smtp_auth != "oauth":
        click.secho("warning: SMTP_AUTH is password, so sends still log in with SMTP_PASSWORD: set SMTP_AUTH=oauth "
                    "in .env to use this sign-in.", fg="yellow", err=True)
    if who.username.lower() != settings.mailbox.lower():
        click.secho(f"warning: you signed in as {who.username}, but the messages are sent from the mailbox "
                    f"{settings.mailbox}: that only works if {who.username} has Full Access to it. Run "
                    f"`newsletter login` again to sign in as {settings.mailbox}.", fg="yellow", err=True)
    click.echo(session.cache_info().how)


@cli.command()
def logout() -> None:
    """Remove the Microsoft 365 sign-in from this computer (run `newsletter login` to sign in again)."""

    session = sign_in(settings_of(project()))
    out = session.logout()
    where = session.location
    if out.damaged:
        click.echo(f"The sign-in kept in {where} could not be used: {out.damaged}. It is removed.")
    else:
        click.echo(f"Signed out: {', '.join(out.removed)}." if out.removed else "Nobody was signed in.")
    if out.left:
        from newsletter_cli.errors import NewsletterError

        raise NewsletterError(f"Could not remove {'; '.join(out.left)}: remove it as the user who owns it (made "
                              f"with `sudo newsletter login`? then: sudo rm -r {where}), then run `newsletter login`.")
    if out.damaged:
        click.echo("Run `newsletter login` to sign in again.")


@cli.command()
@click.option("--path", "show_path", is_flag=True, help="Only print where the handbook (Markdown) is.")
@click.option("--no-open", is_flag=True, help="Write the web page and print where it is; do not open the browser.")
def handbook(show_path: bool, no_open: bool) -> None:
    """Open the handbook for the secretariat (in Dutch) in the browser; it comes with the program."""
    from newsletter_cli.web.handbook import handbook_file, write_html

    if show_path:
        click.echo(str(handbook_file()))
        return
    from platformdirs import user_cache_path

    page = write_html(user_cache_path("newsletter", appauthor=False) / "handbook")
    click.echo(f"The handbook: {page}")
    if not no_open:
        import webbrowser

        from newsletter_cli.web.preview import _can_open_browser

        if not (_can_open_browser() and webbrowser.open(page.as_uri())):
            click.echo("Open that file in your browser (no browser could be started from here).")


@cli.group()
def recipients() -> None:
    """Recipient lists: an Excel workbook (.xlsx) or CSV (UTF-8 or Windows-1252, ; or ,) with an email column."""


@recipients.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sheet", metavar="NAME", help="With an .xlsx list: the sheet to read (default: the first).")
def recipients_check(file: Path, sheet: str | None) -> None:
    """Validate a recipient list without sending: bad rows, duplicates (which row repeats which), suppressed."""
    from newsletter_cli.errors import InputError
    from newsletter_cli.members.recipients import check_lines, read_recipients

    result = read_recipients(file, project=project(), sheet=sheet)
    click.echo("\n".join(check_lines(result)))
    if result.problems:
        one = len(result.problems) == 1
        raise InputError(f"{count(len(result.problems), 'invalid row')} in {file}; {'it' if one else 'they'} would "
                         f"be skipped. Fix {'it' if one else 'them'} or remove {'it' if one else 'them'}.")


def main() -> None:
    """The `newsletter` command. After a success, once the output is flushed, the process ends at once: the
    interpreter's teardown (a garbage collection over every module a command imported) does nothing for the
    user. Everything is written and closed by then; a failure exits the normal way."""
    import os
    import signal
    import sys

    if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl-Break in the console stops a command as Ctrl-C does
        signal.signal(signal.SIGBREAK, signal.default_int_handler)
    for stream in (sys.stdout, sys.stderr):  # a Windows code page (cp1252) lacks 👉: show "?", not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    try:
        cli.main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe (newsletter status | head): let Python report it
            raise exc from None
        os._exit(0)
