"""`newsletter new`: next month starts from last month's structure, and loads and builds as it is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.compose.build import build
from newsletter_cli.compose.load import load
from newsletter_cli.compose.model import Theme
from newsletter_cli.compose.new import guess_date
from newsletter_cli.project import Project


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_new_copies_the_structure_with_placeholders(project: Path) -> None:
    result = run("new", "2025-10", "--from", "2025-09")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Created editions/2025-10/edition.yaml",
        ("Date: 2025-10-23, the fourth Thursday of the month, like 2025-09-25; change date: in the file if you "
         "send on another day"),
        "Edit it, then run: newsletter preview 2025-10",
        "To reuse a photo, copy it into editions/2025-10/images. Copy nothing else from an earlier edition's folder "
        "(never journal.sqlite, build/ or outbox/: the journal records who got that edition)."]
    old = yaml.safe_load((project / "editions" / "2025-09" / "edition.yaml").read_text(encoding="utf-8"))
    new_path = project / "editions" / "2025-10" / "edition.yaml"
    new = load(new_path).edition
    assert [s.title for s in new.sections] == [s["title"] for s in old["sections"]]
    assert all(len(s.items) == 1 and s.items[0].title == "Titel van het bericht" for s in new.sections)
    assert new.date == dt.date(2025, 10, 23)  # a Thursday like 2025-09-25; the 25th is a Saturday
    assert new.subject == "Nieuwsbrief VZHG - oktober 2025"
    assert new.intro.heading == old["intro"]["heading"] and new.intro.body.strip() == "Schrijf hier het voorwoord."
    assert new.locale == "nl" and new.agenda.title == old["agenda"]["title"]
    # Agenda: only what is still ahead of the new edition's date, only the dates still ahead, by date.
    assert [(r.what, [d.isoformat() for d in r.date]) for r in new.agenda.rows] == [
        ("Digitale klankbordbijeenkomst Bestuur & Veiligheid", ["2025-11-10"]),
        ("Najaarscongres met PZH", ["2025-11-21"]),
        ("Digitale klankbordbijeenkomst ZJO", ["2025-11-24"]),
        ("Bestuursvergaderingen", ["2025-12-04"]),
    ]
    assert (project / "editions" / "2025-10" / "images").is_dir()
    # Nothing of last month's content comes along.
    text = new_path.read_text(encoding="utf-8")
    assert "Najaarscongres 21 november" not in text and "vzhg.nl/agenda" not in text


def test_new_edition_builds(project: Path) -> None:
    assert run("new", "2025-10", "--from", "2025-09").exit_code == 0
    result = build(project / "editions" / "2025-10" / "edition.yaml", theme=Theme(), project=Project(project))
    assert result.rendered.items == 4
    assert "Titel van het bericht" in result.rendered.text


def test_new_defaults_to_the_newest_edition(project: Path) -> None:
    assert run("new", "2025-10").exit_code == 0
    assert run("new", "2025-11").exit_code == 0
    text = (project / "editions" / "2025-11" / "edition.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Edition 2025-11, started from 2025-10.")
    assert load(project / "editions" / "2025-11" / "edition.yaml").edition.date == dt.date(2025, 11, 27)


def test_new_refuses_to_overwrite(project: Path) -> None:
    assert run("new", "2025-10", "--from", "2025-09").exit_code == 0
    path = project / "editions" / "2025-10" / "edition.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# mijn werk\n", encoding="utf-8")
    before = path.read_bytes()
    result = run("new", "2025-10", "--from", "2025-09")
    assert result.exit_code == 2
    assert result.output == ("Error: editions/2025-10/edition.yaml already exists; pick another id or edit "
                             "that file\n")
    assert path.read_bytes() == before


def test_new_refuses_to_overwrite_the_source(project: Path) -> None:
    path = project / "editions" / "2025-09" / "edition.yaml"
    before = path.read_bytes()
    assert run("new", "2025-09").exit_code == 2
    assert path.read_bytes() == before


def test_new_refuses_a_path_as_id(project: Path) -> None:
    for bad in ("../evil", "a/b", "", ".hidden"):
        result = run("new", bad)
        assert result.exit_code == 2, bad
        assert "is not a usable edition id" in result.output
    assert sorted(p.name for p in (project / "editions").iterdir()) == ["2025-09"]
    assert not (project / "evil").exists()


def test_new_from_a_missing_edition(project: Path) -> None:
    result = run("new", "2025-10", "--from", "2024-01")
    assert result.exit_code == 2
    assert result.output == ("Error: No edition '2024-01': editions/2024-01/edition.yaml does not exist "
                             "(editions here: 2025-09).\n")
    assert not (project / "editions" / "2025-10").exists()


def test_new_from_a_broken_edition_reports_it_and_writes_nothing(project: Path) -> None:
    path = project / "editions" / "2025-09" / "edition.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("date: 2025-09-25", "date: 2025-09-31"), encoding="utf-8")
    result = run("new", "2025-10")
    assert result.exit_code == 2
    assert "editions/2025-09/edition.yaml:3: 'date': '2025-09-31' is not a valid date" in result.output
    assert not (project / "editions" / "2025-10").exists()


def test_quotes_and_backslashes_in_titles_survive(project: Path) -> None:
    path = project / "editions" / "2025-09" / "edition.yaml"
    text = path.read_text(encoding="utf-8").replace('- title: "VNG"', '- title: "VNG \\"quote\\" \\\\ pad: x # y"')
    path.write_text(text, encoding="utf-8")
    assert run("new", "2025-10").exit_code == 0
    titles = [s.title for s in load(project / "editions" / "2025-10" / "edition.yaml").edition.sections]
    assert titles[2] == 'VNG "quote" \\ pad: x # y'


def test_guess_date_keeps_the_weekday_and_the_week_of_the_month() -> None:
    assert guess_date(2025, 10, dt.date(2025, 9, 25))[0] == dt.date(2025, 10, 23)  # fourth Thursday
    assert guess_date(2026, 1, dt.date(2025, 12, 18))[0] == dt.date(2026, 1, 15)  # third Thursday
    assert guess_date(2026, 2, dt.date(2026, 1, 5))[0] == dt.date(2026, 2, 2)  # first Monday
    date, why = guess_date(2026, 2, dt.date(2026, 1, 30))  # the fifth Friday: February has four
    assert date == dt.date(2026, 2, 27) and why.startswith("the last Friday of the month, like 2026-01-30")
    assert all(guess_date(2026, m, dt.date(2025, 9, 25))[0].weekday() == 3 for m in range(1, 13))


def test_multi_line_signature_keeps_its_line_breaks(project: Path) -> None:
    path = project / "editions" / "2025-09" / "edition.yaml"
    signature = 'Met vriendelijke groet,\n\n**Jan de Vries**, voorzitter\nBestuur VZHG: "bereikbaar # altijd"\n'
    text = path.read_text(encoding="utf-8").replace("sections:\n", "  signature: |\n" + "".join(
        f"    {line}\n" if line else "\n" for line in signature.splitlines()) + "sections:\n", 1)
    path.write_text(text, encoding="utf-8")
    assert load(path).edition.intro.signature == signature
    assert run("new", "2025-10").exit_code == 0
    new_path = project / "editions" / "2025-10" / "edition.yaml"
    assert load(new_path).edition.intro.signature == signature
    assert "  signature: |\n    Met vriendelijke groet,\n\n    **Jan" in new_path.read_text(encoding="utf-8")


def test_ids_must_be_a_year_and_a_real_month(project: Path) -> None:
    cases = {
        "2025-13": "Error: '2025-13' is not a usable edition id: 13 is not a month (01-12); use the year and "
                   "month, e.g. 2025-10\n",
        "2025-00": "Error: '2025-00' is not a usable edition id: 00 is not a month (01-12); use the year and "
                   "month, e.g. 2025-10\n",
        "oktober-2025": "Error: 'oktober-2025' is not a usable edition id; write the year and month as YYYY-MM "
                        "(editions are ordered by it): newsletter new 2025-10\n",
        "Sept 2025": "Error: 'Sept 2025' is not a usable edition id; write the year and month as YYYY-MM "
                     "(editions are ordered by it): newsletter new 2025-09\n",
        "2025-9": "Error: '2025-9' is not a usable edition id; write the year and month as YYYY-MM "
                  "(editions are ordered by it): e.g. 2025-10\n",
    }
    for bad, message in cases.items():
        result = run("new", bad)
        assert (result.exit_code, result.output) == (2, message), bad
    assert sorted(p.name for p in (project / "editions").iterdir()) == ["2025-09"]


def test_newest_is_the_latest_month_not_the_last_name(project: Path) -> None:
    """A folder an older version let through ('oktober-2025') sorts after '2025-09' by name."""
    import shutil

    shutil.copytree(project / "editions" / "2025-09", project / "editions" / "oktober-2025")
    assert run("new", "2025-10").exit_code == 0
    text = (project / "editions" / "2025-10" / "edition.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Edition 2025-10, started from 2025-09.")
    assert run("new", "2025-11").exit_code == 0
    text = (project / "editions" / "2025-11" / "edition.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Edition 2025-11, started from 2025-10.")
