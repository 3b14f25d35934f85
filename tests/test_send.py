"""Sending through a real SMTP server (aiosmtpd on 127.0.0.1) with faults injected by the server."""

from __future__ import annotations

import email
import email.policy
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.deliver.request import MemberList, SendRequest, Tuning
from newsletter_cli.deliver.send import run_send
from newsletter_cli.deliver.workers import Hooks
from newsletter_cli.members.journal import Journal
from newsletter_cli.members.status import status
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings

from helpers import FakeClock
from smtp_server import SmtpServer

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "Geheim-wachtwoord-42!"
FROM = "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>"


def addresses(n: int) -> list[str]:
    return [f"lid{i:03d}@example.org" for i in range(n)]


def write_list(folder: Path, emails: list[str], name: str = "leden.csv") -> Path:
    rows = "".join(f"{e};Lid {e.split('@')[0]}\r\n" for e in emails)
    path = folder / name
    path.write_bytes(("\ufeffemail;name\r\n" + rows).encode("utf-8"))
    return path


def settings_for(server: SmtpServer, **extra: str):
    values = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(server.port), "SMTP_SECURITY": "none",
              "NEWSLETTER_FROM": FROM, "SEND_RATE": "0", **extra}
    return parse_settings(values, {})


def send(project: Path, server: SmtpServer, emails: list[str] | None = None, **options):
    settings = options.pop("settings", None) or settings_for(server)
    listing = write_list(project, emails) if emails is not None else project / "leden.csv"
    tuning = Tuning(retry_delays=tuple(options.pop("delays", (0, 0))),
                    reconnect_delays=tuple(options.pop("reconnect", (0, 0))), limiter=options.pop("limiter", None))
    hooks = Hooks(**{name: options.pop(name) for name in ("confirm", "progress", "notify") if name in options})
    request = SendRequest("2025-09", MemberList(listing), **options)
    return run_send(request, Project(project).using(settings), hooks, tuning)


def journal_states(project: Path) -> dict[str, str]:
    with Journal(project / "editions" / "2025-09" / "journal.sqlite") as journal:
        return journal.states()


@pytest.mark.slow  # ~4 s on 2 busy cores (issue 22: make test-fast skips it)
def test_every_recipient_gets_exactly_one_message_over_three_connections(project):
    emails = addresses(30)
    with SmtpServer() as server:
        result = send(project, server, emails, settings=settings_for(server, SEND_CONNECTIONS="3"))
        assert (result.sent, result.failed, result.deferred, result.stopped) == (30, 0, 0, None)
        assert sorted(to for r in server.received for to in r.rcpt_tos) == emails
        assert all(r.mail_from == "nieuwsbrief@vzhg.nl" for r in server.received)
        message = server.received[0]
        assert b"\n" not in message.data.replace(b"\r\n", b"")
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        assert parsed["To"].addresses[0].addr_spec == message.rcpt_tos[0]
        assert parsed.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
        assert len({email.message_from_bytes(r.data)["Message-ID"] for r in server.received}) == 30
        again = send(project, server)  # the same command again: everyone was sent, nothing goes out
        assert again.sent == 0 and len(server.received) == 30
    assert set(journal_states(project).values()) == {"sent"}


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_451_retried_550_fails_one_dropped_connection_reconnects(project, pipelining):
    emails = addresses(12)
    with SmtpServer(defer_once={emails[1], emails[5]}, reject={emails[3]}, drop_once={emails[7]},
                    drop_after=4, pipelining=pipelining) as server:
        result = send(project, server, emails)
        assert result.sent == 11 and result.failed == 1 and result.deferred == 0
        for address in emails:
            assert server.count_for(address) == (0 if address == emails[3] else 1), address
    states = journal_states(project)
    assert states[emails[3]] == "failed" and list(states.values()).count("sent") == 11
    (problem,) = status(project / "editions" / "2025-09").problems
    assert problem.email == emails[3] and problem.reply.startswith("550 5.1.1")


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_persistent_451_is_deferred_then_sent_on_the_next_run(project, pipelining):
    emails = addresses(3)
    with SmtpServer(defer_always={emails[1]}, pipelining=pipelining) as server:
        result = send(project, server, emails, delays=(0, 0))
        assert (result.sent, result.deferred) == (2, 1)
        assert result.failures[0][2].startswith("451 4.3.0")
        assert journal_states(project)[emails[1]] == "deferred"
        server.handler.faults.defer_always.clear()
        again = send(project, server)
        assert (again.sent, again.deferred) == (1, 0)
        assert [server.count_for(a) for a in emails] == [1, 1, 1]


