"""`newsletter doctor`: every "ok" means tested. Connect, negotiate TLS, sign in with a token asked of the sign-in
server just now (not the cached one), try the sender, optionally send one test message to the mailbox itself
(Exchange refuses a missing Send As only after the message data), then the mailbox (doctor/mailbox.py) and the
From domain's DNS (account/domain.py). One sign-in session (account.oauth.SignIn) serves SMTP and IMAP.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from newsletter_cli.account.domain import DNS_TIMEOUT
from newsletter_cli.account.oauth import SignIn
from newsletter_cli.account.passwords import password_hints, shown
from newsletter_cli.account.refusals import SEND_TEST, is_microsoft, smtp_refusal
from newsletter_cli.deliver.replies import Fatal, SendFailure, Temporary, describe, reply_text
from newsletter_cli.deliver.smtp import DOCTOR_HINT, Connection
from newsletter_cli.doctor import Check
from newsletter_cli.doctor.mailbox import mailbox_checks
from newsletter_cli.settings import Settings, missing


def doctor(settings: Settings, sign_in: SignIn, dns: bool = True, send_test: bool = False,
           dns_timeout: float = DNS_TIMEOUT) -> list[Check]:
    """The SMTP steps (nothing is sent unless `send_test`), the mailbox when IMAP is set, the From domain's DNS."""
    checks = smtp_checks(settings, sign_in, send_test)
    if settings.imap_host:
        checks += mailbox_checks(settings, sign_in)
    if dns and settings.newsletter_from:
        from newsletter_cli.account.domain import check_domain

        for f in check_domain(settings, timeout=dns_timeout):
            checks.append(Check(f.level not in ("error", "unknown"), f.text, f.level in ("warning", "unknown")))
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
            f"SMTP_PASSWORD={shown(s.smtp_password.get_secret_value())}"
            + (" SMTP_OAUTH_TOKEN_COMMAND=(set)" if s.smtp_oauth_token_command else "")
            + oauth + (f" SMTP_CA_FILE={s.smtp_ca_file}" if s.smtp_ca_file else ""))


def smtp_checks(settings: Settings, sign_in: SignIn, send_test: bool = False) -> list[Check]:
    """Connect, negotiate TLS, authenticate, try MAIL FROM (and with `send_test` one message) and quit. The token
    is always a new one from the sign-in server, so a revoked sign-in or a wrong new client secret shows now, not
    when the cached token runs out an hour later."""
    s = settings
    checks = [Check(True, _settings_line(s))]
    checks += [Check(False, hint, warning=True) for hint in password_hints(s, refused=False)]
    if not s.newsletter_from:
        checks.append(Check(False, missing(s, "NEWSLETTER_FROM", "the messages need a sender",
                                           "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>").message))
    if not s.smtp_host:
        checks.append(Check(False, "SMTP_HOST is not set: `send` would only write .eml files to the outbox. "
                                   "Set SMTP_HOST (Microsoft 365: smtp.office365.com) in .env."))
        return checks
    connection = Connection(s, token=lambda _s, _fresh: sign_in.smtp_token(s, True))
    try:
        connection.open()
    except (Fatal, Temporary) as exc:  # Temporary: the server cannot be reached (refused, 421 at the greeting)
        checks += [Check(True, step) for step in connection.log]
        text = (exc.message if isinstance(exc, Fatal) else exc.reply).replace(" " + DOCTOR_HINT, "")
        checks.append(Check(False, text))
        if "login refused" in text:
            checks += [Check(False, hint) for hint in password_hints(s, refused=True)]
        return checks
    checks += [Check(True, step) for step in connection.log]
    if not (s.smtp_username or s.smtp_oauth_token_command or s.smtp_auth == "oauth"):
        checks.append(Check(True, "no login configured (SMTP_USERNAME not set): fine for a relay that "
                                  "trusts this computer"))
    if s.newsletter_from and connection.smtp is not None:
        checks += _sender(connection, s, send_test)
    connection.close()
    sent = any(c.ok and c.text.startswith("test message") for c in checks)
    checks.append(Check(True, "quit; " + ("one test message was sent" if sent else "nothing was sent")))
    return checks


def _sender(connection: Connection, s: Settings, send_test: bool) -> list[Check]:
    """MAIL FROM (which Exchange accepts even without Send As), the Send As question, and the test message."""
    assert connection.smtp is not None
    checks = []
    try:
        code, message = connection.smtp.mail(s.from_address)
        reply = reply_text(code, message)
        checks.append(Check(code == 250, f"sender {s.from_address}: {reply}" + (
            "" if code == 250 else " " + (smtp_refusal(reply, s) or "(check NEWSLETTER_FROM and the account's "
                                                                    "send-as rights)"))))
        connection.reset()
    except (smtplib.SMTPException, OSError) as exc:
        return [Check(False, f"sender {s.from_address}: {describe(exc)}")]
    other = s.mailbox and s.from_address.lower() != s.mailbox.lower()
    if other and not send_test:
        where = ("Microsoft 365 accepts this sender here but refuses every message only after its content "
                 f"(SendAsDenied) unless {s.mailbox} has 'Send As' (or 'Send on Behalf') for {s.from_address}"
                 if is_microsoft(s) else "the server may refuse messages from another address than the one that "
                 "logs in, only after their content")
        checks.append(Check(True, f"NEWSLETTER_FROM {s.from_address} is not the mailbox that signs in "
                                  f"({s.mailbox}): {where}. Run `newsletter doctor --send-test` to send one test "
                                  f"message from {s.from_address} to {s.mailbox} and see.", warning=True))
    if send_test:
        checks.append(_test_message(connection, s))
    return checks


def _test_message(connection: Connection, s: Settings) -> Check:
    """One message from NEWSLETTER_FROM to the mailbox itself: a refusal after DATA (Send As) shows now."""
    to = s.mailbox or s.from_address
    message = EmailMessage()
    message["From"] = s.newsletter_from
    message["To"] = to
    message["Subject"] = "newsletter doctor: test message"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=s.from_address.rpartition("@")[2] or None)
    message.set_content(f"A test message from `newsletter doctor --send-test`, sent from {s.from_address} to "
                        f"{to}. If it arrived, the newsletter can be sent with this sender. You may delete it.\n")
    hint = SEND_TEST.format(mailbox=s.mailbox)  # what is running now: not advised again
    try:
        reply = connection.send(s.from_address, to, message.as_bytes(policy=SMTP))
    except Fatal as exc:
        return Check(False, f"test message from {s.from_address} to {to}: {exc.message}".replace(hint, ""))
    except SendFailure as exc:
        return Check(False, f"test message from {s.from_address} to {to}: {exc.reply} "
                            + (smtp_refusal(exc.reply, s) or "").replace(hint, ""))
    return Check(True, f"test message from {s.from_address} to {to}: {reply} (look for it in that mailbox)")
