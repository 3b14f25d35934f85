"""One message per recipient, fast: the edition is rendered and quoted-printable encoded once.

The HTML and text parts are split at their merge fields (`[[aanhef]]`, `[[unsubscribe_url]]`); each static
piece is QP-encoded once and each recipient's values are encoded and spliced in between, joined
by soft line breaks (`=` CRLF), so no line exceeds 76 characters. Only the header block is built per
recipient. The result is the exact bytes that go on the wire (CRLF line ends).
"""

from __future__ import annotations

import base64
import mimetypes
import secrets
from collections.abc import Mapping
from email.utils import encode_rfc2231, formatdate, getaddresses
from pathlib import Path
from urllib.parse import quote

from newsletter_cli.compose import i18n, merge, qp
from newsletter_cli.compose.build import Build
from newsletter_cli.compose.render import embed_images, image_key
from newsletter_cli.deliver import headers as rfc_headers
from newsletter_cli.errors import InputError
from newsletter_cli.members import unsubscribe
from newsletter_cli.members.recipients import Recipient
from newsletter_cli.project import Project
from newsletter_cli.settings import Settings, missing

SOFT_BREAK = b"=\r\n"
CRLF = b"\r\n"
TEST_PREFIX = "[TEST] "
UNSAFE_HEADER_CHARS = ("\r", "\n", "\0")
CRLF_TEXT = "\r\n"


def check_header_value(value: str, what: str) -> str:
    """Refuse CR, LF and NUL in anything that goes into a header (header injection)."""
    if any(ch in value for ch in UNSAFE_HEADER_CHARS):
        raise InputError(f"{what} contains a line break or NUL character ({value!r}); "
                         "a header value must be one line. Remove it and try again.")
    return value


def encode_header(name: str, value: str) -> bytes:
    """`Name: value` CRLF; non-ASCII words as RFC 2047 encoded words split at spaces, folded under 78
    characters (deliver/headers.py)."""
    check_header_value(value, name)
    return (rfc_headers.unstructured(name, value) + CRLF_TEXT).encode("ascii")


def format_address(name: str, address: str, what: str, header: str = "Reply-To") -> str:
    """'Loïs de Vries <lois@example.org>' as the value of the `header` field: quoted or encoded as needed, and
    folded at spaces when long, so no header line goes over 78 characters (formataddr alone would give one
    line of any length, Python's own folding cuts encoded words inside a word)."""
    check_header_value(name, what)
    check_header_value(address, what)
    line = rfc_headers.address(header, name, header_address(address))
    return line[len(header) + 1:].removeprefix(" ")


def header_line(name: str, value: str) -> str:
    """`Name: value` CRLF, where `value` may start with a fold (no space is left before it)."""
    return f"{name}:{'' if value.startswith(CRLF_TEXT) else ' '}{value}{CRLF_TEXT}"


