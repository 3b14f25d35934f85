"""One exception hierarchy (a ClickException, so the CLI has one exit path) and the Diagnostic record."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import click

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """A problem found in an edition: where it is, what is wrong and how to fix it."""

    severity: Severity
    file: str
    line: int | None
    where: str  # e.g. 'item "Najaarscongres 21 november"', or "" for the edition as a whole
    message: str
    fix: str = ""
    code: str = ""

    @property
    def place(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        fix = f" ({self.fix})" if self.fix else ""
        return f"{self.place}: {where}{self.message}{fix}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class NewsletterError(click.ClickException):
    """Base of every error the user should see as a message, not a traceback."""

    exit_code = 1


class InputError(NewsletterError):
    """Bad input (edition, recipients, settings): exit status 2."""

    exit_code = 2


class EditionError(InputError):
    """One or more problems in an edition file, reported together."""

    def __init__(self, problems: list[Diagnostic] | str):
        if isinstance(problems, str):
            self.problems: list[Diagnostic] = []
            super().__init__(problems)
        else:
            self.problems = problems
            count = len(problems)
            head = f"{count} problem{'s' if count != 1 else ''} in the edition; nothing was built:"
            super().__init__("\n".join([head, *(str(p) for p in problems)]))
