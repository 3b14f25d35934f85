"""Local photos made fit to send: a phone photo of 9 MB becomes ~200 KB, turned upright, without its EXIF data.

A local JPEG or PNG wider than twice the width it is shown at (sharp on high-density screens, no more) is
scaled down and recompressed (JPEG quality 80, progressive, lower down to 60 while over `check`'s 200 KB).
A PNG photo (many colours, no transparency) may become a JPEG; a drawing (few colours, or transparency) stays
a PNG, optimised (a palette when it has at most 256 colours). A photo never grows: when the result is not
smaller, the original is sent (unless it carries metadata to remove). Its EXIF orientation is applied and
all metadata (EXIF with the GPS position, XMP, comments) is left out. The original file is never changed: the
result is cached in the build folder (editions/<id>/build/resized/), keyed by the original's content and the width, and
`Rendered.image_files` (the one record of local images that the message, the preview, the archive and `check`
share) is pointed at it. Other images (GIF, SVG, web addresses, files Pillow cannot read) are sent as they are.

The theme's logo, when it is transparent and has light pixels (a white logo made for the house-coloured
masthead), is put on an opaque plate in the house colour: mail apps that invert a message's colours but not
its images (Gmail on iPhone, Outlook's dark modes) turn the masthead light, and a white logo on a transparent
background would vanish there. In every other view the plate is the masthead's own colour and does not show.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter_cli.compose.model import LoadedEdition, Theme, is_web_address
from newsletter_cli.compose.render import Rendered
from newsletter_cli.errors import InputError
from newsletter_cli.project import display

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

BODY_WIDTH = 600  # <mj-body width="600px"> in email.mjml.j2
ITEM_PADDING = 28  # each side of an item's <mj-image> (partials/item.mjml.j2)
CONTENT_WIDTH = BODY_WIDTH - 2 * ITEM_PADDING  # an item image without a width: is shown at most this wide
DENSITY = 2  # pixels per CSS pixel: sharp on phones and high-density screens
CACHE_DIR = "resized"  # inside the build folder
JPEG_QUALITY = 80
LOWEST_QUALITY = 60  # a JPEG over the budget at quality 80 is saved again at 75, 70, ... down to this
IMAGE_MAX_BYTES = 200_000  # what `check` calls heavy: over this an email is slow to open on a phone
MAX_PIXELS = 60_000_000  # a 60-megapixel image needs ~250 MB per copy; beyond that the file is refused
DRAWING_COLOURS = 256  # a PNG with at most this many colours is a drawing: it stays a PNG
LIGHT = 160  # a grey level (0-255) from which a logo's pixel counts as light
_VERSION = b"images-3"  # part of the cache key: change it when the processing changes
KEEP = "keep-original"  # in a cache folder: the original was the smallest, it is sent as it is
_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}  # MPO: the multi-picture JPEG some phones write
# what an image's info may carry that is not about the photographer, the camera or the place
_HARMLESS_INFO = {"dpi", "jfif", "jfif_version", "jfif_unit", "jfif_density", "icc_profile", "progressive",
                  "progression", "adobe", "adobe_transform", "gamma", "srgb", "transparency", "aspect",
                  "interlace", "mp", "mpoffset", "mpentry"}


@dataclass(frozen=True)
class Fitted:
    """One local image as it will be sent, for `build` to report."""

    source: Path
    sent: Path
    before: int  # bytes
    after: int
    width: int  # pixels, as sent
    resized: bool
    stripped: bool  # the original had metadata (EXIF, GPS, XMP, comments)
    cached: bool  # made by an earlier build
    plated: bool = False  # a light transparent logo put on a plate in the house colour

    def __str__(self) -> str:
        what = ", ".join(([f"{self.width} px wide"] if self.resized else [])
                         + (["as JPEG"] if self.sent.suffix.lower() != self.source.suffix.lower() else [])
                         + (["camera data removed"] if self.stripped else [])
                         + (["on a plate in the house colour, for inverted dark modes"] if self.plated else []))
        return f"{self.source.name}: {size_text(self.before)} -> {size_text(self.after)} ({what})"


def size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


def display_widths(loaded: LoadedEdition, theme: Theme) -> dict[str, int]:
    """The widest each local image is shown at, in CSS pixels, by the key `Rendered.image_files` uses."""
    widths: dict[str, int] = {}
    for section in loaded.edition.sections:
        for item in section.items:
            if item.image and not is_web_address(item.image.src):
                key = Path(item.image.src).as_posix()  # "./images/a.jpg" is "images/a.jpg", as render writes it
                shown = min(item.image.width or CONTENT_WIDTH, CONTENT_WIDTH)
                widths[key] = max(widths.get(key, 0), shown)
    for logo in (theme.logo, theme.logo and theme.logo_dark):  # the dark-mode logo is shown at the same width
        if logo and not is_web_address(logo):
            widths[logo] = max(widths.get(logo, 0), theme.logo_width)
    return widths


def fit_images(loaded: LoadedEdition, theme: Theme, rendered: Rendered, build_dir: Path,
               reuse: Path | None = None) -> list[Fitted]:
    """Point `rendered.image_files` at versions fit to send (made in `build_dir`, or taken from its cache or from
    the cache of the build folder `reuse`, which is only read); what changed."""
    fitted = []
    for src, width in display_widths(loaded, theme).items():
        source = rendered.image_files.get(src)
        if source is None or not source.is_file():
            continue  # a missing file is reported by load and check
        plate = theme.primary if src == theme.logo else None  # the logo_dark is only shown on the masthead colour
        result = fit(source, DENSITY * width, build_dir / CACHE_DIR, reuse / CACHE_DIR if reuse else None, plate)
        if result is not None:
            rendered.image_files[src] = result.sent
            fitted.append(result)
    return fitted


def light_and_transparent(image: PillowImage) -> bool:
    """Whether an image has (partly) transparent pixels and light visible ones: a logo made for a dark
    background, which disappears where a mail app turns that background light."""
    if "A" not in image.getbands() and "transparency" not in image.info:
        return False
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return False
    shown = alpha.point(lambda a: 255 if a >= 128 else 0)
    light = rgba.convert("L").point(lambda v: 255 if v >= LIGHT else 0)
    from PIL import ImageChops

    return ImageChops.multiply(shown, light).getbbox() is not None


def fit(source: Path, max_width: int, cache: Path, reuse: Path | None = None,
        plate: str | None = None) -> Fitted | None:
    """`source` at most `max_width` pixels wide, upright and without metadata, and on an opaque background of
    colour `plate` when given and the image is light and transparent; None when it is fine as it is (or not
    a JPEG or PNG Pillow can read)."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = source.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        kind = _FORMATS.get(image.format or "")
        orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_large(source, None) from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None
    if image.width * image.height > MAX_PIXELS:
        raise too_large(source, (image.width, image.height))
    if kind is None or (kind == "PNG" and getattr(image, "is_animated", False)):  # an animated PNG stays animated
        return None
    upright_width = image.height if orientation in (5, 6, 7, 8) else image.width
    metadata = orientation != 1 or bool(set(image.info) - _HARMLESS_INFO) or bool(image.getexif())
    try:
        plate = plate if plate and kind == "PNG" and light_and_transparent(image) else None
    except (OSError, ValueError, Image.DecompressionBombError):
        plate = None
    if upright_width <= max_width and not metadata and not plate:
        return None
    key = hashlib.sha256(_VERSION + b"\0" + str(max_width).encode() + b"\0" + (plate or "").encode() + b"\0"
                         + data).hexdigest()[:24]
    names = (source.name, f"{source.stem}.jpg")  # a PNG photo may be sent as a JPEG
    for folder in (cache / key, reuse / key) if reuse else (cache / key,):
        for made in (folder / name for name in names):
            if made.is_file():
                with Image.open(made) as done:
                    sent_width = done.width
                return Fitted(source, made, len(data), made.stat().st_size, sent_width, upright_width > max_width,
                              metadata, True, bool(plate))
        if (folder / KEEP).is_file():
            return None  # an earlier build found the original smallest
    try:
        encoded, sent_width, kind = _encode(image, kind, max_width, plate)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # a damaged file is sent as it is: the reader's mail program shows what it can
    if len(encoded) >= len(data) and not metadata and not plate:  # never bigger: the original is sent as it is
        _write(cache / key / KEEP, b"")
        return None
    target = cache / key / (source.name if kind == _FORMATS.get(image.format or "") else names[1])
    _write(target, encoded)
    return Fitted(source, target, len(data), len(encoded), sent_width, upright_width > max_width, metadata, False,
                  bool(plate))


