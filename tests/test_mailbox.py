"""`newsletter mailbox` against a real Dovecot (IMAP over TLS, Maildir in a temp folder), after a real send to
the test SMTP server: bounces and unsubscribes go into suppressions.csv, the rest is left or listed."""

from __future__ import annotations

import csv
import email
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from test_send import addresses, send, write_list

from newsletter_cli.cli import cli
from newsletter_cli.mailbox import judge
from newsletter_cli.mailbox import record as mailbox_record
from newsletter_cli.mailbox import run as inbox
from newsletter_cli.mailbox.imap import Fetched
from newsletter_cli.members.journal import JOURNAL_FILE, Journal
from newsletter_cli.members.suppressions import addresses as read_suppressions
from newsletter_cli.members.unsubscribe import token
from newsletter_cli.project import Project

import mailbox_samples as samples
from helpers import assert_no_traceback
from imap_server import PASSWORD, USER, ImapServer, available
from smtp_server import SmtpServer

pytestmark = pytest.mark.skipif(not available(), reason="Dovecot is not installed (make system-packages)")
PROCESSED = "Nieuwsbrief verwerkt"


def write_env(project: Path, imap: ImapServer, smtp: SmtpServer | None = None, **extra: str) -> None:
    values = {"NEWSLETTER_FROM": "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>", "IMAP_HOST": "127.0.0.1",
              "IMAP_PORT": str(imap.port), "SMTP_CA_FILE": str(imap.ca_file), "IMAP_USERNAME": USER,
              "IMAP_PASSWORD": PASSWORD, **extra}
    if smtp is not None:
        values.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port), SMTP_SECURITY="none", SEND_RATE="0")
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    (project / ".env").chmod(0o600)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sent_to(server: SmtpServer) -> dict[str, bytes]:
    return {r.rcpt_tos[0]: r.data for r in server.received}


def unsubscribe_subject(message: bytes) -> str:
    header = email.message_from_bytes(message)["List-Unsubscribe"]
    return unquote(re.search(r"subject=([^&>]+)", header).group(1))


def seed(imap: ImapServer, sent: dict[str, bytes], m: list[str]) -> None:
    """The mailbox a day after the send: four bounce formats, three unsubscribe mails, and the rest."""
    foreign = sent[m[8]].replace(b"Message-ID: <", b"Message-ID: <not-from-the-newsletter.")
    for raw in [samples.exchange_online(m[0], sent[m[0]]), samples.gmail_mailbox_full(m[1], sent[m[1]]),
                samples.postfix(m[2], sent[m[2]]), samples.qmail(m[3], sent[m[3]]),
                samples.unsubscribe(m[4], unsubscribe_subject(sent[m[4]])),
                samples.unsubscribe(m[5], f"afmelden-{token(m[5], 'a guess at the secret, not it')}"),
                samples.unsubscribe(m[6], "Graag afmelden", "Haal mij alstublieft van de lijst."),
                samples.out_of_office(m[7], "Nieuwsbrief VZHG - september 2025"), samples.ordinary("jan@example.org"),
                samples.postfix(m[8], foreign), samples.malformed(), samples.huge()]:
        imap.append(raw)


