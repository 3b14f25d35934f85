"""Access tokens for XOAUTH2 from SMTP_OAUTH_TOKEN_COMMAND (the Microsoft 365 sign-in itself is oauth.SignIn).

The command's output is the token and is never shown; its arguments may hold a secret too (a client secret
passed on the command line), so no message about a command that failed or timed out shows its command line.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from pydantic import SecretStr

from newsletter_cli.errors import NewsletterError
from newsletter_cli.settings import Settings


class TokenError(NewsletterError):
    """No access token: the user must act (sign in again, fix SMTP_OAUTH_TOKEN_COMMAND). The SMTP connection
    turns it into a Fatal (stop the send), the mailbox into its own error."""


def command_line(command: str, windows: bool = os.name == "nt") -> str | list[str]:
    """The token command as subprocess wants it: split like a POSIX shell would, but on Windows the line as it
    is (CreateProcess splits it itself; shlex would eat the backslashes of C:\\Users\\...)."""
    return command if windows else shlex.split(command)


COMMAND_TIMEOUT = 120.0  # seconds SMTP_OAUTH_TOKEN_COMMAND may take (cli.py reads NEWSLETTER_TOKEN_COMMAND_TIMEOUT)


def command_token(settings: Settings, timeout: float = COMMAND_TIMEOUT) -> SecretStr:
    """The output of SMTP_OAUTH_TOKEN_COMMAND (never shown); TokenError in plain words when it fails."""
    command = settings.smtp_oauth_token_command or ""
    # Its arguments may hold a secret (a client secret, a password): no message shows the command line.
    program = (command.split() or ["(empty)"])[0]
    try:
        done = subprocess.run(command_line(command), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TokenError(f"SMTP_OAUTH_TOKEN_COMMAND ({program} ...) did not finish within {timeout:g} "
                         "seconds: run it by hand to see what it waits for (a sign-in? a prompt?).") from None
    except OSError as exc:
        raise TokenError(f"SMTP_OAUTH_TOKEN_COMMAND could not be run ({program} ...): "
                         f"{exc.strerror or type(exc).__name__}.") from None
    except ValueError:
        raise TokenError("SMTP_OAUTH_TOKEN_COMMAND could not be read as a command line (a quote not closed?).") \
            from None
    if done.returncode != 0 or not done.stdout.strip():
        why = _redacted((done.stderr.strip().splitlines() or ["no output"])[-1][:200], command)
        raise TokenError(f"SMTP_OAUTH_TOKEN_COMMAND ({program} ...) failed (exit status {done.returncode}): {why}")
    return SecretStr(done.stdout.strip().splitlines()[-1].strip())


def _redacted(text: str, command: str) -> str:
    """`text` without any argument of the command in it (a command may echo its secret in an error)."""
    for word in sorted(command.split()[1:], key=len, reverse=True):
        word = word.strip("'\"")
        if len(word) >= 4:
            text = text.replace(word, "***")
    return text
