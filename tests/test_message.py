"""The fast message path against a reference built with the standard library's email package."""

from __future__ import annotations

import base64
import email
import email.policy
import html
import re
import shutil
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter_cli.compose.build import build
from newsletter_cli.deliver.message import MessageFactory, unsubscribe_token
from newsletter_cli.errors import InputError
from newsletter_cli.members.recipients import Recipient
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "editions" / "2025-09"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
SECRET = "s3cret-s3cret-s3cret"
SETTINGS = {"NEWSLETTER_FROM": "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>", "NEWSLETTER_REPLY_TO": "secretariaat@vzhg.nl",
            "LIST_UNSUBSCRIBE": "afmelden@vzhg.nl https://vzhg.nl/afmelden?e={email}&t={token}",
            "LIST_UNSUBSCRIBE_SECRET": SECRET}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The example edition with a merge field in the intro and a local image."""
    folder = tmp_path_factory.mktemp("proj") / "editions" / "2025-09"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("build", "outbox", "journal*"))
    source = (folder / "edition.yaml").read_text(encoding="utf-8")
    source = source.replace('heading: "Beste lezer,"', 'heading: "[[aanhef|Beste lezer]],"', 1)
    source = source.replace('      - title: "Najaarscongres 21 november"\n',
                            '      - title: "Najaarscongres 21 november"\n'
                            '        image:\n          src: images/dot.png\n          alt: "Stip"\n', 1)
    (folder / "edition.yaml").write_text(source, encoding="utf-8")
    (folder / "images").mkdir()
    (folder / "images" / "dot.png").write_bytes(PNG)
    return build(folder / "edition.yaml", folder / "build", project=Project.here())


def factory_for(built, test: bool = False, **extra: str) -> MessageFactory:
    return MessageFactory(built, parse_settings({**SETTINGS, **extra}, {}), test=test, project=Project.here())


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def reference(factory: MessageFactory, built, recipient: Recipient, message_id: str) -> EmailMessage:
    """The same message, built the slow, obvious way with the standard library."""
    link = factory.unsubscribe_url(recipient.email)
    fields = ("[[aanhef|Beste lezer]]", "[[unsubscribe_url]]")  # the two in the edition, written out

    def fill(text: str, escape) -> str:
        assert all(field in text for field in fields)
        filled = text.replace(fields[0], escape(recipient.fields["aanhef"])).replace(fields[1], escape(link))
        assert "[[" not in filled
        return filled

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["Message-ID"] = message_id
    msg["To"] = Address(recipient.name, addr_spec=recipient.email)
    msg["List-Unsubscribe"] = factory.list_unsubscribe(recipient.email).replace("\r\n ", " ")
    msg["From"] = Address("VZHG Nieuwsbrief", addr_spec="nieuwsbrief@vzhg.nl")
    msg["Reply-To"] = "secretariaat@vzhg.nl"
    msg["Subject"] = factory.subject
    msg["List-Id"] = "VZHG Nieuwsbrief <newsletter.vzhg.nl>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg["Precedence"] = "bulk"
    page = built.rendered.html
    for src, cid, _ in factory.images:
        page = page.replace(f'src="{src}"', f'src="cid:{cid}"')
    msg.set_content(fill(built.rendered.text, lambda v: v), cte="quoted-printable")
    msg.add_alternative(fill(page, lambda v: html.escape(v, quote=True)), subtype="html", cte="quoted-printable")
    for _, cid, path in factory.images:
        msg.get_payload()[1].add_related(path.read_bytes(), "image", "png", cid=f"<{cid}>", disposition="inline",
                                         filename=path.name)
    return msg


LOIS = Recipient("lois@example.org", "Loïs de Vries 🎉", {"aanhef": "Beste Loïs <& co>", "email": "lois@example.org"})


def test_equivalent_to_the_standard_library(built):
    factory = factory_for(built)
    mine = parse(factory.for_recipient(LOIS, "<1@vzhg.nl>"))
    ref = parse(reference(factory, built, LOIS, "<1@vzhg.nl>").as_bytes())
    assert [p.get_content_type() for p in mine.walk()] == [p.get_content_type() for p in ref.walk()] == [
        "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    names = {k for k in ref.keys() if k not in ("Content-Type", "MIME-Version")}
    for name in names:
        assert " ".join(str(mine[name]).split()) == " ".join(str(ref[name]).split()), name
    assert mine["To"].addresses[0].display_name == "Loïs de Vries 🎉"
    assert mine["Date"] is not None
    for kind in ("plain", "html"):
        assert mine.get_body((kind,)).get_content() == ref.get_body((kind,)).get_content()
    ours, theirs = list(mine.walk())[-1], list(ref.walk())[-1]
    assert ours.get_content() == theirs.get_content() == PNG
    assert ours["Content-ID"] == theirs["Content-ID"]


def test_merge_fields_escaped_in_html_plain_in_text(built):
    mine = parse(factory_for(built).for_recipient(LOIS))
    assert "Beste Loïs <& co>," in mine.get_body(("plain",)).get_content()
    assert "Beste Loïs &lt;&amp; co&gt;," in mine.get_body(("html",)).get_content()
    nobody = parse(factory_for(built).for_recipient(Recipient("x@example.org")))
    assert "Beste lezer," in nobody.get_body(("plain",)).get_content()
    sneaky = Recipient("y@example.org", "", {"aanhef": "[[unsubscribe_url]]"})
    assert "[[unsubscribe_url]]," in parse(factory_for(built).for_recipient(sneaky)).get_body(("plain",)).get_content()


def test_wire_format_crlf_and_line_lengths(built):
    data = factory_for(built).for_recipient(LOIS)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert data.isascii()


def test_unique_message_ids_and_per_recipient_unsubscribe(built):
    factory = factory_for(built)
    first, second = parse(factory.for_recipient(LOIS)), parse(factory.for_recipient(Recipient("b@example.org")))
    assert first["Message-ID"] != second["Message-ID"]
    token = unsubscribe_token("lois@example.org", SECRET)
    assert f"<https://vzhg.nl/afmelden?e=lois@example.org&t={token}>" in first["List-Unsubscribe"]
    assert f"<mailto:afmelden@vzhg.nl?subject=afmelden-{token}>" in first["List-Unsubscribe"]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"t={token}" in first.get_body(("plain",)).get_content()
    other = unsubscribe_token("b@example.org", SECRET)
    assert f"afmelden-{other}" in second["List-Unsubscribe"] and token not in second["List-Unsubscribe"]
    assert first["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert first["List-Id"] == "VZHG Nieuwsbrief <newsletter.vzhg.nl>"


def test_mailto_only_has_no_one_click_header(built, tmp_path):
    factory = MessageFactory(built, parse_settings({"NEWSLETTER_FROM": "nb@vzhg.nl"}, {}), project=Project(tmp_path))
    msg = parse(factory.for_recipient(LOIS))
    assert msg["List-Unsubscribe-Post"] is None
    secret = (tmp_path / "unsubscribe-secret").read_text().strip()
    assert len(secret) == 64  # generated on first use, in the project folder (any PC with it verifies tokens)
    token = unsubscribe_token("lois@example.org", secret)
    # folded after the colon (the line would pass 78 characters): Python's parser keeps the space
    assert msg["List-Unsubscribe"].strip() == f"<mailto:nb@vzhg.nl?subject=afmelden-{token}>"
    assert f"mailto:nb@vzhg.nl?subject=afmelden-{token}" in msg.get_body(("plain",)).get_content()


def test_test_send_subject_prefix(built):
    msg = parse(factory_for(built, test=True).for_recipient(LOIS))
    assert msg["Subject"] == "[TEST] Nieuwsbrief VZHG - september 2025"


@pytest.mark.parametrize("recipient", [
    Recipient("a@example.org", "Evil\r\nBcc: victim@example.org"),
    Recipient("a@example.org", "Evil\nBcc: victim@example.org"),
    Recipient("a@example.org", "Nul\0byte"),
    Recipient("a@example.org\r\nBcc: victim@example.org", ""),
])
def test_header_injection_is_refused(built, recipient):
    with pytest.raises(InputError, match="line break or NUL"):
        factory_for(built).for_recipient(recipient)


def test_header_injection_through_subject_or_from(built):
    built.loaded.edition.__dict__["subject"] = "Hallo\r\nBcc: victim@example.org"
    try:
        with pytest.raises(InputError, match="subject"):
            factory_for(built)
    finally:
        built.loaded.edition.__dict__["subject"] = "Nieuwsbrief VZHG - september 2025"
    with pytest.raises(InputError, match="NEWSLETTER_FROM"):
        parse_settings({"NEWSLETTER_FROM": "a@b.nl\nBcc: c@d.nl"}, {})


def test_local_theme_logo_travels_as_an_inline_part(project: Path):
    """A logo from theme.yaml (relative to the project folder) is embedded like an item image, not left as a
    local path that would show as a broken image in the recipient's mail."""
    (project / "assets").mkdir()
    (project / "assets" / "logo.png").write_bytes(PNG)
    (project / "theme.yaml").write_text("logo: assets/logo.png\n", encoding="utf-8")
    result = build(project / "editions" / "2025-09" / "edition.yaml", project=Project(project))
    factory = MessageFactory(result, parse_settings(SETTINGS, {}), project=Project(project))
    message = parse(factory.for_recipient(Recipient("a@example.org", "A", {})))
    html_part = message.get_body(("html",)).get_content()
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content() == PNG
    cid = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html_part
    assert 'src="assets/logo.png"' not in html_part


