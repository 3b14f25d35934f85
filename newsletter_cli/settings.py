"""The typed Settings and their validation: every error names the setting and where it was set (`.env:3`).

The raw text comes from envfile.read_raw (the `.env` file and the environment, the environment winning).
Settings is a pydantic model: its field validators read that text (passed as the validation context), and
parse_settings turns the first error into the InputError that names the line.
"""

from __future__ import annotations

import re
from email.utils import getaddresses
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

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
NUMBERS = {  # the settings that are whole numbers: default, lowest, highest, what they count
    "SMTP_TIMEOUT": (60, 1, 3600, "a number of seconds"), "SMTP_DATA_TIMEOUT": (600, 1, 3600, "a number of seconds"),
    "SEND_RATE": (30, 0, 100_000, "a number of messages per minute"),
    "SEND_CONNECTIONS": (1, 1, 20, "a number of connections"), "IMAP_PORT": (993, 1, 65535, "a port number")}


class Settings(BaseModel):
    """Everything `send` and `doctor` need, validated from the raw text of `.env` and the environment by the field
    validators below (declared in the order the settings are checked: the first error is the one reported);
    the password and tokens are SecretStr, hidden from repr."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_default=True)

    smtp_security: Security = Field("starttls", validation_alias="SMTP_SECURITY")
    smtp_port: int = Field(587, validation_alias="SMTP_PORT")
    smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    smtp_timeout: float = Field(60.0, validation_alias="SMTP_TIMEOUT")
    # waiting for the reply to a message's final dot (RFC 5321: 10 minutes)
    smtp_data_timeout: float = Field(600.0, validation_alias="SMTP_DATA_TIMEOUT")
    send_rate: int = Field(30, validation_alias="SEND_RATE")  # messages per minute; 0 = no limit (local test servers)
    send_connections: int = Field(1, validation_alias="SEND_CONNECTIONS")
    newsletter_from: str | None = Field(None, validation_alias="NEWSLETTER_FROM")  # 'VZHG <nieuwsbrief@vzhg.nl>'
    reply_to: str | None = Field(None, validation_alias="NEWSLETTER_REPLY_TO")
    smtp_username: str | None = Field(None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr = Field(SecretStr(""), validation_alias="SMTP_PASSWORD", repr=False)
    smtp_oauth_token_command: str | None = Field(None, validation_alias="SMTP_OAUTH_TOKEN_COMMAND")
    list_unsubscribe: tuple[str, ...] = Field((), validation_alias="LIST_UNSUBSCRIBE")  # mailto: and/or https
    list_unsubscribe_secret: SecretStr = Field(SecretStr(""), validation_alias="LIST_UNSUBSCRIBE_SECRET", repr=False)
    smtp_ca_file: Path | None = Field(None, validation_alias="SMTP_CA_FILE")
    review_list: Path | None = Field(None, validation_alias="REVIEW_LIST")
    dns_server: tuple[str, int] | None = Field(None, validation_alias="DNS_SERVER")  # the resolver doctor asks
    oauth_client_id: str | None = Field(None, validation_alias="OAUTH_CLIENT_ID")
    oauth_tenant: str | None = Field(None, validation_alias="OAUTH_TENANT")
    # oauth: XOAUTH2 with MSAL (OAUTH_CLIENT_ID) or SMTP_OAUTH_TOKEN_COMMAND
    smtp_auth: AuthMode = Field("password", validation_alias="SMTP_AUTH")
    oauth_authority: str | None = Field(None, validation_alias="OAUTH_AUTHORITY")  # login.microsoftonline.com/<tenant>
    oauth_client_secret: SecretStr = Field(SecretStr(""), validation_alias="OAUTH_CLIENT_SECRET", repr=False)
    oauth_certificate: Path | None = Field(None, validation_alias="OAUTH_CERTIFICATE")
    oauth_certificate_password: SecretStr = Field(SecretStr(""), validation_alias="OAUTH_CERTIFICATE_PASSWORD",
                                                  repr=False)
    archive_base_url: str | None = Field(None, validation_alias="ARCHIVE_BASE_URL")  # where the archive is published
    imap_host: str | None = Field(None, validation_alias="IMAP_HOST")  # the mailbox `newsletter mailbox` reads
    imap_username: str | None = Field(None, validation_alias="IMAP_USERNAME")  # default SMTP_USERNAME
    imap_password: SecretStr = Field(SecretStr(""), validation_alias="IMAP_PASSWORD", repr=False)  # or SMTP_PASSWORD
    imap_port: int = Field(993, validation_alias="IMAP_PORT")
    imap_folder: str = Field("INBOX", validation_alias="IMAP_FOLDER")
    imap_processed_folder: str = Field("Nieuwsbrief verwerkt", validation_alias="IMAP_PROCESSED_FOLDER")
    # messages `newsletter mailbox` cannot read
    imap_unreadable_folder: str = Field("Nieuwsbrief onleesbaar", validation_alias="IMAP_UNREADABLE_FOLDER")
    env_file: Path | None = Field(None, repr=False)  # the project's .env, for messages
    sources: dict[str, str] = Field(default_factory=dict, repr=False)  # name -> '.env:3'

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

    # The field validators: each reads the raw text (`_raw(info)`), so a setting's default may depend on another
    # (SMTP_PORT on SMTP_SECURITY, IMAP_USERNAME on SMTP_USERNAME) and a check may concern two settings.

    @field_validator("smtp_security", mode="before")
    @classmethod
    def _security(cls, _: object, info: ValidationInfo) -> str:
        reader = _raw(info)
        security = (reader.text("SMTP_SECURITY") or "starttls").lower()
        if security not in SECURITY_MODES:
            raise reader.fail("SMTP_SECURITY", f"'{reader.values['SMTP_SECURITY']}' is unknown: use starttls (port "
                                               "587), ssl (port 465) or none (no encryption, local test servers only)")
        return security

    @field_validator("smtp_port", mode="before")
    @classmethod
    def _port(cls, _: object, info: ValidationInfo) -> int:
        reader = _raw(info)
        security = str(info.data.get("smtp_security", "starttls"))
        port = reader.integer("SMTP_PORT", DEFAULT_PORTS[security], 1, 65535, "a port number")
        _check_ports(reader, security, port)
        return port

    @field_validator("smtp_host", mode="before")
    @classmethod
    def _smtp_host(cls, _: object, info: ValidationInfo) -> str | None:
        return _host(_raw(info))

    @field_validator("smtp_timeout", "smtp_data_timeout", "send_rate", "send_connections", "imap_port",
                     mode="before")
    @classmethod
    def _numbers(cls, _: object, info: ValidationInfo) -> int:
        default, low, high, what = NUMBERS[_name(info)]
        return _raw(info).integer(_name(info), default, low, high, what)

    @field_validator("newsletter_from", "reply_to", mode="before")
    @classmethod
    def _address(cls, _: object, info: ValidationInfo) -> str | None:
        reader = _raw(info)
        value = reader.text(_name(info))
        _check_address(reader, _name(info), value)
        return value

    @field_validator("smtp_username", "oauth_client_id", "oauth_tenant", "archive_base_url", mode="before")
    @classmethod
    def _plain(cls, _: object, info: ValidationInfo) -> str | None:
        return _raw(info).text(_name(info))

    @field_validator("oauth_client_secret", "oauth_certificate_password", mode="before")
    @classmethod
    def _secret(cls, _: object, info: ValidationInfo) -> SecretStr:
        return SecretStr(_raw(info).text(_name(info)) or "")

    @field_validator("imap_folder", "imap_processed_folder", "imap_unreadable_folder", mode="before")
    @classmethod
    def _folders(cls, _: object, info: ValidationInfo) -> object:
        return _raw(info).text(_name(info)) or Settings.model_fields[str(info.field_name)].default

    @field_validator("smtp_password", mode="before")
    @classmethod
    def _password(cls, _: object, info: ValidationInfo) -> SecretStr:
        reader = _raw(info)
        username, password = reader.text("SMTP_USERNAME"), reader.text("SMTP_PASSWORD")
        reader.text("SMTP_OAUTH_TOKEN_COMMAND")
        if password and not username:
            raise reader.fail("SMTP_PASSWORD", "is set but SMTP_USERNAME is not: set both, or neither")
        return SecretStr(password or "")

    @field_validator("smtp_oauth_token_command", mode="before")
    @classmethod
    def _token_command(cls, _: object, info: ValidationInfo) -> str | None:
        reader = _raw(info)
        token_command = reader.text("SMTP_OAUTH_TOKEN_COMMAND")
        if token_command and not reader.text("SMTP_USERNAME"):
            raise reader.fail("SMTP_OAUTH_TOKEN_COMMAND", "needs SMTP_USERNAME (the mailbox that sends)")
        return token_command

    @field_validator("list_unsubscribe", mode="before")
    @classmethod
    def _list_unsubscribe(cls, _: object, info: ValidationInfo) -> tuple[str, ...]:
        return _unsubscribe(_raw(info))

    @field_validator("list_unsubscribe_secret", mode="before")
    @classmethod
    def _unsubscribe_secret(cls, _: object, info: ValidationInfo) -> SecretStr:
        reader = _raw(info)
        secret = reader.text("LIST_UNSUBSCRIBE_SECRET") or ""
        if secret == EXAMPLE_UNSUBSCRIBE_SECRET:
            raise reader.fail("LIST_UNSUBSCRIBE_SECRET", "is the example from .env.example, which everybody can "
                                                         "read: remove the line (a secret is then made for you) or "
                                                         "use at least 16 random characters of your own")
        if secret and len(secret) < 16:
            raise reader.fail("LIST_UNSUBSCRIBE_SECRET", "is too short: use at least 16 random characters")
        unsubscribe = info.data.get("list_unsubscribe") or ()
        https = next((u for u in unsubscribe if u.startswith("https://")), None)
        if https and "{token}" in https and not secret:
            raise reader.fail("LIST_UNSUBSCRIBE", "contains {token}, so LIST_UNSUBSCRIBE_SECRET must be set "
                                                  "(at least 16 random characters)")
        return SecretStr(secret)

    @field_validator("smtp_ca_file", mode="before")
    @classmethod
    def _smtp_ca_file(cls, _: object, info: ValidationInfo) -> Path | None:
        return _ca_file(_raw(info))

    @field_validator("review_list", mode="before")
    @classmethod
    def _review_list(cls, _: object, info: ValidationInfo) -> Path | None:
        raw = _raw(info).text("REVIEW_LIST")
        return Path(raw) if raw else None

    @field_validator("dns_server", mode="before")
    @classmethod
    def _dns(cls, _: object, info: ValidationInfo) -> tuple[str, int] | None:
        return _dns_server(_raw(info))

    @field_validator("smtp_auth", mode="before")
    @classmethod
    def _smtp_auth(cls, _: object, info: ValidationInfo) -> str:
        return _auth_mode(_raw(info))

    @field_validator("oauth_authority", mode="before")
    @classmethod
    def _authority(cls, _: object, info: ValidationInfo) -> str | None:
        return _oauth_authority(_raw(info))

    @field_validator("oauth_certificate", mode="before")
    @classmethod
    def _certificate(cls, _: object, info: ValidationInfo) -> Path | None:
        reader = _raw(info)
        certificate = reader.path("OAUTH_CERTIFICATE")
        if reader.text("OAUTH_CLIENT_SECRET") and certificate:
            raise reader.fail("OAUTH_CLIENT_SECRET", "and OAUTH_CERTIFICATE are both set: use one of them")
        return certificate

    @field_validator("imap_host", mode="before")
    @classmethod
    def _imap_host(cls, _: object, info: ValidationInfo) -> str | None:
        reader = _raw(info)
        host = reader.text("IMAP_HOST")
        if host is not None and not HOST_RE.fullmatch(host):
            raise reader.fail("IMAP_HOST", f"'{host}' is not a server name: write only the name, "
                                           "e.g. IMAP_HOST=outlook.office365.com (the port goes in IMAP_PORT)")
        return host

    @field_validator("imap_username", mode="before")
    @classmethod
    def _imap_username(cls, _: object, info: ValidationInfo) -> str | None:
        """The IMAP login defaults to the SMTP one."""
        reader = _raw(info)
        return reader.text("IMAP_USERNAME") or reader.text("SMTP_USERNAME")

    @field_validator("imap_password", mode="before")
    @classmethod
    def _imap_password(cls, _: object, info: ValidationInfo) -> SecretStr:
        reader = _raw(info)
        password = reader.text("IMAP_PASSWORD")
        smtp_password = reader.text("SMTP_PASSWORD")
        return SecretStr(password or ("" if reader.text("IMAP_USERNAME") else smtp_password or ""))


def _name(info: ValidationInfo) -> str:
    """The setting a field is read from (its alias: SMTP_PORT for smtp_port)."""
    return str(Settings.model_fields[str(info.field_name)].validation_alias)


def _raw(info: ValidationInfo) -> _Reader:
    reader = info.context.get("raw") if isinstance(info.context, dict) else None
    if not isinstance(reader, _Reader):
        raise TypeError("Settings are made by parse_settings (the raw text is its validation context)")
    return reader


class _Reader:
    """The raw text of every setting (the validation context), read one setting at a time. `fail` is the error
    of a field validator: it names the setting, which need not be the field's own (SMTP_PORT's check concerns
    SMTP_SECURITY too); parse_settings adds where it was set."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def fail(self, name: str, message: str) -> PydanticCustomError:
        return PydanticCustomError("setting", "{name} {message}", {"name": name, "message": message})

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


