"""Microsoft 365 sign-in: `newsletter login` through MSAL against a real local identity provider (HTTPS,
tests/oauth_provider.py), then sends over a real SMTP server that takes XOAUTH2 only with that provider's
unexpired tokens. Nothing here reaches Microsoft or the internet."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.account import oauth
from newsletter_cli.cli import cli
from newsletter_cli.deliver.request import ReviewList, SendRequest
from newsletter_cli.deliver.send import run_send
from newsletter_cli.members.journal import Journal
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings

from helpers import assert_no_traceback
from oauth_provider import OAuthProvider
from smtp_server import SmtpServer, make_tls

MAILBOX = "nieuwsbrief@vzhg.nl"
CLIENT = "11111111-2222-3333-4444-555555555555"

TO_REDACTIE = SendRequest("2025-09", ReviewList(("redactie@example.org",)))  # a test send to one reviewer


@pytest.fixture
def tls(tmp_path_factory: pytest.TempPathFactory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this user's token cache lives (platformdirs follows XDG_DATA_HOME on Linux), not the project."""
    userdata = tmp_path_factory.mktemp("userdata")
    monkeypatch.setenv("XDG_DATA_HOME", str(userdata))
    for name in ("OAUTH_CLIENT_ID", "OAUTH_TENANT", "OAUTH_AUTHORITY", "OAUTH_CLIENT_SECRET", "OAUTH_CERTIFICATE",
                 "SMTP_AUTH"):
        monkeypatch.delenv(name, raising=False)
    return userdata


@pytest.fixture
def idp(tls):
    with OAuthProvider(tls[1], client_id=CLIENT) as provider:
        provider.auto_approve = MAILBOX
        yield provider


def env(idp: OAuthProvider, server: SmtpServer, ca_file: Path, **extra: str) -> dict[str, str]:
    """The three OAuth lines of .env plus the test's server, CA and OAUTH_AUTHORITY; no password."""
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(server.port), "SMTP_SECURITY": "starttls",
            "SMTP_CA_FILE": str(ca_file), "SMTP_USERNAME": MAILBOX, "NEWSLETTER_FROM": f"VZHG <{MAILBOX}>",
            "SEND_RATE": "0", "REVIEW_LIST": "review.csv", "SMTP_AUTH": "oauth", "OAUTH_CLIENT_ID": CLIENT,
            "OAUTH_TENANT": "vzhg.nl", "OAUTH_AUTHORITY": idp.authority, **extra}


def write_env(project: Path, values: dict[str, str]) -> None:
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    (project / ".env").chmod(0o600)
    (project / "review.csv").write_text("email\nredactie@example.org\n")


def oauth_server(tls, idp: OAuthProvider) -> SmtpServer:
    return SmtpServer(tls=tls[1], token_check=idp.check)