def test_limit_sends_the_first_n_not_yet_sent(project):
    emails = addresses(5)
    with SmtpServer() as server:
        assert send(project, server, emails, limit=2).sent == 2
        assert send(project, server, limit=2).sent == 2
        assert send(project, server).sent == 1
        assert [server.count_for(a) for a in emails] == [1] * 5


def test_rebuild_after_partial_send_does_not_resend(project):
    emails = addresses(4)
    with SmtpServer() as server:
        send(project, server, emails, limit=2)
        edition = project / "editions" / "2025-09" / "edition.yaml"
        edition.write_text(edition.read_text(encoding="utf-8").replace("Beste lezer", "Geachte lezer"), "utf-8")
        result = send(project, server)
        assert result.sent == 2
        assert any("the edition changed since the send began" in w for w in result.plan.warnings)
        assert [server.count_for(a) for a in emails] == [1] * 4


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_quota_stops_cleanly_and_resumes(project, pipelining):
    emails = addresses(6)
    with SmtpServer(quota_after=2, pipelining=pipelining) as server:
        result = send(project, server, emails)
        assert result.sent == 2 and result.quota
        assert "SubmissionQuotaExceeded" in result.stopped and "run the same command again" in result.stopped
        assert "blocked from sending for up to 24 hours" in result.stopped and "--limit" in result.stopped
        from newsletter_cli.deliver.send import result_lines

        assert "Not sent yet: 4; at" in "\n".join(result_lines(result))
        assert list(journal_states(project).values()).count("pending") == 4
        server.handler.faults.quota_after = None
        assert send(project, server).sent == 4
        assert [server.count_for(a) for a in emails] == [1] * 6


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_ten_refusals_in_a_row_stop_the_send(project, pipelining):
    emails = addresses(15)
    with SmtpServer(reject=set(emails[:12]), pipelining=pipelining) as server:
        result = send(project, server, emails)
    assert result.failed == 10 and "10 messages in a row were refused" in result.stopped


def test_refused_connection_stops_at_once(project):
    with SmtpServer() as server:
        settings = settings_for(server)
    result = send(project, server, addresses(3), settings=settings)  # the server is gone now
    assert result.sent == 0 and "failed to connect: connection refused" in result.stopped
    assert set(journal_states(project).values()) == {"pending"}


def test_auth_failure_stops_at_once_without_retry_storm(project):
    with SmtpServer(users={"nb": PASSWORD}) as server:
        settings = settings_for(server, SMTP_USERNAME="nb", SMTP_PASSWORD="wrong")
        result = send(project, server, addresses(5), settings=settings)
        assert result.sent == 0 and "login refused (535" in result.stopped
        assert len(server.auth_attempts) == 1


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    from smtp_server import make_tls

    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_with_private_ca_and_auth(project, tls, mechanism):
    ca_file, context, _ = tls
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    with SmtpServer(tls=context, users={"nb@vzhg.nl": PASSWORD}, auth_exclude=(other,)) as server:
        settings = settings_for(server, SMTP_SECURITY="starttls", SMTP_CA_FILE=str(ca_file),
                                SMTP_USERNAME="nb@vzhg.nl", SMTP_PASSWORD=PASSWORD)
        result = send(project, server, addresses(3), settings=settings)
        assert result.sent == 3
        assert server.auth_attempts == [(mechanism, "nb@vzhg.nl")] * 1
        assert all(r.login == "nb@vzhg.nl" for r in server.received)


