"""Offline checks of the links and images in an edition: safelinks, http://, broken addresses, link texts."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from newsletter_cli.check.base import Context
from newsletter_cli.compose import markdown as markup
from newsletter_cli.compose import merge, safelinks
from newsletter_cli.compose.images import IMAGE_MAX_BYTES
from newsletter_cli.compose.model import YamlPath, is_web_address, iter_texts
from newsletter_cli.errors import Diagnostic

# IMAGE_MAX_BYTES: over this a local image is heavy; the build makes a photo fit into it (compose/images.py)
# Link texts that say nothing out of context (WCAG 2.4.4): compared after lower-casing and trimming.
VAGUE_LINK_TEXTS = {
    "klik hier", "hier", "klik", "hier klikken", "klik op deze link", "deze link", "link", "via deze link",
    "lees meer", "lees verder", "meer", "meer info", "meer informatie", "zie hier", "bekijk hier", "deze pagina",
    "click here", "here", "click", "this link", "read more", "more", "more info", "learn more", "see here",
    "this page",
}
_TRIM = " \t\n.,:;!?…>»→-–—()[]\"'"
_LABEL_RE = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")
_LOCAL_RE = re.compile(r"^[\w.!#$%&'*+/=?^`{|}~-]+$")  # an unquoted mailbox name (letters of any script)
_TLD_RE = re.compile(r"^([^\W\d_]{2,}|xn--[a-z0-9-]+)$", re.IGNORECASE)
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_FILE_NAME_RE = re.compile(r"\.(jpe?g|png|gif|webp|svg|bmp)$|^(img|dsc|image|scan|photo)[-_ ]?\d+", re.IGNORECASE)


@dataclass(frozen=True)
class Link:
    """One link in the edition and where it is written."""

    url: str
    label: str
    kind: str  # "text", "button" or "image link"
    path: YamlPath  # the YAML field it is in
    offset: int | None = None  # line offset inside a block text field


@dataclass(frozen=True)
class ImageRef:
    src: str
    alt: str
    width: int | None
    path: YamlPath
    offset: int | None = None
    in_text: bool = False  # a Markdown image inside a body


def text_fields(ctx: Context) -> list[tuple[YamlPath, str]]:
    """Every Markdown field of the edition with its YAML path."""
    return [(text.field, text.text) for text in iter_texts(ctx.build.loaded.edition)]


def collect_links(ctx: Context) -> list[Link]:
    """The links of the edition in reading order: in texts, buttons and linked images."""
    edition = ctx.build.loaded.edition
    found: list[Link] = []
    for path, text in text_fields(ctx):
        found += [Link(href, label, "text", path, offset)
                  for href, label, offset in markup.links(text, edition.allow_html)]
    for s, section in enumerate(edition.sections):
        for i, item in enumerate(section.items):
            base = ("sections", s, "items", i)
            if item.button:
                found.append(Link(item.button.url, item.button.label, "button", (*base, "button", "url")))
            found += [Link(b.url, b.label, "button", (*base, "buttons", k, "url")) for k, b in enumerate(item.buttons)]
            if item.image and item.image.link:
                found.append(Link(item.image.link, item.image.alt, "image link", (*base, "image", "link")))
    return found


def collect_images(ctx: Context) -> list[ImageRef]:
    """Item images and Markdown images inside texts."""
    edition = ctx.build.loaded.edition
    found: list[ImageRef] = []
    for s, section in enumerate(edition.sections):
        for i, item in enumerate(section.items):
            if item.image:
                found.append(ImageRef(item.image.src, item.image.alt, item.image.width,
                                      ("sections", s, "items", i, "image")))
    for path, text in text_fields(ctx):
        for block in markup.tokens(text, edition.allow_html):
            offset = block.map[0] if block.map else 0
            for child in block.children or []:
                if child.type == "softbreak":
                    offset += 1
                elif child.type == "image":
                    found.append(ImageRef(str(child.attrGet("src") or ""), child.content, None, path, offset, True))
    return found


def url_problem(url: str) -> str | None:
    """Why `url` cannot work, in plain words, or None when it looks fine (merge fields are fine)."""
    stripped = url.strip()
    lower = stripped.lower()
    if stripped.startswith("[["):
        return None
    stripped = merge.FIELD_RE.sub("x", stripped)  # a field inside an address is filled per recipient
    lower = stripped.lower()
    if not stripped or stripped.startswith("#"):
        return "goes nowhere (an empty or '#' address does nothing in an email)"
    if lower.startswith("javascript:"):
        return "is a javascript: link, which mail programs block"
    if lower.startswith("mailto:"):
        return mailto_problem(stripped)
    if not lower.startswith(("http://", "https://")):
        return "is not a web or mail address"
    if any(ch in stripped for ch in ' <>"{}|\\^`'):
        return "contains a character that is not allowed in a web address (space, quote, < or >)"
    parts = urlsplit(stripped)
    host = parts.hostname or ""
    try:
        _ = parts.port  # urllib checks the port only when asked
    except ValueError:
        return "has an impossible port number after the ':'"
    if not host:
        return "has no website name after https://"
    if host == "localhost" or _IPV4_RE.match(host):
        return None
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels) or not _TLD_RE.match(labels[-1]):
        return f"has '{host}' as website name, which is not a valid domain"
    return None


def mailto_problem(url: str) -> str | None:
    """Why a mailto: link cannot work, or None."""
    addresses = unquote(url[len("mailto:"):].split("?", 1)[0])
    if "[[" in addresses:
        return None
    if not addresses.strip():
        return "is a mailto: link without an e-mail address"
    for address in addresses.split(","):
        why = address_problem(address.strip())
        if why:
            return f"has '{address.strip()}', which is not a valid e-mail address ({why})"
    return None


def address_problem(address: str) -> str | None:
    """Why `address` is not name@domain.tld, or None. The same domain rules as web links; stdlib only, so that
    `build` and `check` do not load email_validator (~30 ms) for the few mailto: links of an edition."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return "it needs a name, an @ and a domain, e.g. info@vzhg.nl"
    if len(local) > 64 or not _LOCAL_RE.match(local) or ".." in local or local.startswith(".") or local.endswith("."):
        return f"'{local}' before the @ is not a mailbox name"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels) or not _TLD_RE.match(labels[-1]):
        return f"'{domain}' after the @ is not a domain name"
    return None


