"""`newsletter doctor`'s mailbox part: sign in to IMAP now (a wrong IMAP password must not wait a month to show)
and say whether unsubscribe mails reach the mailbox that `newsletter mailbox` reads."""

from __future__ import annotations

from newsletter_cli.account.oauth import SignIn
from newsletter_cli.account.passwords import shown
from newsletter_cli.doctor import Check
from newsletter_cli.errors import NewsletterError
from newsletter_cli.mailbox.imap import Mailbox
from newsletter_cli.members.unsubscribe import mailto_base
from newsletter_cli.settings import Settings


def mailbox_checks(settings: Settings, sign_in: SignIn) -> list[Check]:
    """Sign in to IMAP with a token asked of the sign-in server now (not the cached one) and open the folder."""
    s = settings
    checks = []
    try:
        with Mailbox(s, token=lambda _s: sign_in.imap_token(s, True)) as box:
            count = box.select(s.imap_folder, read_only=True)
            checks.append(Check(True, f"IMAP {s.imap_host}:{s.imap_port}: signed in as {s.imap_username}; the folder "
                                      f"'{s.imap_folder}' holds {count} message(s) (nothing was changed)"))
    except NewsletterError as exc:
        password = s.imap_password.get_secret_value()
        checks.append(Check(False, f"IMAP: {exc.message}" + (f" (IMAP_PASSWORD as read: {shown(password)})"
                                                              if password else "")))
    mailto = mailto_base(s) if s.from_address else None  # LIST_UNSUBSCRIBE's mailto:, else NEWSLETTER_FROM
    if mailto:
        address = mailto.removeprefix("mailto:").split("?")[0].strip().lower()
        read = (s.imap_username or "").lower()
        if address == read:
            checks.append(Check(True, f"unsubscribe mails go to {address}, the mailbox that `newsletter mailbox` "
                                      "reads"))
        else:
            checks.append(Check(True, f"unsubscribe mails go to {address}, but `newsletter mailbox` reads {read}: "
                                      f"unless {address} is an alias of {read} or forwards to it, unsubscribes are "
                                      "never processed. Make LIST_UNSUBSCRIBE's mailto: address that mailbox, or "
                                      "forward it there.", warning=True))
    return checks
