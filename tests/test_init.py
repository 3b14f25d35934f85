"""`newsletter init FOLDER`: a project folder to start from, built right away; the repository is one too."""

from __future__ import annotations

import datetime as dt
import filecmp
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from newsletter_cli import cli as cli_module
from newsletter_cli.cli import cli
from newsletter_cli.compose.starter import FILES, short_name

from helpers import assert_no_traceback

REPO = Path(__file__).resolve().parent.parent
STYLE = ["--name", "Vereniging Zuid-Hollandse Gemeenten", "--website", "https://vzhg.nl/",
         "--address", "Postbus 90602, 2509 LP Den Haag"]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4a00000000049454e44ae426082")


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_writes_a_project_that_builds(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("init", "vzhg", *STYLE, "--primary", "#123456")
    assert result.exit_code == 0, result.output
    root = here / "vzhg"
    month = dt.date.today().strftime("%Y-%m")
    for name in (".env.example", "recipients.example.csv", "review.example.csv", "README.md", "templates/README.md",
                 f"editions/{month}/edition.yaml", "theme.yaml", ".gitignore"):
        assert (root / name).is_file(), name
    # templates/ holds its README only: every template comes from the program, so an upgrade reaches them
    assert [p.name for p in (root / "templates").iterdir()] == ["README.md"]
    ignored = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored and "unsubscribe-secret" in ignored  # the project's secrets are never committed
    theme = yaml.safe_load((root / "theme.yaml").read_text(encoding="utf-8"))
    assert theme == {"name": "Vereniging Zuid-Hollandse Gemeenten", "short_name": "VZHG", "website": "https://vzhg.nl/",
                     "address": "Postbus 90602, 2509 LP Den Haag", "primary": "#123456", "accent": "#e8a33d"}
    assert "README.md" in result.output and "Next: cd vzhg" in result.output
    monkeypatch.chdir(root)
    built = run("build")
    assert built.exit_code == 0, built.output
    html = (root / "editions" / month / "build" / "email.html").read_text(encoding="utf-8")
    assert "Postbus 90602, 2509 LP Den Haag" in html and "#123456" in html
    assert "Nieuwsbrief VZHG - " in html  # the subject, with this month in Dutch


def test_the_house_style_is_asked_for(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (here / "logo.png").write_bytes(PNG)
    monkeypatch.setattr(cli_module, "_can_ask", lambda: True)
    answers = ["Vereniging Utrechtse Gemeenten", "", "https://", "https://vug.nl/", "Postbus 1, 3500 AA Utrecht",
               "rood", "#aa0000", "", "geen-logo.png", "logo.png"]
    result = run("init", "vug", input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "'https://' is not a website address" in result.output
    assert "is not a colour" in result.output and "'geen-logo.png' does not exist" in result.output
    theme = yaml.safe_load((here / "vug" / "theme.yaml").read_text(encoding="utf-8"))
    assert theme["short_name"] == "VUG" and theme["primary"] == "#aa0000" and theme["accent"] == "#e8a33d"
    assert theme["logo"] == "logo.png" and (here / "vug" / "logo.png").read_bytes() == PNG


def test_without_a_terminal_the_missing_options_are_named(here: Path) -> None:
    result = run("init", "vzhg", "--name", "VZHG")
    assert result.exit_code == 2
    assert "give --website, --address" in result.output
    assert not (here / "vzhg").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--primary", "blauw"], "'blauw' is not a colour"),
    (["--logo", "logo.svg"], "is not a PNG, JPEG or GIF file"),
    (["--website", "vzhg"], "'https://vzhg' is not a website address"),
    (["--website", "https://"], "'https://' is not a website address"),
])
def test_bad_answers_are_refused_before_anything_is_written(here: Path, extra: list[str], message: str) -> None:
    result = run("init", "vzhg", *STYLE, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert_no_traceback(result)
    assert not (here / "vzhg").exists()


def test_init_does_not_overwrite_a_project(here: Path) -> None:
    assert run("init", "vzhg", *STYLE).exit_code == 0
    (here / "vzhg" / "theme.yaml").write_text("name: Eigen\n", encoding="utf-8")
    result = run("init", "vzhg", *STYLE)
    assert result.exit_code == 2 and "vzhg already has editions, theme.yaml, templates" in result.output
    assert (here / "vzhg" / "theme.yaml").read_text(encoding="utf-8") == "name: Eigen\n"


def test_a_website_without_https_gets_it(here: Path) -> None:
    style = [*STYLE[:2], "--website", "vzhg.nl", *STYLE[4:]]
    result = run("init", "vzhg", *style)
    assert result.exit_code == 0, result.output
    theme = yaml.safe_load((here / "vzhg" / "theme.yaml").read_text(encoding="utf-8"))
    assert theme["website"] == "https://vzhg.nl"


def test_the_project_templates_change_the_email(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("init", "vzhg", *STYLE).exit_code == 0
    monkeypatch.chdir(here / "vzhg")
    copied = run("templates", "copy", "partials/footer.mjml.j2")
    assert copied.exit_code == 0, copied.output
    footer = Path("templates", "partials", "footer.mjml.j2")
    footer.write_text(footer.read_text(encoding="utf-8").replace("{{ why }}", "EIGEN VOETTEKST"), encoding="utf-8")
    assert run("build").exit_code == 0
    month = dt.date.today().strftime("%Y-%m")
    assert "EIGEN VOETTEKST" in Path("editions", month, "build", "email.html").read_text(encoding="utf-8")


def test_short_name() -> None:
    assert short_name("Vereniging Zuid-Hollandse Gemeenten") == "VZHG"
    assert short_name("vereniging van 12 gemeenten") == "VVG"


@pytest.mark.parametrize(("packaged", "in_repo"), [
    ("env.example", ".env.example"), ("recipients.example.csv", "recipients.example.csv"),
    ("review.example.csv", "review.example.csv"), ("templates-README.md", "templates/README.md"),
])
def test_the_repository_is_a_project_with_the_same_starter_files(packaged: str, in_repo: str) -> None:
    """The repository's own examples and what `init` writes must not drift apart: change both."""
    assert filecmp.cmp(FILES / packaged, REPO / in_repo, shallow=False), \
        f"{in_repo} differs from newsletter_cli/compose/starter_files/{packaged}; copy the newer one over the other"


def test_the_package_data_covers_every_data_file() -> None:
    """pip install must carry every template and starter file (pyproject's package-data)."""
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    package = REPO / "newsletter_cli"
    covered = {p for key, globs in data.items() for g in globs
               for p in (package.parent / key.replace(".", os.sep)).glob(g)}
    shipped = {p for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc", ".typed")}
    assert shipped - covered == set()


def test_the_example_settings_name_no_review_list() -> None:
    """A copied .env.example must not make the example list (example.org, read by nobody) the review list."""
    from dotenv import dotenv_values

    for path in (FILES / "env.example", REPO / ".env.example"):
        values = dotenv_values(path)
        assert "REVIEW_LIST" in values and not values["REVIEW_LIST"], path
