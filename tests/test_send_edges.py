"""Sending edges a secretariat runs into (issue 20): a folder copied from last month, a dry run that honours the
journal and fails plainly on a full disk, a display that fails mid-send, a Windows console closed mid-send.

All against the real SMTP server (tests/smtp_server.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_send import REPO, addresses, journal_states, send, settings_for, write_env, write_list

from newsletter_cli.cli import cli
from newsletter_cli.deliver.plan import plan
from newsletter_cli.deliver.ratelimit import shared_limiter
from newsletter_cli.deliver.request import MemberList, SendRequest, Tuning
from newsletter_cli.deliver.send import result_lines, run_send, send_journal
from newsletter_cli.deliver.smtp import Connection
from newsletter_cli.deliver.workers import (
    CONSOLE_EVENTS,
    CTRL_CLOSE_EVENT,
    CTRL_LOGOFF_EVENT,
    CTRL_SHUTDOWN_EVENT,
    Sender,
)
from newsletter_cli.members.journal import Journal
from newsletter_cli.project import Project

from helpers import COMMAND, assert_no_traceback, clean_env
from smtp_server import SmtpServer


def journal_of(project: Path, edition: str = "2025-09") -> Path:
    return project / "editions" / edition / "journal.sqlite"


def test_a_folder_copied_from_last_month_is_refused_with_the_way_out(project):
    write_list(project, addresses(3))
    with SmtpServer() as server:
        write_env(project, server)
        first = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert first.exit_code == 0, first.output
        assert len(server.received) == 3
        with Journal(journal_of(project)) as journal:
            assert journal.meta("edition") == "2025-09"
            assert journal.meta("folder") == str((project / "editions" / "2025-09").resolve())
        # What a Windows user does in Explorer instead of `newsletter new 2025-10`.
        shutil.copytree(project / "editions" / "2025-09", project / "editions" / "2025-10")
        for args in (["send", "2025-10", "--recipients", "leden.csv", "--yes"],
                     ["send", "2025-10", "--recipients", "leden.csv", "--dry-run"], ["status", "2025-10"]):
            result = CliRunner().invoke(cli, args)
            assert_no_traceback(result)
            assert result.exit_code == 1, result.output
            assert "this send journal belongs to edition 2025-09" in result.output, result.output
            assert "not to 2025-10" in result.output and "delete (or rename) journal.sqlite" in result.output
            assert "newsletter new 2025-10" in result.output
        assert len(server.received) == 3  # nothing more was sent
        journal_of(project, "2025-10").rename(project / "editions" / "2025-10" / "journal-2025-09.sqlite")
        for suffix in ("-wal", "-shm"):
            Path(f"{journal_of(project, '2025-10')}{suffix}").unlink(missing_ok=True)
        again = CliRunner().invoke(cli, ["send", "2025-10", "--recipients", "leden.csv", "--yes"])
        assert again.exit_code == 0, again.output
        assert len(server.received) == 6  # the way out works: everyone gets 2025-10


def test_an_old_journal_without_its_edition_adopts_the_one_it_is_in_once(project):
    write_list(project, addresses(2))
    with SmtpServer() as server:
        result = send(project, server, limit=1)
        assert result.sent == 1
        with Journal(journal_of(project)) as journal, journal._tx() as db:  # as before journals knew their edition
            db.execute("DELETE FROM meta WHERE key IN ('edition', 'folder')")
        rest = send(project, server)
        assert (rest.sent, rest.plan.already_sent) == (1, 1)
        with Journal(journal_of(project)) as journal:
            assert journal.meta("edition") == "2025-09"


def test_dry_run_skips_those_already_sent_as_the_real_send_would_and_says_it_writes_a_sample(project):
    emails = addresses(4)
    write_list(project, emails)
    with SmtpServer() as server:
        write_env(project, server)
        first = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes", "--limit", "2"])
        assert first.exit_code == 0, first.output
        with Journal(journal_of(project)) as journal:
            before = journal.states()
        dry = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "2 already sent (skipped)" in dry.output and "To send:    2" in dry.output
        assert "a sample (the first 2 of these, at most 100)" in dry.output
        assert "NOTHING WAS SENT (--dry-run): 2 messages written" in dry.output
        names = sorted(p.name for p in (project / "editions" / "2025-09" / "outbox").glob("*.eml"))
        assert [n.split("-", 1)[1] for n in names] == [f"{e}.eml" for e in emails[2:]]
        with Journal(journal_of(project)) as journal:
            assert journal.states() == before  # the real journal is not touched
        assert len(server.received) == 2
    help_text = CliRunner().invoke(cli, ["send", "--help"]).output
    assert "sample (the first 100 messages at most)" in " ".join(help_text.split())


def test_dry_run_with_a_file_where_the_outbox_should_be_is_a_plain_message(project):
    write_list(project, addresses(2))
    (project / ".env").write_text("NEWSLETTER_FROM=nb@vzhg.nl\n")
    (project / "editions" / "2025-09" / "outbox").write_text("not a folder")
    result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"])
    assert_no_traceback(result)
    assert result.exit_code != 0
    assert "cannot write the sample messages of the dry run" in result.output
    assert "there is a file named outbox where its folder should be" in result.output


def _can_mount_tmpfs(tmp: Path) -> bool:
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=16k tmpfs '{tmp}'"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_dry_run_on_a_full_disk_is_a_plain_message(project, tmp_path_factory):
    """A real ENOSPC: the outbox is a 16 KB tmpfs, mounted in a user namespace of its own (no root needed)."""
    if not _can_mount_tmpfs(tmp_path_factory.mktemp("probe")):
        pytest.skip("no unprivileged user namespaces here to mount a tiny tmpfs")
    write_list(project, addresses(3))
    (project / ".env").write_text("NEWSLETTER_FROM=nb@vzhg.nl\n")
    outbox = project / "editions" / "2025-09" / "outbox"
    outbox.mkdir()
    command = " ".join(f"'{part}'" for part in COMMAND)
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           f"mount -t tmpfs -o size=16k tmpfs '{outbox}' && exec {command} send 2025-09 "
                           "--recipients leden.csv --dry-run"],
                          cwd=project, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot write the sample messages of the dry run (the disk is full: free some space)" in done.stderr


def test_a_display_that_fails_does_not_stop_the_send(project):
    def broken_progress(_progress: object) -> None:
        raise UnicodeEncodeError("cp1252", "\u2588", 0, 1, "character maps to <undefined>")

    write_list(project, addresses(5))
    with SmtpServer() as server:
        result = send(project, server, progress=broken_progress)
        assert (result.sent, result.stopped) == (5, None)
        assert len(server.received) == 5
    assert result.notes == ["the display failed (UnicodeEncodeError: 'cp1252' codec can't encode character "
                            "'\\u2588' in position 0: character maps to <undefined>); the send went on"]


def planned_sender(project: Path, server: SmtpServer) -> tuple[Journal, Sender]:
    """A Sender for leden.csv against `server`, driven by the test itself (its thread, its stop)."""
    settings = settings_for(server)
    journal = Journal(journal_of(project))
    planned = plan(SendRequest("2025-09", MemberList(project / "leden.csv"), ignore_check_errors=True),
                   Project(project).using(settings), journal)
    return journal, Sender(planned, journal, shared_limiter(settings), tuning=Tuning(retry_delays=(0,),
                                                                                     reconnect_delays=(0,)))


def test_a_windows_console_close_finishes_the_message_in_flight(project):
    """The handler Windows calls (on a thread of its own) on a console close: the message in flight is finished
    and recorded, then the handler returns. The ctypes registration itself runs only on Windows."""
    write_list(project, addresses(4))
    with SmtpServer(reply_delay=1.0) as server:
        journal, sender = planned_sender(project, server)
        assert sender.console_event(0) is False and sender.console_event(1) is False  # Ctrl+C, Ctrl+Break: Python's
        runner = threading.Thread(target=sender.run)
        runner.start()
        deadline = time.monotonic() + 30
        while "sending" not in journal.states().values():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert sender.console_event(CTRL_CLOSE_EVENT) is True  # returns once the send has ended
        assert not runner.is_alive() or runner.join(1) is None
        states = journal.states()
        journal.close()
    assert sender.outcome.stopped == "interrupted (the window was closed); the messages in progress were finished " \
                                     "and recorded"
    assert sorted(states.values()) == ["pending", "pending", "pending", "sent"]
    assert [r.rcpt_tos[0] for r in server.received] == [k for k, v in states.items() if v == "sent"]
    assert set(CONSOLE_EVENTS) == {CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT}


def test_the_journal_keeps_only_the_columns_the_edition_uses_and_is_private(project):
    """AVG data minimisation: the member list's phone numbers, dates of birth and notes stay in the list; the
    journal (and its -wal/-shm) is readable by the owner only."""
    import json
    import sqlite3

    (project / "leden.csv").write_text(
        "email;naam;aanhef;telefoon;geboortedatum;notities\n"
        "an@example.org;An de Vries;Beste An;06-12345678;1970-03-01;rolstoel\n"
        "bo@example.org;Bo Bakker;Hoi Bo;06-87654321;1980-12-24;\n", encoding="utf-8")
    with SmtpServer() as server:
        result = send(project, server)
        assert result.sent == 2
        bodies = b"".join(r.data for r in server.received)
    assert b"Beste An" in bodies and b"Hoi Bo" in bodies  # the field the edition uses still arrives
    path = journal_of(project)
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT key, fields FROM recipients"))
        blob = b"".join(line.encode() for line in db.iterdump())
    assert {key: json.loads(fields) for key, fields in rows.items()} == {
        "an@example.org": {"email": "an@example.org", "aanhef": "Beste An"},
        "bo@example.org": {"email": "bo@example.org", "aanhef": "Hoi Bo"}}
    for secret in (b"06-12345678", b"1970-03-01", b"rolstoel", b"telefoon"):
        assert secret not in blob
    if sys.platform != "win32":
        for suffix in ("", "-wal", "-shm"):
            file = Path(f"{path}{suffix}")
            if file.exists():
                assert file.stat().st_mode & 0o777 == 0o600, (file, oct(file.stat().st_mode))


def test_a_stop_does_not_wait_for_a_stalled_server_longer_than_the_grace(project):
    """The server stores the message and never answers (data timeout 600 s): after the stop the send waits
    `stop_grace` seconds (60 in use, 1 here), then aborts and names the member as uncertain."""
    write_list(project, addresses(3))
    with SmtpServer(stall_after=0) as server:
        journal, sender = planned_sender(project, server)
        sender.stop_grace = 1.0
        runner = threading.Thread(target=sender.run)
        runner.start()
        deadline = time.monotonic() + 30
        while "sending" not in journal.states().values():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stopped = time.monotonic()
        sender.request_stop("Ctrl+C")
        runner.join(30)
        assert not runner.is_alive() and time.monotonic() - stopped < 10
        states = journal.states()
        journal.close()
    assert sender.outcome.stopped == ("aborted (the server did not answer within 1 s of the stop) without waiting "
                                      "for the server: 1 member(s) are now uncertain: lid000@example.org")
    assert states == {"lid000@example.org": "uncertain", "lid001@example.org": "pending",
                      "lid002@example.org": "pending"}


class _BrokenConnection(Connection):
    """A real connection whose send fails with an unexpected error (a bug's stand-in) after connecting."""

    def send(self, sender: str, recipient: str, data: bytes, before_data=None) -> str:
        raise RuntimeError(f"planted failure for {recipient}")


def test_an_internal_error_in_a_worker_keeps_its_traceback_in_the_edition_folder(project):
    """A bug in a sending thread stops the send with one line; the traceback is not lost: it is in
    editions/<id>/send-errors.log (git-ignored), which the line names."""
    write_list(project, addresses(2))
    log = project / "editions" / "2025-09" / "send-errors.log"
    request = SendRequest("2025-09", MemberList(project / "leden.csv"), ignore_check_errors=True)
    tuning = Tuning(retry_delays=(0,), reconnect_delays=(0,), connect=_BrokenConnection)
    with SmtpServer() as server:
        here = Project(project).using(settings_for(server, SEND_CONNECTIONS="1"))
        result = run_send(request, here, tuning=tuning)
        assert result.sent == 0 and not server.received
        lines = result_lines(result)
        assert f"STOPPED: {result.stopped}" in lines  # what `newsletter send` prints
    assert result.stopped.startswith("internal error: RuntimeError: planted failure for lid000@example.org")
    assert str(Path("editions") / "2025-09" / "send-errors.log") in result.stopped
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text
    assert "in send_one" in text and "in send\n" in text  # the worker's frame and the failing call's
    assert "RuntimeError: planted failure for lid000@example.org" in text
    assert "editions/*/send-errors.log" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert journal_states(project) == {"lid000@example.org": "pending", "lid001@example.org": "pending"}
    with SmtpServer() as server:  # the same command again: the next traceback is added, the first one kept
        run_send(request, Project(project).using(settings_for(server, SEND_CONNECTIONS="1")), tuning=tuning)
    assert log.read_text(encoding="utf-8").startswith(text) and log.read_text(encoding="utf-8").count("Traceback") == 2



_OPENED: list[str] | None = None  # while set, the audit hook below records every file opened


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], (str, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_record_opens)  # audit hooks stay for the process: it records only while _OPENED is a list


def test_a_send_reads_the_theme_once_and_its_build_records_it(project):
    """Planning a send (the build, the postal-address check, the checks with their line numbers) opens
    theme.yaml once; the build carries that house style."""
    global _OPENED
    write_list(project, addresses(2))
    here = Project(project).using(settings_for_outbox())
    request = SendRequest("2025-09", MemberList(project / "leden.csv"), dry_run=True)
    _OPENED = []
    try:
        with send_journal(request, here) as journal:
            planned = plan(request, here, journal)
        opened = [name for name in _OPENED if Path(name).name == "theme.yaml"]
    finally:
        _OPENED = None
    assert len(opened) == 1, opened
    assert planned.build.theme.file == "theme.yaml"
    assert planned.build.theme.theme.address == "Postbus 16001, 2500 BA Den Haag"  # the example's theme.yaml, line 7
    assert planned.build.theme.lines[("address",)] == 7  # the checks' line numbers come from the same text


def settings_for_outbox():
    from newsletter_cli.settings import parse_settings

    return parse_settings({"NEWSLETTER_FROM": "VZHG <nieuwsbrief@vzhg.nl>"}, {})
