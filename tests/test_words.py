"""One language on the command line: short help not cut at "e.g.", singular and plural, thousands separators,
a reason for every member `status` lists, and the version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.members.journal import JOURNAL_FILE, Journal
from newsletter_cli.words import count

REPO = Path(__file__).resolve().parent.parent


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += commands(command, f"{prefix}{name} ")
    return found


def test_no_short_help_is_cut_in_the_middle() -> None:
    """click cuts a command's first line at the first '. ': 'e.g. 2025-10' made `new`'s 'ID is ... e.g.'."""
    listed = CliRunner().invoke(cli, ["--help"]).output
    assert "new         Start a new edition from the structure of an earlier one." in listed
    for name, command in commands(cli):
        short = command.get_short_help_str(limit=45)
        assert not re.search(r"\b(e\.g|i\.e|etc)\.?(\.\.\.)?$", short), (name, short)
        assert short.count("(") == short.count(")") or short.endswith("..."), (name, short)


def test_count() -> None:
    assert count(1, "image") == "1 image" and count(0, "image") == "0 images"
    assert count(10500, "message") == "10,500 messages" and count(2, "entry", "entries") == "2 entries"


def test_build_says_1_image_not_1_images(project: Path) -> None:
    edition = project / "editions" / "2025-09" / "edition.yaml"
    text = edition.read_text(encoding="utf-8")
    assert "image:" not in text  # the example has no image: add exactly one
    text = text.replace('    items:\n', '    items:\n      - title: "Met foto"\n        body: "Tekst."\n'
                        '        image: {src: "https://vzhg.nl/zaal.jpg", alt: "De zaal", width: 300}\n', 1)
    edition.write_text(text, encoding="utf-8")
    built = CliRunner().invoke(cli, ["build", "2025-09"])
    assert built.exit_code == 0, built.output
    assert re.search(r"\d+ items, \d+ links, 1 image\n", built.output), built.output
    assert "1 images" not in built.output


@pytest.mark.slow  # ~2 s on 2 busy cores (issue 22: make test-fast skips it)
def test_thousands_and_singular_in_the_send_summary(project: Path) -> None:
    members = [f"lid{i:05d}@vzhg.nl" for i in range(10500)]
    (project / "leden.csv").write_text("email\n" + "\n".join(members) + "\n", encoding="utf-8")
    (project / "een.csv").write_text("email\nlid@vzhg.nl\n", encoding="utf-8")
    (project / ".env").write_text("NEWSLETTER_FROM=nieuwsbrief@vzhg.nl\n", encoding="utf-8")
    (project / ".env").chmod(0o600)
    result = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--dry-run"])
    assert "10,500 recipients (10,500 rows: 0 invalid, 0 duplicate, 0 suppressed)" in result.output, result.output
    assert "To send:    10,500" in result.output
    checked = CliRunner().invoke(cli, ["recipients", "check", "een.csv"])
    assert "1 recipient (1 row: 0 invalid" in checked.output
    one = CliRunner().invoke(cli, ["send", "2025-09", "--recipients", "een.csv", "--dry-run"])
    assert "1 message written to" in one.output and "1 messages" not in one.output, one.output


def test_status_gives_a_reason_for_a_send_cut_by_a_kill(project: Path) -> None:
    """A row left `sending` (the process killed mid-transaction) had an empty reason in `status`."""
    with Journal(project / "editions" / "2025-09" / JOURNAL_FILE) as journal:
        journal.add(["a@vzhg.nl", "b@vzhg.nl"])
        journal.mark("a@vzhg.nl", "sent", "250 2.0.0 OK")
        journal.mark_sending("b@vzhg.nl", "fp", "<id@vzhg.nl>")  # and then the process is killed
    result = CliRunner().invoke(cli, ["status", "2025-09"])
    line = next(line for line in result.output.splitlines() if "b@vzhg.nl" in line)
    assert re.match(r"  uncertain b@vzhg.nl: the send stopped \(or is still running\) while this message was going "
                    r"out; the server may or may not have accepted it \(\d{4}-", line), line


def test_version_is_defined_once() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert version == "0.2.0"
    result = CliRunner().invoke(cli, ["--version"])
    assert result.output.strip() == f"newsletter, version {version}"
    import newsletter_cli

    assert newsletter_cli.__version__ == version
    assert "__version__ =" not in (REPO / "newsletter_cli" / "__init__.py").read_text(encoding="utf-8")
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {version}" in changelog and "## 0.1.0" in changelog


@pytest.mark.parametrize("floor", ["filelock>=3.20.3", "pillow>=12.1.1", "jinja2>=3.1.6", "python-dotenv>=1.1,<2"])
def test_dependency_floors(floor: str) -> None:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert floor in dependencies


def test_the_constraints_hold_every_test_dependency() -> None:
    """constraints.txt pins what `make setup` installs; each pinned version satisfies pyproject's floors."""
    from packaging.requirements import Requirement

    pins = dict(line.split("==", 1) for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
                if "==" in line and not line.startswith("#"))
    pins = {name.lower().replace("_", "-"): v for name, v in pins.items()}
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in constraints.txt: run make constraints"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {spec}"
