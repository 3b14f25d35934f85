"""Merge fields: `[[name]]` or `[[name|default]]` in edition text, filled per recipient after rendering.

The email is rendered once; these fields are substituted into the finished HTML and text, escaped for
each. Values are never rescanned, so a value that itself contains `[[...]]` stays as written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping

FIELD_RE = re.compile(r"\[\[\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(?:\|([^\]\[]*))?\]\]")


def fields(text: str) -> set[str]:
    """The names of the merge fields used in `text`."""
    return {m.group(1) for m in FIELD_RE.finditer(text)}


def fill(text: str, values: Mapping[str, str], escape: Callable[[str], str] | None = None) -> str:
    """Replace each field by its value (or its default, or ''), passed through `escape`."""

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1)) or (match.group(2) or "").strip()
        return escape(value) if escape else value

    return FIELD_RE.sub(replace, text)


def fill_html(text: str, values: Mapping[str, str]) -> str:
    return fill(text, values, lambda v: html.escape(v, quote=True))