def test_login_then_test_send_without_a_password(project, home, tls, idp):
    with oauth_server(tls, idp) as server:
        write_env(project, env(idp, server, tls[0]))
        runner = CliRunner()
        before = runner.invoke(cli, ["login", "--status"])
        assert before.exit_code == 1 and "Nobody is signed in" in before.output
        login = runner.invoke(cli, ["login"])
        assert login.exit_code == 0, login.output
        assert "/devicelogin in a browser and enter code " in login.output
        assert f"; sign in as {MAILBOX}." in login.output and f"Signed in as {MAILBOX}" in login.output
        assert "readable only by you" in login.output and str(home) in login.output
        sent = runner.invoke(cli, ["send", "2025-09", "--test"])
        assert sent.exit_code == 0, sent.output
        assert [r.rcpt_tos for r in server.received] == [["redactie@example.org"]]
        assert server.received[0].login == MAILBOX
        assert idp.grants["urn:ietf:params:oauth:grant-type:device_code"] == 1
        assert idp.grants["refresh_token"] == 0  # the access token from the login was still good
        doctor = runner.invoke(cli, ["doctor"])
        assert doctor.exit_code == 0 and f"authenticated as {MAILBOX} (XOAUTH2)" in doctor.output, doctor.output
        assert "SMTP_AUTH=oauth" in doctor.output and "covers Microsoft 365" in doctor.output
        status = runner.invoke(cli, ["login", "--status"])
        assert status.exit_code == 0 and f"Signed in as {MAILBOX}" in status.output and "until about" in status.output
    cache = oauth.cache_location()
    assert cache.is_relative_to(home) and not cache.is_relative_to(project)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    for output in (login.output, sent.output, doctor.output, status.output):  # no token anywhere in what was printed
        assert not any(token in output for token in idp.state.access) and "Bearer" not in output
    out = runner.invoke(cli, ["logout"])
    assert out.exit_code == 0 and f"Signed out: {MAILBOX}" in out.output and not cache.exists()
    assert "Nobody is signed in" in runner.invoke(cli, ["login", "--status"]).output


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_send_after_the_access_token_expired_refreshes_silently(project, home, tls, tmp_path):
    with OAuthProvider(tls[1], client_id=CLIENT, access_lifetime=1) as idp, oauth_server(tls, idp) as server:
        idp.auto_approve = MAILBOX
        settings = parse_settings(env(idp, server, tls[0]), {})
        (session := oauth.SignIn(settings)).finish_login(session.start_login())
        login_tokens = set(idp.state.access)
        time.sleep(1.2)  # "an hour later": the login's access token has expired
        assert not any(idp.check(MAILBOX, token) for token in login_tokens)
        result = run_send(TO_REDACTIE, Project(project).using(settings))
        assert (result.sent, result.stopped) == (1, None)
        assert idp.grants["refresh_token"] >= 1 and set(idp.state.access) - login_tokens


def test_access_token_the_server_no_longer_takes_is_renewed_once(project, home, tls, idp):
    """The cache still trusts its token but the server's clock says it expired: one fresh token, one retry."""
    with oauth_server(tls, idp) as server:
        settings = parse_settings(env(idp, server, tls[0]), {})
        (session := oauth.SignIn(settings)).finish_login(session.start_login())
        idp.expire_access_tokens()
        result = run_send(TO_REDACTIE, Project(project).using(settings))
        assert (result.sent, result.stopped) == (1, None)
        assert server.xoauth2_attempts == [MAILBOX, MAILBOX] and idp.grants["refresh_token"] == 1


@pytest.mark.slow  # ~4 s on 2 busy cores (issue 22: make test-fast skips it)
def test_revoked_sign_in_stops_the_send_cleanly_and_it_resumes_after_login(project, home, tls, idp):
    emails = [f"lid{i}@example.org" for i in range(3)]
    (project / "leden.csv").write_text("email\n" + "\n".join(emails) + "\n")
    with oauth_server(tls, idp) as server:
        write_env(project, env(idp, server, tls[0], SEND_CONNECTIONS="3"))
        runner = CliRunner()
        assert runner.invoke(cli, ["login"]).exit_code == 0
        assert runner.invoke(cli, ["send", "2025-09", "--test"]).exit_code == 0
        idp.revoke(MAILBOX)
        idp.expire_access_tokens()
        server.received.clear()
        stopped = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert stopped.exit_code == 1 and server.received == []
        assert "expired or was revoked" in stopped.output and "run `newsletter login` again" in stopped.output
        assert "run the same command again to resume" in stopped.output
        assert_no_traceback(stopped)
        # the test send, then one login (the fresh token was refused), not one per connection
        assert idp.state.asked["refresh_token"] == 1 and len(server.xoauth2_attempts) - 1 <= 3
        with Journal(project / "editions" / "2025-09" / "journal.sqlite") as journal:
            assert set(journal.states().values()) == {"pending"}
        assert runner.invoke(cli, ["login"]).exit_code == 0
        resumed = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        assert resumed.exit_code == 0, resumed.output
        assert sorted(to for r in server.received for to in r.rcpt_tos) == emails


