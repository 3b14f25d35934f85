"""suppressions.csv as Excel sees it: no cell is ever a formula, every value reads back as written, and an
address suppressed in one spelling (punycode or Unicode domain, any case) is suppressed in every spelling."""

from __future__ import annotations

import csv

from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.members import suppressions
from newsletter_cli.members.recipients import read_recipients
from newsletter_cli.members.suppressions import addresses as read_suppressions
from newsletter_cli.project import Project

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cells(path):
    return list(csv.reader(path.read_bytes().decode("utf-8-sig").splitlines(), delimiter=";"))


def test_no_cell_excel_could_run_and_every_value_reads_back(project):
    path = project / "suppressions.csv"
    phone = "+31-70-1234567@gemeente.nl"
    result = CliRunner().invoke(cli, ["suppress", phone, "--detail", "=HYPERLINK(\"http://x.example\",\"klik\")"])
    assert result.exit_code == 0, result.output
    suppressions.add(path, [suppressions.Suppression("-lid@example.org", "bounced", edition="@2025-09",
                                                     detail="\t=1+1")])
    for row in cells(path)[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_START), row
    assert cells(path)[1][0] == "'" + phone
    found = suppressions.read(path)
    assert found[phone].email == phone and found[phone].detail == '=HYPERLINK("http://x.example","klik")'
    assert found["-lid@example.org"].edition == "@2025-09" and found["-lid@example.org"].detail == "=1+1"
    assert read_suppressions(path) == {phone, "-lid@example.org"}
    again = CliRunner().invoke(cli, ["suppress", phone])
    assert "already in" in again.output and len(cells(path)) == 3  # read back as the same address
    gone = CliRunner().invoke(cli, ["unsuppress", phone])
    assert gone.exit_code == 0 and read_suppressions(path) == {"-lid@example.org"}
    assert cells(path)[1][0] == "'-lid@example.org"  # rewritten safely too


def test_punycode_and_unicode_spellings_meet(project):
    path = project / "suppressions.csv"
    suppressions.add(path, [suppressions.Suppression("user@xn--bcher-kva.example", "bounced")])
    assert suppressions.add(path, [suppressions.Suppression("User@Bücher.example", "unsubscribed")]) == []
    members = project / "leden.csv"
    members.write_text("email\nuser@bücher.example\nUSER@XN--BCHER-KVA.EXAMPLE\nander@bücher.example\n",
                       encoding="utf-8")
    listing = read_recipients(members, path, project=Project(project))
    assert [r.email for r in listing.recipients] == ["ander@bücher.example"] and listing.suppressed == 1

    suppressions.add(path, [suppressions.Suppression("ander@bücher.example", "bounced")])
    assert "ander@xn--bcher-kva.example" in read_suppressions(path)
    assert suppressions.remove(path, "ANDER@xn--bcher-kva.example") is not None
    assert suppressions.remove(path, "user@bücher.example") is not None
    assert read_suppressions(path) == set()
