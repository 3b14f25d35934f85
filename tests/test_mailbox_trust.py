"""`newsletter mailbox` on hostile and broken mail, against a real send and a real Dovecot: forged reports act
on nobody, a broken message never stops the run, each doubtful message is listed once, unsubscribes work
from a fresh user profile, and one run at a time."""

from __future__ import annotations

import email
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_mailbox import PROCESSED, run, sent_to, unsubscribe_subject, write_env
from test_send import addresses, send

from newsletter_cli.cli import cli
from newsletter_cli.members import suppressions, unsubscribe
from newsletter_cli.members.suppressions import addresses as read_suppressions

import mailbox_samples as samples
from helpers import assert_no_traceback
from imap_server import available
from smtp_server import SmtpServer

pytestmark = pytest.mark.skipif(not available(), reason="Dovecot is not installed (make system-packages)")
UNREADABLE = "Nieuwsbrief onleesbaar"


def message_id(message: bytes) -> str:
    return email.message_from_bytes(message)["Message-ID"]


def with_message_id(original: bytes, new_id: str) -> bytes:
    return original.replace(message_id(original).encode(), new_id.encode(), 1)


def distinct(raw: bytes, n: int) -> bytes:
    """A report of its own (a forger does not send the same message seven times)."""
    return raw.replace(b"Message-Id: <20251006091502.4B2C31E0@", f"Message-Id: <forged{n}.4B2C31E0@".encode(), 1)


@pytest.mark.slow  # a send and two mailbox runs against real servers
def test_forged_reports_and_backscatter_suppress_nobody_and_are_listed_once(project, imap):
    members = addresses(6)
    with SmtpServer() as smtp:
        assert send(project, smtp, members).sent == 6
        sent = sent_to(smtp)
    mine = sent[members[0]]  # what one member (or whoever got their copy) can see
    # 1. a report for member 0's message that names another address (a stranger's, or an old forwarding address)
    imap.append(samples.postfix("someone.else@example.net", mine))
    # 2. seven made-up reports: each member's address, Message-IDs guessed from member 0's
    own = message_id(mine).strip("<>")
    local, _, domain = own.partition("@")
    guesses = [f"<{local[:-1]}{c}@{domain}>" for c in "ABCDEFGH" if c != local[-1]][:7]  # near, never the same
    for n, (member, guess) in enumerate(zip(members[1:] + members[:1] + members[1:2], guesses)):
        imap.append(distinct(samples.postfix(member, with_message_id(mine, guess)), n))
    # 3. backscatter: a bounce of spam that forged our address, naming a stranger
    spam = b"From: nieuwsbrief@vzhg.nl\r\nTo: victim@example.com\r\nSubject: cheap\r\nMessage-ID: <spam.1@botnet.example>\r\n\r\nx\r\n"
    imap.append(samples.qmail("victim@example.com", spam))
    write_env(project, imap)

    first = run("mailbox")
    assert first.exit_code == 0, first.output
    assert not (project / "suppressions.csv").exists() or read_suppressions(project / "suppressions.csv") == set()
    assert "0 bounces" in first.output and "9 messages for you to read" in first.output
    assert first.output.count("was sent to " + members[0]) == 1  # the report naming someone else
    assert first.output.count("send journals do not know") == 8  # seven guesses, one backscatter
    assert len(imap.messages()) == 9 and imap.messages(PROCESSED) == []  # left for a person, not filed away

    second = run("mailbox")
    assert "For you to read" not in second.output and "0 messages for you to read" in second.output
    assert "9 message(s) listed on an earlier run are still in INBOX" in second.output