def test_password_refused_with_basic_auth_off_says_run_login(project, home, tls):
    refusal = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR01CA0001]"
    with SmtpServer(tls=tls[1], users={MAILBOX: "geheim"}, auth_refusal=refusal) as server:
        write_env(project, {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(server.port), "SMTP_CA_FILE": str(tls[0]),
                            "SMTP_USERNAME": MAILBOX, "SMTP_PASSWORD": "geheim", "NEWSLETTER_FROM": MAILBOX,
                            "SEND_RATE": "0", "REVIEW_LIST": "review.csv"})
        result = CliRunner().invoke(cli, ["send", "2025-09", "--test"])
        doctor = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1 and server.received == [] and len(server.auth_attempts) == 2  # send + doctor
    for output in (result.output, doctor.output):
        assert "5.7.139" in output and "run `newsletter login`" in output and "SMTP_AUTH=oauth" in output
        assert "geheim" not in output


def test_unattended_mode_with_a_client_secret(project, home, tls):
    with OAuthProvider(tls[1], client_id=CLIENT, client_secret="s3cret-value") as idp, \
            oauth_server(tls, idp) as server:
        wrong = parse_settings(env(idp, server, tls[0], OAUTH_CLIENT_SECRET="wrong"), {})
        refused = run_send(TO_REDACTIE, Project(project).using(wrong))
        assert "OAUTH_CLIENT_SECRET is not valid" in refused.stopped and "wrong" not in refused.stopped
        settings = parse_settings(env(idp, server, tls[0], OAUTH_CLIENT_SECRET="s3cret-value"), {})
        refused = run_send(TO_REDACTIE, Project(project).using(settings))
        assert refused.sent == 0 and "SMTP.SendAsApp" in refused.stopped and "Add-MailboxPermission" in refused.stopped
        idp.grant_mailbox(MAILBOX)  # what the Exchange admin does
        result = run_send(TO_REDACTIE, Project(project).using(settings))
        assert (result.sent, result.stopped) == (1, None) and idp.grants["client_credentials"] >= 1


def test_unattended_mode_with_a_certificate(project, home, tls, tmp_path):
    import trustme

    app_cert = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("newsletter-app", key_type=trustme.KeyType.RSA)
    pem = tmp_path / "app.pem"
    app_cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    with OAuthProvider(tls[1], client_id=CLIENT, certificate_pem=app_cert.cert_chain_pems[0].bytes()) as idp, \
            oauth_server(tls, idp) as server:
        idp.grant_mailbox(MAILBOX)
        settings = parse_settings(env(idp, server, tls[0], OAUTH_CERTIFICATE=str(pem)), {})
        result = run_send(TO_REDACTIE, Project(project).using(settings))
        assert (result.stopped, result.sent) == (None, 1) and idp.grants["client_credentials"] == 1


def test_login_problems_in_plain_words(project, home, tls, idp):
    with oauth_server(tls, idp) as server:
        values = env(idp, server, tls[0])
        write_env(project, {**values, "OAUTH_CLIENT_ID": "not-registered"})
        unknown = CliRunner().invoke(cli, ["login"])
        assert unknown.exit_code == 1 and "OAUTH_CLIENT_ID is not an application in this tenant" in unknown.output
        write_env(project, {**values, "OAUTH_AUTHORITY": idp.authority.replace("vzhg.nl", "other.example")})
        tenant = CliRunner().invoke(cli, ["login"])
        assert tenant.exit_code == 1 and "check OAUTH_TENANT" in tenant.output
        assert_no_traceback(tenant)
        write_env(project, {**values, "SMTP_CA_FILE": ""})
        untrusted = CliRunner().invoke(cli, ["login"])
        assert untrusted.exit_code == 1 and "certificate this computer does not trust" in untrusted.output
    write_env(project, {k: v for k, v in values.items() if k != "OAUTH_CLIENT_ID"})
    missing = CliRunner().invoke(cli, ["login"])
    assert missing.exit_code == 2 and "OAUTH_CLIENT_ID is not set" in missing.output


