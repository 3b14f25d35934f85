"""Phone photos (issue 13): an 8-9 MB photo with EXIF orientation 6 and a GPS position is sent under 300 KB,
upright, without EXIF, the original untouched, with no size warning from `check`, and the result cached."""

from __future__ import annotations

import hashlib
import io
import json
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import test_corpus_recipients
from click.testing import CliRunner
from PIL import ExifTags, Image, ImageChops

from newsletter_cli.check.content import run_checks
from newsletter_cli.cli import cli
from newsletter_cli.compose.build import build
from newsletter_cli.compose.images import CACHE_DIR, CONTENT_WIDTH, DENSITY
from newsletter_cli.project import Project

from smtp_server import SmtpServer

server = test_corpus_recipients.server  # the fixture: a real SMTP server, and a .env in the project pointing at it
EDITION = Path("editions") / "2025-09"
SIZE_CODES = {"image-heavy", "message-size", "size"}


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What a phone writes: 4000 x 3000 stored sideways (orientation 6: turn right to view), a GPS position."""
    path = tmp_path_factory.mktemp("photo") / "foto.jpg"
    w, h = 4000, 3000
    gradient = Image.linear_gradient("L")
    base = Image.merge("RGB", [gradient.resize((w, h)), gradient.rotate(90).resize((w, h)), Image.new("L", (w, h), 120)])
    noise = Image.effect_noise((w, h), 28)  # sensor noise: what makes a phone's JPEG big
    photo = ImageChops.add(base, Image.merge("RGB", [noise, noise, noise]), 1.0, -128)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "Telefoon"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 1.0, 30.0),
                ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (4.0, 42.0, 10.0)})
    photo.save(path, "JPEG", quality=95, exif=exif)
    data = path.read_bytes()
    assert 8_000_000 <= len(data) <= 9_500_000
    return data


def with_image(project: Path, name: str, data: bytes, width: int | None = 600) -> Path:
    """The example edition with `name` as the first item's image."""
    (project / EDITION / "images").mkdir(exist_ok=True)
    path = project / EDITION / "images" / name
    path.write_bytes(data)
    yaml = project / EDITION / "edition.yaml"
    text = yaml.read_text(encoding="utf-8")
    first = '      - title: "Najaarscongres 21 november"\n'
    assert first in text
    size = f", width: {width}" if width else ""
    yaml.write_text(text.replace(first, first + f'        image: {{src: images/{name}, alt: "De congreszaal"{size}}}\n', 1),
                    encoding="utf-8")
    return path


def image_parts(data: bytes) -> list[bytes]:
    message = message_from_bytes(data, policy=policy.default)
    return [part.get_content() for part in message.walk() if part.get_content_maintype() == "image"]


def test_phone_photo_is_sent_small_upright_and_without_exif(project: Path, server: SmtpServer,
                                                           phone_photo: bytes) -> None:
    original = with_image(project, "foto.jpg", phone_photo)
    digest = hashlib.sha256(phone_photo).hexdigest()
    runner = CliRunner()
    built = runner.invoke(cli, ["build", "2025-09"])
    assert built.exit_code == 0, built.output
    line = next(line.strip() for line in built.output.splitlines() if line.strip().startswith("foto.jpg: "))
    assert line.startswith(f"foto.jpg: {len(phone_photo) / 1e6:.1f} MB -> ") and " KB (1088 px wide, " in line

    (project / "leden.csv").write_text("email\nanna@example.org\n", encoding="utf-8")
    sent = runner.invoke(cli, ["send", "2025-09", "--recipients", "leden.csv", "--yes"])
    assert sent.exit_code == 0, sent.output
    [received] = server.received
    [jpeg] = image_parts(received.data)
    assert len(jpeg) < 300_000
    assert len(received.data) < 500_000  # the whole message, base64 and all
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    assert (image.width, image.height) == (DENSITY * CONTENT_WIDTH, round(4000 * DENSITY * CONTENT_WIDTH / 3000))
    assert not image.getexif() and "exif" not in image.info  # no orientation left to apply, no GPS, no camera
    assert b"Telefoon" not in jpeg and b"Exif" not in jpeg
    assert hashlib.sha256(original.read_bytes()).hexdigest() == digest  # the original is untouched

    findings = run_checks(build(project / EDITION / "edition.yaml", project=Project(project)), project=Project(project))
    assert [f for f in findings if f.code in SIZE_CODES] == []


