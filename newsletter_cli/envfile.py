"""Reading the project's `.env` and the environment into text, before any validation (settings.py types it).

Lines that cannot be read and misspelt names (with a did-you-mean) are collected, not raised: `build` needs
only ARCHIVE_BASE_URL and goes on; `send` and `doctor` refuse them (settings.validate).
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.errors import InputError
from newsletter_cli.textfile import decode_utf8

ENV_FILE = ".env"
NAMES = (
    "SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_OAUTH_TOKEN_COMMAND",
    "SMTP_CA_FILE", "SMTP_TIMEOUT", "SMTP_DATA_TIMEOUT", "NEWSLETTER_FROM", "NEWSLETTER_REPLY_TO", "SEND_RATE",
    "SEND_CONNECTIONS", "LIST_UNSUBSCRIBE", "LIST_UNSUBSCRIBE_SECRET", "REVIEW_LIST", "ARCHIVE_BASE_URL",
    "IMAP_HOST", "IMAP_PORT", "IMAP_USERNAME", "IMAP_PASSWORD", "IMAP_FOLDER", "IMAP_PROCESSED_FOLDER",
    "IMAP_UNREADABLE_FOLDER",
    "SMTP_AUTH", "OAUTH_CLIENT_ID", "OAUTH_TENANT", "OAUTH_AUTHORITY", "OAUTH_CLIENT_SECRET", "OAUTH_CERTIFICATE",
    "OAUTH_CERTIFICATE_PASSWORD", "DNS_SERVER",
)


# Names in these families are this tool's: one that is not in NAMES is a typo (SMTP_PASWORD) or a wish
# (SMTP_VERIFY=false) that must not pass silently.
OWN_PREFIXES = ("SMTP_", "NEWSLETTER_", "SEND_", "LIST_UNSUBSCRIBE", "REVIEW_", "IMAP_", "OAUTH_", "DNS_")
ENVIRONMENT_ONLY = ("NEWSLETTER_RETRY_DELAYS", "NEWSLETTER_RECONNECT_DELAYS", "NEWSLETTER_DNS_TIMEOUT",
                    "NEWSLETTER_TOKEN_COMMAND_TIMEOUT")


def _unknown_name(name: str) -> str:
    """Why a name in this tool's families is not a setting, and what was probably meant."""
    import difflib

    if name in ENVIRONMENT_ONLY:
        return (f"{name} is read from the environment only, not from .env: run e.g. "
                f"{name}=0,0 newsletter send ...")
    if not name.startswith("OAUTH_") and any(word in name for word in ("VERIFY", "INSECURE", "CERT", "CHECK")):
        return (f"{name} is not a setting: certificate checks cannot be switched off. To trust your "
                "organisation's own certificate authority, set SMTP_CA_FILE to its certificate (.pem)")
    if any(word in name for word in ("TLS", "SSL")):
        return f"{name} is not a setting; did you mean SMTP_SECURITY (starttls, ssl or none)?"
    aliases = {"SERVER": "SMTP_HOST", "USER": "SMTP_USERNAME", "LOGIN": "SMTP_USERNAME", "PASS": "SMTP_PASSWORD",
               "SENDER": "NEWSLETTER_FROM"}
    alias = next((real for word, real in aliases.items() if word in name.split("_")), None)
    close = [alias] if alias else difflib.get_close_matches(name, NAMES, n=1, cutoff=0.6)
    return f"{name} is not a setting" + (f"; did you mean {close[0]}?" if close else " (see .env.example)")


def _env_file_lines(path: Path, text: str) -> tuple[dict[str, int], list[str]]:
    """The line on which each name is set in the .env file (for messages), and the lines that are wrong."""
    from dotenv.parser import parse_stream

    lines: dict[str, int] = {}
    problems: list[str] = []
    for binding in parse_stream(io.StringIO(text)):
        number = binding.original.line
        if binding.error:  # its text is not shown: it may hold the password
            problems.append(f"{path.name}:{number}: cannot read this line: write NAME=value, e.g. "
                            "SMTP_HOST=smtp.office365.com (the name is one word); a value in quotes needs "
                            "its closing quote on the same line")
            continue
        if binding.key is None:
            continue
        lines[binding.key] = number
        if binding.key.startswith(OWN_PREFIXES) and binding.key not in NAMES:
            problems.append(f"{path.name}:{number}: {_unknown_name(binding.key)}")
        elif binding.key in NAMES and binding.value is None:
            problems.append(f"{path.name}:{number}: {binding.key} has no '=': write {binding.key}=value")
    return lines, problems


# Only POSIX permission bits say who can read a file; Windows reports any writable file as 0o666 (its ACLs
# keep a file in the user's own folder private), so the warning would always be wrong there.
PERMISSION_BITS_MEAN_PRIVACY = os.name == "posix"


def _warn_permissions(path: Path, warn: list[str]) -> None:
    if not PERMISSION_BITS_MEAN_PRIVACY:
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn.append(f"{path.name} can be read by other users of this computer and may hold the SMTP password: "
                    f"run  chmod 600 {path.name}")


@dataclass
class RawSettings:
    """The settings as text from .env and the environment, before validation.

    `problems` are .env lines that cannot be read and names in this tool's families that are not settings:
    `send` and `doctor` refuse them (Project.settings) instead of leaving them out silently; `build` only
    needs ARCHIVE_BASE_URL and does not. A name set to nothing in .env is not set, but its source is kept
    ('.env:3') so that a message can point at the line.
    """

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # name -> '.env:3' or 'the environment'
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_raw(env_file: Path) -> RawSettings:
    """The .env file (when there is one) and the environment, the environment winning."""
    from dotenv import dotenv_values  # small, but only needed here

    raw = RawSettings()
    if env_file.is_file():
        _warn_permissions(env_file, raw.warnings)
        try:
            text = decode_utf8(env_file.read_bytes(), env_file.name, "in Notepad, Save As with Encoding: UTF-8",
                               what="the settings file", quote_line=False)  # it may hold the password
        except OSError as exc:
            raise InputError(f"{env_file.name}: cannot read the settings file: {exc.strerror}") from None
        lines, raw.problems = _env_file_lines(env_file, text)
        # interpolate=False: a password may hold ${...} or $NAME, which must reach the server as written
        for name, value in dotenv_values(stream=io.StringIO(text), interpolate=False).items():
            if name in lines:
                raw.sources[name] = f"{env_file.name}:{lines[name]}"
            if value is not None and value.strip() != "":
                raw.values[name] = value.strip()
                raw.sources[name] = f"{env_file.name}:{lines[name]}" if name in lines else env_file.name
    for name in NAMES:
        value = os.environ.get(name)
        if value is not None:  # set to nothing in the environment wins over .env too: the name is not set
            raw.values.pop(name, None)
            if value.strip() != "":
                raw.values[name] = value.strip()
            raw.sources[name] = "the environment"
    return raw