def too_large(source: Path, size: tuple[int, int] | None) -> InputError:
    """An image with so many pixels that opening it would take gigabytes (a scan, a poster, a bomb)."""
    what = f"{size[0]:,} x {size[1]:,} pixels" if size else "too many pixels"
    return InputError(f"{display(source)}: the image is {what}, too large to send or to process (over "
                      f"{MAX_PIXELS // 1_000_000} megapixels). Open it in an image program (Paint, Photos, Preview) "
                      "and save it at most 2400 pixels wide, then build again.")


def _is_drawing(image: PillowImage) -> bool:
    """Transparency or few colours: a logo, a chart, a screenshot; JPEG would blur its edges or lose its alpha."""
    if "transparency" in image.info:
        return True
    if image.mode in ("RGBA", "LA", "PA") and image.getchannel("A").getextrema() != (255, 255):
        return True  # an alpha channel that is used (a screenshot saved with one that is all opaque is not)
    return image.convert("RGB").getcolors(DRAWING_COLOURS) is not None


def _encode(image: PillowImage, kind: str, max_width: int, plate: str | None = None) -> tuple[bytes, int, str]:
    """The image upright, scaled to `max_width` when wider, on an opaque `plate` colour when given, encoded
    without metadata (the colour profile kept): (bytes, width, format). A PNG photo becomes a JPEG when that is
    smaller; a plated logo stays a PNG (a drawing)."""
    from PIL import Image, ImageOps

    if kind == "JPEG":
        image.draft("RGB", (max_width, max_width))  # let the JPEG decoder skip detail that is scaled away anyway
    image = ImageOps.exif_transpose(image)
    if image.width > max_width:
        height = max(1, round(image.height * max_width / image.width))
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    icc = image.info.get("icc_profile")
    if plate:
        flat = Image.new("RGBA", image.size, plate)
        flat.alpha_composite(image.convert("RGBA"))
        image = flat.convert("RGB")
    image.info = {}  # nothing of the original's EXIF, GPS, XMP or comments is written
    extra = {"icc_profile": icc} if icc else {}
    if kind == "PNG":
        drawing = bool(plate) or _is_drawing(image)
        if drawing and image.mode == "RGB" and image.getcolors(DRAWING_COLOURS) is not None:
            image = image.quantize(DRAWING_COLOURS)  # lossless: it has no more colours than the palette holds
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True, **extra)
        png = out.getvalue()
        if drawing:
            return png, image.width, "PNG"
        jpeg = _jpeg(image, extra)
        return (jpeg, image.width, "JPEG") if len(jpeg) < len(png) else (png, image.width, "PNG")
    return _jpeg(image, extra), image.width, "JPEG"


def _jpeg(image: PillowImage, extra: dict[str, bytes]) -> bytes:
    """JPEG quality 80, lower (down to 60) while over IMAGE_MAX_BYTES."""
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    for quality in range(JPEG_QUALITY, LOWEST_QUALITY - 1, -5):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, progressive=True, optimize=True, **extra)
        if out.tell() <= IMAGE_MAX_BYTES:
            break
    return out.getvalue()


def _write(target: Path, data: bytes) -> None:
    """Atomically: a preview and a build making the same file at once both end with a whole one."""
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if not target.is_file():
            raise InputError(f"Cannot write the resized image {display(target)}: {exc.strerror or exc}") from None
