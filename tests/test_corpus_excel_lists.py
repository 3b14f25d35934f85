"""The Dutch Excel corpus (tests/corpus/recipients/excel/): member lists as a secretariat has them, each read
correctly. Each input (a Windows-1252 CSV with accents, a `sep=;` first line, a title above the column names,
columns called `E-mail adres`, `E-mail-adres`, `Mailadres`, `E-mailadres 1`, `Email`, an .xlsx workbook with a
title row and two sheets) is stored next to the exact output of `newsletter recipients check`. A send to the
real SMTP server shows the names arrive with their accents (no mojibake).
"""

from __future__ import annotations

import shutil
from email import message_from_bytes, policy
from email.headerregistry import Address
from pathlib import Path

import pytest
import test_corpus_recipients
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.members.lists import EMAIL_NAMES, find_column, normalize_column

from helpers import assert_no_traceback
from smtp_server import SmtpServer

server = test_corpus_recipients.server  # the fixture: a real SMTP server, and a .env in the project pointing at it

CORPUS = Path(__file__).parent / "corpus" / "recipients" / "excel"
INPUTS = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".csv", ".xlsx"))


def test_corpus_is_complete() -> None:
    assert {Path(name).stem for name in INPUTS} == {p.stem for p in CORPUS.glob("*.expected")}
    assert len(INPUTS) >= 8


@pytest.mark.parametrize("name", INPUTS)
def test_excel_list_is_read(project: Path, name: str) -> None:
    shutil.copyfile(CORPUS / name, project / name)
    expected = (CORPUS / f"{Path(name).stem}.expected").read_text(encoding="utf-8").splitlines()
    result = CliRunner().invoke(cli, ["recipients", "check", name])
    assert_no_traceback(result)
    assert result.output.splitlines() == expected
    assert result.exit_code == (2 if expected[-1].startswith("Error: ") else 0), result.output


@pytest.mark.parametrize("header", ["E-mail adres", "E-mail-adres", "Mailadres", "E-mailadres 1", "Email",
                                    "E-MAIL", "e-mail address", "E-mailadres2", "mail"])
def test_column_names_as_people_write_them(header: str) -> None:
    assert normalize_column(header) in EMAIL_NAMES
    assert find_column(["Naam", header, "Gemeente"], EMAIL_NAMES) == 1


@pytest.mark.parametrize("header", ["Adres", "Naam", "Telefoon", "Mail adres werk"])
def test_other_columns_are_not_the_address(header: str) -> None:
    assert find_column([header], EMAIL_NAMES) is None


def sent_to(server: SmtpServer) -> dict[str, str]:
    """address -> display name in the To: header, as a mail program decodes it."""
    found = {}
    for received in server.received:
        message = message_from_bytes(received.data, policy=policy.default)
        address: Address = message["To"].addresses[0]
        found[address.addr_spec] = address.display_name
    return found


def test_windows_1252_list_with_sep_line_is_sent_with_its_accents(project: Path, server: SmtpServer) -> None:
    shutil.copyfile(CORPUS / "sep-line-windows-1252.csv", project / "leden.csv")
    result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
    assert result.exit_code == 0, result.output
    assert "note: read as Windows-1252" in result.output
    assert "3 recipients (4 rows: 0 invalid, 1 duplicate, 0 suppressed)" in result.output
    assert sent_to(server) == {"renee@example.org": "Renée Bakker", "zoe@example.org": "Zoë de Boer",
                               "francois@example.org": "François Ørsted"}


def test_xlsx_sheets_are_sent_by_name(project: Path, server: SmtpServer) -> None:
    shutil.copyfile(CORPUS / "ledenlijst-title-row.xlsx", project / "leden.xlsx")
    runner = CliRunner()
    result = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.xlsx", "--yes"])
    assert result.exit_code == 0, result.output
    assert "leden.xlsx:6: 'francois@example' is not a valid email address" in result.output
    assert "note: the column names are on row 3; the rows above them are skipped" in result.output
    assert sent_to(server) == {"renee@example.org": "Renée Bakker", "zoe@example.org": "Zoë de Boer",
                               "joelle@example.org": "Joëlle Smit"}  # a line break in a cell becomes a space
    other = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.xlsx", "--sheet", "Oud-leden", "--yes"])
    assert other.exit_code == 0, other.output
    assert "oud@example.org" in sent_to(server)


