"""`newsletter templates`: a project holds only the templates it changed; a copy records which version of the
program's template it came from, and `build` says when the program's own changed after the copy was made."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.compose import overrides
from newsletter_cli.compose.templating import TEMPLATES

FOOTER = "partials/footer.mjml.j2"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def email(project: Path) -> str:
    return (project / "editions" / "2025-09" / "build" / "email.html").read_text(encoding="utf-8")


@pytest.fixture
def package_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the program's templates standing in for an upgraded installation (edited by the test)."""
    folder = tmp_path / "package-templates"
    shutil.copytree(TEMPLATES, folder)
    monkeypatch.setattr(overrides, "TEMPLATES", folder)
    return folder


def test_list_copy_and_show(project: Path) -> None:
    shutil.rmtree(project / "templates", ignore_errors=True)
    listed = run("templates")
    assert listed.exit_code == 0, listed.output
    assert "partials/footer.mjml.j2" in listed.output and "partials/dark.css.j2" in listed.output
    assert "uses the program's templates only" in listed.output
    copied = run("templates", "copy", "footer.mjml.j2")  # the bare file name is enough when it is unique
    assert copied.exit_code == 0, copied.output
    mine = project / "templates" / "partials" / "footer.mjml.j2"
    text = mine.read_text(encoding="utf-8")
    assert text.startswith("{# copied from newsletter ") and text.endswith((TEMPLATES / FOOTER).read_text("utf-8"))
    listed = run("templates")
    assert "partials/footer.mjml.j2" in listed.output and "the project's copy" in listed.output
    assert "its own copy of 1 template;" in listed.output
    again = run("templates", "copy", FOOTER)
    assert again.exit_code != 0 and "already exists" in again.output
    assert mine.read_text(encoding="utf-8") == text  # never overwritten
    unknown = run("templates", "copy", "partials/kop.mjml.j2")
    assert unknown.exit_code != 0 and "is not one of the program's templates" in unknown.output
    shown = run("templates", "show", FOOTER)
    assert shown.output == (TEMPLATES / FOOTER).read_text(encoding="utf-8")
    # The header is a Jinja comment: the email is the same as with the program's own template.
    assert run("build", "2025-09").exit_code == 0
    assert "copied from newsletter" not in email(project)


def test_build_says_when_the_program_template_changed_after_the_copy(project: Path, package_templates: Path) -> None:
    shutil.rmtree(project / "templates", ignore_errors=True)
    assert run("templates", "copy", FOOTER).exit_code == 0
    fresh = run("build", "2025-09")
    assert fresh.exit_code == 0 and "template-outdated" not in fresh.output and "has changed since" not in fresh.output
    # An upgrade changes the program's footer (here: the stand-in for the installed package).
    footer = package_templates / FOOTER
    footer.write_text(footer.read_text(encoding="utf-8") + "\n{# an Outlook fix #}\n", encoding="utf-8")
    built = run("build", "2025-09")
    assert built.exit_code == 0, built.output
    shown = str(Path("templates", "partials", "footer.mjml.j2"))
    assert f"warning: {shown}: copied from newsletter" in built.output
    assert "has changed since" in built.output and "newsletter templates show partials/footer.mjml.j2" in built.output
    checked = run("check", "2025-09")
    assert "has changed since" in checked.output
    listed = run("templates")
    assert "copy out of date" in listed.output


def test_copies_made_by_an_older_init_are_recognised(project: Path) -> None:
    """Before 0.2.0 `init` copied every template without a header: an unedited copy of an older version is
    named, an unedited copy of the current one too, an edited one is left alone."""
    history = overrides._history()
    old = next(h for h in history["partials/header.mjml.j2"] if h != overrides.digest((TEMPLATES / "partials/header.mjml.j2").read_bytes()))
    assert old  # the stored hashes of 0.1.x's templates
    shutil.rmtree(project / "templates", ignore_errors=True)
    (project / "templates" / "partials").mkdir(parents=True)
    same = project / "templates" / "partials" / "intro.mjml.j2"
    same.write_bytes((TEMPLATES / "partials/intro.mjml.j2").read_bytes().replace(b"\n", b"\r\n"))  # Notepad's
    edited = project / "templates" / "partials" / "item.mjml.j2"
    edited.write_text((TEMPLATES / "partials/item.mjml.j2").read_text("utf-8").replace("<h3>", "<h3>EIGEN "), "utf-8")
    states = {t.name: t for t in overrides.templates(project / "templates")}
    assert states["partials/intro.mjml.j2"].state == "unchanged copy"
    assert states["partials/item.mjml.j2"].state.startswith("the project's copy (made by an older") and not states["partials/item.mjml.j2"].outdated
    assert states["partials/footer.mjml.j2"].state == "the program's"
    built = run("build", "2025-09")
    assert "an unchanged copy of the program's template" in built.output and "delete it" in built.output


def test_the_history_knows_an_older_shipped_version() -> None:
    """The stored history holds every version 0.1.x shipped (it is what recognises an older init's copies), not
    just one: the templates changed within 0.1.x, and each of those versions is an unedited copy somewhere."""
    history = overrides._history()
    for name in ("email.mjml.j2", "partials/dark.css.j2", "partials/header.mjml.j2"):
        assert len(history[name]) > 1, name
        assert all(len(h) == 16 and int(h, 16) >= 0 for h in history[name]), name


def test_a_copied_email_template_and_the_program_dark_css_mix_no_more(project: Path, package_templates: Path) -> None:
    """The copied email.mjml.j2 includes partials/dark.css.j2 from the program: dark.css.j2 is listed, can be
    copied with it, and a change of the program's email.mjml.j2 is reported for the copy."""
    shutil.rmtree(project / "templates", ignore_errors=True)
    copied = run("templates", "copy", "email.mjml.j2")
    assert copied.exit_code == 0
    assert "It includes partials/dark.css.j2, partials/header.mjml.j2" in copied.output  # what stays the program's
    assert run("templates", "copy", "partials/dark.css.j2").exit_code == 0
    (package_templates / "email.mjml.j2").write_text("{# new #}\n" + (TEMPLATES / "email.mjml.j2").read_text("utf-8"),
                                                    encoding="utf-8")
    built = run("build", "2025-09")
    assert "email.mjml.j2: copied from newsletter" in built.output
    assert "dark.css.j2: copied" not in built.output