# Words that say nothing about where a link goes. A link text made only of these, with one of the
# pointing words among them ("Dat kan hier", "U kunt het hier lezen"), is as vague as "klik hier".
_FILLER_WORDS = {
    "dat", "dit", "het", "kan", "kunt", "u", "je", "jij", "hier", "daar", "via", "deze", "die", "op", "om", "te",
    "klik", "klikken", "link", "meer", "lees", "lezen", "verder", "zie", "bekijk", "bekijken", "kijk", "ga", "naar",
    "er", "de", "een", "pagina", "info", "informatie", "vindt", "vind", "vinden", "staat", "alles", "over",
    "it", "that", "this", "you", "can", "here", "there", "click", "read", "more", "see", "go", "to", "the", "a",
    "page", "find", "it's", "is", "on", "about",
}
_POINTING_WORDS = {"hier", "daar", "link", "klik", "meer", "here", "there", "click", "more"}


def is_vague(label: str) -> bool:
    text = label.lower().strip(_TRIM)
    if text in VAGUE_LINK_TEXTS:
        return True
    words = [w.strip(_TRIM) for w in text.split()]
    return bool(words) and all(w in _FILLER_WORDS for w in words) and any(w in _POINTING_WORDS for w in words)


def check_links(ctx: Context, found: list[Link]) -> list[Diagnostic]:
    """Safelinks, http://, malformed addresses, vague link texts, duplicate buttons."""
    results = [replace(d, severity="error", message="an Outlook safelink is still in the edition; it expires "
                       "and sends every reader's click through Microsoft") for d in ctx.build.loaded.safelinks]
    for link in found:
        what = "button" if link.kind == "button" else ("linked image" if link.kind == "image link" else
                                                          f"link '{link.label}'" if link.label else "a link")
        problem = url_problem(link.url)
        if problem:
            fix = ("check the e-mail address" if link.url.lower().startswith("mailto:") else
                   "correct the address; copy it from the browser's address bar")
            results.append(ctx.at("error", link.path, f"{what} {problem}: {link.url}", fix, "link-malformed",
                                  link.offset))
        elif link.url.lower().startswith("http://"):
            secure = "https://" + link.url[len("http://"):]
            results.append(ctx.at("warning", link.path, f"{what} uses an insecure address: {link.url}",
                                  f"use {secure} if the site supports it", "link-http", link.offset))
        if link.label and link.kind != "image link" and is_vague(link.label):
            kind = "button" if link.kind == "button" else "link"
            results.append(ctx.at("warning", link.path,
                                  f"the {kind} text '{link.label}' does not say where the link goes "
                                  "(screen-reader users hear the links out of context, WCAG 2.4.4)",
                                  "use words that name the destination, e.g. 'Meld u aan voor het congres'",
                                  "link-text", link.offset))
    results += _duplicate_buttons(ctx)
    results += _theme_links(ctx)
    return results


