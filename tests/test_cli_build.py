"""`newsletter build` through click's CliRunner and as a real process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.compose.qp import qp_size

from helpers import assert_no_traceback, clean_env

OUTPUTS = ("email.html", "email.txt", "email.mjml", "web.html")


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_build_writes_the_four_files_and_a_summary(project: Path) -> None:
    result = run("build", "2025-09")
    assert result.exit_code == 0, result.output
    out = project / "editions" / "2025-09" / "build"
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    html = (out / "email.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") or html.lower().startswith("<html") or "<html" in html[:200]
    lines = result.output.splitlines()
    assert lines[0].startswith("Built editions/2025-09/edition.yaml in ")
    assert lines[1].startswith("  16 items, 23 links, 0 images")  # the content's own links, not the footer's
    size = re.fullmatch(r"  HTML (\d+\.\d) KB as sent \(quoted-printable\); Gmail clips at 102 KB: OK", lines[2])
    assert size and float(size.group(1)) == round(qp_size(html) / 1000, 1)
    assert lines[3] == "  Output: editions/2025-09/build/email.html, email.txt, email.mjml, web.html"
    assert not list(out.glob(".*.tmp"))


def test_build_without_argument_takes_the_newest(project: Path) -> None:
    assert run("new", "2025-10", "--from", "2025-09").exit_code == 0
    result = run("build")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Built editions/2025-10/edition.yaml")
    assert (project / "editions" / "2025-10" / "build" / "email.html").is_file()
    assert not (project / "editions" / "2025-09" / "build").exists()


def test_build_accepts_a_folder_or_a_file(project: Path) -> None:
    for given in ("editions/2025-09", "editions/2025-09/edition.yaml"):
        result = run("build", given)
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Built editions/2025-09/edition.yaml")


def test_build_out_dir(project: Path) -> None:
    result = run("build", "2025-09", "--out", "elders/nieuw")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (project / "elders" / "nieuw").iterdir()) == sorted(OUTPUTS)
    assert not (project / "editions" / "2025-09" / "build").exists()
    assert "Output: elders/nieuw/email.html" in result.output


def test_build_out_dir_that_is_a_file(project: Path) -> None:
    (project / "bestand").write_text("x", encoding="utf-8")
    result = run("build", "2025-09", "--out", "bestand")
    assert result.exit_code == 2
    assert_no_traceback(result)


def test_missing_edition_exit_2(project: Path) -> None:
    result = run("build", "2030-01")
    assert result.exit_code == 2
    assert result.output == ("Error: No edition '2030-01': editions/2030-01/edition.yaml does not exist "
                             "(editions here: 2025-09).\n")


def test_safelink_is_reported_with_file_line_and_item(project: Path) -> None:
    path = project / "editions" / "2025-09" / "edition.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "https://vng.nl/trainingen\"",
        "https://eur03.safelinks.protection.outlook.com/?url=https%3A%2F%2Fvng.nl%2Ftrainingen&data=x\"")
    assert "safelinks" in text
    path.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "safelinks" in row)
    result = CliRunner().invoke(cli, ["build", "2025-09"])
    assert result.exit_code == 0
    assert "16 items, 23 links, 0 images" in result.output
    # The build unwraps it; the output names the file, line and item (the wording belongs to `check`).
    place = f'editions/2025-09/edition.yaml:{line}: item "Leren bij de VNG - Leren voor de praktijk van morgen": '
    assert [row for row in result.output.splitlines() if place in row and "safelink" in row]
    assert "safelinks" not in (project / "editions" / "2025-09" / "build" / "email.html").read_text(encoding="utf-8")


def subprocess_env(project: Path) -> dict[str, str]:
    return clean_env()


@pytest.mark.slow  # two whole processes
def test_real_process_builds_and_fails_cleanly(project: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "newsletter_cli", "build", "2025-09"], cwd=project,
                        capture_output=True, text=True, env=subprocess_env(project), timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "16 items, 23 links" in ok.stdout
    assert (project / "editions" / "2025-09" / "build" / "email.txt").is_file()

    bad = project / "editions" / "2025-10" / "edition.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("subject: x\ndate: 2025-02-30\nsections:\n  - titel: Bestuur\n", encoding="utf-8")
    failed = subprocess.run([sys.executable, "-m", "newsletter_cli", "build", "2025-10"], cwd=project,
                            capture_output=True, text=True, env=subprocess_env(project), timeout=120)
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr.splitlines() == [
        "Error: 2 problems in the edition; nothing was built:",
        "editions/2025-10/edition.yaml:2: 'date': '2025-02-30' is not a valid date; write it as YYYY-MM-DD, "
        "e.g. 2025-11-21",
        "editions/2025-10/edition.yaml:4: section 1: unknown field 'titel' (did you mean 'title'?)",
    ]
    assert not (bad.parent / "build").exists()


@pytest.mark.parametrize("where", ["../buiten.png", "ABSOLUTE"])
def test_a_logo_outside_the_project_folder_is_refused_with_its_line(project, where):
    """Issue 20: the theme's logo is attached to every message; like item images it must be in the project."""
    from PIL import Image

    outside = project.parent / "buiten.png"
    Image.new("RGB", (40, 20), (0, 80, 160)).save(outside)
    logo = str(outside) if where == "ABSOLUTE" else where
    (project / "theme.yaml").write_text(f"logo_width: 120\nlogo: '{logo}'\n", encoding="utf-8")
    for command in (["build", "2025-09"], ["check", "2025-09"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert f"theme.yaml:2: logo '{logo}' is outside the project folder" in result.output, result.output
    (project / "buiten.png").write_bytes(outside.read_bytes())
    (project / "theme.yaml").write_text("logo: buiten.png\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["build", "2025-09"]).exit_code == 0