@pytest.mark.slow  # a send, a mailbox run and a second send against real servers
def test_one_run_suppresses_exactly_the_verified_and_the_next_send_skips_them(project, imap):
    members = addresses(10)
    with SmtpServer() as smtp:
        first = send(project, smtp, members)
        assert first.sent == 10
        seed(imap, sent_to(smtp), members)
        write_env(project, imap, smtp)
        before = imap.messages()

        dry = run("mailbox", "--dry-run")
        assert dry.exit_code == 0, dry.output
        summary = "1 unsubscribe, 4 bounces: 3 dead, 1 soft; 0 complaints; 0 refused our sending; 5 messages for you"
        assert summary in dry.output
        assert "Dry run: nothing was changed" in dry.output
        assert not (project / "suppressions.csv").exists() and not (project / "mailbox.sqlite").exists()
        assert imap.messages() == before and imap.messages(PROCESSED) == []
        assert not any("\\Seen" in f for f in imap.flags())

        real = run("mailbox")
        assert real.exit_code == 0, real.output
        assert summary in real.output
        rows = list(csv.reader((project / "suppressions.csv").read_bytes().decode("utf-8-sig").splitlines(),
                               delimiter=";"))
        assert rows[0] == ["email", "reason", "date", "edition", "detail"]
        by_address = {row[0]: row for row in rows[1:]}
        assert set(by_address) == {members[0], members[2], members[3], members[4]}
        assert by_address[members[0]][1:2] == ["bounced"] and by_address[members[0]][3] == "2025-09"
        assert by_address[members[0]][4].startswith("5.1.10 550 5.1.10 RESOLVER.ADR.RecipientNotFound")
        assert by_address[members[2]][4].startswith("5.1.1 ")
        assert by_address[members[4]][1] == "unsubscribed"
        moved = imap.messages(PROCESSED)
        assert len(moved) == 6 and len(imap.messages()) == len(before) - 6  # moved, nothing deleted
        assert sorted(moved) == sorted(m for m in before if m not in imap.messages())
        for text in ("not-from-the-newsletter", "token does not belong to any member", "without a token",
                     "too large to check here (20.0 MB", "report cannot be read"):
            assert text in real.output
        left = b"".join(imap.messages())
        assert b"Vraag over het najaarscongres" in left  # ordinary mail stays
        assert b"Automatisch antwoord" in b"".join(moved)  # the auto-reply is filed: never listed again

        suppressed_file = (project / "suppressions.csv").read_bytes()
        again = run("mailbox")  # the second run changes nothing and lists nothing again
        assert "0 unsubscribes, 0 bounces: 0 dead, 0 soft; 0 complaints; 0 refused our sending; 0 messages" in again.output
        assert "5 message(s) listed on an earlier run are still in INBOX" in again.output
        assert "For you to read" not in again.output
        assert (project / "suppressions.csv").read_bytes() == suppressed_file
        assert len(imap.messages(PROCESSED)) == 6

        status = run("status", "2025-09")
        assert "Mailbox: 2 bounced (1 permanent" not in status.output
        assert "Mailbox: 4 bounced (3 permanent, 1 temporary), 1 unsubscribed" in status.output
        assert f"unsubscribed {members[4]}" in status.output

        shutil.copytree(project / "editions" / "2025-09", project / "editions" / "2025-10",
                        ignore=shutil.ignore_patterns("journal*", "build", "outbox", "*.json", ".send.lock"))
        smtp.handler.received.clear()
        write_list(project, members)
        nxt = run("send", "2025-10", "--recipients", "leden.csv", "--yes")
        assert nxt.exit_code == 0, nxt.output
        assert "4 suppressed" in nxt.output
        assert sorted(sent_to(smtp)) == sorted(set(members) - {members[0], members[2], members[3], members[4]})


@pytest.mark.slow  # ~5 s on 2 busy cores (issue 22: make test-fast skips it)
def test_bad_mailbox_settings_give_a_clear_message_and_lose_nothing(project, imap):
    imap.append(samples.ordinary("jan@example.org"))
    write_env(project, imap, IMAP_FOLDER="Bestaat niet")
    result = CliRunner().invoke(cli, ["mailbox"])
    assert result.exit_code == 1
    assert_no_traceback(result)
    assert "The folder 'Bestaat niet' does not exist" in result.output and "INBOX" in result.output

    write_env(project, imap, IMAP_PASSWORD="fout-wachtwoord")
    result = CliRunner().invoke(cli, ["mailbox"])
    assert result.exit_code == 1 and "the login as nieuwsbrief@vzhg.nl was refused" in result.output
    assert "fout-wachtwoord" not in result.output

    write_env(project, imap, IMAP_HOST="")
    result = CliRunner().invoke(cli, ["mailbox"])
    assert result.exit_code != 0 and ".env:2: IMAP_HOST is empty" in result.output

    other_ca = project / "other-ca.pem"
    import trustme

    trustme.CA().cert_pem.write_to_path(str(other_ca))
    write_env(project, imap, SMTP_CA_FILE=str(other_ca))
    result = CliRunner().invoke(cli, ["mailbox"])
    assert result.exit_code == 1 and "certificate cannot be trusted" in result.output
    assert len(imap.messages()) == 1 and not (project / "suppressions.csv").exists()


