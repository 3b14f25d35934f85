"""Abuse: header injection, secrets, the preview server's files, TLS that cannot be switched off, and a .env
that others can read. Real SMTP server, real sockets, the real command line.

Covered elsewhere and not repeated here: markup and templates in content (tests/test_injection.py); CR/LF/NUL
in a name, an address or the subject given to the message factory, and NEWSLETTER_FROM with a line break
(tests/test_message.py); the password in the outputs of a successful send, a dry run, `doctor` with the right
password, `status --json` and `send --help`, and in the edition folder's files
(test_send.py::test_dry_run_and_password_never_leaks); an untrusted STARTTLS certificate through `run_send`
(test_send.py::test_untrusted_certificate_fails_with_a_clear_message) and through `doctor`
(test_send.py::test_doctor_reports_each_step); the password over plain SMTP to another computer
(test_send.py::test_password_over_plaintext_to_a_remote_host_is_refused); the common traversal paths of the
preview, a symlink out of images/ and no SMTP setting on its pages (tests/test_preview.py); a .env readable by
others warned by `Project.warnings` (test_config.py::test_env_readable_by_others_is_warned); the corpus cases
name-with-line-break, name-with-carriage-return, nul-byte, from-with-escaped-line-break and
switch-off-certificate-checks (tests/corpus/).
"""

from __future__ import annotations

import base64
import email
import email.policy
import inspect
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import traceback
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.deliver.replies import Fatal
from newsletter_cli.deliver.request import MemberList, SendRequest, Tuning
from newsletter_cli.deliver.send import run_send
from newsletter_cli.deliver.smtp import Connection, tls_context
from newsletter_cli.errors import InputError
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings

from helpers import assert_no_traceback, load_settings
from smtp_server import SmtpServer, make_tls
from test_preview_support import get

PASSWORD = "Zeer-Geheim-Wachtwoord-7431"
WRONG = "Fout-Wachtwoord-Nooit-Tonen-9913"
USER = "nieuwsbrief@vzhg.nl"
FROM = "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>"
EDITION = Path("editions") / "2025-09" / "edition.yaml"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


def write_env(project: Path, mode: int = 0o600, **settings: object) -> None:
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
    (project / ".env").chmod(mode)


def plain_env(project: Path, server: SmtpServer, **extra: object) -> None:
    write_env(project, SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_SECURITY="none", NEWSLETTER_FROM=FROM,
              SEND_RATE=0, **extra)