def _duplicate_buttons(ctx: Context) -> list[Diagnostic]:
    results = []
    for s, section in enumerate(ctx.build.loaded.edition.sections):
        for i, item in enumerate(section.items):
            base = ("sections", s, "items", i)
            buttons = ([((*base, "button", "url"), item.button.url)] if item.button else []) + [
                ((*base, "buttons", k, "url"), b.url) for k, b in enumerate(item.buttons)]
            seen: set[str] = set()
            for path, url in buttons:
                if url in seen:
                    results.append(ctx.at("warning", path, f"two buttons go to the same address {url}",
                                          "keep one button, or point the second one elsewhere", "button-duplicate"))
                seen.add(url)
    return results


def _theme_links(ctx: Context) -> list[Diagnostic]:
    website = ctx.theme.website
    if safelinks.is_safelink(website):
        target = safelinks.unwrap_safelink(website) or website
        return [ctx.for_theme("error", "website", "the website address is an Outlook safelink",
                              f"replace it by {target}", "safelink")]
    problem = url_problem(website)
    if problem:
        return [ctx.for_theme("error", "website", f"the website address {problem}: {website}", "", "link-malformed")]
    return []


def check_images(ctx: Context, images: list[ImageRef]) -> list[Diagnostic]:
    """Alt texts, missing or heavy local files, width, https."""
    results: list[Diagnostic] = []
    edition = ctx.build.loaded.edition
    for image in images:
        field = image.path if image.in_text else (*image.path, "src")
        name = f"image '{image.src}'" + (" inside the text" if image.in_text else "")
        if image.alt and not image.alt.strip():
            results.append(ctx.at("warning", (*image.path, "alt") if not image.in_text else field,
                                  f"{name}: the alt text is only spaces",
                                  "describe what the image shows, or write alt: \"\" if it is only decoration",
                                  "image-alt", image.offset))
        elif image.alt.strip() and _FILE_NAME_RE.search(image.alt.strip()):
            results.append(ctx.at("warning", (*image.path, "alt") if not image.in_text else field,
                                  f"{name}: the alt text '{image.alt}' looks like a file name",
                                  "describe what the image shows", "image-alt", image.offset))
        elif image.in_text and not image.alt.strip():
            results.append(ctx.at("warning", field, f"{name} has no alt text; screen readers skip it or read "
                                  "the file name", "write ![what the image shows](address)", "image-alt", image.offset))
        if not image.in_text:
            item = edition.sections[int(image.path[1])].items[int(image.path[3])]
            if item.image and item.image.link and not image.alt.strip():
                results.append(ctx.at("warning", (*image.path, "alt"), f"{name} is a link but has an empty alt "
                                      "text, so screen readers cannot say where it goes",
                                      "write in alt: where the link goes", "image-alt"))
        lower = image.src.lower()
        if lower.startswith("http://"):
            results.append(ctx.at("warning", field, f"{name} is loaded over http://; some mail programs block "
                                  "images that are not on https://", "use an https:// address", "image-http",
                                  image.offset))
        elif not lower.startswith("https://"):
            results += _local_image(ctx, image, field, name)
        if image.in_text:
            results.append(ctx.at("warning", field, f"{name} has no width; Outlook shows it at its full size",
                                  "use the item's image: field with a width instead", "image-width", image.offset))
        elif image.width is None and not _fills_the_width(ctx, image):
            results.append(ctx.at("warning", field, f"{name} has no width; mail programs stretch it to the full "
                                  "width of the email", "add width: (in pixels, at most 600) under image:",
                                  "image-width"))
    if ctx.theme.logo and not is_web_address(ctx.theme.logo):
        logo = ctx.build.rendered.image_files.get(ctx.theme.logo, ctx.root / ctx.theme.logo)  # as sent
        if not logo.is_file():
            results.append(ctx.for_theme("error", "logo", f"the logo file '{ctx.theme.logo}' does not exist",
                                         "put the file there or fix the name in theme.yaml", "image-missing"))
        elif logo.stat().st_size > IMAGE_MAX_BYTES:
            results.append(ctx.for_theme("warning", "logo", f"the logo is {logo.stat().st_size / 1000:.0f} KB",
                                         "save a smaller version (a logo needs a few KB)", "image-heavy"))
    elif ctx.theme.logo and ctx.theme.logo.lower().startswith("http://"):
        results.append(ctx.for_theme("warning", "logo", "the logo is loaded over http://",
                                     "use an https:// address", "image-http"))
    return results + _unembedded_images(ctx)


