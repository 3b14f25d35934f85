"""`pip install` of this repository into a fresh virtualenv outside it gives a working `newsletter`: init a
project, build its first edition, change a template of the project and see the email change."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = "Scripts" if os.name == "nt" else "bin"


def run(command: list[str], cwd: Path, timeout: float = 900) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_pip_install_init_build_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = str(venv / BIN / "python")
    # A copy of the repository as a clone has it (pip builds in the source folder and would leave build/ here).
    source = tmp_path / "newsletter"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache",
        ".peers", ".results", "outbox", "journal.sqlite*", "site"))
    run([python, "-m", "pip", "install", "--quiet", str(source)], tmp_path)
    newsletter = str(venv / BIN / "newsletter")
    where = run([python, "-c", "import newsletter_cli; print(newsletter_cli.__file__)"], tmp_path)
    assert Path(where.strip()).is_relative_to(venv), where  # the installed package, not the repository

    run([newsletter, "init", "vzhg", "--name", "Vereniging Zuid-Hollandse Gemeenten", "--website",
         "https://vzhg.nl/", "--address", "Postbus 90602, 2509 LP Den Haag"], tmp_path)
    project = tmp_path / "vzhg"
    assert (project / "templates" / "partials" / "item.mjml.j2").is_file()  # the package data came along
    built = run([newsletter, "build"], project)
    month = dt.date.today().strftime("%Y-%m")
    assert f"Built {os.path.join('editions', month, 'edition.yaml')}" in built, built
    email = project / "editions" / month / "build" / "email.html"
    assert "Postbus 90602" in email.read_text(encoding="utf-8")

    footer = project / "templates" / "partials" / "footer.mjml.j2"
    footer.write_text(footer.read_text(encoding="utf-8").replace("{{ why }}", "Eigen voettekst van de VZHG"),
                      encoding="utf-8")
    run([newsletter, "build"], project)
    assert "Eigen voettekst van de VZHG" in email.read_text(encoding="utf-8")
