"""The bad-recipients corpus (tests/corpus/recipients/): each broken CSV gets exactly its stored message from
`newsletter recipients check` and from `newsletter send ... --recipients FILE --yes`, exit status 2, no
traceback, nothing sent to the real SMTP server that SMTP_HOST points at, no journal. See tests/corpus/README.md.

How a list with problems is handled (README, "Recipients"): a file that cannot be read as a whole (encoding,
no email column, no rows, broken quoting, ...) stops every command. Invalid *rows* are skipped and listed as
`file:line`: `recipients check` lists them all and exits 2; `send` lists them (the first 20) before it asks
and sends to the valid rows. A list in which no row is left to send to stops the send. The corpus cases hold
only invalid rows, so both commands must refuse them; `test_valid_rows_are_sent_and_invalid_rows_listed`
shows the mixed case.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli

from helpers import assert_no_traceback
from smtp_server import SmtpServer

CORPUS = Path(__file__).parent / "corpus" / "recipients"
FROM = "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>"


def two_hundred_thousand_rows(path: Path) -> None:
    """200,000 good rows in UTF-8, the last of them pasted in from Windows-1252 (two encodings in one file: found
    at line 200,001, nothing sent)."""
    rows = b"".join(b"lid%06d@example.org;Lid %d\r\n" % (i, i) for i in range(1, 199_999))
    path.write_bytes(b"\xef\xbb\xbfemail;naam\r\n" + "anais@example.org;Anaïs Dubois\r\n".encode() + rows
                     + "lois@example.org;Loïs van Dijk\r\n".encode("cp1252"))


def over_100_megabytes(path: Path) -> None:
    """A sparse file just over the limit: refused by its size before it is read."""
    with path.open("wb") as handle:
        handle.write(b"email\r\n")
        handle.truncate(100_000_001)


def unclosed_quote_in_a_long_file(path: Path) -> None:
    """A quote never closed on line 2 of 20,000 rows: the rest of the file outgrows the csv module's cell limit."""
    rows = "".join(f"lid{i:06d}@example.org;Lid {i}\r\n" for i in range(20_000))
    path.write_text('email;naam\r\nanna@example.org;"Anna de Vries\r\n' + rows, encoding="utf-8")


GENERATED = {"two-hundred-thousand-rows": two_hundred_thousand_rows, "over-100-megabytes": over_100_megabytes,
             "unclosed-quote-in-a-long-file": unclosed_quote_in_a_long_file}
# Whole-file problems with no line to point to; every other message names a line.
NO_LINE = {"empty", "blank-lines-only", "utf-16", "xlsx", "over-100-megabytes"}
CASES = sorted(p.stem for p in CORPUS.glob("*.expected"))


def test_corpus_is_complete() -> None:
    inputs = {p.stem for p in CORPUS.glob("*.csv")} | set(GENERATED)
    assert inputs == set(CASES), "every case needs its input and its .expected"
    assert len(CASES) >= 25
    editions = len(list((CORPUS.parent / "editions").glob("*.expected")))
    environment = len(list((CORPUS.parent / "env").glob("*.expected")))
    assert len(CASES) + editions + environment >= 40


def problem_lines(output: str, shown: str) -> list[str]:
    """The lines of the output that are a problem in `shown`: `file:line: ...` or, for the whole file, `file: ...`."""
    found = []
    for line in output.splitlines():
        line = line.strip().removeprefix("Error: ").removeprefix("warning: ")
        if re.match(re.escape(shown) + r"(:\d+)?: ", line) and not re.match(re.escape(shown) + r": [\d,]+ recipients?",
                                                                           line):
            found.append(line)
    return found


def journal_files(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "editions" / "2025-09").glob("journal*"))


@pytest.fixture
def server(project: Path):
    """A real SMTP server, and a .env in the project that points `send` at it."""
    with SmtpServer() as running:
        (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={running.port}\nSMTP_SECURITY=none\n"
                                      f"NEWSLETTER_FROM={FROM}\nSEND_RATE=0\n", encoding="utf-8")
        (project / ".env").chmod(0o600)
        yield running


def assert_refused(result, shown: str, expected: list[str], name: str) -> None:
    assert result.exit_code == 2, result.output
    assert_no_traceback(result)
    assert problem_lines(result.output, shown) == expected, result.output
    pattern = re.escape(shown) + (r": " if name in NO_LINE else r":\d+: ")
    assert all(re.match(pattern, line) for line in expected), expected