def _auth_mode(reader: _Reader) -> str:
    """SMTP_AUTH; the default keeps what the settings did before SMTP_AUTH existed. Also the OAUTH_ settings
    that only make sense together (checked here, in the order they were always checked)."""
    client_id, tenant = reader.text("OAUTH_CLIENT_ID"), reader.text("OAUTH_TENANT")
    authority = reader.text("OAUTH_AUTHORITY")
    password, token_command = reader.text("SMTP_PASSWORD"), reader.text("SMTP_OAUTH_TOKEN_COMMAND")
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
    return mode


def _oauth_authority(reader: _Reader) -> str | None:
    """OAUTH_AUTHORITY as given (without a trailing /), else the Microsoft one for OAUTH_TENANT."""
    tenant, authority = reader.text("OAUTH_TENANT"), reader.text("OAUTH_AUTHORITY")
    if authority and not re.fullmatch(r"https://[^/\s]+/\S+", authority):
        raise reader.fail("OAUTH_AUTHORITY", f"'{authority}' is not an https:// address with a tenant, e.g. "
                                             f"{MICROSOFT_AUTHORITY}/vzhg.nl")
    if tenant and not re.fullmatch(r"[A-Za-z0-9.-]+", tenant):
        raise reader.fail("OAUTH_TENANT", f"'{tenant}' is not a tenant id or domain, e.g. OAUTH_TENANT=vzhg.nl")
    if authority:
        return authority.rstrip("/")
    return f"{MICROSOFT_AUTHORITY}/{tenant}" if tenant else None


def parse_settings(values: dict[str, str], sources: dict[str, str], env_file: Path | None = None) -> Settings:
    """Validate raw values into Settings; raises InputError naming the first bad setting and where it was set."""
    try:
        return Settings.model_validate({**values, "env_file": env_file, "sources": dict(sources)},
                                       context={"raw": _Reader(values)})
    except ValidationError as exc:
        first = exc.errors()[0]
        context = first.get("ctx") or {}
        if first["type"] != "setting":  # a value a validator let through that its type refuses: a bug here
            raise
        raise _input_error(str(context["name"]), str(context["message"]), sources) from None


def _input_error(name: str, message: str, sources: dict[str, str]) -> InputError:
    """`.env:3: SMTP_PORT 'abc' is not ...`, or `SMTP_PORT (in the environment): '70000' is not ...`."""
    source = sources.get(name, "")
    where = f"{name} (in the environment): " if source == "the environment" else f"{source}: " if source else ""
    message = LONG_QUOTED.sub(lambda m: f"'{m.group(1)[:60]}...' ({len(m.group(1)):,} characters)", message)
    if where.startswith(name):
        return InputError(f"{where}{message}")
    return InputError(f"{where}{name} {message}")


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
