"""Exactly once, for real: faults of a real SMTP server (aiosmtpd over sockets) and what the send makes of them.

Every test asserts on what the server actually stored: no address twice, none missing except those the send
reports as uncertain, failed or deferred.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.deliver.ratelimit import SharedRateLimiter, shared_limiter
from newsletter_cli.errors import NewsletterError
from newsletter_cli.members.journal import Journal
from newsletter_cli.members.status import status, status_lines
from newsletter_cli.project import Project

sys.path.insert(0, str(Path(__file__).parent))
from test_send import FROM, addresses, journal_states, send, settings_for, write_list

from smtp_server import SmtpServer

EDITION = Path("editions") / "2025-09"


def delivered(server: SmtpServer) -> list[str]:
    """Every address the server stored a message for, in the order stored (duplicates kept)."""
    return [to.lower() for r in server.received for to in r.rcpt_tos]


def assert_once(server: SmtpServer, emails: list[str], missing: set[str] = frozenset()) -> None:
    got = delivered(server)
    assert len(got) == len(set(got)), f"someone got it twice: {sorted(a for a in got if got.count(a) > 1)}"
    assert set(got) == set(emails) - set(missing)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_stored_then_dropped_is_uncertain_and_never_sent_again(project, pipelining):
    emails = addresses(6)
    with SmtpServer(store_then_drop={emails[2]}, pipelining=pipelining) as server:
        result = send(project, server, emails)
        assert (result.sent, result.uncertain, result.deferred) == (5, 1, 0)
        assert_once(server, emails)  # the server has it: the reply was lost, not the message
        assert journal_states(project)[emails[2]] == "uncertain"
        again = send(project, server)
        assert again.sent == 0
        assert_once(server, emails)
    lines = status_lines(status(project / EDITION))
    assert any(line.strip().startswith(f"uncertain {emails[2]}") for line in lines)


def test_stored_then_stalled_is_uncertain_after_the_data_timeout(project):
    emails = addresses(5)
    with SmtpServer(stall_after=1) as server:  # stores the 2nd message and never answers it
        settings = settings_for(server, SMTP_DATA_TIMEOUT="1", SMTP_TIMEOUT="30")
        result = send(project, server, emails, settings=settings)
        assert (result.sent, result.uncertain) == (4, 1)
        (address, state, reply), = result.failures
        assert state == "uncertain" and "reply to it never came" in reply
        assert_once(server, emails)
        assert journal_states(project)[address] == "uncertain"


@pytest.mark.slow  # ~9 s on 2 busy cores (issue 22: make test-fast skips it)
def test_a_greylisted_member_does_not_hold_up_the_others(project):
    """100 members, 10 of them greylisted once (451): each is retried later, after the members behind it."""
    emails = addresses(100)
    greylisted = emails[5::10]
    with SmtpServer(defer_once=set(greylisted)) as server:
        result = send(project, server, emails, delays=(3.0,))
        assert (result.sent, result.deferred, result.stopped) == (100, 0, None)
        assert_once(server, emails)
        order = delivered(server)
        for address in greylisted:
            following = emails[emails.index(address) + 1]
            assert order.index(following) < order.index(address), address


def test_failed_members_are_retried_only_with_retry_failed(project):
    emails = addresses(5)
    with SmtpServer(reject=set(emails[1:4])) as server:
        first = send(project, server, emails)
        assert (first.sent, first.failed) == (2, 3)
        server.handler.faults.reject.clear()
        again = send(project, server)
        assert again.sent == 0 and again.plan.failed == 3
        with Journal(project / "editions" / "2025-09" / "journal.sqlite") as journal:
            ids = {address: journal.message_id(address) for address in emails}
        retried = send(project, server, retry_failed=True)
        assert retried.sent == 3
        assert_once(server, emails)
    # each member's Message-ID was given once, random, and the retry went out with it
    assert len(set(ids.values())) == 5 and all(re.fullmatch(r"<[\w-]{22}@vzhg\.nl>", i) for i in ids.values())
    for received in server.received:
        assert email.message_from_bytes(received.data)["Message-ID"] == ids[received.rcpt_tos[0]]


def test_ten_refusals_say_how_to_retry(project):
    emails = addresses(12)
    with SmtpServer(reject=set(emails)) as server:
        result = send(project, server, emails)
    assert result.failed == 10 and "--retry-failed" in result.stopped


def break_edition(project: Path) -> None:
    edition = project / EDITION / "edition.yaml"
    edition.write_text(edition.read_text(encoding="utf-8").replace(
        'title: "Najaarscongres 21 november"', 'title: "Titel van het bericht"', 1), encoding="utf-8")


def test_check_errors_block_a_real_send_unless_ignored(project):
    emails = addresses(3)
    break_edition(project)
    with SmtpServer() as server:
        with pytest.raises(NewsletterError, match="--ignore-check-errors"):
            send(project, server, emails)
        assert not server.received and not (project / EDITION / "journal.sqlite").exists()
        result = send(project, server, ignore_check_errors=True)
        assert result.sent == 3
        assert_once(server, emails)
    with Journal(project / EDITION / "journal.sqlite") as journal:
        assert "finds 1 error" in (journal.meta("ignored_check_errors") or "")


def test_check_errors_in_the_cli_are_red_and_exit_1(project):
    break_edition(project)
    write_list(project, addresses(2))
    with SmtpServer() as server:
        (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={server.port}\nSMTP_SECURITY=none\n"
                                      f"NEWSLETTER_FROM={FROM}\nSEND_RATE=0\n")
        (project / ".env").chmod(0o600)
        result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"], color=True)
        assert result.exit_code == 1 and not server.received
        assert "\x1b[31mERROR: `newsletter check` finds 1 error" in result.output
        assert "--ignore-check-errors" in result.output


def test_the_list_is_the_list_of_this_run(project):
    """Rows added to the CSV since the last run are sent, rows removed are not."""
    with SmtpServer() as server:
        send(project, server, ["a@example.org", "b@example.org", "c@example.org"], limit=1)
        result = send(project, server, ["b@example.org", "d@example.org"])
        assert result.sent == 2
        assert sorted(delivered(server)) == ["a@example.org", "b@example.org", "d@example.org"]
    assert journal_states(project)["c@example.org"] == "pending"
    assert status(project / EDITION).counts["pending"] == 1


def test_421_at_the_greeting_is_waited_out(project):
    emails = addresses(4)
    with SmtpServer(greet_421=2) as server:
        result = send(project, server, emails, reconnect=(0.1, 0.1, 0.1))
        assert result.sent == 4 and result.stopped is None
        assert_once(server, emails)


def test_server_away_for_a_while_then_back(project):
    """Connection refused for about 1.5 s mid-send: the send waits and goes on, nobody twice."""
    emails = addresses(6)
    server = SmtpServer(drop_after=2).start()
    port = server.port
    restarted: list[SmtpServer] = []

    def bounce() -> None:
        while len(server.received) < 2:
            time.sleep(0.01)
        server.stop()
        time.sleep(1.5)
        restarted.append(SmtpServer(port=port).start())

    thread = threading.Thread(target=bounce)
    thread.start()
    try:
        result = send(project, server, emails, reconnect=(0.2,) * 20)
        thread.join()
        assert result.sent == 6 and result.stopped is None
        got = delivered(server) + delivered(restarted[0])
        assert sorted(got) == sorted(emails)
    finally:
        thread.join()
        for s in restarted:
            s.stop()


def test_server_never_back_stops_with_everyone_recorded(project):
    with SmtpServer() as server:
        settings = settings_for(server)
    result = send(project, server, addresses(3), settings=settings, reconnect=(0.05, 0.05))
    assert result.sent == 0 and "connection refused" in result.stopped and "run the same command" in result.stopped
    assert set(journal_states(project).values()) == {"pending"}


def test_concurrency_limit_goes_on_with_fewer_connections(project):
    emails = addresses(12)
    with SmtpServer(max_sessions=1) as server:
        settings = settings_for(server, SEND_CONNECTIONS="3")
        result = send(project, server, emails, settings=settings, reconnect=(0.1,) * 5)
        assert result.sent == 12 and result.stopped is None
        assert_once(server, emails)


def test_250_instead_of_354_is_not_sent(project):
    emails = addresses(3)
    with SmtpServer(data_250={emails[1]}, pipelining=False) as server:
        result = send(project, server, emails)
        assert result.sent == 1 and "instead of 354" in result.stopped
        assert journal_states(project)[emails[1]] == "pending"
        assert delivered(server) == [emails[0]]


def test_one_login_per_run_with_three_connections(project):
    with SmtpServer(users={"nb": "goed"}) as server:
        wrong = settings_for(server, SMTP_USERNAME="nb", SMTP_PASSWORD="fout", SEND_CONNECTIONS="3")
        result = send(project, server, addresses(9), settings=wrong)
        assert result.sent == 0 and "login refused" in result.stopped
        assert len(server.auth_attempts) == 1
        right = settings_for(server, SMTP_USERNAME="nb", SMTP_PASSWORD="goed", SEND_CONNECTIONS="3")
        assert send(project, server, settings=right).sent == 9


@pytest.mark.parametrize("password", ["wàchtwoord€ 42", "ünïcødé-ÿ", "a:b;c\"d'e\\f"])
def test_passwords_of_any_characters_work_and_are_never_shown(project, password):
    with SmtpServer(users={"nb": password}) as server:
        right = settings_for(server, SMTP_USERNAME="nb", SMTP_PASSWORD=password)
        assert send(project, server, addresses(2), settings=right).sent == 2
        wrong = settings_for(server, SMTP_USERNAME="nb", SMTP_PASSWORD=password + "é")
        result = send(project, server, addresses(3), settings=wrong)
        assert "login refused" in result.stopped and password not in result.stopped
        assert "é" not in result.stopped.replace("(", "")


def test_internationalized_domain_goes_out_idna_encoded(project):
    with SmtpServer() as server:
        result = send(project, server, ["jan@müller.de", "piet@example.org"])
        assert result.sent == 2
        assert "jan@xn--mller-kva.de" in delivered(server)
        message = email.message_from_bytes(server.received[0].data, policy=email.policy.default)
        assert "xn--mller-kva.de" in str(message["To"])


@pytest.mark.parametrize("smtputf8", [True, False])
def test_non_ascii_mailbox_needs_smtputf8(smtputf8):
    """The transport: a non-ASCII mailbox name goes with SMTPUTF8 where offered, else is refused clearly.
    (Recipient lists refuse such addresses when read, with the line; this is the transport's own guard.)"""
    from newsletter_cli.deliver.replies import Permanent
    from newsletter_cli.deliver.smtp import Connection

    data = b"Subject: x\r\n\r\nbody\r\n"
    with SmtpServer(smtputf8=smtputf8) as server:
        connection = Connection(settings_for(server))
        try:
            if smtputf8:
                assert connection.send("nb@vzhg.nl", "jöran@example.org", data).startswith("250")
                assert delivered(server) == ["jöran@example.org"]
            else:
                with pytest.raises(Permanent, match="SMTPUTF8"):
                    connection.send("nb@vzhg.nl", "jöran@example.org", data)
                assert connection.send("nb@vzhg.nl", "piet@example.org", data).startswith("250")
                assert delivered(server) == ["piet@example.org"]
        finally:
            connection.close()


@pytest.mark.parametrize("content", [b"", b"this is not a database at all" * 100])
def test_an_untrusted_journal_stops_the_send(project, content):
    journal = project / EDITION / "journal.sqlite"
    journal.write_bytes(content)
    with SmtpServer() as server:
        with pytest.raises(NewsletterError, match=r"cannot be trusted.*Nothing was sent"):
            send(project, server, addresses(3))
        assert not server.received
    assert journal.read_bytes() == content


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write read-only files")
def test_a_read_only_journal_stops_the_send(project):
    with SmtpServer() as server:
        send(project, server, addresses(2), limit=1)
        journal = project / EDITION / "journal.sqlite"
        journal.chmod(0o444)
        try:
            with pytest.raises(NewsletterError, match="cannot write the send journal"):
                send(project, server)
        finally:
            journal.chmod(0o644)
        assert len(server.received) == 1


def test_a_journal_that_becomes_unwritable_mid_send_is_reported(project, monkeypatch):
    """A write failing during the send (a full disk) stops it with what to do, never a traceback."""
    from newsletter_cli.members.journal import unwritable

    original, calls = Journal.mark, []

    def mark(self, address, state, reply=""):
        calls.append(state)
        if len(calls) == 2:
            raise unwritable(self.path, sqlite3.OperationalError("database or disk is full"))
        return original(self, address, state, reply)

    monkeypatch.setattr(Journal, "mark", mark)
    with SmtpServer() as server:
        result = send(project, server, addresses(4))
        assert "the disk is full" in result.stopped and result.sent == 1
        assert len(delivered(server)) == 2  # the second went out; its outcome could not be written
    monkeypatch.setattr(Journal, "mark", original)
    assert sorted(journal_states(project).values()) == ["pending", "pending", "sending", "sent"]


def test_dry_run_writes_a_sample_not_gigabytes(project):
    (project / ".env").write_text(f"NEWSLETTER_FROM={FROM}\n")
    (project / ".env").chmod(0o600)
    write_list(project, addresses(150))
    result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "100 messages written" in result.output and "the first 100 of the 150" in result.output
    assert len(list((project / EDITION / "outbox").glob("*.eml"))) == 100


def test_rate_limit_is_shared_between_processes(tmp_path):
    """Two limiters on one state file (two processes sending from one account) keep the rate together."""
    path = tmp_path / "account.json"
    first, second = SharedRateLimiter(4, path, window=1.0), SharedRateLimiter(4, path, window=1.0)
    times: list[float] = []
    for _ in range(5):
        for limiter in (first, second):
            assert limiter.acquire()
            times.append(limiter._sent[-1])  # the time the slot was granted, under the file lock
    assert times == sorted(times) and len(set(times)) == 10  # each grant saw the other process's
    for n, start in enumerate(times):
        assert sum(1 for t in times[n:] if t < start + 1.0) <= 4


def test_the_shared_limiter_is_per_account(project, tmp_path):
    with SmtpServer() as server:
        a = shared_limiter(settings_for(server, SEND_RATE="30", SMTP_USERNAME="nb"), tmp_path)
        b = shared_limiter(settings_for(server, SEND_RATE="30", SMTP_USERNAME="nb"), tmp_path)
        c = shared_limiter(settings_for(server, SEND_RATE="30", SMTP_USERNAME="ander"), tmp_path)
    assert isinstance(a, SharedRateLimiter) and a.path == b.path != c.path and a.path.parent.parent == tmp_path


def test_an_empty_setting_in_the_environment_wins_over_env_file(project, monkeypatch):
    (project / ".env").write_text("SMTP_HOST=smtp.example.org\nNEWSLETTER_FROM=nb@vzhg.nl\n")
    (project / ".env").chmod(0o600)
    assert Project.here().settings.smtp_host == "smtp.example.org"
    monkeypatch.setenv("SMTP_HOST", "")
    assert Project.here().settings.smtp_host is None


@pytest.mark.parametrize(("line", "shown"), [("SMTP_HOST=" + "x" * 200_000, "200,000 characters"),
                                             ("NEWSLETTER_FROM=" + "x" * 3000, "(3,000 characters)")])
def test_a_huge_setting_is_not_echoed(project, line, shown):
    (project / ".env").write_text(line + "\n")
    (project / ".env").chmod(0o600)
    result = CliRunner().invoke(cli, ["send", "2025-09", "--test"])
    assert result.exit_code != 0 and shown in result.output and len(result.output) < 500


def test_a_bad_row_does_not_hide_a_good_one_with_the_same_address(project):
    from newsletter_cli.members.recipients import read_recipients

    path = project / "leden.csv"
    path.write_text('email,name\nlid@example.org,"Naam met\nregelafbreking"\nLid@example.org,Goede Naam\n',
                    encoding="utf-8")
    listing = read_recipients(path, project=Project(project))
    assert [(r.email, r.name) for r in listing.recipients] == [("Lid@example.org", "Goede Naam")]
    assert len(listing.problems) == 1 and listing.duplicates == 0
