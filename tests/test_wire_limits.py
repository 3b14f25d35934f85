"""What reaches the SMTP server (tests/smtp_server.py) keeps to the rules: a `.env` password is sent as
written (no `${...}` interpolation) and no quoted-printable line is longer than 76 characters (RFC 2045)."""

from __future__ import annotations

import email
import email.policy

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.compose import qp
from newsletter_cli.deliver.request import MemberList, SendRequest, Tuning
from newsletter_cli.deliver.send import run_send
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings

from smtp_server import SmtpServer

FROM = "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>"
PASSWORD = "Ab${HOME}c$USER-${SMTP_HOST:-x}$"  # what a password generator may well produce


def test_env_password_with_dollar_braces_reaches_the_server_as_written(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_RETRY_DELAYS", "0")
    with SmtpServer(users={"nb@vzhg.nl": PASSWORD}) as server:
        (project / ".env").write_text(
            f"SMTP_HOST=127.0.0.1\nSMTP_PORT={server.port}\nSMTP_SECURITY=none\nNEWSLETTER_FROM={FROM}\n"
            f"SMTP_USERNAME=nb@vzhg.nl\nSMTP_PASSWORD={PASSWORD}\nSEND_RATE=0\n", encoding="utf-8")
        (project / ".env").chmod(0o600)
        result = CliRunner().invoke(cli, ["send", "2025-09", "--test", "--to", "ik@example.org"])
        assert result.exit_code == 0, result.output
        assert server.auth_attempts and server.count_for("ik@example.org") == 1
    assert PASSWORD not in result.output


def test_env_values_are_not_interpolated(project):
    (project / ".env").write_text("SMTP_HOST=smtp.example.org\nSMTP_USERNAME=nb-${SMTP_HOST}-$HOME\n",
                                  encoding="utf-8")
    (project / ".env").chmod(0o600)
    assert Project.here().settings.smtp_username == "nb-${SMTP_HOST}-$HOME"


def test_encoder_keeps_lines_within_76_even_at_a_trailing_space():
    # binascii.b2a_qp wrote this line as 74 characters + '=20' = 77
    line = "x" * 74 + " \n"
    encoded = qp.encode(line)
    assert max(len(row) for row in encoded.split(b"\r\n")) <= 76
    assert max(len(row) for row in qp.encode(line * 3, qp.SPLICE_LINE).split(b"\r\n")) <= 75


def qp_lines(data: bytes) -> list[str]:
    """Every encoded line of every quoted-printable part of one message as it was received."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    lines = []
    for part in message.walk():
        if part.get("Content-Transfer-Encoding", "").lower() == "quoted-printable":
            lines += str(part.get_payload(decode=False)).splitlines()
    return lines


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_every_quoted_printable_line_of_every_sent_message_is_at_most_76(project):
    """Merge fields land at every column of an encoded line (the text before each one grows by one character)
    and the values' lengths vary: a static piece ending at 76 characters followed by the soft break before a
    value was 77 characters on the wire."""
    edition = project / "editions" / "2025-09" / "edition.yaml"
    paragraphs = "\n\n".join(f"    Lid{'x' * n} [[aanhef|Beste lezer]] en {'y ' * (n % 7)}[[naam]]."
                             for n in range(160))
    source = edition.read_text(encoding="utf-8")
    source = source.replace("  body: |\n", f"  body: |\n{paragraphs}\n\n", 1)
    edition.write_text(source, encoding="utf-8")
    rows = "".join(f"lid{i:03d}@example.org;{'Geachte ' + 'z' * (i * 7 % 90) + ' '};Lid {'é' * i}\r\n"
                   for i in range(12))
    (project / "leden.csv").write_bytes(("\ufeffemail;aanhef;naam\r\n" + rows).encode("utf-8"))
    with SmtpServer() as server:
        settings = parse_settings({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(server.port),
                                   "SMTP_SECURITY": "none", "NEWSLETTER_FROM": FROM, "SEND_RATE": "0"}, {})
        # 160 extra paragraphs take the HTML past Gmail's clipping limit, which check reports as an error;
        # the wire format is what this test is about
        result = run_send(SendRequest("2025-09", MemberList(project / "leden.csv"), ignore_check_errors=True),
                          Project(project).using(settings), tuning=Tuning(retry_delays=(0, 0)))
        assert result.sent == 12
        received = list(server.received)
    for message in received:
        lines = qp_lines(message.data)
        assert len(lines) > 100
        too_long = [line for line in lines if len(line) > 76]
        assert not too_long, f"{len(too_long)} lines over 76 characters, e.g. {too_long[0]!r}"
        decoded = email.message_from_bytes(message.data, policy=email.policy.default)
        text = decoded.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        i = int(message.rcpt_tos[0][3:6])
        greeting, name = f"Geachte {'z' * (i * 7 % 90)}".strip(), f"Lid {'é' * i}".strip()
        assert f"Lidxxx {greeting} en y y y {name}." in " ".join(text.split())
