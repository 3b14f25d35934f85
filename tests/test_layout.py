"""The package's plan and its cost: dependencies point one way (cli -> doctor -> mailbox -> deliver -> check ->
compose; doctor, mailbox, deliver -> account -> settings; deliver, mailbox -> members -> project, settings, errors),
and click lives only at the edge (cli.py; errors.py, whose exceptions are ClickExceptions).

Every import is counted, also the ones inside functions (the commands import lazily).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import clean_env

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter_cli"

# What each part may import from the package (besides itself). web and deliver both reuse `newsletter check`'s
# offline checks (the preview lists them, `send` refuses to start on an error), so they may import check.
# account/ (sign-in, tokens, refusals, DNS, passwords) sits below deliver/ and mailbox/, which use it; doctor/ tests
# the account with deliver's real SMTP connection and mailbox's real IMAP session, so it sits above both.
ALLOWED: dict[str, set[str]] = {
    "cli": {"web", "doctor", "mailbox", "deliver", "account", "members", "check", "compose", "project", "settings",
            "envfile", "textfile", "words", "errors", "__init__"},
    "__main__": {"cli"},
    "web": {"check", "compose", "project", "settings", "envfile", "textfile", "words", "errors"},
    "doctor": {"mailbox", "deliver", "account", "members", "project", "settings", "envfile", "textfile", "words",
               "errors"},
    "mailbox": {"deliver", "account", "members", "compose", "project", "settings", "envfile", "textfile", "words",
                "errors"},
    "deliver": {"account", "members", "check", "compose", "project", "settings", "envfile", "textfile", "words",
                "errors"},
    "account": {"settings", "envfile", "textfile", "words", "errors"},
    "members": {"project", "settings", "envfile", "textfile", "words", "errors"},
    "check": {"compose", "project", "settings", "envfile", "textfile", "words", "errors"},
    "compose": {"project", "settings", "envfile", "textfile", "words", "errors"},
    "project": {"settings", "envfile", "textfile", "words", "errors"},
    "settings": {"envfile", "textfile", "words", "errors"},
    "envfile": {"textfile", "words", "errors"},
    "textfile": {"words", "errors"},
    "words": set(),
    "errors": set(),
    "__init__": set(),
}
CLICK_ALLOWED = {"cli", "errors"}


def part(module: str) -> str:
    """'newsletter_cli.compose.render' -> 'compose'; 'newsletter_cli' -> '__init__'."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    relative = path.relative_to(package.parent).with_suffix("")
    names = list(relative.parts)
    if names[-1] == "__init__" and len(names) > 1:
        names.pop()
    return ".".join(names)


def imports(path: Path, package_dir: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path, package_dir).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.append((node.lineno, base))
            if base == "newsletter_cli":  # `from newsletter_cli import project` names a part
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                          if not alias.name.startswith("__")]  # __version__ is not a part
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def wrong_arrows(files: list[Path], package: Path = PACKAGE) -> list[str]:
    problems = []
    for path in files:
        source = part(module_name(path, package))
        shown = path.relative_to(package.parent)
        for line, name in imports(path, package):
            if name.split(".")[0] == "click" and source not in CLICK_ALLOWED:
                problems.append(f"{shown}:{line}: imports click (only cli.py may)")
            if not name.startswith("newsletter_cli"):
                continue
            target = part(name)  # '__init__' (the version) is everyone's
            if target not in (source, "__init__") and target not in ALLOWED.get(source, set()):
                problems.append(f"{shown}:{line}: {source} imports {name}")
    return problems


def test_every_module_belongs_to_a_known_part() -> None:
    unknown = {part(module_name(path)) for path in sources()} - set(ALLOWED)
    assert not unknown, f"new top-level modules must be given a place in ALLOWED: {unknown}"


def test_dependencies_point_one_way_and_click_stays_at_the_edge() -> None:
    assert wrong_arrows(sources()) == []


@pytest.mark.parametrize(("where", "code", "expected"), [
    ("compose/x.py", "from newsletter_cli.deliver import send\n", "compose imports newsletter_cli.deliver"),
    ("check/x.py", "def f():\n    from newsletter_cli.web.preview import serve\n", "check imports newsletter_cli.web"),
    ("settings.py", "from newsletter_cli import project\n", "settings imports newsletter_cli.project"),
    ("deliver/x.py", "from ..web import preview\n", "deliver imports newsletter_cli.web"),
    ("account/x.py", "from newsletter_cli.deliver.replies import Fatal\n", "account imports newsletter_cli.deliver"),
    ("deliver/x.py", "from newsletter_cli.doctor import Check\n", "deliver imports newsletter_cli.doctor"),
    ("web/x.py", "import click\n", "imports click"),
    ("compose/x.py", "from click import echo\n", "imports click"),
])
def test_a_wrong_arrow_is_caught(tmp_path: Path, where: str, code: str, expected: str) -> None:
    """The scan itself can fail: a planted wrong import is reported with its file and line."""
    fake = tmp_path / "newsletter_cli"
    (fake / where).parent.mkdir(parents=True, exist_ok=True)
    (fake / where).write_text(code, encoding="utf-8")
    problems = wrong_arrows([fake / where], fake)
    assert len(problems) == 1 and expected in problems[0], problems


def modules_after(project: Path, *args: str) -> set[str]:
    """The modules a command has imported by its end, run in a fresh interpreter (CliRunner: no os._exit)."""
    script = ("import json, sys\nfrom click.testing import CliRunner\nfrom newsletter_cli.cli import cli\n"
              f"result = CliRunner().invoke(cli, {list(args)!r})\n"
              "assert result.exit_code == 0, result.output\nprint(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], cwd=project, env=clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}


def test_each_command_imports_only_what_it_needs(project: Path) -> None:
    """`--help` loads click and nothing of the stack; `build` (with its offline checks) no address validator and
    no DNS; premailer only where the build inlines."""
    helped = modules_after(project, "--help")
    assert not helped & {"pydantic", "jinja2", "yaml", "markdown_it", "premailer", "babel", "mrml"}
    built = modules_after(project, "build", "2025-09")
    assert "premailer" in built and "jinja2" in built
    assert not built & {"email_validator", "dns", "imaplib", "smtplib", "watchfiles"}


def cycles(files: list[Path], package: Path = PACKAGE) -> list[list[str]]:
    """Import circles between the modules of one part (every import, also the type-only and the lazy ones): a
    circle means two modules share something that belongs in a module of its own."""
    known = {module_name(path, package) for path in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        here = module_name(path, package)
        graph[here] = set()
        for _line, name in imports(path, package):
            while name and name not in known:  # `from newsletter_cli.web.preview import X` names the module
                name = name.rpartition(".")[0]
            if name and name != here and part(name) == part(here) and part(here) != "__init__" and \
                    not (path.name == "__init__.py" or name == ".".join(here.split(".")[:2])):
                graph[here].add(name)
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_no_import_circle_inside_a_part() -> None:
    assert cycles(sources()) == []


def test_the_circle_check_sees_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "newsletter_cli"
    (package / "web").mkdir(parents=True)
    for name, text in {"__init__.py": "", "web/__init__.py": "",
                       "web/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from newsletter_cli.web.b import B\n",
                       "web/b.py": "from newsletter_cli.web.a import A\n"}.items():
        (package / name).write_text(text, encoding="utf-8")
    found = cycles(sorted(package.rglob("*.py")), package)
    assert found == [["newsletter_cli.web.a", "newsletter_cli.web.b", "newsletter_cli.web.a"]]
