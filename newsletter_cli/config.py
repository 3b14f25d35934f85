"""Settings from `.env` in the current folder and the environment (the environment wins)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Literal

from .errors import InputError

ENV_FILE = ".env"
SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
NAMES = (
    "SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_OAUTH_TOKEN_COMMAND",
    "SMTP_CA_FILE", "SMTP_TIMEOUT", "NEWSLETTER_FROM", "NEWSLETTER_REPLY_TO", "SEND_RATE", "SEND_CONNECTIONS",
    "LIST_UNSUBSCRIBE", "LIST_UNSUBSCRIBE_SECRET", "REVIEW_LIST",
)
Security = Literal["starttls", "ssl", "none"]


class Secret:
    """A value that never shows itself in str(), repr() or f-strings; `.reveal()` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything `send` and `doctor` need; the password and tokens are Secrets, hidden from repr."""

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Security = "starttls"
    smtp_username: str | None = None
    smtp_password: Secret = field(default_factory=lambda: Secret(""), repr=False)
    smtp_oauth_token_command: str | None = None
    smtp_ca_file: Path | None = None
    smtp_timeout: float = 60.0
    newsletter_from: str | None = None  # 'VZHG <nieuwsbrief@vzhg.nl>'
    reply_to: str | None = None
    send_rate: int = 30  # messages per minute; 0 = no limit (local test servers only)
    send_connections: int = 1
    list_unsubscribe: tuple[str, ...] = ()  # 'mailto:...' and/or an https URL template
    list_unsubscribe_secret: Secret = field(default_factory=lambda: Secret(""), repr=False)
    review_list: Path | None = None
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # name -> '.env:3'

    def source(self, name: str) -> str:
        """Where a setting came from, for messages: '.env:3', 'the environment' or 'the default'."""
        return self.sources.get(name, "the default")

    @property
    def from_address(self) -> str:
        """The bare address of NEWSLETTER_FROM."""
        return getaddresses([self.newsletter_from or ""])[0][1]

    @property
    def unsubscribe_mailto(self) -> str | None:
        return next((u for u in self.list_unsubscribe if u.startswith("mailto:")), None)

    @property
    def unsubscribe_https(self) -> str | None:
        return next((u for u in self.list_unsubscribe if u.startswith("https://")), None)


def _env_file_lines(path: Path) -> dict[str, int]:
    """The line on which each name is set in the .env file (for messages)."""
    lines: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return lines
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip().removeprefix("export ").split("=", 1)[0].strip()
        if name and not name.startswith("#"):
            lines[name] = number
    return lines


def _warn_permissions(path: Path, warn: list[str]) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn.append(f"{path.name} can be read by other users of this computer and may hold the SMTP password: "
                    f"run  chmod 600 {path.name}")


def read_raw(env_file: Path | None = None) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(values, sources, warnings) from the .env file and the environment, the environment winning."""
    from dotenv import dotenv_values  # small, but only needed here

    path = env_file if env_file is not None else Path.cwd() / ENV_FILE
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    warnings: list[str] = []
    if path.is_file():
        _warn_permissions(path, warnings)
        try:
            file_values = dotenv_values(path, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path.name}: cannot read the settings file: {exc}") from None
        lines = _env_file_lines(path)
        for name, value in file_values.items():
            if value is not None and value.strip() != "":
                values[name] = value.strip()
                sources[name] = f"{path.name}:{lines[name]}" if name in lines else path.name
    for name in NAMES:
        value = os.environ.get(name)
        if value is not None and value.strip() != "":
            values[name] = value.strip()
            sources[name] = "the environment"
    return values, sources, warnings


class _Reader:
    """Parses one setting at a time; every error names the setting and where it was set."""

    def __init__(self, values: dict[str, str], sources: dict[str, str]):
        self.values, self.sources = values, sources

    def where(self, name: str) -> str:
        source = self.sources.get(name, "")
        if source == "the environment":
            return f"{name} (in the environment): "
        return f"{source}: " if source else ""

    def fail(self, name: str, message: str) -> InputError:
        where = self.where(name)
        if where.startswith(name):
            return InputError(f"{where}{message}")
        return InputError(f"{where}{name} {message}")

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is not None and any(ch in value for ch in "\r\n\0"):
            raise self.fail(name, "contains a line break; write it on one line")
        return value

    def integer(self, name: str, default: int, low: int, high: int, what: str) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            number = int(raw)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise self.fail(name, f"'{raw}' is not {what} ({low}-{high})")
        return number

    def path(self, name: str) -> Path | None:
        raw = self.text(name)
        if raw is None:
            return None
        path = Path(raw).expanduser()
        if not path.is_file():
            raise self.fail(name, f"'{raw}': there is no such file")
        return path


