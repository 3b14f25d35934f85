"""No hidden global state in the library (issue 22): the environment is read at the edge (cli.py, and envfile.py /
settings.py, which turn it into settings), never by a library function on its own.

The scan is of the source (every module of the package, by its syntax tree), so a new `os.environ.get(...)` deep
in the send path fails here, with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter_cli"
EDGE = {"cli.py", "envfile.py", "settings.py"}  # where the environment may be read
# Reads elsewhere that are known, each with why it is there; a new one must be added here with its reason, or
# (better) move to cli.py.
KNOWN = {
    "web/preview.py": "DISPLAY / WAYLAND_DISPLAY: whether this Linux desktop can show a browser at all",
    "check/location.py": "OneDrive's own variables, to say that the project folder is synced (a parameter overrides)",
}
# The send path's knobs: cli.py reads them and hands them over in the Tuning.
SEND_KNOBS = ("NEWSLETTER_RETRY_DELAYS", "NEWSLETTER_RECONNECT_DELAYS", "NEWSLETTER_STATE_DIR")


def environment_reads(source: str, name: str = "<source>") -> list[int]:
    """The lines where `source` reads the process environment: os.environ (any use), os.getenv, os.getenvb, and
    `from os import environ/getenv`."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "environb", "getenv", "getenvb")) or (isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(alias.name in ("environ", "environb", "getenv", "getenvb") for alias in node.names)):
            found.append(node.lineno)
    return found


def library_modules() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if path.relative_to(PACKAGE).as_posix() not in EDGE]


def test_the_library_does_not_read_the_environment_itself() -> None:
    unexpected = []
    for path in library_modules():
        shown = path.relative_to(PACKAGE).as_posix()
        lines = environment_reads(path.read_text(encoding="utf-8"), shown)
        if lines and shown not in KNOWN:
            unexpected += [f"newsletter_cli/{shown}:{line}" for line in lines]
    assert unexpected == [], "read the environment in cli.py and pass the value (a setting, or the send's Tuning)"
    stale = [shown for shown in KNOWN if not environment_reads((PACKAGE / shown).read_text(encoding="utf-8"))]
    assert stale == [], "no longer reads the environment: take it off KNOWN"


def test_the_send_knobs_are_read_only_by_the_command_line() -> None:
    """NEWSLETTER_RETRY_DELAYS, NEWSLETTER_RECONNECT_DELAYS and NEWSLETTER_STATE_DIR are not even named in the
    library: cli.py reads them into the Tuning (envfile.py knows them only to refuse them in .env)."""
    named = [f"newsletter_cli/{path.relative_to(PACKAGE).as_posix()}: {knob}" for path in library_modules()
             for knob in SEND_KNOBS if f'"{knob}"' in path.read_text(encoding="utf-8")]
    assert named == []
    assert all(f'"{knob}"' in (PACKAGE / "cli.py").read_text(encoding="utf-8") for knob in SEND_KNOBS)


@pytest.mark.parametrize("code", [
    "import os\nx = os.environ.get('NEWSLETTER_RETRY_DELAYS')\n",
    "import os\nx = os.environ['HOME']\n",
    "import os\nx = os.getenv('X')\n",
    "from os import environ\n",
    "import os\nfor k in os.environ: pass\n",
])
def test_the_scan_finds_a_read(code: str) -> None:
    """The scan can fail: each way of reading the environment is found."""
    assert environment_reads(code) != []


def test_the_scan_ignores_what_is_not_a_read() -> None:
    assert environment_reads("import os\nx = os.path.join('a', 'b')\nenvironment = 1\n") == []


PASSED_ALWAYS = ("compose", "check", "deliver", "web", "members", "mailbox", "account", "doctor")


def folder_fallbacks(source: str, name: str = "<source>") -> list[int]:
    """Lines where a function falls back to the current folder: a `project: Project | None` parameter, or a
    call of project.current() / Project.here()."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.arg) and node.arg == "project" and node.annotation is not None \
                and ("None" in ast.unparse(node.annotation) or "Optional" in ast.unparse(node.annotation)):
            found.append(node.lineno)
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called in ("current", "project.current", "Project.here", "Path.cwd", "os.getcwd"):
                found.append(node.lineno)
    return found


def test_the_project_is_passed_never_taken_from_the_current_folder() -> None:
    """Every package takes the project as an argument; only cli.py asks where it runs."""
    fallbacks = [f"newsletter_cli/{path.relative_to(PACKAGE).as_posix()}:{line}"
                 for part in PASSED_ALWAYS for path in sorted((PACKAGE / part).rglob("*.py"))
                 for line in folder_fallbacks(path.read_text(encoding="utf-8"), str(path))]
    assert fallbacks == []


@pytest.mark.parametrize("code", [
    "def f(project: Project | None = None): ...\n",
    "def f(*, project: Optional[Project] = None): ...\n",
    "x = current(None)\n",
    "x = Project.here()\n",
    "x = Path.cwd()\n",
])
def test_the_fallback_scan_finds_one(code: str) -> None:
    assert folder_fallbacks(code) != []


def test_the_command_line_still_honours_the_send_knobs(project: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.py reads NEWSLETTER_STATE_DIR (where the shared rate limiter keeps its times) and the delays: a send
    through the command puts the limiter's file there, and a bad delay list is a plain error."""
    from click.testing import CliRunner
    from test_send import write_env, write_list

    from newsletter_cli.cli import cli, send_tuning

    from smtp_server import SmtpServer

    state = tmp_path / "state"
    monkeypatch.setenv("NEWSLETTER_STATE_DIR", str(state))
    monkeypatch.setenv("NEWSLETTER_RETRY_DELAYS", "0,1.5")
    monkeypatch.setenv("NEWSLETTER_RECONNECT_DELAYS", "0")
    tuning = send_tuning()
    assert (tuning.state_dir, tuning.retry_delays, tuning.reconnect_delays) == (state, (0.0, 1.5), (0.0,))
    write_list(project, ["redactie@vzhg.nl"], "review.csv")
    with SmtpServer() as server:
        write_env(project, server, SEND_RATE=600)
        result = CliRunner().invoke(cli, ["send", "2025-09", "--test"])
        assert result.exit_code == 0, result.output
        assert server.count_for("redactie@vzhg.nl") == 1
    assert len(list((state / "rate").glob("*.json"))) == 1
    monkeypatch.setenv("NEWSLETTER_RETRY_DELAYS", "soon")
    with SmtpServer() as server:
        write_env(project, server)
        refused = CliRunner().invoke(cli, ["send", "2025-09", "--test"])
    assert refused.exit_code == 2 and not server.received  # bad input (InputError)
    assert "NEWSLETTER_RETRY_DELAYS 'soon' is not a list of seconds, e.g. 5,30,120" in refused.output
