"""The masthead in every dark mode, measured on pixels Chromium renders (issue 21): light, dark (the email's
own rules), forced dark (Chromium's auto dark mode, as Android apps apply it) and full inversion (colours
inverted, images not: the Gmail app on iPhone, emulated with the preview's own CSS).

A white logo on a transparent background is what associations have for a coloured masthead; the build puts
it on a plate in the house colour (compose/images.py), so it keeps its contrast where the masthead turns light.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_preview_browser

from newsletter_cli.compose import merge
from newsletter_cli.compose.build import Build, build, load_theme
from newsletter_cli.project import Project
from newsletter_cli.web.preview_http import INVERTED_CSS

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parent.parent
MODES = ("light", "dark", "forced-dark", "inverted")
FORCED_DARK = "--blink-settings=forceDarkModeEnabled=true"


@pytest.fixture(scope="module")
def browsers() -> Iterator[dict[str, object]]:
    """Chromium as the suite starts it, and a second one with its auto dark mode forced on."""
    from playwright.sync_api import sync_playwright

    if not Path(test_preview_browser.CHROMIUM).is_file():
        pytest.fail("Chromium is missing: run `make system-packages`")
    with sync_playwright() as playwright:
        launch = playwright.chromium.launch
        plain = launch(executable_path=test_preview_browser.CHROMIUM, args=test_preview_browser.CHROMIUM_ARGS)
        forced = launch(executable_path=test_preview_browser.CHROMIUM,
                        args=[*test_preview_browser.CHROMIUM_ARGS, FORCED_DARK])
        yield {"plain": plain, "forced": forced}
        plain.close()
        forced.close()


def white_logo() -> object:
    """A white word mark on a transparent background, 320 x 80 (shown at 160 CSS pixels)."""
    from PIL import Image, ImageDraw

    logo = Image.new("RGBA", (320, 80), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    for x in range(10, 300, 40):
        draw.rectangle((x, 12, x + 24, 68), fill=(255, 255, 255, 255))
    return logo


def project_with(tmp: Path, logo: object | None) -> Build:
    """The example edition with the repository's theme, plus `logo` as the theme's logo."""
    shutil.copytree(REPO / "editions" / "2025-09", tmp / "editions" / "2025-09",
                    ignore=shutil.ignore_patterns("build", "outbox", "journal*"))
    theme = (REPO / "theme.yaml").read_text(encoding="utf-8")
    if logo is not None:
        (tmp / "assets").mkdir()
        logo.save(tmp / "assets" / "logo.png")  # type: ignore[attr-defined]
        theme += "logo: assets/logo.png\n"
    (tmp / "theme.yaml").write_text(theme, encoding="utf-8")
    project = Project(tmp)
    return build(tmp / "editions" / "2025-09" / "edition.yaml", theme=load_theme(project), project=project)


def as_sent(built: Build, folder: Path, files: dict[str, Path] | None = None) -> Path:
    """The email as a reader gets it (fields at their defaults), each image pointing at the file that is sent."""
    html = merge.defaults(built.rendered.html, "html")
    for src, path in (files or built.rendered.image_files).items():
        html = html.replace(f'src="{src}"', f'src="{path.as_uri()}"')
    page = folder / "as-sent.html"
    page.write_text(html, encoding="utf-8")
    return page


def open_in(browsers: dict[str, object], page: Path, mode: str):
    browser = browsers["forced" if mode == "forced-dark" else "plain"]
    context = browser.new_context(viewport={"width": 680, "height": 900},  # type: ignore[attr-defined]
                                  color_scheme="dark" if mode == "dark" else "light")
    tab = context.new_page()
    tab.goto(page.as_uri(), wait_until="load")
    if mode == "inverted":
        tab.add_style_tag(content=INVERTED_CSS)
    return context, tab


def luminance(rgb: tuple[int, ...]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def median(pixels: list[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(sorted(p[i] for p in pixels)[len(pixels) // 2] for i in range(3))


def logo_contrast(tab, logo) -> float:
    """The rendered logo's ink against what shows behind it: the screenshot of the <img>, split by the
    original's own transparency (opaque: the logo; transparent: its background, a plate or the masthead)."""
    from PIL import Image

    box = tab.locator(".nl-masthead img").first.bounding_box()
    shot = Image.open(io.BytesIO(tab.screenshot(clip=box))).convert("RGB")
    alpha = logo.getchannel("A").resize(shot.size)
    ink, ground = [], []
    for y in range(shot.height):
        for x in range(shot.width):
            shown = alpha.getpixel((x, y))
            if shown > 230:
                ink.append(shot.getpixel((x, y)))
            elif shown < 20:
                ground.append(shot.getpixel((x, y)))
    assert len(ink) > 100 and len(ground) > 100
    return contrast(median(ink), median(ground))


def text_contrast(tab, selector: str) -> float:
    """A masthead text's colour against its background, as the rendered pixels show them."""
    from PIL import Image

    box = tab.locator(selector).first.bounding_box()
    shot = Image.open(io.BytesIO(tab.screenshot(clip=box))).convert("RGB")
    colours = sorted((shot.getpixel((x, y)) for y in range(shot.height) for x in range(shot.width)), key=luminance)
    return contrast(colours[len(colours) // 50], colours[-len(colours) // 50 - 1])  # darkest vs lightest 2 %


@pytest.fixture(scope="module")
def with_logo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Path]:
    folder = tmp_path_factory.mktemp("logo")
    built = project_with(folder, white_logo())
    return built, as_sent(built, folder)


@pytest.mark.parametrize("mode", MODES)
def test_a_white_transparent_logo_keeps_its_contrast_in_every_mode(browsers, with_logo, mode: str) -> None:
    built, page = with_logo
    assert [image.plated for image in built.images] == [True]  # the build put it on the house colour
    context, tab = open_in(browsers, page, mode)
    try:
        measured = logo_contrast(tab, white_logo())
    finally:
        context.close()
    print(f"logo contrast, {mode}: {measured:.2f}:1")
    assert measured >= 3.0, f"{mode}: {measured:.2f}:1"


def test_without_the_plate_the_inverted_masthead_swallows_the_logo(browsers, with_logo, tmp_path: Path) -> None:
    """The measurement can fail: the same email with the original transparent logo, fully inverted."""
    built, _ = with_logo
    original = {"assets/logo.png": built.images[0].source}
    context, tab = open_in(browsers, as_sent(built, tmp_path, original), "inverted")
    try:
        measured = logo_contrast(tab, white_logo())
    finally:
        context.close()
    print(f"logo contrast without the plate, inverted: {measured:.2f}:1")
    assert measured < 3.0, f"{measured:.2f}:1"


@pytest.mark.parametrize("mode", MODES)
def test_the_example_masthead_stays_readable_in_every_mode(browsers, tmp_path: Path, mode: str) -> None:
    """The shipped example (no logo): the association's name and the title on the masthead, >= 4.5:1."""
    page = as_sent(project_with(tmp_path, None), tmp_path)
    context, tab = open_in(browsers, page, mode)
    try:
        title = text_contrast(tab, ".nl-masthead h1")
    finally:
        context.close()
    print(f"masthead title contrast, {mode}: {title:.2f}:1")
    assert title >= 4.5, f"{mode}: {title:.2f}:1"
