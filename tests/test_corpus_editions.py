"""The bad-edition corpus (tests/corpus/editions/): each broken file gets exactly its stored message,
exit status 2, no traceback, and nothing is written. See tests/corpus/README.md for the layout."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli

from helpers import assert_no_traceback

CORPUS = Path(__file__).parent / "corpus" / "editions"
GENERATED = {
    # name -> how to make the input (too big to commit)
    "ten-megabytes": lambda: b'subject: "Nieuwsbrief"\ndate: 2025-10-23\n' + b"# " + b"x" * (10_000_000 - 41) + b"\n",
}
# Whole-file problems with no line to point to; every other message must name a line.
NO_LINE = {"empty", "ten-megabytes"}
# Files that build, but not as the author meant: `build` must show exactly these warnings.
WARNING_ONLY = {"yaml-hash-cuts-title"}
HEAD = re.compile(r"^\d+ problems? in the edition; nothing was built:$")

CASES = sorted(p.stem for p in CORPUS.glob("*.expected"))


def test_corpus_is_complete() -> None:
    inputs = {p.stem for p in CORPUS.glob("*.yaml")} | set(GENERATED)
    assert inputs == set(CASES), "every case needs its input and its .expected"
    assert len(CASES) >= 25


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", sorted(WARNING_ONLY))
def test_edition_that_builds_with_a_warning(project: Path, name: str) -> None:
    target = project / "editions" / name / "edition.yaml"
    target.parent.mkdir(parents=True)
    shutil.copyfile(CORPUS / f"{name}.yaml", target)
    expected = (CORPUS / f"{name}.expected").read_text(encoding="utf-8").splitlines()

    result = CliRunner().invoke(cli, ["build", name])

    assert result.exit_code == 0, result.output
    at_a_line = re.compile(rf"warning: editions/{re.escape(name)}/edition\.yaml:\d+:")  # the loader's, not check's
    assert [line.removeprefix("warning: ") for line in result.output.splitlines() if at_a_line.match(line)] == expected


@pytest.mark.parametrize("name", sorted(set(CASES) - WARNING_ONLY))
def test_bad_edition(project: Path, name: str) -> None:
    target = project / "editions" / name / "edition.yaml"
    target.parent.mkdir(parents=True)
    if name in GENERATED:
        target.write_bytes(GENERATED[name]())
    else:
        shutil.copyfile(CORPUS / f"{name}.yaml", target)
    expected = (CORPUS / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    before = files_under(project)

    result = CliRunner().invoke(cli, ["build", name])

    assert result.exit_code == 2, result.output
    assert_no_traceback(result)
    lines = result.output.splitlines()
    assert lines[0].startswith("Error: ")
    lines[0] = lines[0].removeprefix("Error: ")
    if HEAD.match(lines[0]):
        assert lines[0].startswith(f"{len(lines) - 1} problem")
        lines = lines[1:]
    assert lines == expected
    shown = f"editions/{name}/edition.yaml"
    pattern = re.escape(shown) + (r": " if name in NO_LINE else r":\d+: ")
    assert all(re.match(pattern, line) for line in lines), lines
    assert files_under(project) == before  # nothing written: no build folder, no temporary files