@pytest.mark.parametrize("name", CASES)
def test_bad_recipient_list(project: Path, server: SmtpServer, name: str) -> None:
    shown = f"{name}.csv"
    if name in GENERATED:
        GENERATED[name](project / shown)
    else:
        shutil.copyfile(CORPUS / shown, project / shown)
    expected = (CORPUS / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    runner = CliRunner()

    check = runner.invoke(cli, ["recipients", "check", shown])
    assert_refused(check, shown, expected, name)
    lines = check.output.splitlines()
    if lines[0].startswith("Error: "):  # the file as a whole: one message, nothing else
        assert lines == ["Error: " + expected[0]] + expected[1:]
    else:  # invalid rows: the summary, the columns, each row, and the exit message
        rows = f"{len(expected)} row{'s' if len(expected) != 1 else ''}"
        assert lines[0].startswith(f"{shown}: 0 recipients ({rows}: {len(expected)} invalid")
        them = "it" if len(expected) == 1 else "them"
        assert lines[-1] == (f"Error: {len(expected)} invalid {rows.split()[1]} in {shown}; "
                             f"{'it' if len(expected) == 1 else 'they'} would be skipped. Fix {them} or remove {them}.")

    send = runner.invoke(cli, ["send", "2025-09", "--recipients", shown, "--yes"])
    assert_refused(send, shown, expected, name)
    lines = send.output.splitlines()
    assert lines[0].startswith("Error: "), send.output  # refused before the summary and the question
    lines[0] = lines[0].removeprefix("Error: ")
    if lines[0].startswith(f"Nobody to send to in {shown}: "):
        assert lines[0].endswith("Fix these rows:")
        lines = lines[1:]
    assert lines == expected
    assert server.received == []
    assert journal_files(project) == []
    assert not (project / "editions" / "2025-09" / "outbox").exists()


def write_csv(path: Path, text: str) -> Path:
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    return path


def test_valid_rows_are_sent_and_invalid_rows_listed(project: Path, server: SmtpServer) -> None:
    write_csv(project / "leden.csv", "\ufeffemail;naam\nanna@example.org;Anna\nbad@;Bad\n\npiet@example.org;Piet\n"
                                     "ANNA@example.org;Anna again\nkees@@example.org;Kees\n")
    runner = CliRunner()
    check = runner.invoke(cli, ["recipients", "check", "leden.csv"])
    assert check.exit_code == 2
    assert "2 recipients (5 rows: 2 invalid, 1 duplicate, 0 suppressed)" in check.output
    expected = ["leden.csv:3: 'bad@' is not a valid email address: There must be something after the @-sign.",
                "leden.csv:7: 'kees@@example.org' is not a valid email address: The part after the @-sign contains "
                "invalid characters: '@'."]
    assert problem_lines(check.output, "leden.csv") == expected

    send = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
    assert send.exit_code == 0, send.output
    assert problem_lines(send.output, "leden.csv") == expected  # listed before the send, then skipped
    assert "Send: 2 sent, 0 failed, 0 deferred" in send.output
    assert sorted(to for r in server.received for to in r.rcpt_tos) == ["anna@example.org", "piet@example.org"]


def test_a_send_lists_the_first_twenty_invalid_rows(project: Path, server: SmtpServer) -> None:
    rows = "".join(f"lid{i}@example\n" for i in range(25))
    write_csv(project / "leden.csv", "email\nanna@example.org\n" + rows)
    send = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
    assert send.exit_code == 0, send.output
    lines = problem_lines(send.output, "leden.csv")
    assert len(lines) == 20 and lines[0].startswith("leden.csv:3: 'lid0@example'") and lines[-1].startswith(
        "leden.csv:22: 'lid19@example'")
    assert "... and 5 more invalid rows: newsletter recipients check leden.csv lists them all" in send.output
    assert server.count_for("anna@example.org") == 1 and len(server.received) == 1


def test_a_list_that_is_all_suppressed_is_refused(project: Path, server: SmtpServer) -> None:
    write_csv(project / "leden.csv", "email\nanna@example.org\nPiet@Example.org\n")
    write_csv(project / "suppressions.csv", "email\npiet@example.org\nanna@example.org\n")
    send = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
    assert send.exit_code == 2
    assert ("Error: Nobody to send to in leden.csv: 0 recipients (2 rows: 0 invalid, 0 duplicate, 2 suppressed); "
            "the addresses are in suppressions.csv") in send.output
    assert server.received == [] and journal_files(project) == []


@pytest.mark.slow  # 200,000 rows
def test_two_hundred_thousand_rows_are_checked_with_exact_line_numbers(project: Path) -> None:
    rows = [f"lid{i:06d}@example.org;Lid {i}" for i in range(200_000)]
    rows[123_456] = "LID000007@EXAMPLE.ORG;Lid 7 again"  # a duplicate (case-insensitive)
    rows[199_998] = "lid199998@example;Lid 199998"  # line 199,999 + 1 for the header
    (project / "leden.csv").write_bytes(("\ufeffemail;naam\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.csv"])
    assert result.exit_code == 2
    assert "leden.csv: 199,998 recipients (200,000 rows: 1 invalid, 1 duplicate, 0 suppressed)" in result.output
    assert problem_lines(result.output, "leden.csv") == [
        "leden.csv:200000: 'lid199998@example' is not a valid email address: The part after the @-sign is not "
        "valid. It should have a period."]


def test_a_missing_file_is_named(project: Path) -> None:
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.csv"])
    assert result.exit_code == 2
    assert_no_traceback(result)
    assert result.output.strip() == "Error: leden.csv: cannot read the file: No such file or directory"


def test_an_empty_suppressions_file_suppresses_nobody(project: Path) -> None:
    write_csv(project / "leden.csv", "email\nanna@example.org\n")
    (project / "suppressions.csv").write_bytes(b"")  # made ready, nobody unsubscribed yet
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.csv"])
    assert result.exit_code == 0, result.output
    assert "1 recipient (1 row: 0 invalid, 0 duplicate, 0 suppressed)" in result.output
