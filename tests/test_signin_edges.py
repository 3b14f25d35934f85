"""Microsoft 365's set-up day and the year after, through the CLI against the local identity provider
(tests/oauth_provider.py), the real SMTP server (tests/smtp_server.py) and Dovecot: a damaged or unreadable
token cache, a revoked sign-in seen by `doctor` at once, Send As refused after the data found by
`doctor --send-test`, bearer tokens never in clear text, no secret in a message about a token command."""

from __future__ import annotations

import json
import os
import sys

import pytest
from click.testing import CliRunner
from test_oauth import CLIENT, MAILBOX, env, home, idp, oauth_server, tls, write_env  # noqa: F401 - fixtures

from newsletter_cli.account import oauth
from newsletter_cli.cli import cli
from newsletter_cli.settings import parse_settings

from helpers import assert_no_traceback
from smtp_server import SmtpServer

SENDER = "info@vzhg.nl"


def signed_in(project, idp, server, tls_files, **extra: str) -> CliRunner:  # noqa: F811 - the fixture, passed on
    write_env(project, env(idp, server, tls_files[0], **extra))
    runner = CliRunner()
    login = runner.invoke(cli, ["login"])
    assert login.exit_code == 0, login.output
    return runner


def changed_later(path) -> None:
    """Give a tampered cache a modification time after this process last read it, as a change by another
    process (or a crash before this run) has: the tests run every command in one process, which keeps the
    cache it read in memory until the file changes."""
    import time

    later = time.time() + 5
    os.utime(path, (later, later))