def write_csv(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def journal_files(project: Path) -> list[Path]:
    return list((project / "editions" / "2025-09").glob("journal*"))


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


# --- header injection ---------------------------------------------------------------------------------

@pytest.mark.parametrize("escape, problem", [
    (r"\r\n", "contains a line break"), (r"\n", "contains a line break"), (r"\r", "contains a line break"),
    (r"\u2028", "contains a line break"), (r"\0", "contains a control character"),
])
def test_a_subject_with_a_line_break_or_nul_sends_nothing(project: Path, escape: str, problem: str) -> None:
    text = (project / EDITION).read_text(encoding="utf-8")
    (project / EDITION).write_text(text.replace('subject: "Nieuwsbrief VZHG - september 2025"',
                                                f'subject: "Hallo{escape}Bcc: slachtoffer@example.org"', 1),
                                   encoding="utf-8")
    write_csv(project / "leden.csv", "email\nanna@example.org\n")
    runner = CliRunner()
    with SmtpServer() as server:
        plain_env(project, server)
        for args in (["send", "2025-09", "--test", "--to", "anna@example.org"],
                     ["send", "2025-09", "--recipients", "leden.csv", "--yes"]):
            result = runner.invoke(cli, args)
            assert result.exit_code == 2, result.output
            assert f"editions/2025-09/edition.yaml:1: 'subject': {problem}" in result.output
            assert_no_traceback(result)
        assert server.received == []
    assert journal_files(project) == []


def test_names_cannot_add_headers_or_recipients(project: Path) -> None:
    write_csv(project / "leden.csv", "\n".join([
        "email;naam",
        "anna@example.org;Anna de Vries",
        'crlf@example.org;"Evil\r\nBcc: slachtoffer@example.org"',
        'lf@example.org;"Evil\nBcc: slachtoffer@example.org"',
        'cr@example.org;"Evil\rBcc: slachtoffer@example.org"',
        'quotes@example.org;"Evil"" <slachtoffer@example.org>, ""x"',
        "unicode@example.org;Evil\u2028Bcc: slachtoffer@example.org\u0085To: slachtoffer@example.org",
        "",
    ]))
    with SmtpServer() as server:
        plain_env(project, server)
        result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        received = list(server.received)
    assert result.exit_code == 0, result.output
    for line in (3, 5, 7):  # a quoted name with CR LF takes two lines of the file
        assert (f"leden.csv:{line}: the name contains a line break; a name goes into the To: header and must be "
                "one line") in result.output
    assert sorted(to for r in received for to in r.rcpt_tos) == ["anna@example.org", "quotes@example.org",
                                                                  "unicode@example.org"]
    clean = parsed(received[0].data).keys()
    for message in received:
        headers = parsed(message.data)
        assert headers.keys() == clean  # the same headers for everyone: no Bcc, no second To
        assert [a.addr_spec for a in headers["To"].addresses] == message.rcpt_tos  # the name stays a name


def test_merge_fields_stay_in_the_body_and_cannot_smuggle_smtp_commands(project: Path) -> None:
    text = (project / EDITION).read_text(encoding="utf-8")
    (project / EDITION).write_text(text.replace('heading: "Beste lezer,"', 'heading: "[[aanhef|Beste lezer]],"', 1),
                                   encoding="utf-8")
    smuggled = ("Beste Anna\r\nBcc: slachtoffer@example.org\r\n\r\n.\r\nMAIL FROM:<evil@example.org>\r\n"
                "RCPT TO:<slachtoffer@example.org>\r\nDATA\r\nSubject: gesmokkeld\r\n\r\nx\r\n.\r\n")
    write_csv(project / "leden.csv", f'email;naam;aanhef\nanna@example.org;Anna;"{smuggled}"\n'
                                     "piet@example.org;Piet;Beste Piet\n")
    with SmtpServer() as server:
        plain_env(project, server)
        result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        received = list(server.received)
    assert result.exit_code == 0, result.output
    assert sorted(to for r in received for to in r.rcpt_tos) == ["anna@example.org", "piet@example.org"]
    assert all(r.mail_from == "nieuwsbrief@vzhg.nl" for r in received)
    anna, piet = sorted((parsed(r.data) for r in received), key=lambda m: m["To"].addresses[0].addr_spec)
    assert anna.keys() == piet.keys() and anna["Subject"] == piet["Subject"] and anna["Bcc"] is None
    body = anna.get_body(("plain",)).get_content()
    assert "MAIL FROM:<evil@example.org>" in body and "Subject: gesmokkeld" in body  # text, nothing more
    assert "MAIL FROM:&lt;evil@example.org&gt;" in anna.get_body(("html",)).get_content()


def test_to_addresses_with_a_line_break_are_refused(project: Path) -> None:
    with SmtpServer() as server:
        plain_env(project, server)
        result = CliRunner().invoke(cli, ["send", "2025-09", "--test", "--to",
                                          "anna@example.org\r\nRCPT TO:<slachtoffer@example.org>"])
        assert result.exit_code == 2 and "--to anna@example.org" in result.output and "not a valid" in result.output
        assert server.received == []


# --- the password never shows ------------------------------------------------------------------------

def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


SECRETS = [PASSWORD, WRONG]
SECRET_BYTES = [s.encode() for s in SECRETS] + [base64.b64encode(f"\0{USER}\0{s}".encode()) for s in SECRETS] + [
    base64.b64encode(s.encode()) for s in SECRETS]


def assert_no_secret(text: str | bytes, what: object) -> None:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    for secret in SECRET_BYTES:
        assert secret not in data, f"a secret in {what}"


@pytest.mark.slow  # ~4 s on 2 busy cores (issue 22: make test-fast skips it)
def test_the_password_never_shows(project: Path, tls, caplog: pytest.LogCaptureFixture,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    ca_file, context, _ = tls
    runner = CliRunner()
    outputs: list[tuple[object, str]] = []

    def run(*args: str) -> None:
        result = runner.invoke(cli, list(args))
        assert_no_traceback(result)
        outputs.append((args, result.output))

    write_csv(project / "leden.csv", "email;naam\nanna@example.org;Anna\npiet@example.org;Piet\nnee@example.org;Nee\n")
    tls_settings = dict(SMTP_HOST="127.0.0.1", SMTP_SECURITY="starttls", SMTP_USERNAME=USER, NEWSLETTER_FROM=FROM,
                        SEND_RATE=0)
    for command in all_commands(cli):
        run(*command, "--help")
    with SmtpServer(tls=context, users={USER: PASSWORD}, reject={"nee@example.org"}) as server:
        good = dict(tls_settings, SMTP_PORT=server.port, SMTP_CA_FILE=ca_file, SMTP_PASSWORD=PASSWORD)
        write_env(project, **good)
        run("doctor")
        run("send", "2025-09", "--test", "--to", "redactie@vzhg.nl")
        run("send", "2025-09", "--recipients", "leden.csv", "--yes")
        assert len(server.received) == 3  # the test send and two of the three
        run("status", "2025-09")
        write_env(project, **dict(good, SMTP_PASSWORD=WRONG))
        run("doctor")
        assert "login refused (535" in outputs[-1][1]
        write_csv(project / "later.csv", "email\nlater@example.org\n")
        run("send", "2025-09", "--recipients", "later.csv", "--yes")
        assert "login refused (535" in outputs[-1][1]
        write_env(project, **dict(good, SMTP_CA_FILE=""))  # the self-signed certificate, not trusted
        run("doctor")
        run("send", "2025-09", "--test", "--to", "redactie@vzhg.nl")
        assert "certificate is not trusted" in outputs[-1][1]
        settings = parse_settings({k: str(v) for k, v in dict(good, SMTP_PASSWORD=WRONG).items()}, {})
        try:
            Connection(settings).open()
        except Fatal as exc:
            outputs += [("Fatal", str(exc)), ("repr", repr(exc)),
                        ("traceback", "".join(traceback.format_exception(exc)))]
        else:
            pytest.fail("a wrong password must not log in")
        result = run_send(SendRequest("2025-09", MemberList(project / "later.csv")), Project(project).using(settings),
                          tuning=Tuning(retry_delays=()))
        outputs.append(("run_send", f"{result.stopped} {result.failures} {result}"))
        assert len(server.received) == 3
    write_env(project, **good)  # the server is gone: connection refused (tried twice, not for minutes)
    monkeypatch.setenv("NEWSLETTER_RECONNECT_DELAYS", "0,0")
    run("doctor")
    run("send", "2025-09", "--recipients", "later.csv", "--yes")
    assert "connection refused" in outputs[-1][1]
    write_env(project, **dict(good, SMTP_PORT="abc"))
    run("doctor")
    write_env(project, **dict(tls_settings, SMTP_HOST="smtp.example.org", SMTP_SECURITY="none",
                              SMTP_PASSWORD=PASSWORD))
    run("send", "2025-09", "--recipients", "later.csv", "--yes")
    assert "unencrypted" in outputs[-1][1]
    (project / ".env").write_text(f'SMTP_USERNAME={USER}\nSMTP_PASSWORD "{PASSWORD}\n{WRONG}\n')
    run("doctor")
    assert ".env:2: cannot read this line" in outputs[-1][1]

    for what, text in outputs + [("log", caplog.text)]:
        assert_no_secret(text, what)
    files = [p for p in project.rglob("*") if p.is_file() and p.name != ".env"]
    names = {p.name for p in files}
    assert {"journal.sqlite", "test-sends.json"} <= names
    for path in files:
        assert_no_secret(path.read_bytes(), path)


def test_the_outbox_never_holds_the_password(project: Path) -> None:
    write_env(project, NEWSLETTER_FROM=FROM, SMTP_USERNAME=USER, SMTP_PASSWORD=PASSWORD,
              LIST_UNSUBSCRIBE="https://vzhg.nl/afmelden?email={email}&token={token}",
              LIST_UNSUBSCRIBE_SECRET=WRONG)  # no SMTP_HOST: the outbox
    write_csv(project / "leden.csv", "email\nanna@example.org\n")
    result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv"])
    assert result.exit_code == 0 and "NOTHING WAS SENT" in result.output
    assert_no_secret(result.output, "output")
    (eml,) = (project / "editions" / "2025-09" / "outbox").glob("*.eml")
    assert_no_secret(eml.read_bytes(), eml)  # the unsubscribe token is an HMAC, not the secret


# --- the preview serves the edition and nothing else --------------------------------------------------

MORE_OUTSIDE = [
    "/%252e%252e/%252e%252e/.env", "/images/%252e%252e/%252e%252e/%252e%252e/.env", "/..\\..\\.env",
    "/images\\..\\..\\..\\.env", "/images/..\\..\\..\\.env", "/%2e%2e%2f%2e%2e%2f.env", "/%2e%2e%5c%2e%2e%5c.env",
    "/images/%2e%2e%2f%2e%2e%2f%2e%2e%2f.env", "/%c0%ae%c0%ae/.env", "/%ef%bc%8e%ef%bc%8e/.env", "/.env%00.png",
    "/images/.env", "/images/%2eenv", "/.%65nv", "/editions/2025-09/.env", "/images/..;/..;/.env",
    "http://127.0.0.1/../.env", "/images/foto.png%00", "/%2e%2e", "/./.env", "/images//../../.env",
]


def test_the_preview_refuses_encoded_traversal_and_never_serves_env(project: Path) -> None:
    from newsletter_cli.web.preview import PreviewServer

    from test_preview_support import add_images

    edition = add_images(project)
    secret_env = f"SMTP_HOST=smtp.example-mailhost.test\nSMTP_USERNAME={USER}\nSMTP_PASSWORD={PASSWORD}\n"
    (project / ".env").write_text(secret_env + f"NEWSLETTER_FROM={FROM}\n", encoding="utf-8")
    for folder in (project / "editions" / "2025-09", project / "editions" / "2025-09" / "images"):
        (folder / ".env").write_text(secret_env, encoding="utf-8")
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as server:
        answers = {path: get(server, path) for path in MORE_OUTSIDE}
        assert get(server, "/images/foto.png")[0] == 200  # the server does serve what it should
    assert {path: status for path, (status, _, _) in answers.items() if status != 404} == {}
    for path, (_, body, _) in answers.items():
        assert PASSWORD.encode() not in body and b"SMTP_" not in body, path


def test_the_preview_binds_to_this_computer_only_by_default(project: Path) -> None:
    from newsletter_cli.web.preview import PreviewServer, serve

    for function in (PreviewServer.__init__, serve):
        assert inspect.signature(function).parameters["host"].default == "127.0.0.1"
    process = subprocess.Popen([sys.executable, "-c", "from newsletter_cli.cli import main; main()", "preview",
                                "--port", "0", "--no-open"], cwd=project, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "DISPLAY": ""})
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"Preview of .*: http://([\d.]+):(\d+)/", line)
            if found or len(lines) > 50:
                break
        assert found, "".join(lines)
        host, port = found.group(1), int(found.group(2))
        assert host == "127.0.0.1"
        listening = [row.split() for row in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = {row[1] for row in listening if row[3] == "0A" and int(row[1].split(":")[1], 16) == port}
        assert local == {f"0100007F:{port:04X}"}, local  # 127.0.0.1 only, not 0.0.0.0
        assert not any(row[3] == "0A" and int(row[1].split(":")[1], 16) == port
                       for row in (r.split() for r in Path("/proc/net/tcp6").read_text().splitlines()[1:]))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


# --- TLS cannot be switched off ---------------------------------------------------------------------

def test_every_tls_context_verifies(tls) -> None:
    ca_file, _, _ = tls
    for security in ("starttls", "ssl"):
        for extra in ({}, {"SMTP_CA_FILE": str(ca_file)}):
            context = tls_context(parse_settings({"SMTP_HOST": "smtp.example.org", "SMTP_SECURITY": security,
                                                  **extra}, {}))
            assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    package = Path(__file__).resolve().parent.parent / "newsletter_cli"
    for source in package.glob("*.py"):  # no way to switch verification off anywhere in the tool
        text = source.read_text(encoding="utf-8")
        for forbidden in ("CERT_NONE", "check_hostname = False", "check_hostname=False", "_create_unverified_context",
                          "verify=False"):
            assert forbidden not in text, (source.name, forbidden)


@pytest.mark.parametrize("setting", ["SMTP_VERIFY=false", "SMTP_SSL_VERIFY=0", "SMTP_INSECURE=1",
                                     "SMTP_CHECK_CERTIFICATE=no", "SMTP_CERT_REQS=none"])
def test_no_setting_switches_certificate_checks_off(project: Path, setting: str) -> None:
    write_env(project, SMTP_HOST="smtp.office365.com")
    (project / ".env").write_text((project / ".env").read_text() + setting + "\n")
    with pytest.raises(InputError, match=r"^\.env:2: .* certificate checks cannot be switched off"):
        load_settings()


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "ssl"])
def test_a_self_signed_certificate_without_ca_file_fails_naming_the_host(project: Path, tls, implicit: bool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _, context, _ = tls
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")  # Python's switch for urllib: it must change nothing here
    write_csv(project / "leden.csv", "email\nanna@example.org\n")
    with SmtpServer(tls=context, implicit_tls=implicit) as server:
        write_env(project, SMTP_HOST="127.0.0.1", SMTP_PORT=server.port,
                  SMTP_SECURITY="ssl" if implicit else "starttls", NEWSLETTER_FROM=FROM, SEND_RATE=0)
        send = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        doctor = CliRunner().invoke(cli, ["doctor"])
        assert server.received == []
    expected = f"127.0.0.1:{server.port}: the server's TLS certificate is not trusted"
    for result in (send, doctor):
        assert result.exit_code == 1 and expected in result.output and "SMTP_CA_FILE" in result.output, result.output
        assert_no_traceback(result)


def test_a_certificate_for_another_name_or_from_another_ca_fails(project: Path, tmp_path: Path) -> None:
    import trustme

    ca, other_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other_ca.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("smtp.vzhg.nl").configure_cert(context)  # valid, but for another name than 127.0.0.1
    with SmtpServer(tls=context) as server:
        for ca_file, reason in ((tmp_path / "ca.pem", "mismatch"),
                                (tmp_path / "other-ca.pem", "unable to get local issuer certificate")):
            write_env(project, SMTP_HOST="127.0.0.1", SMTP_PORT=server.port, SMTP_CA_FILE=ca_file,
                      NEWSLETTER_FROM=FROM)
            result = CliRunner().invoke(cli, ["doctor"])
            assert result.exit_code == 1
            assert f"127.0.0.1:{server.port}: the server's TLS certificate is not trusted" in result.output
            assert reason in result.output, result.output
        assert server.received == []


# --- a .env that others can read -----------------------------------------------------------------------

@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o640, True), (0o604, True), (0o600, False),
                                          (0o400, False)])
def test_a_env_readable_by_others_is_warned_by_every_command_that_reads_it(project: Path, mode: int,
                                                                         warned: bool) -> None:
    write_env(project, mode=mode, NEWSLETTER_FROM=FROM, SMTP_USERNAME=USER, SMTP_PASSWORD=PASSWORD)
    write_csv(project / "leden.csv", "email\nanna@example.org\n")
    for args in (["doctor"], ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"]):
        result = CliRunner().invoke(cli, args)
        warning = ("warning: .env can be read by other users of this computer and may hold the SMTP password: "
                   "run  chmod 600 .env")
        assert (warning in result.output) == warned, result.output
        assert_no_secret(result.output, args)
