"""Unsubscribe requests that can be verified: a per-member token in the List-Unsubscribe mailto's subject.

The token is an HMAC of the member's lower-case address, so a request can be checked without keeping a list
of tokens, and nobody can unsubscribe someone else by guessing. The secret is LIST_UNSUBSCRIBE_SECRET when
`.env` gives one (needed when an https unsubscribe page must check tokens too); otherwise one is made on first
use and kept in this user's data folder, outside the project folder, so it is never shared with the editions.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

from newsletter_cli.errors import NewsletterError
from newsletter_cli.settings import Settings

SECRET_FILE = "unsubscribe-secret"
TOKEN_LENGTH = 32  # hex digits: 128 bits
TOKEN_RE = re.compile(r"\b[^\W\d_]+-([0-9a-f]{32})\b", re.IGNORECASE)  # 'afmelden-<token>', 'unsubscribe-<token>'

LINK_RE = re.compile(r"(?:mailto:|https?://)\S+", re.IGNORECASE)
REQUEST_WORDS = re.compile(r"\b(?:afmelden|afmelding|uitschrijven|unsubscribe)\b", re.IGNORECASE)


def token(address: str, secret: str) -> str:
    """HMAC-SHA256 of the lower-case address, the first 32 hex digits."""
    return hmac.new(secret.encode("utf-8"), address.lower().encode("utf-8"), hashlib.sha256).hexdigest()[:TOKEN_LENGTH]


def secret_path() -> Path:
    """Where the generated secret lives: the user's data folder (e.g. ~/.local/share/newsletter, %LOCALAPPDATA%)."""
    from platformdirs import user_data_path

    return user_data_path("newsletter", appauthor=False) / SECRET_FILE


def load_secret(settings: Settings) -> str:
    """LIST_UNSUBSCRIBE_SECRET, or the generated one (made now, under a lock, if there is none yet)."""
    given = settings.list_unsubscribe_secret.get_secret_value()
    if given:
        return given
    path = secret_path()
    try:
        if not path.is_file():
            from filelock import FileLock

            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(path) + ".lock", timeout=30):
                if not path.is_file():
                    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.tmp")
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # only this user can read it
                    with os.fdopen(fd, "w", encoding="ascii") as out:
                        out.write(secrets.token_hex(32) + "\n")
                    os.replace(tmp, path)
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NewsletterError(f"{path}: cannot read or create the unsubscribe secret ({exc}). Set "
                              "LIST_UNSUBSCRIBE_SECRET in .env (at least 16 random characters) instead.") from None
    if len(value) < 16:
        raise NewsletterError(f"{path}: the unsubscribe secret in this file is too short; delete the file (a new "
                              "one is made) or set LIST_UNSUBSCRIBE_SECRET in .env.")
    return value


def mailto_base(settings: Settings) -> str:
    """The address unsubscribe requests go to: LIST_UNSUBSCRIBE's mailto, else NEWSLETTER_FROM. Not the
    Reply-To: the From mailbox is where the bounces arrive and the one `newsletter mailbox` reads by default
    (SMTP_USERNAME), so both kinds of message end up in one place."""
    return settings.unsubscribe_mailto or f"mailto:{settings.from_address}"


def mailto(base: str, address: str, secret: str, word: str = "afmelden") -> str:
    """`mailto:afmelden@vzhg.nl?subject=afmelden-<token>` (`word` in the edition's language): any subject in
    `base` is replaced, other fields kept."""
    target, _, query = base.partition("?")
    fields = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() != "subject"]
    fields.insert(0, ("subject", f"{word}-{token(address, secret)}"))
    return f"{target}?{urlencode(fields, quote_via=quote)}"


def find_token(text: str) -> str | None:
    """The token in a request's subject or text (`afmelden-<32 hex>`), lower case, or None."""
    match = TOKEN_RE.search(text)
    return match.group(1).lower() if match else None


def looks_like_request(text: str) -> bool:
    """A mail that asks to be taken off the list in words, without a token: for a human to handle. Links
    (a reply quoting the newsletter's own unsubscribe link) do not count."""
    return bool(REQUEST_WORDS.search(LINK_RE.sub(" ", text)))