def plain(result) -> str:
    """The output, checked for what must never be in it."""
    assert_no_traceback(result)
    assert "JSONDecodeError" not in result.output
    assert "internal error" not in result.output
    return result.output


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_a_cache_cut_off_in_the_middle_names_the_file_and_logout_removes_it(project, home, tls, idp):  # noqa: F811
    with oauth_server(tls, idp) as server:
        runner = signed_in(project, idp, server, tls)
        cache = oauth.cache_location()
        whole = cache.read_text()
        cache.write_text(whole[: len(whole) // 2])  # what a power cut during a refresh would leave
        changed_later(cache)
        for command in (["login", "--status"], ["doctor", "--no-dns"], ["send", "2025-09", "--test"], ["login"]):
            result = runner.invoke(cli, command)
            out = plain(result)
            assert result.exit_code != 0, (command, out)
            assert str(cache) in out and "damaged" in out, (command, out)
            assert "`newsletter logout`" in out and "`newsletter login`" in out, (command, out)
            assert "SMTP_HOST" not in out.split("settings:")[-1].split("\n", 1)[-1], (command, out)
        assert server.received == []
        out = runner.invoke(cli, ["logout"])
        assert out.exit_code == 0 and "could not be used: the file is damaged" in plain(out) and not cache.exists()
        assert runner.invoke(cli, ["login"]).exit_code == 0
        sent = runner.invoke(cli, ["send", "2025-09", "--test"])
        assert sent.exit_code == 0, sent.output


@pytest.mark.slow  # ~2 s on 2 busy cores (issue 22: make test-fast skips it)
def test_a_cache_this_user_cannot_read(project, home, tls, idp):  # noqa: F811
    """Root ignores chmod 000, so the unreadable cache is made the way that works for any user: a folder where
    the file should be (reading it fails with an OSError, as a file owned by another user does). Where the
    tests do not run as root, a chmod 000 file is tried as well."""
    with oauth_server(tls, idp) as server:
        runner = signed_in(project, idp, server, tls)
        cache = oauth.cache_location()
        cache.unlink()
        cache.mkdir()
        (cache / "x").write_text("")
        changed_later(cache)
        sent = runner.invoke(cli, ["send", "2025-09", "--test"])
        out = plain(sent)
        assert sent.exit_code == 1 and str(cache) in out and "there is a folder where the file should be" in out
        assert "Check SMTP_HOST" not in out and "failed to connect" not in out and server.received == []
        status = runner.invoke(cli, ["login", "--status"])
        assert status.exit_code == 1 and "`newsletter logout`" in plain(status)
        gone = runner.invoke(cli, ["logout"])
        assert gone.exit_code == 0 and not cache.exists(), gone.output
        assert runner.invoke(cli, ["login"]).exit_code == 0
        if hasattr(os, "geteuid") and os.geteuid() != 0:
            cache.chmod(0)
            changed_later(cache)
            refused = runner.invoke(cli, ["doctor", "--no-dns"])
            assert refused.exit_code == 1 and "may not read or write it" in plain(refused)
            cache.chmod(0o600)


def test_the_cache_is_written_aside_and_replaced(project, home, tls, idp, monkeypatch):  # noqa: F811
    """A write that fails half-way (a full disk) leaves the previous cache whole, and no stray file."""
    with oauth_server(tls, idp) as server:
        runner = signed_in(project, idp, server, tls)
        cache = oauth.cache_location()
        before = cache.read_text()
        json.loads(before)

        def full_disk(_fd: int) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patched:
            patched.setattr(os, "fsync", full_disk)
            result = runner.invoke(cli, ["doctor", "--no-dns"])  # doctor refreshes, so the cache is written
        assert result.exit_code == 1 and str(cache) in plain(result) and "No space left" in result.output
        assert cache.read_text() == before and list(cache.parent.glob("*.tmp")) == []
        assert runner.invoke(cli, ["doctor", "--no-dns"]).exit_code == 0


def test_doctor_sees_a_revoked_sign_in_at_once(project, home, tls, idp):  # noqa: F811
    """The cached access token is still good for the SMTP server's clock; doctor asks for a new one anyway."""
    with oauth_server(tls, idp) as server:
        runner = signed_in(project, idp, server, tls)
        assert runner.invoke(cli, ["doctor", "--no-dns"]).exit_code == 0
        idp.revoke(MAILBOX)  # an administrator revoked the sign-in; the access token in the cache looks valid
        doctor = runner.invoke(cli, ["doctor", "--no-dns"])
        assert doctor.exit_code == 1 and "FAILED" in doctor.output
        assert "expired or was revoked" in plain(doctor) and "`newsletter login` again" in doctor.output
        status = runner.invoke(cli, ["login", "--status"])
        assert status.exit_code == 1 and "expired or was revoked" in plain(status)


def test_send_as_refused_after_the_data_is_found_by_the_doctors_test_message(project, home, tls, idp):  # noqa: F811
    with SmtpServer(tls=tls[1], token_check=idp.check, send_as_denied={SENDER}) as server:
        runner = signed_in(project, idp, server, tls, NEWSLETTER_FROM=f"VZHG <{SENDER}>")
        doctor = runner.invoke(cli, ["doctor", "--no-dns"])
        out = plain(doctor)
        assert doctor.exit_code == 0 and f"sender {SENDER}: 250" in out  # MAIL FROM alone says nothing
        assert "Send As" in out and "newsletter doctor --send-test" in out and server.received == []
        test = runner.invoke(cli, ["doctor", "--no-dns", "--send-test"])
        out = plain(test)
        assert test.exit_code == 1 and "5.2.252 SendAsDenied" in out
        assert f"Add-RecipientPermission -Identity {SENDER} -Trustee {MAILBOX} -AccessRights SendAs" in out
        assert "sending limit" not in out and server.received == []
        assert "tries it with one message" not in out and "quit; nothing was sent" in out  # no advice to do it again
        (project / "leden.csv").write_text("email\na@example.org\nb@example.org\n")
        sent = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert sent.exit_code == 1 and "Add-RecipientPermission" in plain(sent) and "24 hours" not in sent.output
        server.handler.faults.send_as_denied.clear()  # the administrator granted Send As
        test = runner.invoke(cli, ["doctor", "--no-dns", "--send-test"])
        assert test.exit_code == 0 and f"test message from {SENDER} to {MAILBOX}: 250" in test.output
        assert [(r.mail_from, r.rcpt_tos) for r in server.received] == [(SENDER, [MAILBOX])]


def test_a_bearer_token_never_goes_out_in_clear_text(project, home, tls, idp):  # noqa: F811
    with oauth_server(tls, idp) as server:
        runner = signed_in(project, idp, server, tls)
        values = env(idp, server, tls[0], SMTP_SECURITY="none", SMTP_HOST="192.0.2.1")  # a remote host
        write_env(project, values)
        for command in (["doctor", "--no-dns"], ["send", "2025-09", "--test"]):
            result = runner.invoke(cli, command)
            out = plain(result)
            assert result.exit_code == 1 and "SMTP_SECURITY=none would send the sign-in token" in out, out
            assert "use starttls (port 587) or ssl (port 465)" in out
        assert server.xoauth2_attempts == []


def test_a_token_command_that_times_out_shows_no_secret(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_TOKEN_COMMAND_TIMEOUT", "0.5")
    secret = "client-secret-Zx9q"
    command = f"{sys.executable} -c \"import time; time.sleep(5)\" --client-secret {secret}"
    with SmtpServer(tokens={MAILBOX: "t"}) as server:
        (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={server.port}\nSMTP_SECURITY=none\n"
                                      f"SMTP_USERNAME={MAILBOX}\nNEWSLETTER_FROM={MAILBOX}\nSEND_RATE=0\n"
                                      f"SMTP_OAUTH_TOKEN_COMMAND={command}\n")
        doctor = CliRunner().invoke(cli, ["doctor", "--no-dns"])
        sent = CliRunner().invoke(cli, ["send", "2025-09", "--test", "--to", "a@example.org"])
    for result in (doctor, sent):
        out = plain(result)
        assert result.exit_code == 1 and "did not finish within 0.5 seconds" in out, out
        assert secret not in out and "time.sleep" not in out


def test_a_failing_token_command_that_echoes_its_secret_is_redacted(project):
    secret = "client-secret-Zx9q"
    command = f"{sys.executable} -c \"import sys; sys.exit('bad secret ' + sys.argv[1])\" {secret}"
    with SmtpServer(tokens={MAILBOX: "t"}) as server:
        (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={server.port}\nSMTP_SECURITY=none\n"
                                      f"SMTP_USERNAME={MAILBOX}\nNEWSLETTER_FROM={MAILBOX}\n"
                                      f"SMTP_OAUTH_TOKEN_COMMAND={command}\n")
        doctor = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    assert doctor.exit_code == 1 and "failed (exit status 1): bad " in plain(doctor), doctor.output
    assert secret not in doctor.output


@pytest.mark.parametrize("scopes, permission", [
    (("https://outlook.office365.com/SMTP.Send",), "SMTP.Send"),
    (("https://outlook.office365.com/IMAP.AccessAsUser.All",), "IMAP.AccessAsUser.All"),
])
def test_missing_consent_names_the_permission_that_is_missing(scopes, permission):
    from newsletter_cli.account.refusals import sign_in_error

    settings = parse_settings({"SMTP_USERNAME": MAILBOX, "OAUTH_CLIENT_ID": CLIENT, "OAUTH_TENANT": "vzhg.nl",
                               "NEWSLETTER_FROM": MAILBOX}, {})
    text, _ = sign_in_error({"error": "invalid_grant", "error_description": "AADSTS65001: The user or administrator "
                             "has not consented to use the application."}, settings, scopes)
    assert f"delegated permission {permission} " in text
    assert ("SMTP.Send" in text) == (permission == "SMTP.Send")


def test_the_quota_reply_says_what_it_means_for_the_secretariat():
    from newsletter_cli.deliver.replies import Fatal, classify

    settings = parse_settings({"SMTP_HOST": "smtp.office365.com", "SMTP_USERNAME": MAILBOX,
                               "NEWSLETTER_FROM": MAILBOX}, {})
    quota = classify("MAIL FROM", 554, "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
                     settings)
    assert isinstance(quota, Fatal) and quota.quota
    for part in ("blocked from sending for up to 24 hours", "`--limit", "1,000 members take about 34 minutes",
                 "keep the computer awake"):
        assert part in quota.message, quota.message


def test_login_help_says_what_happens_step_by_step():
    text = CliRunner().invoke(cli, ["login", "--help"]).output
    for part in ("prints a web address", "any browser", "another device", "Type the code", "Signed in as",
                 "`newsletter logout`"):
        assert part in text, text


@pytest.mark.slow  # msal-extensions waits 5 seconds for a lock before it gives up
def test_a_lock_left_by_a_stopped_command_is_named(project, home, tls, idp):  # noqa: F811
    with oauth_server(tls, idp) as server:
        runner = signed_in(project, idp, server, tls)
        lock = oauth.cache_location().with_name(oauth.cache_location().name + ".lockfile")
        lock.write_text("12345 newsletter")  # a newsletter command killed while it wrote the cache
        result = runner.invoke(cli, ["doctor", "--no-dns"])
        out = plain(result)
        assert result.exit_code == 1 and f"it is locked ({lock} exists)" in out and "delete that lock file" in out
        lock.unlink()
        assert runner.invoke(cli, ["doctor", "--no-dns"]).exit_code == 0


def test_doctor_signs_in_to_imap_with_a_new_token(project, home, tls, idp, tmp_path):  # noqa: F811
    """With IMAP_HOST set, doctor also signs in to Dovecot with XOAUTH2, using an IMAP token asked of the
    sign-in server now: a revoked sign-in shows for the mailbox too."""
    import time

    from imap_server import USER, ImapServer, available

    if not available():
        pytest.skip("Dovecot is not installed (make system-packages)")

    class Live(dict):  # Dovecot's token check asks the identity provider, as Exchange would
        def get(self, token, default=None):
            issued = idp.state.access.get(token)
            ok = (issued is not None and not issued.revoked and issued.expires > time.time()
                  and oauth.IMAP_SCOPE in issued.scopes)
            return issued.user if ok else default

    idp.auto_approve = USER
    with ImapServer(tmp_path / "imap") as imap, oauth_server(tls, idp) as server:
        imap.introspection.RequestHandlerClass.tokens = Live()  # type: ignore[attr-defined]
        bundle = tmp_path / "cas.pem"
        bundle.write_text(tls[0].read_text() + imap.ca_file.read_text())
        write_env(project, env(idp, server, bundle, IMAP_HOST="127.0.0.1", IMAP_PORT=str(imap.port)))
        runner = CliRunner()
        assert runner.invoke(cli, ["login"]).exit_code == 0
        good = runner.invoke(cli, ["doctor", "--no-dns"])
        assert good.exit_code == 0 and f"signed in as {USER}; the folder 'INBOX'" in plain(good), good.output
        asked = idp.state.asked["refresh_token"]
        assert asked >= 2  # one new token for SMTP, one for IMAP
        idp.revoke(USER)
        revoked = runner.invoke(cli, ["doctor", "--no-dns"])
    lines = plain(revoked).splitlines()
    assert revoked.exit_code == 1, revoked.output
    assert any(line.startswith("FAILED  IMAP:") and "expired or was revoked" in line for line in lines), lines
    assert sum(line.startswith("FAILED") and "expired or was revoked" in line for line in lines) == 2, lines


def test_doctor_tests_a_new_client_secret_at_once(project, home, tls):  # noqa: F811
    """Unattended mode: the application's token is cached too; after a wrong new secret is pasted, doctor asks
    the sign-in server anyway instead of saying ok with the old token for an hour."""
    from oauth_provider import OAuthProvider

    with OAuthProvider(tls[1], client_id=CLIENT, client_secret="right-secret") as provider, \
            oauth_server(tls, provider) as server:
        provider.grant_mailbox(MAILBOX)
        write_env(project, env(provider, server, tls[0], OAUTH_CLIENT_SECRET="right-secret"))
        good = CliRunner().invoke(cli, ["doctor", "--no-dns"])
        assert good.exit_code == 0, good.output
        write_env(project, env(provider, server, tls[0], OAUTH_CLIENT_SECRET="wrong-secret"))
        wrong = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    assert wrong.exit_code == 1 and "OAUTH_CLIENT_SECRET is not valid" in plain(wrong), wrong.output
    assert "wrong-secret" not in wrong.output and "right-secret" not in good.output