def _unembedded_images(ctx: Context) -> list[Diagnostic]:
    """Every local image in the HTML must be one the sender embeds (found by the same key as its cid: swap);
    one it misses is a broken image in every inbox."""
    from newsletter_cli.compose.render import IMG_SRC_RE, image_key

    embedded = {image_key(src) for src in ctx.build.rendered.image_files}
    results = []
    for match in IMG_SRC_RE.finditer(ctx.build.rendered.html):
        src = match.group(3)
        if is_web_address(src) or src.lower().startswith(("cid:", "data:")) or image_key(src) in embedded:
            continue
        results.append(ctx.at("error", (), f"the image '{image_key(src)}' is not embedded in the email: readers "
                              "would see a broken image", "use the item's image: field for local files, or an "
                              "https:// address", "image-not-embedded"))
    return results


def _fills_the_width(ctx: Context, image: ImageRef) -> bool:
    """A local item image without a width is shown at the email's full content width: right (and no reason to
    warn) when the file as sent is at least that wide, as every photo the build made fit is."""
    from PIL import Image, UnidentifiedImageError

    from newsletter_cli.compose.images import CONTENT_WIDTH

    if is_web_address(image.src):
        return False
    sent = ctx.build.rendered.image_files.get(Path(image.src).as_posix(), ctx.build.loaded.folder / image.src)
    try:
        with Image.open(sent) as opened:  # reads the header only
            return opened.width >= CONTENT_WIDTH
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return False


def _local_image(ctx: Context, image: ImageRef, field: YamlPath, name: str) -> list[Diagnostic]:
    path = ctx.build.loaded.folder / image.src
    if image.in_text:
        return [ctx.at("error", field, f"{name} is a file on this computer; it will not travel with the email",
                       "use the item's image: field for local files, or an https:// address", "image-local",
                       image.offset)]
    if not path.is_file():
        return [ctx.at("error", field, f"{name} does not exist", "put the file in the edition folder",
                       "image-missing")]
    sent = ctx.build.rendered.image_files.get(Path(image.src).as_posix(), path)  # made smaller by the build
    size = sent.stat().st_size
    if size > IMAGE_MAX_BYTES:
        return [ctx.at("warning", field, f"{name} is {size / 1000:.0f} KB; images over "
                       f"{IMAGE_MAX_BYTES // 1000} KB make the email slow to open on a phone",
                       "save it smaller: 1200 pixels wide and JPEG quality 80 is plenty", "image-heavy")]
    return []


def local_image_files(ctx: Context) -> list[Path]:
    """The local files that travel with the email (item images and the logo), each once."""
    return [path for path in ctx.build.rendered.image_files.values() if path.is_file()]

