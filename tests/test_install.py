"""`pip install` of this repository into a fresh virtualenv outside it gives a working `newsletter`: init a
project, build its first edition, see an upgrade of the package's templates reach it, change a template of
the project and see the email change (and the warning when the package's template changes after the copy).

It installs the dependencies from the package registry (PyPI, at the versions of constraints.txt): marked
`registry` as well as `slow`."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = "Scripts" if os.name == "nt" else "bin"
PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def run(command: list[str], cwd: Path, timeout: float = 900, cache: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)  # the compiled-template cache of this installation only
    done = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.registry
def test_pip_install_init_build_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = str(venv / BIN / "python")
    # A copy of the repository as a clone has it (pip builds in the source folder and would leave build/ here).
    source = tmp_path / "newsletter"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache",
        ".peers", ".results", "outbox", "journal.sqlite*", "site", ".constraints-venv"))
    run([python, "-m", "pip", "install", "--quiet", "-c", str(REPO / "constraints.txt"), str(source)], tmp_path)
    newsletter = str(venv / BIN / "newsletter")
    where = run([python, "-c", "import newsletter_cli; print(newsletter_cli.__file__)"], tmp_path)
    assert Path(where.strip()).is_relative_to(venv), where  # the installed package, not the repository

    cache = tmp_path / "cache"
    version = run([newsletter, "--version"], tmp_path)
    assert version.strip() == f"newsletter, version {PROJECT_VERSION}"
    handbook = Path(run([newsletter, "handbook", "--path"], tmp_path).strip())
    assert handbook.is_relative_to(venv) and handbook.name == "handleiding.md"  # the handbook came along
    assert (handbook.parent / "screenshots" / "preview.png").is_file()
    assert "Waar de projectmap hoort" in handbook.read_text(encoding="utf-8")

    run([newsletter, "init", "vzhg", "--name", "Vereniging Zuid-Hollandse Gemeenten", "--website",
         "vzhg.nl", "--address", "Postbus 90602, 2509 LP Den Haag"], tmp_path, cache=cache)
    project = tmp_path / "vzhg"
    assert sorted(p.name for p in (project / "templates").iterdir()) == ["README.md"]  # no copies
    built = run([newsletter, "build"], project, cache=cache)
    month = dt.date.today().strftime("%Y-%m")
    assert f"Built {os.path.join('editions', month, 'edition.yaml')}" in built, built
    email = project / "editions" / month / "build" / "email.html"
    assert "Postbus 90602" in email.read_text(encoding="utf-8") and "https://vzhg.nl" in email.read_text("utf-8")

    # An upgrade changes the package's footer (here: the installed copy is edited): the project picks it up.
    package = Path(where.strip()).parent / "compose" / "templates" / "partials" / "footer.mjml.j2"
    assert package.is_relative_to(venv)
    original = package.read_text(encoding="utf-8")
    assert "{{ why }}" in original
    package.write_text(original.replace("{{ why }}", "{{ why }} VERBETERD IN DE UPDATE"), encoding="utf-8")
    run([newsletter, "build"], project, cache=cache)
    assert "VERBETERD IN DE UPDATE" in email.read_text(encoding="utf-8")

    # The project's own copy wins, and says when the package's template changes after the copy was made.
    run([newsletter, "templates", "copy", "partials/footer.mjml.j2"], project, cache=cache)
    footer = project / "templates" / "partials" / "footer.mjml.j2"
    footer.write_text(footer.read_text(encoding="utf-8").replace("{{ why }} VERBETERD IN DE UPDATE",
                                                                 "Eigen voettekst van de VZHG"), encoding="utf-8")
    rebuilt = run([newsletter, "build"], project, cache=cache)
    assert "Eigen voettekst van de VZHG" in email.read_text(encoding="utf-8")
    assert "VERBETERD IN DE UPDATE" not in email.read_text(encoding="utf-8")
    assert "has changed since" not in rebuilt
    package.write_text(original, encoding="utf-8")  # the next upgrade changes it again
    warned = run([newsletter, "build"], project, cache=cache)
    assert f"{os.path.join('templates', 'partials', 'footer.mjml.j2')}: copied from newsletter {PROJECT_VERSION}" \
        in warned and "has changed since" in warned, warned