@pytest.mark.slow
def test_broken_messages_beside_a_good_bounce(project, imap):
    members = addresses(2)
    with SmtpServer() as smtp:
        send(project, smtp, members)
        sent = sent_to(smtp)
    bad_subject = samples.ordinary("jan@example.org").replace(b"Subject: Vraag over het najaarscongres",
                                                             b"Subject: =?utf-8?B?abcdefghi?= afmelden")
    unknown_charset = (b"Return-Path: <>\r\nFrom: MAILER-DAEMON@sendmail.example.org\r\nTo: nieuwsbrief@vzhg.nl\r\n"
                       b"Subject: Returned mail: see transcript for details\r\nMessage-ID: <u8@sendmail.example.org>\r\n"
                       b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
                       b"Content-Transfer-Encoding: 8bit\r\n\r\n----- Transcript \xe9\xe8 -----\r\n"
                       b"... while talking to mx.example.org: 550 afmelden <onbekend@example.org>\r\n")
    no_header = b"\x00\x01\x02 this is not a mail message at all \xff\xfe\r\n" * 20
    good = samples.postfix(members[1], sent[members[1]])
    for raw in (bad_subject, unknown_charset, samples.malformed(), no_header, good):
        imap.append(raw)
    write_env(project, imap)

    first = CliRunner().invoke(cli, ["mailbox"])
    assert_no_traceback(first)
    assert first.exit_code == 0, first.output
    assert read_suppressions(project / "suppressions.csv") == {members[1]}  # the good one is handled
    assert "1 bounce" in first.output and "cannot be read (no mail header)" in first.output
    assert len(imap.messages(UNREADABLE)) == 1 and b"not a mail message" in imap.messages(UNREADABLE)[0]
    assert len(imap.messages(PROCESSED)) == 1
    listed = first.output.split("For you to read", 1)[1]
    assert "abcdefghi" in listed or "afmelden" in listed  # the broken subject asks in words: listed
    assert "\x1b" not in first.output

    second = CliRunner().invoke(cli, ["mailbox"])
    assert_no_traceback(second)
    assert "For you to read" not in second.output


