"""The passwords in `.env` as `doctor` may show them: a length and a mask, never the password itself.

python-dotenv reads `.env`: an unquoted value ends at ` #` (the rest is a comment), so `SMTP_PASSWORD=abc #1`
sends `abc`. Between single quotes everything is taken as written except two escapes: `\\'` is a quote and
`\\\\` a backslash. `doctor` says so when the .env line shows a cut password or when a login is refused.
"""

from __future__ import annotations

import re

from newsletter_cli.settings import Settings

QUOTING = ("Write the password between single quotes, e.g.  {name}='my #pass\"word'  : inside single quotes "
           "everything is taken as written, except that a single quote is written \\' and a backslash \\\\ "
           "(two backslashes).")


def shown(password: str) -> str:
    """'(not set)', or its length and, for a long enough password, its first and last character."""
    if not password:
        return "(not set)"
    if len(password) < 8:
        return f"(set, {len(password)} characters)"
    return f"(set, {len(password)} characters: {password[0]}***{password[-1]})"


def _env_line(settings: Settings, name: str) -> str | None:
    """The raw .env line that sets `name` (for the check below; never printed: it holds the password)."""
    where = settings.source(name)
    if settings.env_file is None or not where.startswith(".env:"):
        return None
    try:
        lines = settings.env_file.read_text(encoding="utf-8-sig").splitlines()
        return lines[int(where.split(":")[1]) - 1]
    except (OSError, ValueError, IndexError):
        return None


def _cut(line: str) -> bool:
    """Whether an unquoted value on this line holds ' #', where python-dotenv cuts it."""
    value = line.partition("=")[2].lstrip()
    return not value.startswith(("'", '"')) and bool(re.search(r"\s#", value))


def password_hints(settings: Settings, refused: bool) -> list[str]:
    """What to say about how the passwords were written in .env: always when one is cut at ' #', and after a
    refused login when a password holds characters that need quoting."""
    hints = []
    for name, secret in (("SMTP_PASSWORD", settings.smtp_password), ("IMAP_PASSWORD", settings.imap_password)):
        line = _env_line(settings, name)
        if line is not None and _cut(line):
            hints.append(f"{name} in {settings.source(name)} holds ' #' outside quotes: everything from ' #' on is "
                         f"read as a comment, so only {shown(secret.get_secret_value())} was read. "
                         + QUOTING.format(name=name))
        elif refused and name == "SMTP_PASSWORD" and re.search(r"[#'\"\\$ ]", secret.get_secret_value()):
            hints.append(f"{name} was read as {shown(secret.get_secret_value())}; if that is not the password's "
                         "length, check how it is written in .env. " + QUOTING.format(name=name))
    return hints
