"""`newsletter doctor`: connect, negotiate TLS, authenticate and try the sender, reporting each step."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

from newsletter_cli.deliver.refusals import smtp_refusal
from newsletter_cli.deliver.replies import Fatal, Temporary, describe, reply_text
from newsletter_cli.deliver.smtp import Connection
from newsletter_cli.settings import Settings, missing


@dataclass
class Check:
    ok: bool
    text: str
    warning: bool = False  # fine to send, but worth fixing (e.g. DMARC p=none)


def doctor(settings: Settings, dns: bool = True) -> list[Check]:
    """The SMTP steps (connect, TLS, login, sender; nothing is sent), then the From domain's DNS."""
    checks = smtp_checks(settings)
    if dns and settings.newsletter_from:
        from newsletter_cli.deliver.domain import check_domain

        checks += [Check(f.level != "error", f.text, f.level == "warning") for f in check_domain(settings)]
    return checks


def _settings_line(s: Settings) -> str:
    oauth = ""
    if s.smtp_auth == "oauth":
        oauth = f" SMTP_AUTH=oauth OAUTH_CLIENT_ID={s.oauth_client_id or '(not set)'}" + (
            f" OAUTH_AUTHORITY={s.oauth_authority}" if s.oauth_client_id else "") + (
            " OAUTH_CLIENT_SECRET=(set)" if s.oauth_client_secret else "") + (
            f" OAUTH_CERTIFICATE={s.oauth_certificate}" if s.oauth_certificate else "")
    return (f"settings: SMTP_HOST={s.smtp_host or '(not set)'} SMTP_PORT={s.smtp_port} "
            f"SMTP_SECURITY={s.smtp_security} SMTP_USERNAME={s.smtp_username or '(not set)'} "
            f"SMTP_PASSWORD={'(set)' if s.smtp_password else '(not set)'}"
            + (" SMTP_OAUTH_TOKEN_COMMAND=(set)" if s.smtp_oauth_token_command else "")
            + oauth + (f" SMTP_CA_FILE={s.smtp_ca_file}" if s.smtp_ca_file else ""))


def smtp_checks(settings: Settings) -> list[Check]:
    """Connect, negotiate TLS, authenticate, try MAIL FROM and quit, reporting each step; sends nothing."""
    s = settings
    checks = [Check(True, _settings_line(s))]
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
    except (Fatal, Temporary) as exc:  # Temporary: the server cannot be reached (refused, 421 at the greeting)
        checks += [Check(True, step) for step in connection.log]
        checks.append(Check(False, exc.message if isinstance(exc, Fatal) else exc.reply))
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
                "" if code == 250 else " " + (smtp_refusal(reply, s)
                                              or "(check NEWSLETTER_FROM and the account's send-as rights)"))))
            connection.reset()
        except (smtplib.SMTPException, OSError) as exc:
            checks.append(Check(False, f"sender {s.from_address}: {describe(exc)}"))
    connection.close()
    checks.append(Check(True, "quit; nothing was sent"))
    return checks
