"""Header values as RFC 5322 and RFC 2047 want them: folded at 78 characters between words, non-ASCII words
as encoded words that end at a space (never inside a word: a reader that joins adjacent encoded words
with a space, as Python's own parser does, would show "Communic atie"), lines never over 998.

Python's email package folds too, but splits an encoded word wherever the line is full, mid-word included.
"""

from __future__ import annotations

import re
from email.quoprimime import header_encode

LINE = 78  # RFC 5322 2.1.1: SHOULD
MAX_ENCODED_WORD = 75  # RFC 2047 2
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_ENCODED = re.compile(r"=\?.*\?=")


def _encode(text: str) -> str:
    return header_encode(text.encode("utf-8"), charset="utf-8")


def _encoded_words(text: str) -> list[str]:
    """`text` (one or more words) as encoded words of at most 75 characters, split at spaces: the space
    travels inside the next encoded word (the space between two encoded words is not shown)."""
    out: list[str] = []
    current = ""
    for n, word in enumerate(text.split(" ")):
        piece = (" " if n else "") + word
        if current and len(_encode(current + piece)) > MAX_ENCODED_WORD:
            out.append(_encode(current))
            current = piece
        else:
            current += piece
    while len(_encode(current)) > MAX_ENCODED_WORD:  # one word too long for an encoded word: cut it
        cut = len(current)
        while len(_encode(current[:cut])) > MAX_ENCODED_WORD:
            cut -= 1
        out.append(_encode(current[:cut]))
        current = current[cut:]
    out.append(_encode(current))
    return out


def words(text: str, *, phrase: bool) -> list[str]:
    """The tokens of a header text, to be joined by single spaces: plain words where they may stand as
    written (ASCII; in a phrase only atoms), each run of the others as encoded words. The space between a
    plain word and an encoded word is shown, so a run never needs to carry the space before it."""
    out: list[str] = []
    run: list[str] = []
    for word in text.split():
        if word.isascii() and not _ENCODED.search(word) and (not phrase or _ATEXT.fullmatch(word)):
            if run:
                out += _encoded_words(" ".join(run))
                run.clear()
            out.append(word)
        else:
            run.append(word)
    if run:
        out += _encoded_words(" ".join(run))
    return out


def fold(name: str, tokens: list[str]) -> str:
    """`Name: token token ...` with a fold (CRLF and a space) before each token that would take the line past
    78 characters; before the first one only when that makes it fit (a long URL stays beside the name).
    A token longer than a line stands on a line of its own. No CRLF at the end."""
    lines = [f"{name}:"]
    for n, token in enumerate(tokens):
        if len(lines[-1]) + 1 + len(token) > LINE and (n or 1 + len(token) <= LINE):
            lines.append(" " + token)
        else:
            lines[-1] += " " + token
    return "\r\n".join(lines)


def unstructured(name: str, value: str) -> str:
    """A Subject-like header, folded and encoded at spaces."""
    if value.isascii() and len(name) + 2 + len(value) <= LINE and not _ENCODED.search(value):
        return f"{name}: {value}"
    return fold(name, words(value, phrase=False))


def address(name: str, display_name: str, addr: str) -> str:
    """`Name: display name <addr>`: the display name quoted when it needs to be (ASCII), else non-ASCII words
    as encoded words; folded at spaces."""
    if not display_name:
        return f"{name}: {addr}"
    if display_name.isascii():
        phrase = " ".join(display_name.split())
        if not all(_ATEXT.fullmatch(word) for word in phrase.split()):
            phrase = '"' + phrase.replace("\\", "\\\\").replace('"', '\\"') + '"'
        value = f"{phrase} <{addr}>"
        if len(name) + 2 + len(value) <= LINE:
            return f"{name}: {value}"
        return fold(name, [*phrase.split(), f"<{addr}>"])  # a fold inside a quoted string is allowed
    return fold(name, [*words(display_name, phrase=True), f"<{addr}>"])


def angle_list(name: str, items: list[str]) -> str:
    """`Name: <a>, <b>`: a fold between the items (and after the colon when the first does not fit)."""
    tokens = [f"<{item}>" + ("," if n < len(items) - 1 else "") for n, item in enumerate(items)]
    return fold(name, tokens)
