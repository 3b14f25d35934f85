"""Recipient CSVs as Dutch Excel writes them; validation, duplicates, suppressions; `recipients check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.errors import InputError
from newsletter_cli.members.recipients import read_recipients
from newsletter_cli.project import Project

from helpers import assert_no_traceback

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    return path


def test_dutch_excel_semicolons_and_bom(tmp_path):
    path = write(tmp_path / "leden.csv", "\ufeffEmail;Naam;Aanhef\nlois@example.org;Loïs de Vries;Beste Loïs\n"
                                         "chloe@example.org;Chloë van den Berg;Beste Chloë\n")
    result = read_recipients(path, suppressions=tmp_path / "none.csv" if False else None, project=Project(tmp_path))
    assert [r.email for r in result.recipients] == ["lois@example.org", "chloe@example.org"]
    first = result.recipients[0]
    assert first.name == "Loïs de Vries"
    assert first.fields["aanhef"] == "Beste Loïs"
    assert result.problems == [] and result.duplicates == 0


def test_commas_and_quoted_fields(tmp_path):
    path = write(tmp_path / "r.csv", 'email,name,organisatie\na@example.org,"Jansen, A.","Gemeente ""X"""\n')
    result = read_recipients(path, project=Project(tmp_path))
    assert result.recipients[0].name == "Jansen, A."
    assert result.recipients[0].fields["organisatie"] == 'Gemeente "X"'


def test_example_file_in_the_repo(project):
    shutil.copy(REPO / "recipients.example.csv", project)
    result = read_recipients(project / "recipients.example.csv", project=Project(project))
    assert len(result.recipients) == 8
    assert result.recipients[1].name == "Sjoerd Bakker-Öztürk"


def test_windows_1252_is_read_with_a_notice_naming_the_line(tmp_path):
    # Issue 13: Dutch Excel's plain 'CSV' is Windows-1252; it was refused, it is now read (never as mojibake)
    path = write(tmp_path / "leden.csv", "email;name\na@example.org;Anna\nb@example.org;Loïs de Vries\n", "cp1252")
    result = read_recipients(path, project=Project(tmp_path))
    assert [r.name for r in result.recipients] == ["Anna", "Loïs de Vries"]
    notice = ("read as Windows-1252 (Excel's plain 'CSV' on Windows), not UTF-8: check the accented letters on "
              "line 3 ('b@example.org;Loïs de Vries')")
    assert result.notices == [notice]


def test_two_encodings_in_one_file_is_a_clear_error_with_line(tmp_path):
    path = tmp_path / "leden.csv"
    path.write_bytes("email;name\nchloe@example.org;Chloë\n".encode() + "b@example.org;Loïs de Vries\n".encode("cp1252"))
    with pytest.raises(InputError) as info:
        read_recipients(path, project=Project(tmp_path))
    message = info.value.message
    assert "leden.csv:3: the file mixes two encodings" in message
    assert "Windows-1252" in message and "Loïs de Vries" in message  # shown as it was meant, not mojibake
    assert "CSV UTF-8" in message


def test_invalid_rows_duplicates_and_blank_lines(tmp_path):
    path = write(tmp_path / "r.csv", "email;name\na@example.org;A\n\nnot-an-address;B\nA@Example.org;A again\n"
                                     ";nobody\nb@example.org;B\n")
    result = read_recipients(path, project=Project(tmp_path))
    assert [r.email for r in result.recipients] == ["a@example.org", "b@example.org"]
    assert result.duplicates == 1
    assert [(p.line, p.file.endswith("r.csv")) for p in result.problems] == [(4, True), (6, True)]
    assert "'not-an-address' is not a valid email address" in str(result.problems[0])


def test_suppressions_file_in_current_folder(project):
    write(project / "r.csv", "email\na@example.org\nb@example.org\nc@example.org\n")
    write(project / "suppressions.csv", "email;reason\nB@example.org;unsubscribed\n")
    result = read_recipients(project / "r.csv", project=Project(project))
    assert [r.email for r in result.recipients] == ["a@example.org", "c@example.org"]
    assert result.suppressed == 1


def test_missing_email_column(tmp_path):
    path = write(tmp_path / "r.csv", "naam;adres\nA;a@example.org\n")
    with pytest.raises(InputError, match=r"r.csv:1: there is no 'email' column"):
        read_recipients(path, project=Project(tmp_path))


