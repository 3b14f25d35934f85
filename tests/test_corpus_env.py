"""The bad-settings corpus (tests/corpus/env/): each broken .env gets exactly its stored message from
`newsletter send ... --yes` and from `newsletter doctor`, a non-zero exit status, no traceback, and nothing is
sent to the real SMTP server running next to it, nothing written to the journal. See tests/corpus/README.md.

The case file is the start of the project's .env; the test adds the settings that point at the test server
(SMTP_HOST, SMTP_PORT, SMTP_SECURITY=none, NEWSLETTER_FROM, SEND_RATE=0) below it, each only when the case
does not mention that name anywhere (a comment naming it is enough to leave it out), so the line numbers in
the messages are those of the case file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli

from helpers import assert_no_traceback
from smtp_server import SmtpServer

CORPUS = Path(__file__).parent / "corpus" / "env"
# Whole-file problems with no line to point to (a setting that is not there at all).
NO_LINE = {"from-missing"}
CASES = sorted(p.stem for p in CORPUS.glob("*.expected"))


def test_corpus_is_complete() -> None:
    assert {p.stem for p in CORPUS.glob("*.env")} == set(CASES), "every case needs its input and its .expected"
    assert len(CASES) >= 20


def env_file(case: bytes, port: int) -> bytes:
    base = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
            "NEWSLETTER_FROM": "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>", "SEND_RATE": "0"}
    added = "".join(f"{name}={value}\n" for name, value in base.items() if name.encode() not in case)
    return case + added.encode()


@pytest.mark.parametrize("name", CASES)
def test_bad_settings(project: Path, name: str) -> None:
    expected = (CORPUS / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    (project / "leden.csv").write_text("email;naam\nanna@example.org;Anna\npiet@example.org;Piet\n", encoding="utf-8")
    runner = CliRunner()
    with SmtpServer() as server:
        (project / ".env").write_bytes(env_file((CORPUS / f"{name}.env").read_bytes(), server.port))
        (project / ".env").chmod(0o600)
        send = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
        doctor = runner.invoke(cli, ["doctor"])
        received = list(server.received)

    assert send.exit_code == 2, send.output
    assert_no_traceback(send)
    lines = send.output.splitlines()
    assert lines[0].startswith("Error: "), send.output
    lines[0] = lines[0].removeprefix("Error: ")
    assert lines == expected

    assert doctor.exit_code != 0, doctor.output
    assert_no_traceback(doctor)
    shown = [line.removeprefix("Error: ").removeprefix("FAILED  ") for line in doctor.output.splitlines()]
    assert all(line in shown for line in expected), doctor.output

    pattern = r"\.env: " if name in NO_LINE else r"\.env:\d+: "
    assert all(re.match(pattern, line) for line in expected), expected
    assert received == []
    assert not list((project / "editions" / "2025-09").glob("journal*"))
    assert not (project / "editions" / "2025-09" / "outbox").exists()