def profile_env(folder: Path) -> dict[str, str]:
    """Every place a user's data folder may be looked up, pointed at `folder` (Linux, macOS, Windows)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(folder), "USERPROFILE": str(folder), "APPDATA": str(folder / "AppData" / "Roaming"),
            "LOCALAPPDATA": str(folder / "AppData" / "Local"), "XDG_DATA_HOME": str(folder / ".local" / "share"),
            "XDG_CONFIG_HOME": str(folder / ".config"), "XDG_CACHE_HOME": str(folder / ".cache")}


@pytest.mark.slow
def test_unsubscribe_from_another_pc_with_only_the_project_folder(project, imap, tmp_path, monkeypatch):
    members = addresses(3)
    for name, value in profile_env(tmp_path / "secretary").items():
        monkeypatch.setenv(name, value)
    with SmtpServer() as smtp:
        send(project, smtp, members)
        sent = sent_to(smtp)
    assert (project / "unsubscribe-secret").is_file()  # the secret lives with the project
    # an older version kept its secret in the user's data folder: tokens sent with it still count on that PC
    old = unsubscribe.secret_path()
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_text("an-old-per-user-secret-of-the-secretary\n", encoding="ascii")
    old_token = unsubscribe.token(members[2], "an-old-per-user-secret-of-the-secretary")

    # a colleague's PC: a fresh profile, nothing of the secretary's
    fresh = tmp_path / "colleague"
    for name, value in profile_env(fresh).items():
        monkeypatch.setenv(name, value)
    imap.append(samples.unsubscribe("prive-adres@example.com",
                                    unsubscribe_subject(sent[members[0]])))
    imap.append(samples.unsubscribe(members[2], f"afmelden-{old_token}"))
    write_env(project, imap)
    result = run("mailbox")
    assert result.exit_code == 0, result.output
    assert read_suppressions(project / "suppressions.csv") == {members[0]}  # A, named by the token
    assert "sent from prive-adres@example.com" in result.output
    assert "token does not belong to any member" in result.output  # the old secret is not on this PC
    assert not any(fresh.rglob("*secret*"))  # nothing written to the colleague's profile

    for name, value in profile_env(tmp_path / "secretary").items():  # back on the secretary's own PC
        monkeypatch.setenv(name, value)
    again = run("mailbox")  # the request listed before is acted on now
    assert read_suppressions(project / "suppressions.csv") == {members[0], members[2]}, again.output


def test_a_second_run_at_the_same_time_is_refused_clearly(project, imap):
    imap.append(samples.ordinary("jan@example.org"))
    write_env(project, imap)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from filelock import FileLock; "
                               "lock = FileLock('.mailbox.lock'); lock.acquire(); print('held', flush=True); "
                               "sys.stdin.read()"], cwd=project, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        second = CliRunner().invoke(cli, ["mailbox"])
        assert second.exit_code == 1 and "Another `newsletter mailbox` is running for this project" in second.output
        assert_no_traceback(second)
        assert not (project / "mailbox.sqlite").exists()  # it did nothing
        assert run("mailbox", "--dry-run").exit_code == 0  # a dry run changes nothing: it may look alongside
    finally:
        holder.communicate("")
    assert run("mailbox").exit_code == 0  # the lock went with the first run


@pytest.mark.slow
def test_dovecot_killed_while_reading_loses_nothing(project, imap, monkeypatch):
    """The server dies after the first message was read: nothing written, nothing moved; the re-run completes."""
    from newsletter_cli.mailbox.imap import Mailbox

    members = addresses(3)
    with SmtpServer() as smtp:
        send(project, smtp, members)
        for member in members:
            imap.append(samples.postfix(member, sent_to(smtp)[member]))
    imap.append(samples.postfix("someone.else@example.net", sent_to(smtp)[members[0]]))
    write_env(project, imap)
    real_fetch = Mailbox.fetch

    def fetch_then_die(self, uids, wanted):
        for n, item in enumerate(real_fetch(self, uids, wanted)):
            yield item
            if n == 0:
                imap.halt()

    monkeypatch.setattr(Mailbox, "fetch", fetch_then_die)
    broken = CliRunner().invoke(cli, ["mailbox"])
    assert_no_traceback(broken)
    assert broken.exit_code == 1 and "Nothing is lost" in broken.output
    assert not (project / "suppressions.csv").exists()
    monkeypatch.setattr(Mailbox, "fetch", real_fetch)
    imap.start()
    assert len(imap.messages()) == 4 and imap.messages(PROCESSED) == []
    again = run("mailbox")
    assert "3 bounces: 3 dead" in again.output and "1 message for you" in again.output
    assert read_suppressions(project / "suppressions.csv") == set(members)
    assert len(imap.messages(PROCESSED)) == 3 and len(imap.messages()) == 1  # the listed one stays for a person


def refusal(member: str, original: bytes, status: str, diagnostic: str) -> bytes:
    """An RFC 3464 report of the receiving server refusing our message (not the member's address)."""
    headers = original.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    return (f"Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@relay.vzhg.nl>\r\n"
            f"To: nieuwsbrief@vzhg.nl\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: <refused.{abs(hash(member))}@relay.vzhg.nl>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
            f"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            f"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.vzhg.nl\r\n\r\n"
            f"Final-Recipient: rfc822; {member}\r\nAction: failed\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
            f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n--b--\r\n").encode()


@pytest.mark.slow
def test_a_refusal_of_our_sending_is_reported_per_domain_and_suppresses_nobody(project, imap):
    members = ["a@gemeente-x.nl", "b@gemeente-x.nl", "c@gemeente-x.nl", "d@example.org"]
    with SmtpServer() as smtp:
        send(project, smtp, members)
        sent = sent_to(smtp)
    dmarc = "550 5.7.509 Access denied, sending domain VZHG.NL does not pass DMARC verification and has a DMARC " \
            "policy of reject."
    for member in members[:3]:
        imap.append(refusal(member, sent[member], "5.7.509", dmarc))
    imap.append(samples.postfix(members[3], sent[members[3]]))  # and one dead address beside them
    write_env(project, imap)
    result = run("mailbox")
    assert result.exit_code == 0, result.output
    assert read_suppressions(project / "suppressions.csv") == {members[3]}
    assert "Refused our sending" in result.output
    (line,) = [x for x in result.output.splitlines() if "gemeente-x.nl refused" in x]
    assert line.startswith("  gemeente-x.nl refused 3 messages: ") and "newsletter doctor" in line, line
    assert "3 refused our sending" in result.output
    assert len(imap.messages(PROCESSED)) == 4 and imap.messages() == []  # filed: the report was given
    status = run("status", "2025-09")
    assert "3 refused our sending (addresses fine)" in status.output


def test_a_message_id_of_the_old_guessable_kind_proves_nothing(project):
    """Journals from before random Message-IDs: `<start time>.<run>.<counter>@domain` can be guessed from one
    member's copy, so a report citing one is listed for a person, never acted on."""
    from test_mailbox import _journal

    from newsletter_cli.mailbox import judge
    from newsletter_cli.mailbox import record as mailbox_record
    from newsletter_cli.mailbox.imap import Fetched
    from newsletter_cli.project import Project

    _journal(project, "2025-08", [("oud@example.org", "<1759741502.a1b2c3d4e5f6.7@vzhg.nl>"),
                                  ("nieuw@example.org", "<Zq3vT0dW9hK2mXbY7cLp1A@vzhg.nl>")])
    sent = mailbox_record.read_sent(Project(project))
    tokens = judge.Tokens([], sent)
    outcomes = []
    for member, message_id in (("oud@example.org", "1759741502.a1b2c3d4e5f6.7@vzhg.nl"),
                               ("nieuw@example.org", "Zq3vT0dW9hK2mXbY7cLp1A@vzhg.nl")):
        raw = samples.postfix(member, f"Message-ID: <{message_id}>\r\nSubject: x\r\n\r\nx\r\n".encode())
        outcomes.append(judge.judge(Fetched("1", len(raw), raw, raw), sent, tokens))
    old, new = outcomes
    assert isinstance(old, judge.ForYou) and "guessable" in old.why and "newsletter suppress oud@example.org" in old.why
    assert isinstance(new, judge.Action) and (new.kind, new.email, new.edition) == ("permanent", "nieuw@example.org",
                                                                                    "2025-08")


def feedback_report(member: str, original: bytes) -> bytes:
    """An ARF spam complaint (RFC 5965) as a provider's feedback loop sends it, with the original attached."""
    headers = original.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    return (f"From: Feedback Loop <feedback@arf.example.net>\r\nTo: nieuwsbrief@vzhg.nl\r\nSubject: FW: complaint\r\n"
            f"Message-ID: <arf.{abs(hash((member, headers)))}@arf.example.net>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n"
            f"--f\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
            f"--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n"
            f"Original-Mail-From: <nieuwsbrief@vzhg.nl>\r\nOriginal-Rcpt-To: <{member}>\r\n\r\n"
            f"--f\r\nContent-Type: message/rfc822\r\n\r\n{headers}\r\n\r\nx\r\n--f--\r\n").encode()


@pytest.mark.slow
def test_a_proven_spam_complaint_suppresses_and_a_forged_one_is_listed(project, imap):
    members = addresses(3)
    with SmtpServer() as smtp:
        send(project, smtp, members)
        sent = sent_to(smtp)
    imap.append(feedback_report(members[0], sent[members[0]]))  # the member's own copy: proven
    imap.append(feedback_report(members[1], sent[members[0]]))  # names member 1, about member 0's copy
    imap.append(feedback_report(members[2], with_message_id(sent[members[2]], "<made-up@vzhg.nl>")))
    write_env(project, imap)
    result = run("mailbox")
    assert result.exit_code == 0, result.output
    found = {e.email: e.reason for e in suppressions.read(project / "suppressions.csv").values()}
    assert found == {members[0]: "complaint"}
    assert "1 complaint;" in result.output and "2 messages for you to read" in result.output