def test_login_waits_until_the_user_typed_the_code(project, home, tls, idp):
    """The browser step done for real: the code typed on the provider's page, while login polls."""
    import ssl
    import threading
    import urllib.parse
    import urllib.request

    idp.auto_approve = None
    trusted = ssl.create_default_context(cafile=str(tls[0]))

    def type_the_code() -> None:
        form = urllib.parse.urlencode({"user_code": device.code, "username": MAILBOX}).encode()
        urllib.request.urlopen(urllib.request.Request(device.url, data=form), context=trusted, timeout=10).read()

    with oauth_server(tls, idp) as server:
        settings = parse_settings(env(idp, server, tls[0]), {})
        session = oauth.SignIn(settings)
        device = session.start_login()
        typed = threading.Timer(1.5, type_the_code)
        typed.start()
        who = session.finish_login(device)
        typed.join()
    assert who.username == MAILBOX and [s.username for s in oauth.SignIn(settings).status()] == [MAILBOX]


SETTINGS = {"SMTP_USERNAME": MAILBOX, "NEWSLETTER_FROM": "VZHG <info@vzhg.nl>"}


@pytest.mark.parametrize("reply, auth, expected", [
    ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled.", "password",
     ["SMTP_AUTH=oauth", "run `newsletter login` (signed in as nieuwsbrief@vzhg.nl)"]),
    ("550 5.7.30 Basic authentication is not supported for Client Submission.", "password", ["newsletter login"]),
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.", "oauth",
     ["Set-CASMailbox -Identity nieuwsbrief@vzhg.nl -SmtpClientAuthenticationDisabled $false"]),
    ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", "password",
     ["whole organisation", "Set-CASMailbox -Identity nieuwsbrief@vzhg.nl"]),
    ("535 5.7.3 Authentication unsuccessful [AM0PR01CA0001]", "password", ["SMTP_PASSWORD", "tried once"]),
    ("535 5.7.3 Authentication unsuccessful [AM0PR01CA0001]", "oauth", ["signed in as nieuwsbrief@vzhg.nl", "SMTP.Send"]),
    ("530 5.7.57 Client not authenticated to send mail.", "password", ["wants a login", "Set-CASMailbox"]),
    ("550 5.7.60 SMTP; Client does not have permissions to send as this sender", "oauth",
     ["nieuwsbrief@vzhg.nl may not send as info@vzhg.nl",
      "Add-RecipientPermission -Identity info@vzhg.nl -Trustee nieuwsbrief@vzhg.nl -AccessRights SendAs"]),
    ("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied", "oauth",
     ["may not send as info@vzhg.nl"]),
])
def test_microsoft_refusals_in_plain_words(reply, auth, expected):
    from newsletter_cli.account.refusals import smtp_refusal

    extra = {"SMTP_AUTH": "oauth", "OAUTH_CLIENT_ID": CLIENT, "OAUTH_TENANT": "vzhg.nl"} if auth == "oauth" else {}
    text = smtp_refusal(reply, parse_settings({**SETTINGS, **extra}, {}))
    assert text is not None and all(part in text for part in expected), text


def test_send_as_denied_at_data_stops_the_send():
    from newsletter_cli.deliver.replies import Fatal, Permanent, classify

    settings = parse_settings(SETTINGS, {})
    denied = classify("DATA", 550, "550 5.7.60 SMTP; Client does not have permissions to send as this sender", settings)
    assert isinstance(denied, Fatal) and "Add-RecipientPermission" in denied.message
    assert isinstance(classify("RCPT TO", 550, "550 5.1.1 User unknown", settings), Permanent)


