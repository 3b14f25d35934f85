"""Checks on the built HTML: language, heading order, colour contrast, and what a reader sees."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import ClassVar

from newsletter_cli.check.base import Context
from newsletter_cli.compose.model import MUTED, WHITE
from newsletter_cli.errors import Diagnostic, Severity

AA_BODY = 4.5  # WCAG 2.1 AA, normal text
AA_LARGE = 3.0  # below this even large text is hard to read


@dataclass
class HtmlFacts:
    """What the built HTML contains, as a reader (or a screen reader) meets it."""

    lang: str | None = None
    headings: list[tuple[int, str]] = field(default_factory=list)
    anchors: list[tuple[str, str]] = field(default_factory=list)  # (href, text)
    images: int = 0
    words: list[str] = field(default_factory=list)


INVISIBLE = "\u034f\u200b\u200c\u200d\u2060\ufeff\u00ad"


class _FactsParser(HTMLParser):
    SKIP: ClassVar[set[str]] = {"head", "style", "script", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = HtmlFacts()
        self._skip = 0
        self._heading: tuple[int, list[str]] | None = None
        self._anchor: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "html" and self.facts.lang is None:
            self.facts.lang = values.get("lang", "")
        if tag in self.SKIP:
            self._skip += 1
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._heading = (int(tag[1]), [])
        elif tag == "a":
            self._anchor = (values.get("href", ""), [])
        elif tag == "img":
            width = values.get("width", "")
            if not (width.isdigit() and int(width) <= 2):  # a tracking pixel is not content
                self.facts.images += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag.startswith("h") and tag[1:].isdigit() and self._heading:
            self.facts.headings.append((self._heading[0], " ".join("".join(self._heading[1]).split())))
            self._heading = None
        elif tag == "a" and self._anchor:
            self.facts.anchors.append((self._anchor[0], " ".join("".join(self._anchor[1]).split())))
            self._anchor = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        for open_element in (self._heading, self._anchor):
            if open_element:
                open_element[1].append(data)
        # the preheader's fillers (zero-width characters between no-break spaces) are not words
        self.facts.words += [word for word in data.split() if word.strip(INVISIBLE)]


def html_facts(source: str) -> HtmlFacts:
    parser = _FactsParser()
    parser.feed(source)
    parser.close()
    return parser.facts


def check_html(ctx: Context, facts: HtmlFacts) -> list[Diagnostic]:
    """`lang` on the page and headings in order (h1, h2, h3, without skipping a level)."""
    results: list[Diagnostic] = []
    locale = ctx.build.loaded.edition.locale
    if not facts.lang:
        results.append(ctx.at("error", ("locale",), "the HTML does not say its language (lang); screen readers "
                              "then read Dutch with an English voice", "the template's <mjml lang=...> is missing",
                              "html-lang"))
    elif facts.lang.split("-")[0].lower() != locale:
        results.append(ctx.at("warning", ("locale",), f"the HTML says its language is '{facts.lang}' but the "
                              f"edition's locale is '{locale}'", "", "html-lang"))
    for href, text in facts.anchors:
        target = href.strip().lower()
        if not target or target.startswith(("#", "javascript:")):
            line = ctx.find_line(href) if href.strip() else None
            results.append(ctx.at_line("error", line, f"the link '{text}' in the email goes nowhere (href=\"{href}\")",
                                       "give it a web or mail address", "link-empty"))
    previous = 0
    h1_seen = False
    for level, text in facts.headings:
        problem = ""
        if level == 1 and h1_seen:
            problem = "is a second main heading (h1); the email has one, at the top"
        elif level > previous + 1:
            expected = f"h{previous + 1}" if previous else "h1"
            problem = f"is a level-{level} heading (h{level}) where {expected} is expected; a level is skipped"
        h1_seen = h1_seen or level == 1
        previous = level
        if problem:
            line = ctx.find_line(html.unescape(text), markdown_heading=True) or ctx.find_line(text)
            results.append(ctx.at_line("warning", line, f"the heading '{text}' {problem}",
                                       "inside an item's text use #### for a sub-heading", "heading-order"))
    return results


def luminance(colour: str) -> float:
    """Relative luminance of '#rrggbb' (WCAG 2.1)."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """The WCAG contrast ratio, from 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def check_contrast(ctx: Context) -> list[Diagnostic]:
    """Theme colours against WCAG AA: 4.5:1 for normal text."""
    theme = ctx.theme
    pairs = [
        ("text", theme.text, WHITE, "the body text colour on the white background"),
        ("primary", WHITE, theme.primary, "white text on the primary colour (masthead and buttons)"),
        ("primary", theme.primary, WHITE, "links and headings in the primary colour on white"),
        ("background", MUTED, theme.background, "the grey footer text on the background colour"),
    ]
    results = []
    for key, foreground, background, what in pairs:
        ratio = contrast(foreground, background)
        if ratio < AA_BODY:
            severity: Severity = "error" if ratio < AA_LARGE else "warning"
            results.append(ctx.for_theme(severity, key, f"{what} has a contrast of {ratio:.1f}:1; WCAG AA asks "
                                         f"for at least {AA_BODY}:1, or it is hard to read for many people",
                                         f"choose a {'darker' if key != 'background' else 'lighter'} {key} colour",
                                         "contrast"))
    return results


def check_logo(ctx: Context) -> list[Diagnostic]:
    """A light logo on a transparent background vanishes where a mail app inverts the masthead's colour but
    not the images (the Gmail app on iPhone). The build puts a PNG on a plate in the house colour; any other
    format it cannot, so that one is reported. A logo on the web is not looked at (no network here)."""
    from newsletter_cli.compose.images import light_and_transparent
    from newsletter_cli.compose.model import is_web_address

    logo = ctx.theme.logo
    if not logo or is_web_address(logo) or ctx.root is None:
        return []
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(ctx.root / logo) as image:
            image.load()
            if image.format == "PNG" or not light_and_transparent(image):
                return []
            kind = image.format or "image"
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError):
        return []  # a missing or unreadable logo is reported by the build
    return [ctx.for_theme("warning", "logo", f"the logo ({kind}) is light on a transparent background: where a mail "
                          "app inverts the email's colours but not its images (the Gmail app on iPhone), the "
                          "masthead turns light and the logo disappears",
                          "save the logo as PNG (the build then puts it on a plate in the house colour) or give "
                          "it a background of its own", "logo")]
