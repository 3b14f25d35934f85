"""`newsletter doctor`: connect, negotiate TLS, authenticate and try the sender, reporting each step."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

from newsletter_cli.deliver.smtp import Connection, Fatal, _describe, reply_text
from newsletter_cli.settings import Settings, missing


@dataclass
class Check:
    ok: bool
    text: str


def doctor(settings: Settings) -> list[Check]:
    """Connect, negotiate TLS, authenticate, try MAIL FROM and quit, reporting each step; sends nothing."""
    s = settings
    checks = [Check(True, f"settings: SMTP_HOST={s.smtp_host or '(not set)'} SMTP_PORT={s.smtp_port} "
                          f"SMTP_SECURITY={s.smtp_security} SMTP_USERNAME={s.smtp_username or '(not set)'} "
                          f"SMTP_PASSWORD={'(set)' if s.smtp_password else '(not set)'}"
                          + (" SMTP_OAUTH_TOKEN_COMMAND=(set)" if s.smtp_oauth_token_command else "")
                          + (f" SMTP_CA_FILE={s.smtp_ca_file}" if s.smtp_ca_file else ""))]
    if not s.newsletter_from:
        checks.append(Check(False, missing(s, "NEWSLETTER_FROM", "the messages need a sender",
                                           "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>").message))
    if not s.smtp_host:
        checks.append(Check(False, "SMTP_HOST is not set: `send` would only write .eml files to the outbox. "
                                   "Set SMTP_HOST (Microsoft 365: smtp.office365.com) in .env."))
        return checks
    connection = Connection(s)
    try:
        connection.open()
    except Fatal as exc:
        checks += [Check(True, step) for step in connection.log]
        checks.append(Check(False, exc.message))
        return checks
    checks += [Check(True, step) for step in connection.log]
    if not (s.smtp_username or s.smtp_oauth_token_command):
        checks.append(Check(True, "no login configured (SMTP_USERNAME not set): fine for a relay that "
                                  "trusts this computer"))
    if s.newsletter_from and connection.smtp is not None:
        try:
            code, message = connection.smtp.mail(s.from_address)
            reply = reply_text(code, message)
            checks.append(Check(code == 250, f"sender {s.from_address}: {reply}" + (
                "" if code == 250 else " (check NEWSLETTER_FROM and the account's send-as rights)")))
            connection.reset()
        except (smtplib.SMTPException, OSError) as exc:
            checks.append(Check(False, f"sender {s.from_address}: {_describe(exc)}"))
    connection.close()
    checks.append(Check(True, "quit; nothing was sent"))
    return checks
