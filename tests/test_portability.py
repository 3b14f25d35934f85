"""Windows and macOS: nothing POSIX-only on a path a command takes.

Two tests, both in `make test`: a scan of the package's source for POSIX-only modules, functions and signals
outside guarded code, and the whole build -> send --test -> send -> status -> preview path run in a process in
which those modules cannot be imported and those functions do not exist (as on Windows).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from smtp_server import SmtpServer

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter_cli"
PROJECT_VERSION = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
POSIX_MODULES = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "posix", "syslog", "crypt", "spwd",
                 "nis", "posixpath"}
POSIX_ATTRIBUTES = {
    "os": {"fchmod", "fchown", "chown", "lchown", "getuid", "geteuid", "getgid", "getegid", "getgroups", "setuid",
           "setgid", "setsid", "getpgid", "setpgid", "killpg", "fork", "forkpty", "mkfifo", "uname", "getloadavg",
           "sysconf", "statvfs", "openpty", "wait3", "wait4", "sync", "O_NOFOLLOW", "O_CLOEXEC", "WNOHANG"},
    "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGPIPE", "SIGQUIT", "SIGSTOP",
               "SIGCONT", "SIGTSTP", "alarm", "setitimer", "pause", "siginterrupt", "pthread_kill", "sigwait"},
}
# What the blocked process lacks: the subset of the above that no library on Linux needs (platformdirs, for
# one, imports os.geteuid on Linux and uses the Windows API on Windows; the scan covers the package's own use).
BLOCKED_ATTRIBUTES = {"os": {"fchmod", "fchown", "chown", "setsid", "killpg", "fork", "mkfifo"},
                      "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "alarm", "setitimer"}}
_GUARD_WORDS = re.compile(r"\b(os\.name|sys\.platform|platform\.system|hasattr|getattr)\b")
_GUARD_ERRORS = {"ImportError", "ModuleNotFoundError", "AttributeError"}


def _guarded_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under a platform guard: `if os.name == ...` / `if sys.platform ...` / `if hasattr(...)`
    (either branch), or a `try` whose handlers catch ImportError or AttributeError."""
    guarded: set[int] = set()

    def mark(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            guarded.update(id(child) for child in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp)) and _GUARD_WORDS.search(ast.unparse(node.test)):
            mark(node.body if isinstance(node.body, list) else [ast.Expr(node.body)])
            mark(node.orelse if isinstance(node.orelse, list) else [ast.Expr(node.orelse)])
        elif isinstance(node, ast.Try):
            caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if any(name in text for text in caught for name in _GUARD_ERRORS):
                mark(node.body)
    return guarded


def posix_only_uses(source: str, filename: str) -> list[str]:
    """`file:line: what` for each POSIX-only import or attribute outside guarded code."""
    tree = ast.parse(source, filename)
    guarded = _guarded_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        what = None
        if isinstance(node, ast.Import):
            what = next((a.name for a in node.names if a.name.split(".")[0] in POSIX_MODULES), None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in POSIX_MODULES:
                what = node.module
            elif node.module in POSIX_ATTRIBUTES:
                names = [a.name for a in node.names if a.name in POSIX_ATTRIBUTES[node.module]]
                what = f"{node.module}.{names[0]}" if names else None
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.attr in POSIX_ATTRIBUTES.get(node.value.id, ())):
            what = f"{node.value.id}.{node.attr}"
        if what:
            found.append(f"{filename}:{node.lineno}: {what}")
    return found



