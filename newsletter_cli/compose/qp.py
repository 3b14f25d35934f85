"""Quoted-printable as it goes on the wire: CRLF line ends, lines of at most 76 characters (RFC 2045)."""

from __future__ import annotations

from email import quoprimime

MAX_LINE = 76  # RFC 2045 6.7 (5): encoded lines are at most 76 characters, the soft break's '=' included
SPLICE_LINE = MAX_LINE - 1  # a piece that a soft break ('=') will follow needs one character of room


def encode(text: str, max_line: int = MAX_LINE) -> bytes:
    """UTF-8, quoted-printable, CRLF line ends, no line longer than `max_line`.

    The standard library's email encoder rather than binascii.b2a_qp: the C encoder lets a line that ends in
    an encoded space or tab (`=20`, `=09`) reach 77 characters. The UTF-8 bytes pass through it as Latin-1
    characters, one per byte, so that every byte above 126 is written as `=XX`.
    """
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return quoprimime.body_encode(data.decode("latin-1"), max_line, "\r\n").encode("ascii")


def qp_size(text: str) -> int:
    """How many bytes `text` takes as a quoted-printable body part."""
    return len(encode(text))
