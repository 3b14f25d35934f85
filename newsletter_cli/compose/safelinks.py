"""Links pasted from Outlook: find "safelinks" and unwrap them to their real target."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

SAFELINK_RE = re.compile(
    r"https?://[A-Za-z0-9.-]*safelinks\.protection\.outlook\.com/?\?[^\s<>()\[\]\"']*",
    re.IGNORECASE,
)


def is_safelink(url: str) -> bool:
    return bool(SAFELINK_RE.fullmatch(url.strip()))


def unwrap_safelink(url: str) -> str | None:
    """The target of an Outlook safelink, or None when `url` is not one (or carries no target)."""
    if not is_safelink(url):
        return None
    targets = parse_qs(urlsplit(url.strip()).query).get("url")
    return targets[0] if targets else None


def unwrap_all(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Replace every safelink in `text` by its target; returns the new text and (safelink, target) pairs."""
    found: list[tuple[str, str]] = []

    def replace(match: re.Match[str]) -> str:
        target = unwrap_safelink(match.group(0))
        if target is None:
            return match.group(0)
        found.append((match.group(0), target))
        return target

    return SAFELINK_RE.sub(replace, text), found
