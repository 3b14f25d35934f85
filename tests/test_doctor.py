"""`newsletter doctor` against real servers: the password as it was read from .env (its length and a mask, and
the quoting rules when ' #' cut it), the IMAP sign-in and the unsubscribe address, the port/security mix-up
explained, and Microsoft's advice only where the server is Microsoft's."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli

from imap_server import PASSWORD, USER, ImapServer, available
from smtp_server import SmtpServer, make_tls

MAILBOX = "nieuwsbrief@vzhg.nl"


@pytest.fixture
def tls(tmp_path_factory: pytest.TempPathFactory):
    return make_tls(tmp_path_factory.mktemp("tls"))


def write_env(project, lines: str) -> None:
    (project / ".env").write_text(lines, encoding="utf-8")
    (project / ".env").chmod(0o600)


def smtp_lines(server: SmtpServer, ca_file, **extra: str) -> str:
    values = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(server.port), "SMTP_SECURITY": "starttls",
              "SMTP_CA_FILE": str(ca_file), "SMTP_USERNAME": MAILBOX, "NEWSLETTER_FROM": f"VZHG <{MAILBOX}>",
              **extra}
    return "".join(f"{k}={v}\n" for k, v in values.items())


# What the handbook and README say: between single quotes, a quote is \' and a backslash \\; ' #' is just text.
WRITTEN = r"""SMTP_PASSWORD='it\'s "ons" \\ #1 $HOME'"""
ARRIVES = """it's "ons" \\ #1 $HOME"""


def test_a_password_written_as_the_handbook_says_arrives_as_written(project, tls):
    assert len(ARRIVES) == 21 and "\\" in ARRIVES and " #" in ARRIVES
    with SmtpServer(tls=tls[1], users={MAILBOX: ARRIVES}) as server:
        write_env(project, smtp_lines(server, tls[0]) + WRITTEN + "\n")
        result = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    assert result.exit_code == 0, result.output
    assert f"authenticated as {MAILBOX} (AUTH PLAIN)" in result.output
    assert "SMTP_PASSWORD=(set, 21 characters: i***E)" in result.output
    assert ARRIVES not in result.output and "ons" not in result.output


def test_a_password_cut_at_an_unquoted_hash_is_explained(project, tls):
    with SmtpServer(tls=tls[1], users={MAILBOX: "geheim #42"}) as server:
        write_env(project, smtp_lines(server, tls[0]) + "SMTP_PASSWORD=geheim #42\n")
        result = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    out = result.output
    assert result.exit_code == 1 and "login refused" in out
    assert "SMTP_PASSWORD in .env:7 holds ' #' outside quotes" in out and "only (set, 6 characters) was read" in out
    assert "between single quotes" in out and "a single quote is written \\'" in out
    assert "geheim" not in out and "Microsoft" not in out  # not Microsoft's server: not Microsoft's advice


def test_ssl_on_the_starttls_port_is_explained_in_plain_words(project, tls):
    with SmtpServer(tls=tls[1], users={MAILBOX: "pw"}) as server:
        write_env(project, smtp_lines(server, tls[0], SMTP_SECURITY="ssl", SMTP_PASSWORD="pw"))
        doctor = CliRunner().invoke(cli, ["doctor", "--no-dns"])
        sent = CliRunner().invoke(cli, ["send", "2025-09", "--test", "--to", "a@example.org"])
    for result in (doctor, sent):
        assert result.exit_code == 1 and "does not speak TLS from the first byte" in result.output, result.output
        assert "Port 587 is for STARTTLS" in result.output and "port 465 is for SSL" in result.output
        assert "[SSL:" not in result.output
    assert "`newsletter doctor` tests them" in sent.output and "`newsletter doctor` tests them" not in doctor.output


@pytest.mark.skipif(not available(), reason="Dovecot is not installed (make system-packages)")
def test_doctor_signs_in_to_imap_and_checks_the_unsubscribe_address(project, tmp_path):
    with SmtpServer() as smtp, ImapServer(tmp_path) as imap:
        base = (f"NEWSLETTER_FROM=VZHG <{USER}>\nSMTP_HOST=127.0.0.1\nSMTP_PORT={smtp.port}\nSMTP_SECURITY=none\n"
                f"SMTP_CA_FILE={imap.ca_file}\nIMAP_HOST=127.0.0.1\nIMAP_PORT={imap.port}\nIMAP_USERNAME={USER}\n")
        write_env(project, base + f"IMAP_PASSWORD={PASSWORD}\nLIST_UNSUBSCRIBE=mailto:{USER}?subject=afmelden\n")
        good = CliRunner().invoke(cli, ["doctor", "--no-dns"])
        assert good.exit_code == 0, good.output
        assert f"IMAP 127.0.0.1:{imap.port}: signed in as {USER}; the folder 'INBOX' holds 0 message(s)" in good.output
        assert f"unsubscribe mails go to {USER}, the mailbox that `newsletter mailbox` reads" in good.output
        write_env(project, base + f"IMAP_PASSWORD={PASSWORD}\nLIST_UNSUBSCRIBE=mailto:afmelden@vzhg.nl\n")
        other = CliRunner().invoke(cli, ["doctor", "--no-dns"])
        assert other.exit_code == 0 and any(
            line.startswith("WARN") and f"but `newsletter mailbox` reads {USER}" in line
            for line in other.output.splitlines()), other.output
        write_env(project, base + "IMAP_PASSWORD=not-the-password\n")
        wrong = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    assert wrong.exit_code == 1 and f"FAILED  IMAP: IMAP server 127.0.0.1:{imap.port}: the login as {USER} was " \
                                   "refused" in wrong.output, wrong.output
    assert "not-the-password" not in wrong.output and PASSWORD not in good.output
    assert "(IMAP_PASSWORD as read: (set, 16 characters: n***d))" in wrong.output
    # no LIST_UNSUBSCRIBE: unsubscribes go to NEWSLETTER_FROM's address, here the mailbox that is read
    assert f"ok      unsubscribe mails go to {USER}, the mailbox that `newsletter mailbox` reads" in wrong.output


def test_the_documented_password_example_reads_as_documented(tmp_path):
    """The handbook's and README's example line, read by the real .env reader, gives the password they name."""
    import re
    from pathlib import Path

    from newsletter_cli.envfile import read_raw

    root = Path(__file__).resolve().parent.parent
    for doc in (root / "docs" / "handleiding.md", root / "README.md", root / ".env.example"):
        text = doc.read_text(encoding="utf-8")
        line = re.search(r"SMTP_PASSWORD='it(?:[^'\\\n]|\\.)*'", text)
        assert line, doc
        (tmp_path / ".env").write_text(line.group(0) + "\n", encoding="utf-8")
        read = read_raw(tmp_path / ".env").values["SMTP_PASSWORD"]
        assert read.startswith("""it's "ons" \\ #1"""), (doc, line.group(0), read)


def test_starttls_against_a_port_that_expects_tls_at_once(project, tls):
    """The server waits for a TLS handshake and says nothing; the client waits for its greeting: a time-out
    that is explained, not only reported."""
    with SmtpServer(tls=tls[1], implicit_tls=True) as server:
        write_env(project, smtp_lines(server, tls[0], SMTP_TIMEOUT="1"))
        result = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    assert result.exit_code == 1 and "timed out" in result.output, result.output
    assert "If this port expects TLS from the first byte, set SMTP_SECURITY=ssl" in result.output
    assert "Port 587 is for STARTTLS" in result.output
