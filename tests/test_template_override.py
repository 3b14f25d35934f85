"""A project's templates/ folder overrides the package's templates file by file; a broken one is reported as
`templates/...:LINE: problem`, never as a traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.compose.templating import TEMPLATES, unbalanced_line
from newsletter_cli.project import Project

from helpers import assert_no_traceback

ITEM = Path("partials") / "item.mjml.j2"


def override(project: Path, rel: Path, edit) -> Path:
    """Copy a package template into the project's templates/ and edit it."""
    target = project / "templates" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(edit((TEMPLATES / rel).read_text(encoding="utf-8")), encoding="utf-8")
    return target


def build():
    return CliRunner().invoke(cli, ["build", "2025-09"])


def email(project: Path) -> str:
    return (project / "editions" / "2025-09" / "build" / "email.html").read_text(encoding="utf-8")


def test_a_project_template_replaces_the_package_one(project: Path) -> None:
    assert build().exit_code == 0
    assert "HUISSTIJL-PROEF" not in email(project)
    override(project, ITEM, lambda s: s.replace("<h3>{{ item.title }}</h3>", "<h3>HUISSTIJL-PROEF {{ item.title }}</h3>"))
    result = build()
    assert result.exit_code == 0, result.output
    assert email(project).count("HUISSTIJL-PROEF") == 16  # every item, through the overridden partial
    # The other templates still come from the package: the footer is there as before.
    assert "Postbus" in email(project)


def test_an_unchanged_copy_of_every_template_gives_the_same_email(project: Path) -> None:
    assert build().exit_code == 0
    before = email(project)
    shutil.copytree(TEMPLATES, project / "templates", ignore=shutil.ignore_patterns("new_edition.yaml.j2"))
    assert build().exit_code == 0
    assert email(project) == before


def test_a_jinja_syntax_error_names_the_file_and_line(project: Path) -> None:
    path = override(project, ITEM, lambda s: s.replace("{% if item.image %}", "{% if item.image %}{% endfor %}", 1))
    line = path.read_text(encoding="utf-8").splitlines().index("{% if item.image %}{% endfor %}") + 1
    result = build()
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # a message, not an exception
    expected = os.path.join("templates", "partials", "item.mjml.j2")
    assert f"Error: {expected}:{line}: " in result.output, result.output
    assert "delete it to go back to the built-in one" in result.output


def test_an_unknown_variable_names_the_file_and_line(project: Path) -> None:
    path = override(project, ITEM, lambda s: s.replace("{{ item.title }}", "{{ item.titel }}", 1))
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "item.titel" in text)
    result = build()
    assert result.exit_code == 2, result.output
    assert f"{os.path.join('templates', 'partials', 'item.mjml.j2')}:{line}: UndefinedError:" in result.output
    assert "titel" in result.output


def test_broken_mjml_names_the_template_and_the_unclosed_tag(project: Path) -> None:
    path = override(project, ITEM, lambda s: s.replace("</mj-text>", "", 1))
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "<mj-text" in text)
    result = build()
    assert result.exit_code == 2, result.output
    assert f"{os.path.join('templates', 'partials', 'item.mjml.j2')}:{line}: MJML cannot compile" in result.output
    assert_no_traceback(result)


def test_an_include_of_a_missing_template_is_a_message(project: Path) -> None:
    override(project, Path("email.mjml.j2"), lambda s: s.replace("partials/header.mjml.j2", "partials/kop.mjml.j2"))
    result = build()
    assert result.exit_code == 2
    assert "partials/kop.mjml.j2" in result.output and "fix the name" in result.output


@pytest.mark.parametrize(("source", "line"), [
    ("<mj-section>\n<mj-column>\n</mj-section>", 3),
    ("<mj-section>\n  <mj-text>{% if x %}</mj-text>{% endif %}\n", 1),
    ('<mj-image src="a>b" />\n<mj-text>{# <mj-text> #}</mj-text>', None),
])
def test_unbalanced_line(source: str, line: int | None) -> None:
    assert unbalanced_line(source) == line


def test_every_packaged_template_is_balanced() -> None:
    for path in TEMPLATES.rglob("*.mjml.j2"):
        assert unbalanced_line(path.read_text(encoding="utf-8")) is None, path


def test_the_preview_rebuilds_when_a_project_template_is_saved(project: Path) -> None:
    from newsletter_cli.web.preview import PreviewServer

    from test_preview_support import wait_for_rebuild

    path = override(project, ITEM, lambda s: s)
    edition = project / "editions" / "2025-09" / "edition.yaml"
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as running:
        seen = running.state.version
        path.write_text(path.read_text(encoding="utf-8").replace("<h3>", "<h3>OPGESLAGEN "), encoding="utf-8")
        wait_for_rebuild(running, seen)
        assert running.state.error is None
        assert "OPGESLAGEN" in (running.state.out_dir / "email.html").read_text(encoding="utf-8")


def test_a_template_saved_in_windows_1252_names_the_file_and_line(project: Path) -> None:
    path = override(project, ITEM, lambda s: s)
    path.write_bytes(path.read_bytes().replace(b"<h3>", b"<h3>Caf\xe9 ", 1))  # é in Windows-1252
    line = next(n for n, text in enumerate(path.read_bytes().splitlines(), 1) if b"Caf\xe9" in text)
    result = build()
    assert result.exit_code == 2, result.output
    assert f"{os.path.join('templates', 'partials', 'item.mjml.j2')}:{line}: the template is not UTF-8" in result.output
    assert "Save it as UTF-8" in result.output


def test_a_template_saved_with_a_bom_works(project: Path) -> None:
    override(project, Path("email.mjml.j2"), lambda s: "\ufeff" + s)
    assert build().exit_code == 0
    assert not (project / "editions" / "2025-09" / "build" / "email.mjml").read_text(encoding="utf-8").startswith("\ufeff")
