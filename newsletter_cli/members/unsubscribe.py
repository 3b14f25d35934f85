"""Unsubscribe requests that can be verified: a per-member token in the List-Unsubscribe mailto's subject.

The token is an HMAC of the member's lower-case address, so a request can be checked without keeping a list
of tokens, and nobody can unsubscribe someone else by guessing. The secret is LIST_UNSUBSCRIBE_SECRET when
`.env` gives one (needed when an https unsubscribe page must check tokens too); otherwise it is the file
`unsubscribe-secret` in the project folder, made on first use. It lives with the project (not in one user's
profile) so that `newsletter mailbox` on any PC with the project folder, or on a new laptop, verifies the
tokens sent from another; it is git-ignored and must never be shared outside the project.

Before, the generated secret lived in the user's data folder (`secret_path`). When that old file exists on
this PC it is taken over as the project's secret the first time (so what was sent keeps working everywhere),
and tokens made with it are still accepted (`secrets_to_verify`).
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
from newsletter_cli.project import Project, display
from newsletter_cli.settings import Settings

SECRET_FILE = "unsubscribe-secret"
TOKEN_LENGTH = 32  # hex digits: 128 bits
TOKEN_RE = re.compile(r"\b[^\W\d_]+-([0-9a-f]{32})\b", re.IGNORECASE)  # 'afmelden-<token>', 'unsubscribe-<token>'
MIN_SECRET = 16

LINK_RE = re.compile(r"(?:mailto:|https?://)\S+", re.IGNORECASE)
REQUEST_WORDS = re.compile(r"\b(?:afmelden|afmelding|uitschrijven|unsubscribe)\b", re.IGNORECASE)


def token(address: str, secret: str) -> str:
    """HMAC-SHA256 of the lower-case address, the first 32 hex digits."""
    return hmac.new(secret.encode("utf-8"), address.lower().encode("utf-8"), hashlib.sha256).hexdigest()[:TOKEN_LENGTH]


def project_secret_path(project: Project) -> Path:
    """Where the generated secret lives now: `unsubscribe-secret` in the project folder (git-ignored)."""
    return project.root / SECRET_FILE


def secret_path() -> Path:
    """Where older versions kept the generated secret: the user's data folder (e.g. ~/.local/share/newsletter,
    %LOCALAPPDATA%). Only read now, to take it over and to accept the tokens already sent with it."""
    from platformdirs import user_data_path

    return user_data_path("newsletter", appauthor=False) / SECRET_FILE


def _read_secret(path: Path) -> str | None:
    """The secret in a file, or None when there is none; a clear error when it cannot be used."""
    try:
        if not path.is_file():
            return None
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NewsletterError(f"{display(path)}: cannot read the unsubscribe secret ({exc}). Restore it from the "
                              "project folder on the other PC, or set LIST_UNSUBSCRIBE_SECRET in .env.") from None
    if len(value) < MIN_SECRET:
        raise NewsletterError(f"{display(path)}: the unsubscribe secret in this file is too short. Restore it from a "
                              "copy of the project folder; only if nothing was sent with it yet, delete it (a new one "
                              "is made).")
    return value


def _old_secret() -> str | None:
    try:
        return _read_secret(secret_path())
    except NewsletterError:
        return None  # an unreadable file of the old kind is not needed: the project has its own secret


def _write_secret(path: Path, value: str) -> None:
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # only this user can read it
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(value + "\n")
    os.replace(tmp, path)


def load_secret(settings: Settings, project: Project) -> str:
    """LIST_UNSUBSCRIBE_SECRET, or the project's generated one (made now, under a lock, if there is none yet:
    the old per-user secret when this PC has one, else a new random one)."""
    given = settings.list_unsubscribe_secret.get_secret_value()
    if given:
        return given
    path = project_secret_path(project)
    found = _read_secret(path)
    if found:
        return found
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(path.with_name(f".{SECRET_FILE}.lock")), timeout=30):
            found = _read_secret(path)
            if not found:
                found = _old_secret() or secrets.token_hex(32)
                _write_secret(path, found)
    except (OSError, Timeout) as exc:
        raise NewsletterError(f"{display(path)}: cannot create the unsubscribe secret ({exc}). Check that the project "
                              "folder is writable, or set LIST_UNSUBSCRIBE_SECRET in .env (at least 16 random "
                              "characters).") from None
    return found


def secrets_to_verify(settings: Settings, project: Project, *, create: bool = True) -> list[str]:
    """Every secret a token may have been made with: LIST_UNSUBSCRIBE_SECRET, the project's secret (made when
    `create` and there is none), and the old per-user secret when this PC still has it. Without `create`
    (`--dry-run`) nothing is written."""
    found: list[str] = []
    given = settings.list_unsubscribe_secret.get_secret_value()
    if given:
        found.append(given)
    here = _read_secret(project_secret_path(project))
    if here is None and create and not given:
        here = load_secret(settings, project)
    for value in (here, _old_secret()):
        if value and value not in found:
            found.append(value)
    return found


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