@pytest.mark.parametrize("capability", [None, "IMAP4rev1 UIDPLUS", "IMAP4rev1"],
                         ids=["move", "copy-and-expunge-one", "copy-and-flag"])
def test_processed_mail_reaches_a_non_ascii_folder_with_or_without_move(project, tmp_path, capability):
    """The processed folder's name in modified UTF-7 (RFC 3501 5.1.3, worked out by hand here), and the message
    moved there whether the server has MOVE, only UIDPLUS (COPY, then expunge only it) or neither (COPY, then
    flag it deleted: a plain EXPUNGE would remove what others flagged too)."""
    folder, on_the_wire = "Afgehandeld & Één", "Afgehandeld &- &AMkA6Q-n"
    with ImapServer(tmp_path, capability=capability) as imap:
        imap.append(samples.out_of_office("jan@example.org", "Nieuwsbrief VZHG - september 2025"))
        imap.append(samples.ordinary("piet@example.org"))
        write_env(project, imap, IMAP_PROCESSED_FOLDER=folder)
        first = run("mailbox")
        assert first.exit_code == 0, first.output
        assert [b"Automatisch antwoord" in m for m in imap.messages(on_the_wire)] == [True]
        left = imap.messages()
        flags = imap.flags()
        if capability == "IMAP4rev1":  # copied, and the original only flagged: the other message untouched
            assert len(left) == 2 and sum("\\Deleted" in f for f in flags) == 1
        else:
            assert len(left) == 1 and b"Automatisch antwoord" not in left[0]
        again = run("mailbox")  # the flagged original is not read again: still one copy
        assert again.exit_code == 0 and len(imap.messages(on_the_wire)) == 1