def header_address(address: str) -> str:
    """An address for a header: an internationalized domain IDNA-encoded (xn--) when the mailbox name is
    ASCII, so every mail program reads it; a non-ASCII mailbox name stays UTF-8 (sent with SMTPUTF8)."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        return address
    import idna

    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return address


unsubscribe_token = unsubscribe.token  # the unsubscribe page and `newsletter mailbox` recompute it


def _filename(name: str) -> str:
    """The filename parameter: quoted when plain ASCII, else RFC 2231 (`café.png`, `foto "1".jpg`)."""
    if name.isascii() and not set(name) & set('"\\\r\n'):
        return f'filename="{name}"'
    return f"filename*={encode_rfc2231(name, 'utf-8')}"


class SplitPart:
    """A text split at its merge fields (compose/merge.py), the static pieces encoded once."""

    def __init__(self, text: str, *, is_html: bool):
        self.template = merge.Template(text, "html" if is_html else "text")
        self.pieces: list[bytes] = [qp.encode(piece, qp.SPLICE_LINE) for piece in self.template.pieces]

    def render(self, values: Mapping[str, str]) -> list[bytes]:
        """The encoded part for one recipient, as a list of chunks to join."""
        out = [self.pieces[0]]
        for slot, piece in zip(self.template.slots, self.pieces[1:]):
            value = slot.value(values)
            if value:
                out += [SOFT_BREAK, qp.encode(value, qp.SPLICE_LINE)]
            out += [SOFT_BREAK, piece]
        return out


class MessageFactory:
    """Builds each recipient's message from one rendered edition; `for_recipient` returns wire bytes."""

    def __init__(self, build: Build, settings: Settings, *, test: bool = False, project: Project):
        if not settings.newsletter_from:
            raise missing(settings, "NEWSLETTER_FROM", "the messages need a sender",
                          "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>")
        self.settings = settings
        self.test = test
        edition = build.loaded.edition
        self.locale = edition.locale
        self.subject = (TEST_PREFIX if test else "") + edition.subject
        check_header_value(self.subject, f"{build.loaded.display_path}: the subject")
        self.subject_template = merge.Template(self.subject, "header")  # the subject may hold merge fields
        self.from_address = settings.from_address
        self._unsubscribe_secret = unsubscribe.load_secret(settings, project)
        self._unsubscribe_base = unsubscribe.mailto_base(settings)
        self.domain = self.from_address.rsplit("@", 1)[-1]
        self.boundary = f"=_nl_{secrets.token_hex(12)}"
        self.related_boundary = f"=_nlr_{secrets.token_hex(12)}"
        html_text = build.rendered.html
        self.images = images = self._images(build)
        html_text = embed_images(html_text, {image_key(src): cid for src, cid, _ in images})
        self.text_part = SplitPart(build.rendered.text, is_html=False)
        self.html_part = SplitPart(html_text, is_html=True)
        self._static_headers = self._headers()
        self._body_head, self._body_mid, self._body_tail = self._skeleton(images)

    def _images(self, build: Build) -> list[tuple[str, str, Path]]:
        """(src as written in the HTML, Content-ID, file) for each local image."""
        out = []
        for n, (src, path) in enumerate(build.rendered.image_files.items(), 1):
            if not path.is_file():
                raise InputError(f"{build.loaded.display_path}: image '{src}' does not exist; "
                                 "put the file next to edition.yaml or fix the path.")
            out.append((src, f"img{n}.{secrets.token_hex(6)}@{self.domain}", path))
        return out

    def _headers(self) -> bytes:
        s = self.settings
        (from_name, from_addr), = getaddresses([s.newsletter_from or ""])
        lines = [
            header_line("From", format_address(from_name, from_addr, "NEWSLETTER_FROM", "From")).encode("ascii"),
        ]
        if s.reply_to:
            (name, addr), = getaddresses([s.reply_to])
            lines.append(header_line("Reply-To", format_address(name, addr, "NEWSLETTER_REPLY_TO")).encode("ascii"))
        if not self.subject_template.slots:
            lines.append(encode_header("Subject", self.subject))
        list_name = from_name or self.domain
        list_id = format_address(list_name, f"newsletter.{self.domain}", "List-Id", "List-Id")
        lines.append(header_line("List-Id", list_id).encode("ascii"))
        if s.unsubscribe_https:
            lines.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        lines += [b"X-Auto-Response-Suppress: OOF, AutoReply\r\n", b"Precedence: bulk\r\n", b"MIME-Version: 1.0\r\n",
                  f'Content-Type: multipart/alternative;\r\n boundary="{self.boundary}"\r\n\r\n'.encode("ascii")]
        return b"".join(lines)

    def _skeleton(self, images: list[tuple[str, str, Path]]) -> tuple[bytes, bytes, bytes]:
        """The MIME scaffolding around the two encoded parts, with the images base64-encoded once."""
        qp_headers = b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        head = f"--{self.boundary}\r\n".encode("ascii") + b"Content-Type: text/plain" + qp_headers
        mid = f"\r\n--{self.boundary}\r\n".encode("ascii")
        tail = b""
        if images:
            mid += (f'Content-Type: multipart/related; type="text/html";\r\n'  # RFC 2387: the root part's type
                    f' boundary="{self.related_boundary}"\r\n\r\n').encode("ascii")
            mid += f"--{self.related_boundary}\r\n".encode("ascii")
            for _src, cid, path in images:
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                data = base64.encodebytes(path.read_bytes()).replace(b"\n", b"\r\n")
                tail += (f"\r\n--{self.related_boundary}\r\nContent-Type: {kind}\r\n"
                         f"Content-Transfer-Encoding: base64\r\nContent-ID: <{cid}>\r\n"
                         f"Content-Disposition: inline; {_filename(path.name)}\r\n\r\n").encode("ascii") + data
            tail += f"\r\n--{self.related_boundary}--\r\n".encode("ascii")
        mid += b"Content-Type: text/html" + qp_headers
        tail += f"\r\n--{self.boundary}--\r\n".encode("ascii")
        return head, mid, tail

    def unsubscribe_url(self, address: str) -> str:
        """The link in the footer: the https page when configured, else a mailto: with a subject."""
        https = self.settings.unsubscribe_https
        if https:
            token = unsubscribe_token(address, self._unsubscribe_secret)
            return https.replace("{email}", quote(address, safe="@")).replace("{token}", token)
        return self._mailto(address)

    def _mailto(self, address: str) -> str:
        return unsubscribe.mailto(self._unsubscribe_base, address, self._unsubscribe_secret,
                                  i18n.strings(self.locale)["unsubscribe"].lower())

    def list_unsubscribe(self, address: str) -> str:
        """The List-Unsubscribe value: <mailto:...> and, when configured, <https://...>; folded between (and
        before) the <...> so each line stays under 78 characters where the addresses allow it."""
        links = [self._mailto(address)]
        if self.settings.unsubscribe_https:
            links.append(self.unsubscribe_url(address))
        return rfc_headers.angle_list("List-Unsubscribe", links)[len("List-Unsubscribe:"):].removeprefix(" ")

    def message_id(self) -> str:
        """A new Message-ID, random (128 bits): one member's copy tells nothing about another's, so a bounce
        or complaint naming it proves it concerns that message. The send journal keeps it per member and
        edition, and a retry or re-send of that member's message reuses it (mail programs fold the copies)."""
        return f"<{secrets.token_urlsafe(16)}@{self.domain}>"

    def for_recipient(self, recipient: Recipient, message_id: str | None = None) -> bytes:
        """The whole message for one recipient, as bytes with CRLF line ends."""
        address = check_header_value(recipient.email, f"the address of {recipient.email!r}")
        to = format_address(recipient.name, address, f"the name of {address}", "To")
        values = dict(recipient.fields)
        values.setdefault("email", address)
        values.setdefault("name", recipient.name)
        values["unsubscribe_url"] = self.unsubscribe_url(address)
        # UTF-8 only for a non-ASCII mailbox name (sent with SMTPUTF8); an IDN domain is already xn--
        headers = (f"Date: {formatdate(localtime=True)}\r\nMessage-ID: {message_id or self.message_id()}\r\n"
                   f"{header_line('To', to)}{header_line('List-Unsubscribe', self.list_unsubscribe(address))}").encode()
        if self.subject_template.slots:
            headers += encode_header("Subject", self.subject_template.fill(values))
        chunks = [headers, self._static_headers, self._body_head, *self.text_part.render(values), self._body_mid,
                  *self.html_part.render(values), self._body_tail]
        return b"".join(chunks)
