"""Quoted-printable as it goes on the wire: CRLF line ends, lines of at most 76 characters."""

from __future__ import annotations

import binascii


def encode(text: str) -> bytes:
    """UTF-8, quoted-printable (the C encoder in binascii), CRLF line ends."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


def qp_size(text: str) -> int:
    """How many bytes `text` takes as a quoted-printable body part."""
    return len(encode(text))