def test_empty_and_binary_files(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_recipients(write(tmp_path / "e.csv", ""), project=Project(tmp_path))
    (tmp_path / "x.csv").write_bytes(b"\x89PNG\r\n\x1a\n\0\0binary")
    with pytest.raises(InputError, match="not a CSV text file"):
        read_recipients(tmp_path / "x.csv", project=Project(tmp_path))
    (tmp_path / "z.csv").write_bytes(b"PK\x03\x04\0\0binary")  # a zip: read as the workbook it claims to be
    with pytest.raises(InputError, match="looks like an Excel workbook, but it cannot be read"):
        read_recipients(tmp_path / "z.csv", project=Project(tmp_path))


def test_recipients_check_command(project):
    write(project / "r.csv", "email;name\na@example.org;A\nbad@;B\na@example.org;A\n")
    result = CliRunner().invoke(cli, ["recipients", "check", "r.csv"])
    assert result.exit_code == 2
    assert "1 recipient (3 rows: 1 invalid, 1 duplicate, 0 suppressed)" in result.output
    assert "r.csv:3:" in result.output
    assert_no_traceback(result)
    shutil.copy(REPO / "recipients.example.csv", project)
    ok = CliRunner().invoke(cli, ["recipients", "check", "recipients.example.csv"])
    assert ok.exit_code == 0, ok.output
    assert "8 recipients" in ok.output


def test_the_list_as_read_is_what_is_sent_whatever_happens_to_the_file_later(tmp_path):
    """The list as it was read (edits to the file later change nothing), in order, with normalized addresses,
    duplicates, invalid rows and bad names left out as when it was checked; as often as it is asked for."""
    rows = ["email;naam;aanhef", "a@EXAMPLE.org;Anna;Beste Anna", "fout;Fout;x", "", "A@example.org;Dubbel;x",
            '"b@example.org";"Bob\nBreuk";x', "c@example.org;Cas;Beste Cas", "c@example.org;Cas twee;x",
            "d@example.org;" + "D" * 3000 + ";x"]
    path = write(tmp_path / "leden.csv", "\n".join(rows) + "\n")
    result = read_recipients(path, project=Project(tmp_path))
    assert result.count == 3 and (len(result.problems), result.duplicates) == (2, 2)
    path.write_text("email\nsomeone@else.org\n", encoding="utf-8")  # edited after it was read
    people = list(result)
    assert [(r.email, r.name) for r in people] == [("a@example.org", "Anna"), ("c@example.org", "Cas"),
                                                   ("d@example.org", "D" * 3000)]
    assert people[0].fields == {"email": "a@example.org", "naam": "Anna", "aanhef": "Beste Anna"}
    assert list(result) == people  # as often as needed


def test_letters_lost_to_question_marks_in_plain_csv_are_a_warning_naming_the_rows(project):
    """Issue 20: Excel's plain CSV (Windows-1252) cannot hold ş, ı, ğ and writes '?': "Beste Gül?en,". A '?' in
    a web address or a sentence is not a lost letter; an .xlsx holds every letter."""
    rows = ["email;naam;notities", "gul@example.org;Gül?en Şahin;", "ali@example.org;Ali;Komt hij? Ja.",
            "jan@example.org;Jan;https://vzhg.nl/?a=b", "ayse@example.org;Ay?e Y?lmaz;"]
    (project / "leden.csv").write_bytes("\r\n".join(rows).replace("Ş", "?").encode("cp1252") + b"\r\n")
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.csv"])
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    assert ("warning: leden.csv: a '?' stands between letters on lines 2, 5 ('Gül?en', 'Ay?e', 'Y?lmaz'): "
            "Excel's plain 'CSV' cannot hold letters such as ş, ı, ğ and writes '?' instead, so the email would "
            "say 'Gül?en'. Save the list from Excel as 'CSV UTF-8 (comma delimited)' or as an .xlsx workbook"
            in result.output), result.output
    (project / ".env").write_text("NEWSLETTER_FROM=nb@vzhg.nl\n")
    dry = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"])
    assert "a '?' stands between letters on lines 2, 5" in dry.output, dry.output

    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["email", "naam"])
    workbook.active.append(["wie@example.org", "Wie?Wat"])  # typed so in Excel: the file holds what was typed
    workbook.save(project / "leden.xlsx")
    assert "stands between letters" not in CliRunner().invoke(cli, ["recipients", "check", "leden.xlsx"]).output
    utf8 = project / "leden-utf8.csv"
    utf8.write_text("email;naam\ngul@example.org;Gülşen Şahin\n", encoding="utf-8-sig")
    assert read_recipients(utf8, project=Project(project)).warnings == []
