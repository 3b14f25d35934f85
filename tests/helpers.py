"""What many tests share: a clean environment, the command as a real process, and a fake clock.

On the path through `pythonpath = ["tests"]` (pyproject.toml): `from helpers import clean_env`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from click.testing import Result

from newsletter_cli.envfile import NAMES, OWN_PREFIXES
from newsletter_cli.project import Project
from newsletter_cli.settings import Settings

# The command as a user runs it, in a process of its own (no pytest around it).
COMMAND = [sys.executable, "-c", "from newsletter_cli.cli import main; main()"]


def is_setting(name: str) -> bool:
    """An environment variable the tool reads as a setting (or one in its families: SMTP_*, NEWSLETTER_*, ...)."""
    return name in NAMES or name.startswith(OWN_PREFIXES)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any of the tool's settings (so the developer's own never leak into a
    test), plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not is_setting(k)}, **extra}


def newsletter(project: Path, *args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[str]:
    """`newsletter ARGS` started in `project`, stdout and stderr together, in a clean environment."""
    return subprocess.Popen([*COMMAND, *args], cwd=project, env=env if env is not None else clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def run_newsletter(project: Path, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`newsletter ARGS` run to the end in `project`; stdout and stderr kept apart."""
    return subprocess.run([*COMMAND, *args], cwd=project, env=env if env is not None else clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def load_settings() -> Settings:
    """The settings of the project in the current folder, as a command reads them."""
    return Project.here().settings


class FakeClock:
    """A monotonic clock and its sleep for the rate limiter: sleeping moves the time on at once."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def assert_no_traceback(result: Result) -> None:
    """A command ended as designed (a message and an exit status), not with an exception escaping from it.

    CliRunner keeps the exception: anything but SystemExit (how click ends a command) is a crash, whatever the
    output looks like.
    """
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        raise AssertionError("the command crashed:\n" + "".join(traceback.format_exception(*result.exc_info)))