def test_implicit_tls(project, tls):
    ca_file, context, _ = tls
    with SmtpServer(tls=context, implicit_tls=True) as server:
        settings = settings_for(server, SMTP_SECURITY="ssl", SMTP_CA_FILE=str(ca_file))
        assert send(project, server, addresses(2), settings=settings).sent == 2


def test_untrusted_certificate_fails_with_a_clear_message(project, tls):
    _, context, _ = tls
    with SmtpServer(tls=context) as server:
        result = send(project, server, addresses(2), settings=settings_for(server, SMTP_SECURITY="starttls"))
        assert result.sent == 0 and len(server.received) == 0
    assert "certificate is not trusted" in result.stopped and "SMTP_CA_FILE" in result.stopped


def test_password_over_plaintext_to_a_remote_host_is_refused(project):
    settings = parse_settings({"SMTP_HOST": "smtp.example.org", "SMTP_SECURITY": "none", "SMTP_USERNAME": "u",
                               "SMTP_PASSWORD": PASSWORD, "NEWSLETTER_FROM": FROM}, {})
    result = run_send(SendRequest("2025-09", MemberList(write_list(project, addresses(1)))),
                      Project(project).using(settings))
    assert "unencrypted" in result.stopped and PASSWORD not in result.stopped


def token_command(folder: Path, token: str) -> str:
    script = folder / "token.py"
    script.write_text(f"print('some log line')\nprint({token!r})\n")
    return f"{sys.executable} {script}"


def test_xoauth2(project, tls):
    ca_file, context, _ = tls
    with SmtpServer(tls=context, tokens={"nb@vzhg.nl": "good-token"}) as server:
        base = dict(SMTP_SECURITY="starttls", SMTP_CA_FILE=str(ca_file), SMTP_USERNAME="nb@vzhg.nl")
        bad = settings_for(server, SMTP_OAUTH_TOKEN_COMMAND=token_command(project, "expired"), **base)
        result = send(project, server, addresses(2), settings=bad)
        assert result.sent == 0 and "login refused (535" in result.stopped and "expired" not in result.stopped
        good = settings_for(server, SMTP_OAUTH_TOKEN_COMMAND=token_command(project, "good-token"), **base)
        assert send(project, server, settings=good).sent == 2
        assert {r.login for r in server.received} == {"nb@vzhg.nl"}


def test_failing_token_command_is_reported(project):
    with SmtpServer() as server:
        settings = settings_for(server, SMTP_USERNAME="nb", SMTP_OAUTH_TOKEN_COMMAND=f"{sys.executable} -c 'import sys; sys.exit(3)'")
        result = send(project, server, addresses(1), settings=settings)
    assert f"SMTP_OAUTH_TOKEN_COMMAND ({sys.executable} ...) failed (exit status 3)" in result.stopped
    assert "sys.exit" not in result.stopped  # its arguments may hold a secret: never shown


# --- the command line -------------------------------------------------------------------------------