@pytest.mark.parametrize("description, expected, relogin", [
    ("AADSTS700082: The refresh token has expired due to inactivity.", "expired or was revoked", True),
    ("AADSTS50173: The provided grant has expired due to it being revoked.", "run `newsletter login` again", True),
    ("AADSTS7000218: The request body must contain client_assertion or client_secret.", "Allow public client flows",
     False),
    ("AADSTS65001: The user or administrator has not consented to use the application.", "Grant admin consent", False),
])
def test_sign_in_errors_in_plain_words(description, expected, relogin):
    from newsletter_cli.account.refusals import sign_in_error

    settings = parse_settings({**SETTINGS, "OAUTH_CLIENT_ID": CLIENT, "OAUTH_TENANT": "vzhg.nl"}, {})
    text, again = sign_in_error({"error": "invalid_grant", "error_description": description}, settings)
    assert expected in text and again == relogin


@pytest.mark.parametrize("line, message", [
    ("OAUTH_CERTIFICAT=app.pfx", ".env:1: OAUTH_CERTIFICAT is not a setting; did you mean OAUTH_CERTIFICATE?"),
    ("SMTP_AUTH=modern", ".env:1: SMTP_AUTH 'modern' is unknown: use password"),
    ("OAUTH_CLIENT_ID=abc", ".env:1: OAUTH_CLIENT_ID needs OAUTH_TENANT"),
    ("SMTP_AUTH=oauth", ".env:1: SMTP_AUTH is oauth but OAUTH_CLIENT_ID is not set"),
    ("DNS_SERVER=dns.example", ".env:1: DNS_SERVER 'dns.example' is not an IP address"),
])
def test_oauth_settings_mistakes_are_named(project, home, monkeypatch, line, message):
    monkeypatch.delenv("DNS_SERVER")  # the environment would win over .env
    (project / ".env").write_text(line + "\nNEWSLETTER_FROM=nieuwsbrief@vzhg.nl\n")
    result = CliRunner().invoke(cli, ["login"])
    assert result.exit_code == 2 and message in result.output, result.output


def test_newsletter_mailbox_reads_with_the_same_sign_in(project, home, tls, idp, tmp_path):
    """`newsletter login` with IMAP_HOST set also asks for IMAP.AccessAsUser.All; `newsletter mailbox` then logs in
    to a real Dovecot with XOAUTH2 using the sign-in's token (Dovecot asks a token introspection server)."""
    from imap_server import USER, ImapServer, available

    if not available():
        pytest.skip("Dovecot is not installed (make system-packages)")
    idp.auto_approve = USER
    with ImapServer(tmp_path / "imap") as imap:
        bundle = tmp_path / "cas.pem"  # the sign-in server's and Dovecot's test CAs
        bundle.write_text(tls[0].read_text() + imap.ca_file.read_text())
        (project / ".env").write_text(
            f"NEWSLETTER_FROM=VZHG <{USER}>\nSMTP_USERNAME={USER}\nSMTP_CA_FILE={bundle}\nSMTP_AUTH=oauth\n"
            f"OAUTH_CLIENT_ID={CLIENT}\nOAUTH_TENANT=vzhg.nl\nOAUTH_AUTHORITY={idp.authority}\n"
            f"IMAP_HOST=127.0.0.1\nIMAP_PORT={imap.port}\n")
        (project / ".env").chmod(0o600)
        runner = CliRunner()
        assert runner.invoke(cli, ["login"]).exit_code == 0
        (issued,) = idp.state.access.values()
        assert "https://outlook.office365.com/IMAP.AccessAsUser.All" in issued.scopes
        imap.introspection.RequestHandlerClass.tokens.update(dict.fromkeys(idp.state.access, USER))  # type: ignore[attr-defined]
        result = runner.invoke(cli, ["mailbox"])
        assert result.exit_code == 0, result.output
        assert not any(token in result.output for token in idp.state.access)
