"""The typed Settings and their validation: every error names the setting and where it was set (`.env:3`).

The raw text comes from envfile.read_raw (the `.env` file and the environment, the environment winning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from newsletter_cli.envfile import ENV_FILE, RawSettings
from newsletter_cli.errors import InputError

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
MAX_VALUE = 4096  # characters in one setting; longer is a mistake (a pasted file)
LONG_QUOTED = re.compile(r"'([^']{100,})'")  # a value quoted in a message, too long to show whole
EXAMPLE_UNSUBSCRIBE_SECRET = "change-me-to-a-long-random-string"  # shipped in an old .env.example: public
Security = Literal["starttls", "ssl", "none"]
AuthMode = Literal["password", "oauth"]
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class Settings:
    """Everything `send` and `doctor` need; the password and tokens are SecretStr, hidden from repr."""

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: Security = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)
    smtp_oauth_token_command: str | None = None
    smtp_ca_file: Path | None = None
    smtp_timeout: float = 60.0
    smtp_data_timeout: float = 600.0  # waiting for the reply to a message's final dot (RFC 5321: 10 minutes)
    newsletter_from: str | None = None  # 'VZHG <nieuwsbrief@vzhg.nl>'
    reply_to: str | None = None
    send_rate: int = 30  # messages per minute; 0 = no limit (local test servers only)
    send_connections: int = 1
    list_unsubscribe: tuple[str, ...] = ()  # 'mailto:...' and/or an https URL template
    list_unsubscribe_secret: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)
    review_list: Path | None = None
    imap_host: str | None = None  # the mailbox that `newsletter mailbox` reads (bounces, unsubscribes)
    imap_port: int = 993
    imap_username: str | None = None  # default SMTP_USERNAME
    imap_password: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)  # default SMTP_PASSWORD
    imap_folder: str = "INBOX"
    imap_processed_folder: str = "Nieuwsbrief verwerkt"
    imap_unreadable_folder: str = "Nieuwsbrief onleesbaar"  # messages `newsletter mailbox` cannot read
    archive_base_url: str | None = None  # where `newsletter archive`'s site is published
    smtp_auth: AuthMode = "password"  # oauth: XOAUTH2 with MSAL (OAUTH_CLIENT_ID) or SMTP_OAUTH_TOKEN_COMMAND
    oauth_client_id: str | None = None
    oauth_tenant: str | None = None
    oauth_authority: str | None = None  # https://login.microsoftonline.com/<tenant> unless set
    oauth_client_secret: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)
    oauth_certificate: Path | None = None
    oauth_certificate_password: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)
    dns_server: tuple[str, int] | None = None  # (address, port) of the resolver doctor asks
    env_file: Path | None = field(default=None, repr=False, compare=False)  # the project's .env, for messages
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # name -> '.env:3'

    def source(self, name: str) -> str:
        """Where a setting came from, for messages: '.env:3', 'the environment' or 'the default'."""
        return self.sources.get(name, "the default")

    @property
    def from_address(self) -> str:
        """The bare address of NEWSLETTER_FROM."""
        return getaddresses([self.newsletter_from or ""])[0][1]

    @property
    def mailbox(self) -> str:
        """The mailbox that signs in: SMTP_USERNAME, else the address of NEWSLETTER_FROM."""
        return self.smtp_username or self.from_address

    @property
    def unattended(self) -> bool:
        """OAuth as the application itself (client credentials), not as a signed-in user."""
        return bool(self.oauth_client_secret or self.oauth_certificate)

    @property
    def unsubscribe_mailto(self) -> str | None:
        return next((u for u in self.list_unsubscribe if u.startswith("mailto:")), None)

    @property
    def unsubscribe_https(self) -> str | None:
        return next((u for u in self.list_unsubscribe if u.startswith("https://")), None)



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
        message = LONG_QUOTED.sub(lambda m: f"'{m.group(1)[:60]}...' ({len(m.group(1)):,} characters)", message)
        if where.startswith(name):
            return InputError(f"{where}{message}")
        return InputError(f"{where}{name} {message}")

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is not None and len(value) > MAX_VALUE:  # never echo a huge value back in a message
            raise self.fail(name, f"is {len(value):,} characters long; is this the right value?")
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


LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HOST_RE = re.compile(rf"{LABEL}(?:\.{LABEL})*\.?")


def _host(reader: _Reader) -> str | None:
    """SMTP_HOST: a name or an IP address, nothing more (no smtp://, no :587)."""
    import ipaddress

    raw = reader.text("SMTP_HOST")
    if raw is None or HOST_RE.fullmatch(raw):
        return raw
    try:
        return str(ipaddress.ip_address(raw.removeprefix("[").removesuffix("]")))
    except ValueError:
        pass
    if "://" in raw:
        hint = f"leave out '{raw.split('://', 1)[0]}://'"
    elif re.fullmatch(r"[^:]+:\d+", raw):
        hint = "the port goes in SMTP_PORT"
    else:
        hint = "write only the server's name"
    raise reader.fail("SMTP_HOST", f"'{raw}' is not a server name: {hint}, e.g. SMTP_HOST=smtp.office365.com")


def _ca_file(reader: _Reader) -> Path | None:
    """SMTP_CA_FILE: an existing file that holds at least one certificate (PEM)."""
    import ssl

    path = reader.path("SMTP_CA_FILE")
    if path is not None:
        try:
            ssl.create_default_context(cafile=str(path))
        except (ssl.SSLError, OSError, ValueError):
            raise reader.fail("SMTP_CA_FILE", f"'{reader.values['SMTP_CA_FILE']}' is not a certificate file: it must "
                                              "hold your certificate authority's certificate in PEM format (text "
                                              "starting with -----BEGIN CERTIFICATE-----)") from None
    return path


def _check_ports(reader: _Reader, security: str, port: int) -> None:
    """The two mix-ups that otherwise hang until the timeout: STARTTLS on 465 and TLS-from-the-start on 587."""
    if "SMTP_PORT" not in reader.values:
        return
    if security == "starttls" and port == 465:
        raise reader.fail("SMTP_PORT", "465 is the port for TLS from the start: set SMTP_SECURITY=ssl, or use "
                                       "SMTP_PORT=587 with starttls")
    if security == "ssl" and port == 587:
        raise reader.fail("SMTP_PORT", "587 is the port for STARTTLS: set SMTP_SECURITY=starttls, or use "
                                       "SMTP_PORT=465 with ssl")


def _check_address(reader: _Reader, name: str, value: str | None, example: str = "VZHG <nieuwsbrief@vzhg.nl>") -> None:
    from email_validator import EmailNotValidError, validate_email

    if value is None:
        return
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise reader.fail(name, f"'{value}' is not one email address, e.g. {example}")
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
            _check_address(reader, "LIST_UNSUBSCRIBE", address.split("?", 1)[0], "mailto:afmelden@vzhg.nl")
            out.append(f"mailto:{address}")
        else:
            raise reader.fail("LIST_UNSUBSCRIBE", f"'{part}' is neither a mailto: address nor an https:// URL")
    return tuple(out)


def _dns_server(reader: _Reader) -> tuple[str, int] | None:
    """DNS_SERVER: an IP address, optionally with a port (127.0.0.1:5353, [::1]:5353)."""
    import ipaddress

    raw = reader.text("DNS_SERVER")
    if raw is None:
        return None
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?|([0-9A-Fa-f:]+)", raw)
    address = port = None
    if match:
        address = match.group(1) or match.group(3) or match.group(5)
        port = match.group(2) or match.group(4)
    try:
        ipaddress.ip_address(address or "")
    except ValueError:
        raise reader.fail("DNS_SERVER", f"'{raw}' is not an IP address (with an optional port), "
                                        "e.g. DNS_SERVER=192.168.1.1 or DNS_SERVER=127.0.0.1:5353") from None
    number = int(port) if port else 53
    if not 1 <= number <= 65535:
        raise reader.fail("DNS_SERVER", f"'{raw}': the port must be 1-65535")
    return address or "", number


def _oauth(reader: _Reader, username: str | None, password: str | None, token_command: str | None,
           ) -> dict[str, object]:
    """SMTP_AUTH and the OAUTH_ settings; the default keeps what the settings did before SMTP_AUTH existed."""
    client_id, tenant = reader.text("OAUTH_CLIENT_ID"), reader.text("OAUTH_TENANT")
    authority = reader.text("OAUTH_AUTHORITY")
    default = "oauth" if token_command or (client_id and not password) else "password"
    mode = (reader.text("SMTP_AUTH") or default).lower()
    if mode not in ("password", "oauth"):
        raise reader.fail("SMTP_AUTH", f"'{reader.values['SMTP_AUTH']}' is unknown: use password (SMTP_USERNAME "
                                       "and SMTP_PASSWORD) or oauth (newsletter login; Microsoft 365)")
    if mode == "oauth" and not (client_id or token_command):
        raise reader.fail("SMTP_AUTH", "is oauth but OAUTH_CLIENT_ID is not set: add the application (client) "
                                       "id of the app registered in Microsoft Entra ID, e.g. OAUTH_CLIENT_ID="
                                       "00000000-0000-0000-0000-000000000000 (see the README, Microsoft 365)")
    if client_id and not (tenant or authority):
        raise reader.fail("OAUTH_CLIENT_ID", "needs OAUTH_TENANT: your organisation's tenant id or domain, "
                                             "e.g. OAUTH_TENANT=vzhg.nl")
    if authority and not re.fullmatch(r"https://[^/\s]+/\S+", authority):
        raise reader.fail("OAUTH_AUTHORITY", f"'{authority}' is not an https:// address with a tenant, e.g. "
                                             f"{MICROSOFT_AUTHORITY}/vzhg.nl")
    if tenant and not re.fullmatch(r"[A-Za-z0-9.-]+", tenant):
        raise reader.fail("OAUTH_TENANT", f"'{tenant}' is not a tenant id or domain, e.g. OAUTH_TENANT=vzhg.nl")
    secret = reader.text("OAUTH_CLIENT_SECRET") or ""
    certificate = reader.path("OAUTH_CERTIFICATE")
    if secret and certificate:
        raise reader.fail("OAUTH_CLIENT_SECRET", "and OAUTH_CERTIFICATE are both set: use one of them")
    return {"smtp_auth": mode, "oauth_client_id": client_id, "oauth_tenant": tenant,
            "oauth_authority": authority.rstrip("/") if authority else
            (f"{MICROSOFT_AUTHORITY}/{tenant}" if tenant else None),
            "oauth_client_secret": SecretStr(secret), "oauth_certificate": certificate,
            "oauth_certificate_password": SecretStr(reader.text("OAUTH_CERTIFICATE_PASSWORD") or "")}


def _imap(reader: _Reader, smtp_username: str | None, smtp_password: str | None) -> dict[str, Any]:
    """IMAP_*: the mailbox `newsletter mailbox` reads; the login defaults to the SMTP one."""
    host = reader.text("IMAP_HOST")
    if host is not None and not HOST_RE.fullmatch(host):
        raise reader.fail("IMAP_HOST", f"'{host}' is not a server name: write only the name, "
                                       "e.g. IMAP_HOST=outlook.office365.com (the port goes in IMAP_PORT)")
    username = reader.text("IMAP_USERNAME")
    password = reader.text("IMAP_PASSWORD")
    return {"imap_host": host, "imap_port": reader.integer("IMAP_PORT", 993, 1, 65535, "a port number"),
            "imap_username": username or smtp_username,
            "imap_password": SecretStr(password or ("" if username else smtp_password or "")),
            "imap_folder": reader.text("IMAP_FOLDER") or "INBOX",
            "imap_processed_folder": reader.text("IMAP_PROCESSED_FOLDER") or "Nieuwsbrief verwerkt",
            "imap_unreadable_folder": reader.text("IMAP_UNREADABLE_FOLDER") or "Nieuwsbrief onleesbaar"}


def parse_settings(values: dict[str, str], sources: dict[str, str], env_file: Path | None = None) -> Settings:
    """Validate raw values into Settings; raises InputError naming the first bad setting."""
    reader = _Reader(values, sources)
    security = (reader.text("SMTP_SECURITY") or "starttls").lower()
    if security not in SECURITY_MODES:
        raise reader.fail("SMTP_SECURITY", f"'{values['SMTP_SECURITY']}' is unknown: use starttls (port 587), "
                                           "ssl (port 465) or none (no encryption, local test servers only)")
    port = reader.integer("SMTP_PORT", DEFAULT_PORTS[security], 1, 65535, "a port number")
    _check_ports(reader, security, port)
    host = _host(reader)
    timeout = reader.integer("SMTP_TIMEOUT", 60, 1, 3600, "a number of seconds")
    data_timeout = reader.integer("SMTP_DATA_TIMEOUT", 600, 1, 3600, "a number of seconds")
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
    if secret == EXAMPLE_UNSUBSCRIBE_SECRET:
        raise reader.fail("LIST_UNSUBSCRIBE_SECRET", "is the example from .env.example, which everybody can read: "
                                                     "remove the line (a secret is then made for you) or use at least "
                                                     "16 random characters of your own")
    if secret and len(secret) < 16:
        raise reader.fail("LIST_UNSUBSCRIBE_SECRET", "is too short: use at least 16 random characters")
    https = next((u for u in unsubscribe if u.startswith("https://")), None)
    if https and "{token}" in https and len(secret) < 16:
        if secret:
            raise reader.fail("LIST_UNSUBSCRIBE_SECRET", "is too short: use at least 16 random characters")
        raise reader.fail("LIST_UNSUBSCRIBE", "contains {token}, so LIST_UNSUBSCRIBE_SECRET must be set "
                                              "(at least 16 random characters)")
    return Settings(
        smtp_host=host, smtp_port=port, smtp_security=security,  # type: ignore[arg-type]
        smtp_username=username, smtp_password=SecretStr(password or ""), smtp_oauth_token_command=token_command,
        smtp_ca_file=_ca_file(reader), smtp_timeout=float(timeout),
        smtp_data_timeout=float(data_timeout),
        newsletter_from=sender, reply_to=reply_to, send_rate=rate, send_connections=connections,
        list_unsubscribe=unsubscribe, list_unsubscribe_secret=SecretStr(secret),
        review_list=Path(reader.text("REVIEW_LIST") or "") if reader.text("REVIEW_LIST") else None,
        dns_server=_dns_server(reader), **_oauth(reader, username, password, token_command),  # type: ignore[arg-type]
        archive_base_url=reader.text("ARCHIVE_BASE_URL"), env_file=env_file, **_imap(reader, username, password),
        sources=dict(sources),
    )


def missing(settings: Settings, name: str, why: str, example: str) -> InputError:
    """The error for a setting a command needs that is empty or not set, pointing at the line or the file."""
    source = settings.sources.get(name, "")
    if source.startswith(ENV_FILE):
        return InputError(f"{source}: {name} is empty; {why}. Fill it in, e.g. {name}={example}")
    if settings.env_file is not None and settings.env_file.is_file():
        return InputError(f"{ENV_FILE}: {name} is not set; {why}. Add a line {name}={example}")
    return InputError(f"{name} is not set; {why}. There is no {ENV_FILE} in this folder: copy .env.example to "
                      f"{ENV_FILE} and fill it in, or set {name} in the environment.")


def validate(raw: RawSettings, env_file: Path | None = None) -> Settings:
    """Settings from what `read_raw` found; raises InputError for unreadable .env lines or a bad setting."""
    if raw.problems:
        raise InputError("\n".join(raw.problems))
    return parse_settings(raw.values, raw.sources, env_file=env_file)