def write_env(project: Path, server: SmtpServer, **extra: str) -> None:
    values = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": server.port, "SMTP_SECURITY": "none", "NEWSLETTER_FROM": FROM,
              "SEND_RATE": 0, "REVIEW_LIST": "review.csv", **extra}
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    (project / ".env").chmod(0o600)


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_cli_test_send_then_real_send(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_RETRY_DELAYS", "0")
    runner = CliRunner()
    write_list(project, ["redactie@vzhg.nl", "secretariaat@vzhg.nl"], "review.csv")
    write_list(project, addresses(4))
    with SmtpServer() as server:
        write_env(project, server)
        result = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv"])
        assert result.exit_code == 1 and "NEVER TEST-SENT" in result.output
        assert "no terminal to ask for confirmation" in result.output and not server.received
        test = runner.invoke(cli, ["send", "2025-09", "--test"])
        assert test.exit_code == 0, test.output
        assert sorted(to for r in server.received for to in r.rcpt_tos) == ["redactie@vzhg.nl", "secretariaat@vzhg.nl"]
        subject = email.message_from_bytes(server.received[0].data, policy=email.policy.default)["Subject"]
        assert subject == "[TEST] Nieuwsbrief VZHG - september 2025"
        assert not (project / "editions" / "2025-09" / "journal.sqlite").exists()
        assert json.loads((project / "editions" / "2025-09" / "test-sends.json").read_text())
        to = runner.invoke(cli, ["send", "2025-09", "--test", "--to", "ik@example.org"])
        assert to.exit_code == 0 and server.count_for("ik@example.org") == 1
        real = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert real.exit_code == 0, real.output
        assert "NEVER TEST-SENT" not in real.output and "test-sent" in real.output
        assert "4 recipients (4 rows: 0 invalid, 0 duplicate, 0 suppressed)" in real.output
        assert "Send: 4 sent, 0 failed, 0 deferred" in real.output
        assert all(server.count_for(a) == 1 for a in addresses(4))
        confirm = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert "Send: 0 sent" in confirm.output and "4 already sent (skipped)" in confirm.output
    status_text = runner.invoke(cli, ["status", "2025-09"])
    assert "4 sent" in status_text.output
    report = json.loads(runner.invoke(cli, ["status", "2025-09", "--json"]).output)
    assert report["counts"]["sent"] == 4


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_a_test_to_reserved_example_names_never_counts_as_tested(project, monkeypatch):
    """review.example.csv's example.org addresses reach nobody: such a test does not silence the warning."""
    monkeypatch.setenv("NEWSLETTER_RETRY_DELAYS", "0")
    runner = CliRunner()
    write_list(project, ["redactie@example.org", "lid@vzhg.test", "x@localhost"], "review.csv")
    write_list(project, addresses(2))
    with SmtpServer() as server:
        write_env(project, server)
        test = runner.invoke(cli, ["send", "2025-09", "--test"])
        assert test.exit_code == 0, test.output
        assert server.count_for("redactie@example.org") == 1  # it was sent ...
        assert "is NOT marked as test-sent" in test.output and "reserved example name" in test.output
        assert not (project / "editions" / "2025-09" / "test-sends.json").exists()  # ... but not counted
        real = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert "NEVER TEST-SENT" in real.output
        # A record from before 0.2.0 that counted an example-only test is not believed either.
        fingerprint = re.search(r"This build \((\w+)\) is NOT marked", test.output)
        assert fingerprint
        fp = fingerprint.group(1)
        (project / "editions" / "2025-09" / "test-sends.json").write_text(json.dumps(
            {fp: {"time": "2025-09-01 10:00", "to": ["redactie@example.org"]}}))
        still = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert "NEVER TEST-SENT" in still.output
        counted = runner.invoke(cli, ["send", "2025-09", "--test", "--to", "redactie@example.org", "--to",
                                      "redactie@vzhg.nl"])
        assert "is now marked as test-sent" in counted.output
        assert json.loads((project / "editions" / "2025-09" / "test-sends.json").read_text())[fp]["to"] == [
            "redactie@vzhg.nl"]


@pytest.mark.parametrize(("address", "is_reserved"), [
    ("a@example.org", True), ("a@EXAMPLE.com", True), ("a@mail.example.net", True), ("a@x.test", True),
    ("a@x.invalid", True), ("a@localhost", True), ("a@printer.local", True), ("a@example", True),
    ("a@router.home.arpa", True), ("a@vzhg.nl", False), ("a@example.nl", False), ("a@notexample.org", False),
    ("a@test.nl", False), ("a@gmail.com", False),
])
def test_reserved_names(address, is_reserved):
    from newsletter_cli.members.testsends import reserved

    assert reserved(address) is is_reserved


def test_cli_usage_errors(project):
    runner = CliRunner()
    assert runner.invoke(cli, ["send", "2025-09"]).exit_code == 2
    assert runner.invoke(cli, ["send", "2025-09", "--test", "--recipients", "x.csv"]).exit_code == 2
    assert runner.invoke(cli, ["send", "2025-09", "--to", "a@b.nl"]).exit_code == 2


def test_cli_without_smtp_host_writes_the_outbox(project):
    (project / ".env").write_text(f"NEWSLETTER_FROM={FROM}\n")
    (project / ".env").chmod(0o600)
    write_list(project, addresses(3))
    result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv"])
    assert result.exit_code == 0, result.output
    assert "NOTHING WAS SENT (SMTP_HOST is not set): 3 messages written to editions/2025-09/outbox/" in result.output
    files = sorted((project / "editions" / "2025-09" / "outbox").glob("*.eml"))
    assert len(files) == 3
    assert email.message_from_bytes(files[0].read_bytes())["To"] == "Lid lid000 <lid000@example.org>"
    assert not (project / "editions" / "2025-09" / "journal.sqlite").exists()


def test_summary_warns_when_check_finds_errors(project):
    """A send (here a dry run to the outbox) shows `newsletter check`'s errors before it asks: a placeholder
    left from `newsletter new` is an error the secretariat must see before anything goes out."""
    (project / ".env").write_text(f"NEWSLETTER_FROM={FROM}\n")
    (project / ".env").chmod(0o600)
    write_list(project, addresses(2))
    clean = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"])
    assert clean.exit_code == 0, clean.output
    assert "`newsletter check` finds" not in clean.output
    edition = project / "editions" / "2025-09" / "edition.yaml"
    edition.write_text(edition.read_text(encoding="utf-8").replace(
        'title: "Najaarscongres 21 november"', 'title: "Titel van het bericht"', 1), encoding="utf-8")
    result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "`newsletter check` finds 1 error, " in result.output and "fix the errors before sending" in result.output
    assert "placeholder text 'Titel van het bericht' is still there" in result.output


def test_dry_run_and_password_never_leaks(project, tls):
    ca_file, context, _ = tls
    write_list(project, addresses(3) + ["bad@"])
    with SmtpServer(tls=context, users={"nb@vzhg.nl": PASSWORD}, reject={addresses(3)[2]}) as server:
        write_env(project, server, SMTP_SECURITY="starttls", SMTP_CA_FILE=ca_file, SMTP_USERNAME="nb@vzhg.nl",
                  SMTP_PASSWORD=PASSWORD)
        runner = CliRunner()
        outputs = [runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"]).output]
        assert "NOTHING WAS SENT (--dry-run): 3 messages" in outputs[0] and not server.received
        outputs.append(runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"]).output)
        outputs += [runner.invoke(cli, args).output for args in (["doctor"], ["status", "2025-09", "--json"],
                                                                 ["send", "--help"])]
        assert len(server.received) == 2
    assert "leden.csv:5: 'bad@' is not a valid email address" in outputs[1]
    for text in outputs:
        assert PASSWORD not in text
    folder = project / "editions" / "2025-09"
    for path in folder.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_doctor_reports_each_step(project, tls):
    ca_file, context, _ = tls
    with SmtpServer(tls=context, users={"nb@vzhg.nl": PASSWORD}) as server:
        write_env(project, server, SMTP_SECURITY="starttls", SMTP_CA_FILE=ca_file, SMTP_USERNAME="nb@vzhg.nl",
                  SMTP_PASSWORD=PASSWORD)
        ok = CliRunner().invoke(cli, ["doctor"])
        assert ok.exit_code == 0, ok.output
        for step in ("connected to 127.0.0.1", "STARTTLS: certificate verified", "authenticated as nb@vzhg.nl",
                     "sender nieuwsbrief@vzhg.nl: 250", "nothing was sent"):
            assert step in ok.output
        write_env(project, server, SMTP_SECURITY="starttls", SMTP_USERNAME="nb@vzhg.nl", SMTP_PASSWORD=PASSWORD)
        bad = CliRunner().invoke(cli, ["doctor"])
        assert bad.exit_code == 1 and "FAILED" in bad.output and "certificate is not trusted" in bad.output
        assert not server.received


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_three_connections_with_faults_deliver_each_once(project, pipelining):
    emails = addresses(40)
    with SmtpServer(defer_once=set(emails[::7]), drop_once=set(emails[3::9]), reject={emails[10]},
                    drop_after=6, pipelining=pipelining) as server:
        result = send(project, server, emails, settings=settings_for(server, SEND_CONNECTIONS="3"))
        assert (result.sent, result.failed, result.deferred) == (39, 1, 0)
        assert [server.count_for(a) for a in emails] == [0 if a == emails[10] else 1 for a in emails]


@pytest.mark.parametrize("stage, code, reply, kind", [
    ("RCPT TO", 451, "451 4.7.500 Server busy", "Temporary"),
    ("DATA", 421, "421 4.4.2 closing", "Temporary"),
    ("RCPT TO", 550, "550 5.1.10 RESOLVER.ADR.RecipientNotFound", "Permanent"),
    ("DATA", 554, "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", "Fatal"),
    ("MAIL FROM", 550, "550 5.2.253 exceeded the sending limit", "Fatal"),
    ("DATA", 554, "554 5.2.0 STOREDRV.Submission.Exception:RecipientRateLimitExceededException", "Fatal"),
    ("MAIL FROM", 554, "554 5.2.252 SendAsDenied; nb@vzhg.nl not allowed to send as info@vzhg.nl", "Fatal"),
    ("MAIL FROM", 550, "550 5.7.60 SMTP; Client does not have permissions to send as this sender", "Fatal"),
    ("MAIL FROM", 530, "530 5.7.57 Client not authenticated", "Fatal"),
])
def test_replies_are_classified(stage, code, reply, kind):
    from newsletter_cli.deliver.replies import classify

    outcome = classify(stage, code, reply)
    assert type(outcome).__name__ == kind
    assert getattr(outcome, "quota", False) == (("Quota" in reply or "RateLimit" in reply or "5.2.25" in reply)
                                                and "SendAsDenied" not in reply)


def test_server_as_a_separate_process_spools_messages(project):
    import subprocess

    spool = project / "spool"
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "smtp_server.py"), "--spool", str(spool),
                               "--reject", "lid001@example.org"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        settings = parse_settings({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
                                   "NEWSLETTER_FROM": FROM, "SEND_RATE": "0"}, {})
        result = run_send(SendRequest("2025-09", MemberList(write_list(project, addresses(3)))),
                          Project(project).using(settings), tuning=Tuning(retry_delays=()))
        assert (result.sent, result.failed) == (2, 1)
    finally:
        server.kill()
        server.wait()
    from smtp_server import read_spool

    received = read_spool(spool)
    assert [r.rcpt_tos for r in received] == [["lid000@example.org"], ["lid002@example.org"]]
    assert received[0].data.startswith(b"Date: ")


def test_rate_limit_applies_to_the_send(project):
    from newsletter_cli.deliver.ratelimit import RateLimiter

    clock = FakeClock(0.0)
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    with SmtpServer() as server:
        result = send(project, server, addresses(5), limiter=limiter,
                      settings=settings_for(server, SEND_CONNECTIONS="3"))
        assert result.sent == 5 and len(server.received) == 5
    assert clock.now >= 120  # 5 messages at 2 a minute: the third and fifth waited a full window each


@pytest.mark.parametrize("body", [
    b"Subject: dots\r\n\r\n.starts with a dot\r\nmiddle\r\n.\r\n..two dots\r\n...three\r\nend .\r\n",
    b".the very first byte is a dot\r\n\r\nx\r\n",
    b"Subject: none\r\n\r\nno line starts with a dot. None. At all.\r\n",
    b"Subject: no final line break\r\n\r\n.last line",
])
def test_dot_stuffing_reaches_the_server_intact(body):
    """A line starting with '.' (even a lone '.') must arrive as written: the server un-stuffs what we stuff."""
    from newsletter_cli.deliver.smtp import Connection

    with SmtpServer() as server:
        connection = Connection(settings_for(server))
        try:
            reply = connection.send("nieuwsbrief@vzhg.nl", "a@example.org", body)
        finally:
            connection.close()
        assert reply.startswith("250")
        expected = body if body.endswith(b"\r\n") else body + b"\r\n"
        assert [r.data for r in server.received] == [expected]


def test_pipelining_is_used_when_offered():
    """MAIL, RCPT and DATA go in one write when the server offers PIPELINING (RFC 2920), one by one otherwise."""
    from newsletter_cli.deliver.smtp import Connection

    for offered in (True, False):
        with SmtpServer(pipelining=offered) as server:
            connection = Connection(settings_for(server))
            try:
                connection.open()
                assert connection.pipelining is offered
                assert connection.send("nieuwsbrief@vzhg.nl", "a@example.org", b"Subject: x\r\n\r\nx\r\n").startswith("250")
            finally:
                connection.close()
            assert len(server.received) == 1


class _ScriptedSMTP:
    """Stands in for smtplib.SMTP: scripted replies (or a lost connection), records what was sent."""

    does_esmtp = True

    def __init__(self, replies):
        self.replies, self.sent = list(replies), []

    def has_extn(self, name):
        return name == "pipelining"

    def send(self, data):
        self.sent.append(data)

    def getreply(self):
        import smtplib

        if not self.replies:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return self.replies.pop(0)

    def rset(self):
        return 250, b"OK"

    def close(self):
        pass


@pytest.mark.parametrize("replies, kind, sent_data", [
    # refused at MAIL FROM (quota), then the server hangs up: the refusal decides, not the lost connection
    ([(554, b"5.2.0 SubmissionQuotaExceededException")], "Fatal", False),
    # RCPT refused, yet DATA accepted (RFC 2920 says it must not be): the empty message is ended, nothing sent
    ([(250, b"OK"), (550, b"5.1.1 unknown"), (354, b"go"), (554, b"no valid recipients")], "Permanent", False),
    # the connection is lost before the server answered DATA: a temporary failure, the message never went
    ([(250, b"OK"), (250, b"OK")], "Temporary", False),
    ([(250, b"OK"), (250, b"OK"), (354, b"go"), (250, b"queued")], None, True),
])
def test_pipelined_replies_are_read_in_order(replies, kind, sent_data):
    from newsletter_cli.deliver.replies import SendFailure
    from newsletter_cli.deliver.smtp import Connection
    from newsletter_cli.errors import NewsletterError

    connection = Connection(parse_settings({"SMTP_HOST": "127.0.0.1", "NEWSLETTER_FROM": FROM}, {}))
    connection.smtp = fake = _ScriptedSMTP(replies)
    marked = []
    try:
        reply = connection.send("nieuwsbrief@vzhg.nl", "a@example.org", b"x\r\n", before_data=lambda: marked.append(1))
        outcome = None
        assert reply == "250 queued"
    except (SendFailure, NewsletterError) as exc:
        outcome = type(exc).__name__
    assert outcome == kind
    assert fake.sent[0] == b"MAIL FROM:<nieuwsbrief@vzhg.nl>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n"
    assert (b"x\r\n.\r\n" in fake.sent) == sent_data == bool(marked)
    if replies[1:2] == [(550, b"5.1.1 unknown")]:
        assert fake.sent[1] == b".\r\n"
