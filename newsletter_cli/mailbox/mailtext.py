"""Reading a stranger's message tolerantly: headers, parts and text that never raise, whatever the message
claims (unknown charsets such as Sendmail's unknown-8bit, broken encoded words, broken MIME, huge parts), and
come out as one printable line where they go to a terminal or a spreadsheet."""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
from email.message import Message

TEXT_LIMIT = 200_000  # characters of one part that are read: a report's text is short, a 20 MB part is not one
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
FIELD_RE = re.compile(r"^([A-Za-z][\w-]{0,60})[ \t]*:[ \t]?(.*)$")


def one_line(value: object) -> str:
    """One line of printable text (what a stranger's server wrote goes to the terminal and to Excel)."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(value or "")).split())


def codec(charset: str | None) -> str:
    """A codec Python knows for a charset label; utf-8 for unknown ones (unknown-8bit, x-unknown, ...)."""
    try:
        return codecs.lookup((charset or "utf-8").strip().strip('"')).name
    except (LookupError, ValueError, TypeError):
        return "utf-8"


def decode_bytes(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(codec(charset))
    except (UnicodeDecodeError, LookupError):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")  # every byte is a character: nothing is lost, nothing raises


def _encoded_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.groups()
    try:
        if encoding in "bB":
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = quopri.decodestring(text.replace("_", " ").encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return match.group(0)  # undecodable: shown as it came
    return decode_bytes(data, charset.split("*", 1)[0])


def header(msg: Message, name: str) -> str:
    """A header as one line of text: encoded words decoded where they can be, never an exception."""
    try:
        value = msg.get(name)
    except Exception:  # a broken header in a stranger's message: as if absent
        return ""
    return "" if value is None else decoded(str(value))


def decoded(value: str) -> str:
    """A header value as one line of text: encoded words decoded where they can be, never an exception."""
    data = value.encode("utf-8", "surrogateescape")
    text = decode_bytes(data, "iso-2022-jp" if b"\x1b$" in data else "utf-8")  # raw JIS in a header (Domino)
    text = re.sub(r"\?=\s+=\?", "?==?", text)  # whitespace between encoded words is not text (RFC 2047)
    return one_line(ENCODED_WORD.sub(_encoded_word, text))


def raw_payload(part: Message, limit: int) -> bytes:
    """The first bytes of a part's decoded body (about `limit`), without decoding all of a huge part."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return b""
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    chunk = payload[: limit * 2]
    if encoding == "base64":
        letters = re.sub(r"[^A-Za-z0-9+/]", "", chunk)
        try:
            return base64.b64decode(letters[: len(letters) // 4 * 4])[:limit]
        except (binascii.Error, ValueError):
            return b""
    data = chunk.encode("utf-8", "surrogateescape")
    if encoding == "quoted-printable":
        data = quopri.decodestring(data)
    return data[:limit]


def text_of(part: Message, limit: int = TEXT_LIMIT) -> str:
    """A part's body as text, whatever its charset claims."""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(raw_payload(part, limit), charset)[:limit]


def parts(msg: Message, inside_attachments: bool = True) -> list[Message]:
    """Every part; without the parts of attached messages when `inside_attachments` is false."""
    found: list[Message] = [msg]
    payload = msg.get_payload()
    if isinstance(payload, list):
        if msg.get_content_type() == "message/rfc822" and not inside_attachments and found[0] is not msg:
            return found
        for sub in payload:
            if isinstance(sub, Message):
                if not inside_attachments and sub.get_content_maintype() == "message" and \
                        sub.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
                    found.append(sub)
                    continue
                found += parts(sub, inside_attachments)
    return found[:1000]


def attached(msg: Message) -> Message | None:
    """The returned or reported message, when it is attached whole."""
    for part in parts(msg):
        if part.get_content_type() in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                return inner
    return None


def fields(part: Message | str) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status (or feedback-report) part, read tolerantly: a Diagnostic-Code
    continued on lines that do not start with a space (Symantec) stays one field, and the fields after it too."""
    blocks = part.get_payload() if isinstance(part, Message) else part
    if isinstance(blocks, list):
        texts = []
        for block in blocks:
            if isinstance(block, Message):
                body = block.get_payload()
                texts.append("".join(f"{name}: {value}\n" for name, value in block.items())
                             + (body if isinstance(body, str) else ""))
        text = "\n\n".join(texts)
    else:
        text = text_of(part) if isinstance(part, Message) else part
    found: list[dict[str, str]] = []
    for chunk in re.split(r"\r?\n[ \t]*\r?\n", text[:TEXT_LIMIT]):
        fields: dict[str, str] = {}
        name = ""
        for line in chunk.splitlines():
            match = FIELD_RE.match(line)
            if match and not line[:1].isspace():
                name = match.group(1).lower()
                if name not in fields:
                    fields[name] = match.group(2)
                else:
                    name = ""  # a repeated field: the first one counts
            elif name:
                fields[name] += " " + line.strip()
        if fields:
            found.append({key: decoded(value) for key, value in fields.items()})
    return found[:500]