def test_check_measures_the_photo_as_sent_and_writes_nothing(project: Path, phone_photo: bytes) -> None:
    with_image(project, "foto.jpg", phone_photo)
    checked = CliRunner().invoke(cli, ["check", "2025-09", "--json"])
    assert checked.exit_code == 0, checked.output
    codes = [finding["code"] for finding in json.loads(checked.output)["findings"]]
    assert not SIZE_CODES & set(codes)
    assert not (project / EDITION / "build").exists()


def test_second_build_reuses_the_cache(project: Path, phone_photo: bytes) -> None:
    with_image(project, "foto.jpg", phone_photo)
    first = build(project / EDITION / "edition.yaml", project=Project(project))
    [made] = first.images
    assert not made.cached and made.sent.is_relative_to(project / EDITION / "build" / CACHE_DIR)
    assert first.rendered.image_files["images/foto.jpg"] == made.sent
    stamp = made.sent.stat().st_mtime_ns
    second = build(project / EDITION / "edition.yaml", project=Project(project))
    [again] = second.images
    assert again.cached and again.sent == made.sent and again.after == made.after
    assert made.sent.stat().st_mtime_ns == stamp
    assert str(again) == str(made)


def test_archive_publishes_the_smaller_photo(project: Path, phone_photo: bytes) -> None:
    with_image(project, "foto.jpg", phone_photo)
    result = CliRunner().invoke(cli, ["archive", "--out", "site", "--all"])
    assert result.exit_code == 0, result.output
    published = project / "site" / "2025-09" / "images" / "foto.jpg"
    assert published.stat().st_size < 300_000
    assert Image.open(published).width == DENSITY * CONTENT_WIDTH


def test_a_small_clean_image_is_sent_as_it_is(project: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (30, 90, 160)).save(out, "PNG")
    path = with_image(project, "klein.png", out.getvalue(), width=None)
    result = build(project / EDITION / "edition.yaml", project=Project(project))
    assert result.images == []
    assert result.rendered.image_files["images/klein.png"] == path


def test_a_small_photo_with_a_gps_position_loses_it(project: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({ExifTags.GPS.GPSLatitudeRef: "N",
                                               ExifTags.GPS.GPSLatitude: (52.0, 1.0, 30.0)})
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 120, 40)).save(out, "JPEG", exif=exif)
    with_image(project, "klein.jpg", out.getvalue(), width=300)
    [made] = build(project / EDITION / "edition.yaml", project=Project(project)).images
    assert not made.resized and str(made).endswith("(camera data removed)")
    sent = Image.open(made.sent)
    assert sent.size == (300, 200) and not sent.getexif()


def test_a_big_png_logo_is_scaled_to_twice_its_width(project: Path) -> None:
    Image.new("RGBA", (2000, 500), (0, 80, 160, 255)).save(project / "logo.png", "PNG")
    Image.new("RGBA", (2000, 500), (255, 255, 255, 255)).save(project / "logo-dark.png", "PNG")
    (project / "theme.yaml").write_text("logo: logo.png\nlogo_dark: logo-dark.png\nlogo_width: 160\n",
                                        encoding="utf-8")
    made, dark = build(project / EDITION / "edition.yaml", project=Project(project)).images
    assert dark.source.name == "logo-dark.png" and Image.open(dark.sent).size == (320, 80)
    assert str(made).endswith(" (320 px wide)")  # a drawing has no camera data to remove
    logo = Image.open(made.sent)
    assert logo.format == "PNG" and logo.size == (320, 80) and logo.mode == "RGBA"
    assert Image.open(project / "logo.png").size == (2000, 500)


def test_a_gif_is_left_alone(project: Path) -> None:
    out = io.BytesIO()
    Image.new("P", (1600, 10)).save(out, "GIF")  # wide, but a GIF may be animated: sent as it is
    path = with_image(project, "anim.gif", out.getvalue())
    result = build(project / EDITION / "edition.yaml", project=Project(project))
    assert result.images == [] and result.rendered.image_files["images/anim.gif"] == path


def test_preview_shows_the_smaller_photo(project: Path, phone_photo: bytes) -> None:
    from newsletter_cli.web.preview import PreviewServer

    from test_preview_support import get

    edition = with_image(project, "foto.jpg", phone_photo).parent.parent / "edition.yaml"
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as running:
        status, body, kind = get(running, "/images/foto.jpg")
    assert status == 200 and kind == "image/jpeg"
    assert len(body) < 300_000 and Image.open(io.BytesIO(body)).width == DENSITY * CONTENT_WIDTH
    assert not (project / EDITION / "build").exists()  # the preview's cache is its own temporary folder