def test_a_short_non_ascii_header_is_encoded():
    """A short Dutch subject with ë or an emoji: RFC 2047 encoded words, never raw bytes or a crash."""
    from email.header import decode_header, make_header

    from newsletter_cli.deliver.message import encode_header

    for value in ("Nieuwsbrief ë", "👉 Nieuwsbrief VZHG"):
        line = encode_header("Subject", value)
        assert line.isascii() and b"=?utf-8?" in line
        assert str(make_header(decode_header(line.decode().split(": ", 1)[1].strip()))) == value


def test_header_lines_fold_at_78_and_encoded_words_end_at_spaces(built):
    """RFC 5322: every header line <= 78 where a fold exists (between words, between the <...> of
    List-Unsubscribe), <= 998 always; RFC 2047: encoded words split at spaces, so Python's own parser reads
    the names back letter for letter (not "Communic atie"); RFC 2387: multipart/related names its root type."""
    name = "Vereniging Zuid-Hollandse Gemeenten – Afdeling Communicatie en Informatievoorziening"
    factory = factory_for(built, NEWSLETTER_FROM=f"{name} <nieuwsbrief@vzhg.nl>",
                          NEWSLETTER_REPLY_TO="Secretariaat Zuid-Hollandse Gemeenten <secretariaat@vzhg.nl>")
    factory.subject = "Nieuwsbrief voor de gemeenten: één weerbaar Zuid-Holland, communicatie en samenwerking"
    factory._static_headers = factory._headers()
    recipient = Recipient("lois@example.org", "Loïs van der Berg-Ūnalakleet, wethouder Communicatie & Financiën")
    data = factory.for_recipient(recipient)
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    for line in lines:
        assert len(line) <= 998 and not line.endswith(" ")  # no space left before a fold
        if len(line) > 78:  # only where no fold exists: one address (a URL) that is itself longer
            assert re.fullmatch(r"(List-Unsubscribe:)? <[^ ]+>,?", line), line
    assert max(len(line) for line in lines if "<https://" not in line) <= 78
    unsubscribe = [line for line in lines if "mailto:" in line and "afmelden" in line]
    assert unsubscribe == [f" <{factory._mailto('lois@example.org')}>,"]  # folded before it: it fits on its own line
    msg = parse(data)
    assert msg["From"].addresses[0].display_name == name
    assert msg["To"].addresses[0].display_name == recipient.name
    assert msg["List-Id"].strip() == f"{name} <newsletter.vzhg.nl>"
    assert msg["Subject"] == factory.subject
    # an encoded word never ends inside a word: one that follows another starts with the space between them
    assert all(first == "_" for first in re.findall(r"\?=\r\n +=\?utf-8\?q\?(.)", head))
    related = next(part for part in msg.walk() if part.get_content_type() == "multipart/related")
    assert related.get_param("type") == "text/html"