def test_xlsx_generated_with_gaps_keeps_row_numbers(project: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet["B2"] = "Ledenlijst"
    sheet["A4"], sheet["B4"] = "Mailadres", "Naam"
    sheet["A5"], sheet["B5"] = "anna@example.org", "Anna"
    sheet["A9"], sheet["B9"] = "piet@", "Piet"  # rows 6-8 empty
    sheet["A12"] = "ANNA@example.org"
    workbook.save(project / "leden.xlsx")
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.xlsx"])
    assert result.exit_code == 2
    assert "  leden.xlsx:9: 'piet@' is not a valid email address: There must be something after the @-sign." \
        in result.output.splitlines()
    assert "  duplicate: row 12 has the same address as row 5; only row 5 is sent to" in result.output.splitlines()


def test_a_damaged_or_old_workbook_is_named(project: Path) -> None:
    (project / "leden.xlsx").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    (project / "leden.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    runner = CliRunner()
    damaged = runner.invoke(cli, ["recipients", "check", "leden.xlsx"])
    assert damaged.exit_code == 2
    assert_no_traceback(damaged)
    assert damaged.output.startswith("Error: leden.xlsx: this looks like an Excel workbook, but it cannot be read")
    old = runner.invoke(cli, ["recipients", "check", "leden.xls"])
    assert old.exit_code == 2
    assert old.output.startswith("Error: leden.xls: this is an old Excel workbook (.xls).")


def test_sep_line_and_title_keep_the_line_numbers(project: Path) -> None:
    (project / "leden.csv").write_bytes("\ufeffsep=,\r\nLedenlijst,,\r\n\r\nNaam,E-mail\r\nAnna,anna@example\r\n"
                                        .encode("utf-8"))
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.csv"])
    assert result.exit_code == 2
    assert result.output.splitlines()[1:4] == [
        "  columns: naam, e-mail",
        "  note: the column names are on line 4; the lines above them are skipped",
        ("  leden.csv:5: 'anna@example' is not a valid email address: The part after the @-sign is not valid. "
         "It should have a period.")]


def test_column_names_are_looked_for_in_the_first_ten_lines_only(project: Path) -> None:
    titles = "".join(f"Regel {n}\r\n" for n in range(1, 12))
    (project / "leden.csv").write_text(titles + "email\r\nanna@example.org\r\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.csv"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: leden.csv:1: there is no 'email' column (the first line has: 'regel 1')")


def test_an_empty_first_sheet_names_the_others(project: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.title = "Blad1"
    workbook.create_sheet("Leden").append(["E-mail"])
    workbook.save(project / "leden.xlsx")
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.xlsx"])
    assert result.exit_code == 2
    assert result.output == ("Error: leden.xlsx: the sheet 'Blad1' is empty; the workbook has: 'Blad1', 'Leden'. "
                             "Choose one with --sheet NAME.\n")


def test_a_libreoffice_spreadsheet_is_named(project: Path) -> None:
    import zipfile

    with zipfile.ZipFile(project / "leden.ods", "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    result = CliRunner().invoke(cli, ["recipients", "check", "leden.ods"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: leden.ods: this is an OpenDocument spreadsheet (.ods, from LibreOffice).")


def formatted_to_the_bottom(path: Path, members: int = 300, dimension: str = "A1:XFD1048576") -> None:
    """A member list as Excel leaves it after someone formatted whole rows: `members` rows with 20 columns, then
    empty formatted rows down to row 1,048,576, and a bogus stored dimension (issue 20: 45 s and 1 GB)."""
    import io
    import re
    import zipfile

    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["E-mailadres", "Naam", "Telefoon", "Geboortedatum", "Notities", *[f"Kolom {i}" for i in range(15)]])
    for i in range(members):
        sheet.append([f"lid{i:03d}@example.org", f"Lid {i}", "06-12345678", "1970-01-01", "notitie", *["x"] * 15])
    plain = io.BytesIO()
    workbook.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="{dimension}"/>', data.decode())
                empty = "".join(f'<row r="{n}" spans="1:20" s="1" customFormat="1" ht="15"/>'
                                for n in range(members + 2, 1_048_577))
                data = text.replace("</sheetData>", empty + "</sheetData>").encode()
            out.writestr(item, data)


@pytest.mark.slow  # writes a sheet of 1,048,576 rows (a few seconds), reads it in a process of its own
def test_a_sheet_formatted_down_to_the_last_row_reads_fine_in_little_memory(project: Path) -> None:
    """Read in a process of its own, which reports its peak memory (openpyxl took 633 MB and 45 s here)."""
    import subprocess
    import sys

    formatted_to_the_bottom(project / "leden.xlsx")
    if not Path("/proc/self/status").is_file():
        pytest.skip("reads the peak memory from /proc (Linux)")
    # VmHWM: this process's own peak (ru_maxrss would carry pytest's over from before the exec)
    script = ("import re, sys; from newsletter_cli.cli import cli\n"
              "try: cli.main(['recipients', 'check', 'leden.xlsx'])\n"
              "except SystemExit: pass\n"
              "status = open('/proc/self/status').read()\n"
              "sys.stderr.write('PEAK ' + re.search(r'VmHWM:\\s*(\\d+)', status).group(1))")
    done = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=300)
    assert "leden.xlsx: 300 recipients (300 rows: 0 invalid" in done.stdout, done.stdout + done.stderr
    assert "lid299@example.org" not in done.stderr
    peak_mb = int(done.stderr.rsplit("PEAK ", 1)[1]) / 1024  # Linux: kilobytes
    assert peak_mb < 150, peak_mb  # openpyxl: 633 MB


@pytest.mark.parametrize("dimension", ["A1:XFD1048576", ""])
def test_a_bogus_or_missing_dimension_does_no_harm(project: Path, dimension: str) -> None:
    import io
    import zipfile

    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["Naam", "E-mail"])
    workbook.active.append(["Gül Şen", "gul@example.org"])
    workbook.active.append([None, None])
    workbook.active.append(["Ali Yılmaz", "ali@example.org"])
    plain = io.BytesIO()
    workbook.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(project / "leden.xlsx", "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:B4"/>', f'<dimension ref="{dimension}"/>'.encode()
                                    if dimension else b"")
            out.writestr(item, data)
    from newsletter_cli.members.recipients import read_recipients
    from newsletter_cli.project import Project

    listing = read_recipients(project / "leden.xlsx", project=Project(project))
    assert [(r.email, r.name) for r in listing.recipients] == [("gul@example.org", "Gül Şen"),
                                                               ("ali@example.org", "Ali Yılmaz")]