def test_a_damaged_photo_is_sent_as_it_is(project: Path) -> None:
    out = io.BytesIO()
    Image.effect_noise((2400, 1600), 40).convert("RGB").save(out, "JPEG")
    damaged = out.getvalue()[: out.tell() // 2]  # cut off half-way, as an interrupted copy leaves it
    path = with_image(project, "kapot.jpg", damaged)
    result = build(project / EDITION / "edition.yaml", project=Project(project))
    assert result.images == [] and result.rendered.image_files["images/kapot.jpg"] == path
    assert path.read_bytes() == damaged


def noisy_photo_png(w: int = 2000, h: int = 1400) -> bytes:
    """A photo saved as PNG (a screenshot of a photo, an export): smooth gradients under sensor noise."""
    gradient = Image.linear_gradient("L")
    base = Image.merge("RGB", [gradient.resize((w, h)), gradient.rotate(90).resize((w, h)), Image.new("L", (w, h), 90)])
    noise = Image.effect_noise((w, h), 12)
    photo = ImageChops.add(base, Image.merge("RGB", [noise, noise, noise]), 1.0, -128)
    out = io.BytesIO()
    photo.save(out, "PNG")
    return out.getvalue()


def flat_drawing_png(w: int = 2000, h: int = 1000) -> bytes:
    """A chart or a logo: a few flat colours, hard edges."""
    from PIL import ImageDraw

    drawing = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(drawing)
    for n, colour in enumerate([(0, 80, 160), (230, 120, 0), (40, 160, 60), (200, 30, 40)]):
        draw.rectangle((100 + n * 450, h - 200 - n * 180, 400 + n * 450, h - 100), fill=colour)
    out = io.BytesIO()
    drawing.save(out, "PNG", optimize=True)
    return out.getvalue()


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_a_png_photo_is_sent_as_a_smaller_jpeg_and_check_does_not_warn(project: Path) -> None:
    """Issue 20: a 129 KB PNG became 323 KB, and then `check` asked to shrink it; no width: no false warning."""
    original = noisy_photo_png()
    with_image(project, "foto.png", original, width=None)
    [made] = build(project / EDITION / "edition.yaml", project=Project(project)).images
    sent = Image.open(made.sent)
    assert sent.format == "JPEG" and made.sent.suffix == ".jpg" and sent.width == DENSITY * CONTENT_WIDTH
    assert made.after < made.before == len(original) and "as JPEG" in str(made)
    checked = CliRunner().invoke(cli, ["check", "2025-09", "--json"])
    codes = [finding["code"] for finding in json.loads(checked.output)["findings"]]
    assert "image-width" not in codes and not SIZE_CODES & set(codes), checked.output


def test_a_drawing_stays_a_png_and_never_grows(project: Path, server: SmtpServer) -> None:
    original = flat_drawing_png()
    with_image(project, "grafiek.png", original, width=None)
    result = build(project / EDITION / "edition.yaml", project=Project(project))
    for made in result.images:
        assert Image.open(made.sent).format == "PNG" and made.after <= made.before
    sent = result.rendered.image_files["images/grafiek.png"]
    assert Image.open(sent).format == "PNG" and sent.stat().st_size <= len(original)


def test_a_result_that_is_not_smaller_keeps_the_original(project: Path) -> None:
    """A small, tightly compressed two-colour PNG wider than needed: scaling adds grey edges, so the original
    (already the smallest) is sent as it is, and the next build knows it from the cache."""
    stripes = Image.new("1", (1600, 40))
    for x in range(0, 1600, 2):
        stripes.paste(1, (x, 0, x + 1, 40))
    out = io.BytesIO()
    stripes.save(out, "PNG", optimize=True)
    path = with_image(project, "strepen.png", out.getvalue(), width=None)
    for _ in range(2):
        result = build(project / EDITION / "edition.yaml", project=Project(project))
        assert result.images == [] and result.rendered.image_files["images/strepen.png"] == path


@pytest.mark.slow  # ~3 s on 2 busy cores (issue 22: make test-fast skips it)
def test_an_image_with_too_many_pixels_is_a_clear_message(project: Path) -> None:
    """Issue 20: a 580 KB PNG took 1.8 GB during build, with a raw Pillow warning. A flat 10,000 x 7,000 PNG
    (70 megapixels, a few hundred KB) is refused before it is decoded, naming the file and what to do."""
    out = io.BytesIO()
    Image.new("L", (10_000, 7_000), 200).save(out, "PNG")
    assert len(out.getvalue()) < 1_000_000
    with_image(project, "poster.png", out.getvalue())
    for command in (["build", "2025-09"], ["check", "2025-09"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "poster.png: the image is 10,000 x 7,000 pixels, too large" in result.output
        assert "save it at most 2400 pixels wide" in result.output and "DecompressionBomb" not in result.output
