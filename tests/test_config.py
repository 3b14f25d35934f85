"""Settings: .env in the current folder under the environment; errors name the setting and the line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from newsletter_cli.cli import cli
from newsletter_cli.errors import InputError
from newsletter_cli.project import Project

from helpers import assert_no_traceback, load_settings

SECRET_PASSWORD = "hunter2-very-secret"


def write_env(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / ".env"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_reads_dotenv_from_the_current_folder_and_environment_wins(project, monkeypatch):
    write_env(project, "SMTP_HOST=smtp.example.org\nSMTP_PORT=2525\nNEWSLETTER_FROM=VZHG <nb@vzhg.nl>\n")
    monkeypatch.setenv("SMTP_PORT", "587")
    settings = load_settings()
    assert settings.smtp_host == "smtp.example.org"
    assert settings.smtp_port == 587
    assert settings.source("SMTP_HOST") == ".env:1"
    assert settings.source("SMTP_PORT") == "the environment"
    assert settings.from_address == "nb@vzhg.nl"
    assert settings.send_rate == 30 and settings.send_connections == 1 and settings.smtp_security == "starttls"


def test_defaults_without_any_settings(project):
    settings = load_settings()
    assert settings.smtp_host is None and settings.smtp_port == 587


def test_bad_port_names_the_file_line_and_setting(project):
    write_env(project, "# comment\nSMTP_HOST=x\nSMTP_PORT=abc\n")
    with pytest.raises(InputError) as info:
        load_settings()
    assert info.value.message == ".env:3: SMTP_PORT 'abc' is not a port number (1-65535)"


def test_bad_port_from_environment(project, monkeypatch):
    monkeypatch.setenv("SMTP_PORT", "70000")
    with pytest.raises(InputError, match=r"SMTP_PORT \(in the environment\): '70000' is not a port number"):
        load_settings()


def test_unknown_security_lists_the_modes(project):
    write_env(project, "SMTP_SECURITY=tls\n")
    with pytest.raises(InputError) as info:
        load_settings()
    assert ".env:1: SMTP_SECURITY 'tls' is unknown" in info.value.message
    for mode in ("starttls", "ssl", "none"):
        assert mode in info.value.message


def test_security_sets_the_default_port(project):
    write_env(project, "SMTP_SECURITY=ssl\n")
    assert load_settings().smtp_port == 465


@pytest.mark.parametrize("line, fragment", [
    ("NEWSLETTER_FROM=not an address", "NEWSLETTER_FROM"),
    ("SEND_RATE=fast", "SEND_RATE 'fast' is not a number of messages per minute"),
    ("SEND_CONNECTIONS=0", "SEND_CONNECTIONS '0'"),
    ("SMTP_CA_FILE=/nonexistent/ca.pem", "SMTP_CA_FILE '/nonexistent/ca.pem': there is no such file"),
    ("SMTP_PASSWORD=x", "SMTP_USERNAME"),
    ("LIST_UNSUBSCRIBE=ftp://x", "LIST_UNSUBSCRIBE 'ftp://x' is neither"),
    ("LIST_UNSUBSCRIBE=https://x.nl/u?t={token}", "LIST_UNSUBSCRIBE_SECRET must be set"),
])
def test_malformed_settings_are_named(project, line, fragment):
    write_env(project, line + "\n")
    with pytest.raises(InputError, match=r"^\.env:1: ") as info:
        load_settings()
    assert fragment in info.value.message


def test_password_never_in_repr_or_str(project):
    write_env(project, f"SMTP_HOST=h\nSMTP_USERNAME=u\nSMTP_PASSWORD={SECRET_PASSWORD}\nLIST_UNSUBSCRIBE_SECRET={SECRET_PASSWORD}x\n")
    settings = load_settings()
    assert settings.smtp_password.get_secret_value() == SECRET_PASSWORD
    for text in (repr(settings), str(settings), f"{settings.smtp_password}", repr(settings.smtp_password)):
        assert SECRET_PASSWORD not in text
    assert isinstance(settings.smtp_password, SecretStr)


def test_env_readable_by_others_is_warned(project):
    write_env(project, "SMTP_HOST=h\n", mode=0o644)
    loaded = Project.here()
    assert loaded.settings.smtp_host == "h"
    assert any("chmod 600 .env" in w for w in loaded.warnings)
    os.chmod(project / ".env", 0o600)
    loaded = Project.here()
    assert loaded.settings.smtp_host == "h"
    assert loaded.warnings == []


def test_cli_reports_bad_settings_without_traceback(project):
    write_env(project, "SMTP_HOST=h\nSMTP_PORT=abc\n")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 2
    assert ".env:2: SMTP_PORT 'abc' is not a port number (1-65535)" in result.output
    assert_no_traceback(result)


def test_of_two_mistakes_the_one_checked_first_is_named_not_the_first_line(project):
    """The pydantic model validates every field and collects all errors: the message is the first in the order
    the settings are checked (SMTP_SECURITY before SMTP_HOST, the OAuth settings before IMAP), as before."""
    write_env(project, "IMAP_PORT=0\nSMTP_HOST=smtp://x\nSMTP_SECURITY=tls\nOAUTH_TENANT=a b\n")
    with pytest.raises(InputError) as info:
        load_settings()
    assert info.value.message.startswith(".env:3: SMTP_SECURITY 'tls' is unknown")
    write_env(project, "IMAP_PORT=0\nOAUTH_TENANT=a b\n")
    with pytest.raises(InputError) as info:
        load_settings()
    assert info.value.message == ".env:2: OAUTH_TENANT 'a b' is not a tenant id or domain, e.g. OAUTH_TENANT=vzhg.nl"


def test_defaults_that_follow_another_setting(project):
    """SMTP_PORT follows SMTP_SECURITY, the IMAP login the SMTP one, an empty folder name its default."""
    write_env(project, "SMTP_SECURITY=ssl\nSMTP_USERNAME=nb@vzhg.nl\nSMTP_PASSWORD=pw\nIMAP_FOLDER=\n"
                       "OAUTH_CLIENT_ID=c\nOAUTH_TENANT=vzhg.nl\n")
    settings = load_settings()
    assert settings.smtp_port == 465 and settings.imap_username == "nb@vzhg.nl"
    assert settings.imap_password.get_secret_value() == "pw" and settings.imap_folder == "INBOX"
    assert settings.oauth_authority == "https://login.microsoftonline.com/vzhg.nl" and settings.smtp_auth == "password"