def test_the_server_going_away_while_moving_loses_nothing(project, imap, monkeypatch):
    """Everything learned is written before the first message is moved: a run cut off halfway is finished by
    the next one, and no member is lost or suppressed twice."""
    from newsletter_cli.mailbox.imap import Mailbox

    members = addresses(3)
    with SmtpServer() as smtp:
        send(project, smtp, members)
        for member in members:
            imap.append(samples.postfix(member, sent_to(smtp)[member]))
    write_env(project, imap)
    real_move, moves = Mailbox.move, []

    def move_then_lose_the_server(self, uid, folder):
        if len(moves) == 1:
            imap.halt()
        moves.append(uid)
        real_move(self, uid, folder)

    monkeypatch.setattr(Mailbox, "move", move_then_lose_the_server)
    broken = CliRunner().invoke(cli, ["mailbox"])
    assert broken.exit_code == 1 and "broke" in broken.output and "Nothing is lost" in broken.output
    assert_no_traceback(broken)
    assert read_suppressions(project / "suppressions.csv") == set(members)  # written before the moves
    monkeypatch.setattr(Mailbox, "move", real_move)
    imap.start()
    assert len(imap.messages()) == 2 and len(imap.messages(PROCESSED)) == 1
    again = run("mailbox")
    assert "3 bounces: 3 dead" not in again.output and "2 bounces: 2 dead, 0 soft" in again.output
    assert len(imap.messages()) == 0 and len(imap.messages(PROCESSED)) == 3
    rows = (project / "suppressions.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == 4  # the header and each member once


def test_xoauth2_login_with_the_token_of_the_oauth_sign_in(project, tmp_path):
    """The OAuth sign-in's token (here SMTP_OAUTH_TOKEN_COMMAND) logs in to the mailbox with XOAUTH2."""
    script = tmp_path / "token.py"
    script.write_text("print('a-fresh-access-token')\n", encoding="utf-8")
    with ImapServer(tmp_path, tokens={"a-fresh-access-token": USER}) as imap:
        imap.append(samples.ordinary("jan@example.org"))
        write_env(project, imap, IMAP_PASSWORD="", SMTP_USERNAME=USER,
                  SMTP_OAUTH_TOKEN_COMMAND=f"{sys.executable} {script}")
        result = run("mailbox")
        assert result.exit_code == 0, result.output
        assert "0 unsubscribes, 0 bounces" in result.output and "1 other message(s)" in result.output
        script.write_text("print('an-expired-token')\n", encoding="utf-8")
        refused = CliRunner().invoke(cli, ["mailbox"])
        assert refused.exit_code == 1 and "the login as nieuwsbrief@vzhg.nl was refused" in refused.output
        assert "IMAP.AccessAsUser.All" in refused.output  # the OAuth advice, not the password one
        assert "expired-token" not in refused.output
        assert_no_traceback(refused)


def test_a_password_with_letters_outside_ascii_logs_in(project, tmp_path):
    """AUTH=PLAIN where the server has it: IMAP's LOGIN command cannot carry 'é' or '€'."""
    password = "Wachtwoord-één-€5"
    with ImapServer(tmp_path, password=password) as imap:
        imap.append(samples.ordinary("jan@example.org"))
        write_env(project, imap, IMAP_PASSWORD=password)
        result = CliRunner().invoke(cli, ["mailbox"])
        assert_no_traceback(result)
        assert result.exit_code == 0 and "1 other message(s)" in result.output, result.output


def test_nothing_listening_and_no_password_are_clear_messages(project, imap):
    import socket as sockets

    with sockets.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    write_env(project, imap, IMAP_PORT=str(free))
    nobody = CliRunner().invoke(cli, ["mailbox"])
    assert_no_traceback(nobody)
    assert nobody.exit_code == 1 and f"IMAP server 127.0.0.1:{free}: cannot connect (connection refused: " \
        "nothing listens on that port). Check IMAP_HOST and IMAP_PORT" in nobody.output
    write_env(project, imap, IMAP_PASSWORD="")
    no_password = CliRunner().invoke(cli, ["mailbox"])
    assert_no_traceback(no_password)
    assert no_password.exit_code != 0 and "IMAP_PASSWORD is empty; the mailbox needs a login" in no_password.output


def _journal(project: Path, edition: str, rows: list[tuple[str, str]]) -> None:
    """A send journal in which each (address, Message-ID) was sent, written through the journal's own API."""
    folder = project / "editions" / edition
    if not folder.exists():
        shutil.copytree(project / "editions" / "2025-09", folder, ignore=shutil.ignore_patterns("journal*"))
    with Journal(folder / JOURNAL_FILE) as journal:
        journal.claim(folder)
        journal.add([address for address, _ in rows])
        for address, message_id in rows:
            journal.mark_sending(address, "fp", message_id)
            journal.mark(address, "sent", "250 OK")


def test_temporary_bounces_on_three_editions_in_a_row_suppress(project):
    member = "vol@example.org"
    for n, edition in enumerate(("2025-07", "2025-08", "2025-09")):
        _journal(project, edition, [(member, f"<{edition}.{n}@vzhg.nl>"), ("ander@example.org", f"<x{n}@vzhg.nl>")])
    sent = mailbox_record.read_sent(Project(project))
    tokens = judge.Tokens(["s" * 32], sent)
    wanted = []
    with mailbox_record.record(Project(project)) as record:
        for n, edition in enumerate(("2025-07", "2025-08", "2025-09")):
            original = f"Message-ID: <{edition}.{n}@vzhg.nl>\r\nSubject: x\r\n\r\nx\r\n".encode()
            raw = samples.gmail_mailbox_full(member, original)
            action = judge.judge(Fetched(str(n), len(raw), raw, raw), sent, tokens)
            assert isinstance(action, judge.Action) and (action.kind, action.edition) == ("temporary", edition)
            wanted = inbox._suppressions_for([action], record, sent)
            if edition != "2025-09":
                assert wanted == []  # one or two in a row: only counted
        assert [(w.email, w.reason) for w in wanted] == [(member, "bounced")]
        assert "3 editions in a row (2025-07, 2025-08, 2025-09)" in wanted[0].detail
        # the same report read again is not counted twice
        assert record.add("2025-09", member, "temporary", "x") is False


def test_suppress_and_unsuppress_commands(project):
    result = run("suppress", "Kees@Example.org", "--reason", "requested", "--detail", "belde 3 oktober")
    assert result.exit_code == 0 and "Added Kees@example.org" in result.output
    assert "already in" in run("suppress", "kees@example.org").output
    assert read_suppressions(project / "suppressions.csv") == {"kees@example.org"}
    bad = CliRunner().invoke(cli, ["suppress", "geen-adres"])
    assert bad.exit_code != 0 and "not a valid email address" in bad.output
    removed = run("unsuppress", "KEES@example.org")
    assert removed.exit_code == 0 and "reason: requested" in removed.output
    assert read_suppressions(project / "suppressions.csv") == set()
    missing = CliRunner().invoke(cli, ["unsuppress", "kees@example.org"])
    assert missing.exit_code != 0 and "is not in suppressions.csv" in missing.output


CORPUS = Path("/work/shared/bounce-corpus/samples")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the bounce corpus is not on this machine")
def test_what_the_bounce_library_trips_over_goes_to_the_error_log_and_the_run_goes_on(project, imap):
    """A real qmail bounce without its From line trips a flufl.bounce detector (an IndexError): the run carries
    on, reads the bounce all the same, and mailbox-errors.log names the message and what tripped."""
    raw = (CORPUS / "bsd" / "lhost-qmail-01.eml").read_bytes()
    without_from = re.sub(rb"(?m)^From: MAILER-DAEMON@mx4\.example\.jp\r?\n", b"", raw, count=1)
    assert without_from != raw
    imap.append(without_from)
    imap.append(samples.out_of_office("jan@example.org", "Nieuwsbrief VZHG - september 2025"))
    write_env(project, imap)
    log = project / inbox.ERROR_LOG
    dry = run("mailbox", "--dry-run")
    assert dry.exit_code == 0 and not log.exists()  # a dry run writes nothing, not even the log
    real = run("mailbox")
    assert real.exit_code == 0, real.output
    assert "kijitora@example.ne.jp" in real.output  # the bounce was read all the same (not from our send: listed)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines and all("subject failure notice" in line and "flufl.bounce" in line for line in lines)
    assert any("IndexError" in line and "Yale" in line for line in lines)
    assert "Automatisch antwoord" not in log.read_text(encoding="utf-8")  # only the message that tripped
    assert "mailbox-errors.log" in (Path(__file__).parent.parent / "newsletter_cli" / "compose" / "starter_files"
                                    / "gitignore").read_text(encoding="utf-8").split()


def test_a_processed_folder_the_server_cannot_create_is_a_clear_message(project, imap):
    """A folder name longer than the server takes: the message says what to do, and the message stays put."""
    name = "Verwerkt " + "x" * 300
    imap.append(samples.out_of_office("jan@example.org", "Nieuwsbrief VZHG - september 2025"))
    write_env(project, imap, IMAP_PROCESSED_FOLDER=name)
    result = CliRunner().invoke(cli, ["mailbox"])
    assert_no_traceback(result)
    assert result.exit_code == 1 and f"cannot create the folder '{name}' for the processed messages" in \
        result.output and "set IMAP_PROCESSED_FOLDER to an existing folder" in result.output, result.output
    assert len(imap.messages()) == 1