def serving_port(preview: subprocess.Popen[str], seconds: float = 120) -> tuple[str, str]:
    """Read a running `newsletter preview`'s output until it says where it serves (its Ctrl-C line):
    the port, and the output read so far."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline:
        assert preview.stdout is not None
        line = preview.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    port = re.search(r"http://127\.0\.0\.1:(\d+)/", "".join(lines))
    assert port, "".join(lines)
    return port.group(1), "".join(lines)

@pytest.mark.slow  # ~2 s on 2 busy cores (issue 22: make test-fast skips it)
def test_no_posix_only_call_outside_guarded_code() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += posix_only_uses(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    assert not problems, ("POSIX-only, so this breaks on Windows; use a portable library (filelock, ...) or guard "
                          "it with `if os.name == 'posix':` / `hasattr(...)`:\n" + "\n".join(problems))


@pytest.mark.parametrize(("source", "expected"), [
    ("import fcntl\n", ["x.py:1: fcntl"]),
    ("import os\nos.fchmod(3, 0o600)\n", ["x.py:2: os.fchmod"]),
    ("from os import getuid\n", ["x.py:1: os.getuid"]),
    ("import signal\nsignal.signal(signal.SIGHUP, print)\n", ["x.py:2: signal.SIGHUP"]),
    ("import os\nif os.name == 'posix':\n    os.fchmod(3, 0o600)\n", []),
    ("import signal\nif hasattr(signal, 'SIGHUP'):\n    signal.signal(signal.SIGHUP, print)\n", []),
    ("try:\n    import fcntl\nexcept ImportError:\n    fcntl = None\n", []),
    ("import signal\nsignal.signal(signal.SIGTERM, print)\n", []),
])
def test_the_scan_finds_what_it_should(source: str, expected: list[str]) -> None:
    assert posix_only_uses(source, "x.py") == expected


# The `newsletter` command in a process where the POSIX-only modules and functions are missing, as on Windows.
# fcntl, pwd, grp and resource cannot be imported at all (libraries import them only where they exist);
# termios and tty, which click imports for itself on POSIX (and replaces by msvcrt on Windows), are refused
# only to the package's own code. The import hook also catches a module some library has imported already.
HARD_BLOCKED = ["fcntl", "grp", "pwd", "resource"]
BLOCKING = f"""
import builtins, os, signal, sys
for name in {HARD_BLOCKED!r}:
    sys.modules[name] = None  # `import fcntl` now raises ImportError
for module, names in {{"os": {sorted(BLOCKED_ATTRIBUTES["os"])!r}, "signal": {sorted(BLOCKED_ATTRIBUTES["signal"])!r}}}.items():
    for name in names:
        if hasattr(sys.modules[module], name):
            delattr(sys.modules[module], name)
