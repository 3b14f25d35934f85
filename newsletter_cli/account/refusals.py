"""Microsoft 365's refusals in plain words: SMTP replies (send, doctor) and sign-in errors (login, send).

Each explanation says what happened and what to do or to ask the administrator for, with the exact
PowerShell line where there is one. Server replies and sign-in errors never contain a token, so quoting
their codes is safe; nothing here ever sees a token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from newsletter_cli.settings import Settings

LOGIN = "run `newsletter login` (signed in as {mailbox})"
SWITCH_TO_OAUTH = ("Microsoft 365 no longer accepts a password for sending (basic authentication is switched off). "
                   "Switch to signing in with OAuth: put SMTP_AUTH=oauth, OAUTH_CLIENT_ID and OAUTH_TENANT in .env "
                   "(the README's section Microsoft 365 says where to find them), then " + LOGIN + ".")
MAILBOX_SMTP_OFF = ("SMTP AUTH is switched off for the mailbox {mailbox}. Ask your Microsoft 365 administrator to "
                    "switch on 'Authenticated SMTP' for it (Microsoft 365 admin center > Users > Active users > "
                    "{mailbox} > Mail > Manage email apps), or in Exchange Online PowerShell:  "
                    "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false")
TENANT_SMTP_OFF = ("SMTP AUTH is switched off for the whole organisation. Ask your Microsoft 365 administrator to "
                   "allow it for the sending mailbox only:  "
                   "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false  "
                   "(a mailbox setting overrides the organisation's).")
SEND_AS = ("{mailbox} may not send as {sender} (NEWSLETTER_FROM). Ask your Microsoft 365 administrator to grant "
           "it 'Send As', in Exchange Online PowerShell:  Add-RecipientPermission -Identity {sender} -Trustee "
           "{mailbox} -AccessRights SendAs  (or 'Send on Behalf':  Set-Mailbox -Identity {sender} "
           "-GrantSendOnBehalfTo @{{Add='{mailbox}'}}; it takes up to an hour to work), or set NEWSLETTER_FROM to "
           "{mailbox}.")
SEND_TEST = " `newsletter doctor --send-test` tries it with one message to {mailbox}."
SEND_AS_RE = re.compile(r"sendasdenied|\b5\.7\.60\b|not allowed to send as|send as this sender", re.IGNORECASE)
MICROSOFT_HOSTS = re.compile(r"(^|\.)(office365\.com|outlook\.com|office\.com|microsoft\.com)$", re.IGNORECASE)


def is_microsoft(settings: Settings) -> bool:
    """Whether the mail goes through Microsoft 365 (its SMTP host, or an Entra app): only then its advice."""
    return bool(MICROSOFT_HOSTS.search(settings.smtp_host or "") or settings.oauth_client_id)


def permission(scopes: Sequence[str]) -> str:
    """The delegated permission a scope needs, by its name in the app registration (e.g. IMAP.AccessAsUser.All)."""
    names = [s.rsplit("/", 1)[-1] for s in scopes if "/" in s and not s.endswith("/.default")]
    return " and ".join(names) or "SMTP.Send"
NOT_AUTHENTICATED = ("The server wants a login before it accepts a message, and there was none that it accepted. "
                     "For Microsoft 365 set SMTP_AUTH=oauth and " + LOGIN + "; if that is done, "
                     + MAILBOX_SMTP_OFF)


def _unattended_rights(settings: Settings) -> str:
    return ("The application (OAUTH_CLIENT_ID) needs the Office 365 Exchange Online application permission "
            "SMTP.SendAsApp with admin consent, and in Exchange Online PowerShell:  New-ServicePrincipal -AppId "
            f"{settings.oauth_client_id} -ObjectId <object id of the enterprise application>  and  "
            f"Add-MailboxPermission -Identity {settings.mailbox} -User <that object id> -AccessRights FullAccess")


def smtp_refusal(reply: str, settings: Settings) -> str | None:
    """What a Microsoft 365 refusal at AUTH, MAIL FROM or DATA means and what to do; None when not one of them."""
    words = {"mailbox": settings.mailbox or "the sending mailbox", "sender": settings.from_address or "the sender"}
    text = reply.lower()
    if SEND_AS_RE.search(reply):  # whatever the code (5.7.60, 5.2.252, 5.2.0 STOREDRV...SendAsDeniedException)
        return (SEND_AS + SEND_TEST).format(**words)
    if "smtpclientauthentication is disabled for the mailbox" in text:
        return MAILBOX_SMTP_OFF.format(**words)
    if "smtpclientauthentication is disabled for the tenant" in text:
        return TENANT_SMTP_OFF.format(**words)
    if "5.7.139" in text or "5.7.30" in text:
        if settings.smtp_auth == "oauth":
            return ("Microsoft 365 refused the sign-in: " + MAILBOX_SMTP_OFF.format(**words)
                    + " Then " + LOGIN.format(**words) + " again.")
        return SWITCH_TO_OAUTH.format(**words)
    if "5.7.57" in text:
        return NOT_AUTHENTICATED.format(**words)
    if re.search(r"\b5\.7\.3\b", text) or reply.startswith("535"):
        if not is_microsoft(settings):  # Microsoft's advice only for Microsoft's servers
            return ("The user name or password was not accepted for {mailbox}: check SMTP_USERNAME and "
                    "SMTP_PASSWORD (tried once: repeated failures can lock the account).").format(**words)
        if settings.smtp_auth != "oauth":
            return ("The user name or password was not accepted for {mailbox}: check SMTP_USERNAME and "
                    "SMTP_PASSWORD (tried once: repeated failures can lock the mailbox). If they are right, "
                    "Microsoft 365 may have switched passwords off: " + SWITCH_TO_OAUTH).format(**words)
        if settings.unattended:
            return "Microsoft 365 did not accept the application's token for {mailbox}. ".format(
                **words) + _unattended_rights(settings)
        return ("Microsoft 365 did not accept the sign-in for {mailbox}: the account signed in with `newsletter "
                "login` may not use this mailbox, the app registration may lack the delegated permission SMTP.Send, "
                "or SMTP AUTH is off for the mailbox. Run `newsletter login` again signed in as {mailbox}; if that "
                "does not help: " + MAILBOX_SMTP_OFF).format(**words)
    return None


# Sign-in errors (AADSTS codes in the error description) by what the user must do about them.
RELOGIN_CODES = ("AADSTS700082", "AADSTS50173", "AADSTS70008", "AADSTS50076", "AADSTS50079", "AADSTS70043",
                 "AADSTS50078", "AADSTS54005", "AADSTS50133", "AADSTS700084", "AADSTS50057", "AADSTS50055")
SIGN_IN_CODES = {
    "AADSTS7000218": "the app registration does not allow this sign-in: in Microsoft Entra ID, App registrations > "
                     "the app > Authentication, set 'Allow public client flows' to Yes",
    "AADSTS700016": "OAUTH_CLIENT_ID is not an application in this tenant: check OAUTH_CLIENT_ID and OAUTH_TENANT",
    "AADSTS90002": "the tenant in OAUTH_TENANT does not exist: use your organisation's domain (e.g. vzhg.nl) or its "
                   "tenant id",
    "AADSTS7000215": "OAUTH_CLIENT_SECRET is not valid: make a new client secret in the app registration (Certificates "
                     "& secrets) and put its value (not its id) in .env",
    "AADSTS7000222": "OAUTH_CLIENT_SECRET has expired: make a new client secret in the app registration "
                     "(Certificates & secrets) and put its value in .env",
    "AADSTS65001": "the app may not yet {use} for this account: an administrator must grant consent for the "
                   "delegated permission {permission} (App registrations > API permissions > Grant admin consent)",
    "AADSTS700027": "the certificate in OAUTH_CERTIFICATE is not the one uploaded to the app registration",
}


def sign_in_error(result: Mapping[str, object], settings: Settings,
                  scopes: Sequence[str] = ("https://outlook.office365.com/SMTP.Send",)) -> tuple[str, bool]:
    """(plain words, whether `newsletter login` fixes it) for an MSAL error result; tokens are never in it.
    `scopes`: what was asked for, so that a missing consent names the permission actually missing."""
    error = str(result.get("error", ""))
    description = str(result.get("error_description", ""))
    mailbox = settings.mailbox or "the sending mailbox"
    code = next((c for c in re.findall(r"AADSTS\d+", description)), "")
    if code in SIGN_IN_CODES:
        imap = any("IMAP" in s for s in scopes)
        use = "read the mailbox (for `newsletter mailbox`)" if imap and not any("SMTP" in s for s in scopes) \
            else "read and send mail" if imap else "send mail"
        return f"Sign-in refused ({code}): {SIGN_IN_CODES[code].format(use=use, permission=permission(scopes))}.", False
    if error == "invalid_grant" or code in RELOGIN_CODES:
        why = "expired or was revoked (a changed password, an administrator, or 90 days without use)"
        if settings.unattended:
            return f"The application's sign-in was refused ({code or error}). {_unattended_rights(settings)}", False
        return (f"The sign-in for {mailbox} has {why} ({code or error}): run `newsletter login` again."), True
    if error == "authorization_declined":
        return "The sign-in was declined in the browser; run `newsletter login` again to retry.", True
    if error in ("expired_token", "code_expired"):
        return "The code was not entered in time; run `newsletter login` again for a new one.", True
    first = description.splitlines()[0][:300] if description else ""
    return f"Sign-in failed: {error or 'no answer'}" + (f": {first}" if first else "") + ".", False