def _check_address(reader: _Reader, name: str, value: str | None) -> None:
    from email_validator import EmailNotValidError, validate_email

    if value is None:
        return
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise reader.fail(name, f"'{value}' is not one email address, e.g. VZHG <nieuwsbrief@vzhg.nl>")
    try:
        validate_email(pairs[0][1], check_deliverability=False)
    except EmailNotValidError as exc:
        raise reader.fail(name, f"'{value}' is not a valid email address: {exc}") from None


def _unsubscribe(reader: _Reader) -> tuple[str, ...]:
    raw = reader.text("LIST_UNSUBSCRIBE")
    if raw is None:
        return ()
    out: list[str] = []
    for part in raw.replace(",", " ").split():
        if part.startswith("https://"):
            out.append(part)
        elif part.startswith("mailto:") or ("@" in part and "://" not in part):
            address = part.removeprefix("mailto:")
            _check_address(reader, "LIST_UNSUBSCRIBE", address.split("?", 1)[0])
            out.append(f"mailto:{address}")
        else:
            raise reader.fail("LIST_UNSUBSCRIBE", f"'{part}' is neither a mailto: address nor an https:// URL")
    return tuple(out)


def parse_settings(values: dict[str, str], sources: dict[str, str]) -> Settings:
    """Validate raw values into Settings; raises InputError naming the first bad setting."""
    reader = _Reader(values, sources)
    security = (reader.text("SMTP_SECURITY") or "starttls").lower()
    if security not in SECURITY_MODES:
        raise reader.fail("SMTP_SECURITY", f"'{values['SMTP_SECURITY']}' is unknown: use starttls (port 587), "
                                           "ssl (port 465) or none (no encryption, local test servers only)")
    port = reader.integer("SMTP_PORT", DEFAULT_PORTS[security], 1, 65535, "a port number")
    timeout = reader.integer("SMTP_TIMEOUT", 60, 1, 3600, "a number of seconds")
    rate = reader.integer("SEND_RATE", 30, 0, 100_000, "a number of messages per minute")
    connections = reader.integer("SEND_CONNECTIONS", 1, 1, 20, "a number of connections")
    sender, reply_to = reader.text("NEWSLETTER_FROM"), reader.text("NEWSLETTER_REPLY_TO")
    _check_address(reader, "NEWSLETTER_FROM", sender)
    _check_address(reader, "NEWSLETTER_REPLY_TO", reply_to)
    username, password = reader.text("SMTP_USERNAME"), reader.text("SMTP_PASSWORD")
    token_command = reader.text("SMTP_OAUTH_TOKEN_COMMAND")
    if password and not username:
        raise reader.fail("SMTP_PASSWORD", "is set but SMTP_USERNAME is not: set both, or neither")
    if token_command and not username:
        raise reader.fail("SMTP_OAUTH_TOKEN_COMMAND", "needs SMTP_USERNAME (the mailbox that sends)")
    unsubscribe = _unsubscribe(reader)
    secret = reader.text("LIST_UNSUBSCRIBE_SECRET") or ""
    https = next((u for u in unsubscribe if u.startswith("https://")), None)
    if https and "{token}" in https and len(secret) < 16:
        if secret:
            raise reader.fail("LIST_UNSUBSCRIBE_SECRET", "is too short: use at least 16 random characters")
        raise reader.fail("LIST_UNSUBSCRIBE", "contains {token}, so LIST_UNSUBSCRIBE_SECRET must be set "
                                              "(at least 16 random characters)")
    return Settings(
        smtp_host=reader.text("SMTP_HOST"), smtp_port=port, smtp_security=security,  # type: ignore[arg-type]
        smtp_username=username, smtp_password=Secret(password or ""), smtp_oauth_token_command=token_command,
        smtp_ca_file=reader.path("SMTP_CA_FILE"), smtp_timeout=float(timeout),
        newsletter_from=sender, reply_to=reply_to, send_rate=rate, send_connections=connections,
        list_unsubscribe=unsubscribe, list_unsubscribe_secret=Secret(secret),
        review_list=Path(reader.text("REVIEW_LIST") or "") if reader.text("REVIEW_LIST") else None,
        sources=dict(sources),
    )


def require(value: object, name: str, why: str) -> None:
    """Raise a clear InputError when a setting that this command needs is not set."""
    if not value:
        raise InputError(f"{name} is not set; {why}. Add it to .env in this folder (see .env.example).")


def load_settings(env_file: Path | None = None, warnings: list[str] | None = None) -> Settings:
    """Settings from `.env` in the current folder (or `env_file`) merged under the environment.

    Warnings (e.g. a .env readable by others) are appended to `warnings` when given, else printed to stderr.
    """
    values, sources, found = read_raw(env_file)
    if warnings is not None:
        warnings.extend(found)
    else:
        import click

        for warning in found:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
    return parse_settings(values, sources)