real_import = builtins.__import__
def posix_free_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {{}}).get("__name__") or ""
    if importer.startswith("newsletter_cli") and name.split(".")[0] in {sorted(POSIX_MODULES - {"posixpath"})!r}:
        raise ImportError(f"{{importer}} imports {{name}}, which Windows does not have")
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = posix_free_import
sys.argv[0] = "newsletter"
from newsletter_cli.cli import main
main()
"""


def newsletter(project: Path, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_", "SEND_", "REVIEW_"))}
    return subprocess.Popen([sys.executable, "-c", BLOCKING, *args], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, encoding="utf-8", **popen)


def run(project: Path, *args: str) -> str:
    process = newsletter(project, *args)
    output = process.communicate(timeout=180)[0]
    assert process.returncode == 0, f"newsletter {' '.join(args)}:\n{output}"
    assert "Traceback" not in output, output
    return output


@pytest.mark.slow  # ~24 s on 2 busy cores (issue 22: make test-fast skips it)
def test_the_whole_path_works_without_posix_only_modules(project: Path) -> None:
    members = [f"lid{i}@example.org" for i in range(3)]
    (project / "leden.csv").write_text("email\n" + "\n".join(members) + "\n", encoding="utf-8")
    (project / "review.csv").write_text("email\nredactie@example.org\n", encoding="utf-8")
    probe = newsletter(project, "--version")
    assert probe.communicate(timeout=60)[0].strip() == f"newsletter, version {PROJECT_VERSION}"
    with SmtpServer() as server:
        (project / ".env").write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={server.port}\nSMTP_SECURITY=none\n"
                                      "NEWSLETTER_FROM=nb@vzhg.nl\nSEND_RATE=0\nREVIEW_LIST=review.csv\n",
                                      encoding="utf-8")
        (project / ".env").chmod(0o600)
        assert "Built editions" in run(project, "build", "2025-09")
        run(project, "send", "2025-09", "--test")
        assert server.count_for("redactie@example.org") == 1
        sent = run(project, "send", "2025-09", "--recipients", "leden.csv", "--yes")
        assert "3 sent" in sent, sent
        assert [server.count_for(a) for a in members] == [1, 1, 1]
        assert "3 sent" in run(project, "status", "2025-09")
        again = run(project, "send", "2025-09", "--recipients", "leden.csv", "--yes")  # resumes: nobody twice
        assert [server.count_for(a) for a in members] == [1, 1, 1], again

    preview = newsletter(project, "preview", "2025-09", "--port", "0", "--no-open")
    try:
        port, started = serving_port(preview)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/email.html", timeout=30) as response:
            assert response.status == 200 and b"Najaarscongres" in response.read()
        preview.terminate()  # SIGTERM here; Ctrl-Break (SIGBREAK) on Windows, handled the same way
        rest = preview.communicate(timeout=30)[0]
    finally:
        if preview.poll() is None:
            preview.kill()
    assert "Preview stopped." in rest and "Traceback" not in started + rest


def test_the_env_permission_warning_only_where_permission_bits_mean_something(project: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    from newsletter_cli import envfile as settings

    (project / ".env").write_text("SMTP_HOST=h\n", encoding="utf-8")
    (project / ".env").chmod(0o666)  # what Windows reports for every file that is not read-only
    warnings = settings.read_raw(project / ".env").warnings
    assert any("chmod 600 .env" in w for w in warnings)  # on Linux and macOS it is a real problem
    monkeypatch.setattr(settings, "PERMISSION_BITS_MEAN_PRIVACY", False)  # as on Windows
    assert settings.read_raw(project / ".env").warnings == []


def test_the_token_command_keeps_windows_paths() -> None:
    from newsletter_cli.deliver.smtp import command_line

    line = r'python C:\Users\secretariaat\token.py --user "nieuwsbrief@vzhg.nl"'
    assert command_line(line, windows=True) == line  # CreateProcess parses it; no backslash lost
    assert command_line("python3 get_token.py --user 'a b'", windows=False) == ["python3", "get_token.py", "--user", "a b"]


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_output_survives_a_windows_code_page(project: Path) -> None:
    """Redirected output on Windows is in the ANSI code page (cp1252); an edition's emoji must not crash a command."""
    edition = project / "editions" / "2025-09" / "edition.yaml"
    text = edition.read_text(encoding="utf-8")
    edition.write_text(text.replace('subject: "Nieuwsbrief VZHG', 'subject: "👉 Nieuwsbrief VZHG', 1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_", "SEND_", "REVIEW_"))}
    env.update(PYTHONIOENCODING="cp1252", NEWSLETTER_FROM="nb@vzhg.nl")
    done = subprocess.run([sys.executable, "-c", "from newsletter_cli.cli import main; main()", "send", "2025-09",
                           "--test", "--to", "redactie@example.org"], cwd=project, env=env, capture_output=True,
                          check=False, timeout=120)
    output = done.stdout.decode("cp1252") + done.stderr.decode("cp1252")
    assert done.returncode == 0, output
    assert "Subject:    [TEST] ? Nieuwsbrief VZHG" in output and "Traceback" not in output


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="stands in SIGUSR1 for SIGBREAK")
def test_ctrl_break_stops_the_preview_like_ctrl_c(project: Path) -> None:
    """Windows' Ctrl-Break (SIGBREAK) is handled as Ctrl-C; here SIGUSR1 plays SIGBREAK, which Linux lacks."""
    import signal

    code = "import signal; signal.SIGBREAK = signal.SIGUSR1; from newsletter_cli.cli import main; main()"
    process = subprocess.Popen([sys.executable, "-c", code, "preview", "--port", "0", "--no-open"], cwd=project,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port, _ = serving_port(process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200  # serving: the signal now reaches the running server
        process.send_signal(signal.SIGUSR1)
        rest = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Preview stopped." in rest and "Traceback" not in rest, rest
