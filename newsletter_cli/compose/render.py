"""Edition -> MJML (Jinja2) -> HTML (MRML) -> inlined HTML (premailer), plus the web page and plain text."""

from __future__ import annotations

import html as html_lib
import logging
import re
import sys
import time
import types
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from markupsafe import Markup

from newsletter_cli.compose import i18n, merge
from newsletter_cli.compose import markdown as markup
from newsletter_cli.compose import plaintext as plain
from newsletter_cli.compose.model import (
    TEMPLATE_COLOURS,
    Edition,
    LoadedEdition,
    Theme,
    is_web_address,
    iter_texts,
)
from newsletter_cli.compose.qp import qp_size
from newsletter_cli.compose.templating import (
    TEMPLATES,
    bytecode_cache,
    environment,
    mjml_problem,
    render_template,
)
from newsletter_cli.errors import Diagnostic, EditionError, InputError
from newsletter_cli.project import Project

__all__ = ["TEMPLATES", "bytecode_cache", "environment"]  # where new.py, web and the preview find them
GMAIL_CLIP_BYTES = 102_000
UNSUBSCRIBE_FIELD = "[[unsubscribe_url]]"
_IMG_RE = re.compile(r"<img\s", re.IGNORECASE)
IMG_SRC_RE = re.compile(r"""(<img\b[^>]*?\ssrc=)(["'])([^"']*)\2""", re.IGNORECASE)
_STYLE_RE = re.compile(r"<style([^>]*)>(.*?)</style>", re.DOTALL)
INLINE_MARKER = "nl-inline"


@dataclass
class Rendered:
    """Everything a build produces for one edition."""

    mjml: str
    html: str  # inlined, ready to send; may hold [[merge]] fields
    web_html: str  # standalone page ("view in browser"), no merge fields
    text: str  # plain-text part
    warnings: list[Diagnostic] = field(default_factory=list)
    items: int = 0
    links: int = 0
    images: int = 0
    html_bytes_qp: int = 0
    seconds: float = 0.0
    image_files: dict[str, Path] = field(default_factory=dict)  # src as written in the HTML -> local file (cid parts)


def _md(text: str, allow_html: bool) -> Markup:
    html = markup.to_html(text, allow_html).strip()
    html = html.replace("<table>", '<table class="nl-md">')
    return Markup(re.sub(r"<th(?=[\s>])", '<th scope="col"', html))  # a table's header row names its columns


# After the preheader: invisible characters that fill the inbox snippet up to PREHEADER_LENGTH visible
# characters, so it does not run on into the masthead's text ("Vereniging Zuid-Hollandse Gemeenten
# Nieuwsbrief VZHG ...") even in Outlook's three-line preview or Gmail on a wide screen. Each filler shows
# as one blank (the no-break space); the other two are zero-width and keep clients from collapsing them.
PREHEADER_LENGTH = 200
PREHEADER_FILLER = "&#847;&zwnj;&nbsp;"
MIN_PREHEADER_FILLERS = 20


def preheader_padding(preheader: str) -> Markup:
    """Fillers that make the preheader PREHEADER_LENGTH characters long as an inbox shows it."""
    return Markup(PREHEADER_FILLER * max(MIN_PREHEADER_FILLERS, PREHEADER_LENGTH - len(preheader)))


# Meta tags MRML does not write: iOS must not turn dates and addresses into links, Apple Mail must not
# rescale the layout, and mail clients may show the email's own dark colours.
HEAD_METAS = ('<meta name="x-apple-disable-message-reformatting">'
              '<meta name="format-detection" content="telephone=no, date=no, address=no, email=no, url=no">'
              '<meta name="color-scheme" content="light dark">'
              '<meta name="supported-color-schemes" content="light dark">')
DARK = {"page": "#121619", "card": "#1d2327", "text": "#e3e8ec", "muted": "#a9b4be", "line": "#3a444c"}


def _lighter(colour: str, share: float) -> str:
    """`colour` mixed with white: the house colour as headings and links on a dark background."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * share):02x}" for c in rgb)


def font_stack(fonts: str) -> Markup:
    """The theme's fonts as CSS writes them: a name with a space in single quotes ('Segoe UI'), which Outlook
    for Windows needs to find the font (it falls back to Times New Roman, not to the next font). Only
    letters, digits, spaces, '-' and '_' are kept: the stack stands in a style sheet."""
    names = [" ".join(re.sub(r"[^\w -]", "", name).split()) for name in fonts.split(",")]
    return Markup(", ".join(f"'{name}'" if " " in name else name for name in names if name))


def with_head_metas(html: str) -> str:
    return html.replace("<head>", "<head>\n" + HEAD_METAS, 1)


def context(edition: Edition, theme: Theme, *, web_url: str | None, unsubscribe_url: str | None,
            image_src: dict[str, str] | None = None) -> dict[str, Any]:
    """The data the templates see: the edition with Markdown rendered and dates in the edition's locale."""
    loc, allow = edition.locale, edition.allow_html
    image_src = image_src or {}
    t = i18n.strings(loc)
    md = {text.field: _md(text.text, allow) for text in iter_texts(edition)}  # every Markdown field, as HTML
    sections = []
    for s, section in enumerate(edition.sections):
        items = []
        for i, item in enumerate(section.items):
            items.append({
                "title": item.title,
                "body": md.get(("sections", s, "items", i, "body"), ""),
                "image": item.image and {**item.image.model_dump(),
                                         "src": image_src.get(item.image.src, item.image.src)},
                "event": item.event and {
                    "dates": i18n.date_list(item.event.date, loc, weekday=True),
                    "time": item.event.time, "location": item.event.location,
                    "labels": plain.event_labels(item.event, t)},
                "schedule": item.schedule,
                "buttons": item.all_buttons,
            })
        sections.append({"title": section.title, "intro": md.get(("sections", s, "intro"), ""), "items": items})
    intro = edition.intro and {
        "heading": edition.intro.heading,
        "body": md.get(("intro", "body"), ""),
        "signature": md.get(("intro", "signature"), ""),
    }
    agenda = edition.agenda and {
        "title": edition.agenda.title,
        "rows": [{"dates": i18n.date_list(row.date, loc), "what": row.what} for row in edition.agenda.rows],
    }
    logo = theme.logo and {"src": image_src.get(theme.logo, theme.logo), "width": theme.logo_width,
                           "dark": theme.logo_dark and image_src.get(theme.logo_dark, theme.logo_dark)}
    website_label = re.sub(r"^https?://|/$", "", theme.website)
    return {
        "edition": edition, "theme": {**theme.model_dump(), "website_label": website_label}, "t": t,
        "intro": intro, "sections": sections, "agenda": agenda, "logo": logo,
        "month_year": i18n.month_year(edition.date, loc), "why": t["why"].format(name=theme.name),
        "web_url": web_url, "unsubscribe_url": unsubscribe_url, "colours": TEMPLATE_COLOURS,
        "preheader_padding": preheader_padding(edition.preheader), "font_stack": font_stack(theme.font),
        "dark": {**DARK, "primary": _lighter(theme.primary, 0.6)},
    }


def to_mjml(edition: Edition, theme: Theme, *, templates: Path | None = None, **kwargs: Any) -> str:
    """The email as MJML; `templates` is the project's templates/ folder, whose files override the package's."""
    return render_template(templates, "email.mjml.j2", context(edition, theme, **kwargs))


def mjml_to_html(mjml_source: str) -> str:
    from mjml import mjml2html  # imported here: `newsletter --help` need not load it

    return mjml2html(mjml_source, fonts={})


def _compile(mjml_source: str, loaded: LoadedEdition, templates: Path | None = None) -> str:
    """mjml_to_html, with MRML's complaints turned into errors: the edition's raw HTML it cannot parse, or
    else a project template that produces broken MJML."""
    try:
        return mjml_to_html(mjml_source)
    except Exception as exc:  # MRML raises ValueError (or a Rust panic) on markup it cannot parse
        detail = str(exc)
    problems = _unparsable_html(loaded)
    if problems:
        raise EditionError(problems)
    blame = mjml_problem(templates, detail)
    if blame:
        raise InputError(blame)
    raise EditionError([Diagnostic("error", loaded.display_path, None, "",
                                   f"the email could not be assembled ({detail})")])


def _unparsable_html(loaded: LoadedEdition) -> list[Diagnostic]:
    """Which Markdown fields MRML cannot parse, each with its line; only called after a failure."""
    problems = []
    for text in iter_texts(loaded.edition):
        path = text.field
        html = _md(text.text, loaded.edition.allow_html)
        try:
            mjml_to_html(f"<mjml><mj-body><mj-section><mj-column><mj-text>{html}</mj-text>"
                         "</mj-column></mj-section></mj-body></mjml>")
        except Exception as exc:
            problems.append(Diagnostic(
                "error", loaded.display_path, loaded.lines.get((*path, "#text")) or loaded.line_of(path),
                text.place, f"the raw HTML in this text cannot be used in an email ({exc}); close every "
                "tag (<br/>, <b>...</b>), write & as &amp;, or remove 'allow_html: true'"))
    return problems


class _RequestsOnDemand(types.ModuleType):
    """Stands in for `requests` while premailer is imported: premailer imports it at module level (~30 ms,
    urllib3 included) but only uses it to fetch external stylesheets, which the build never does. Any
    attribute access imports the real package, so premailer still works if it is ever asked to fetch."""

    def __getattr__(self, name: str) -> Any:
        import requests

        return getattr(requests, name)


class _CssutilsWithoutValidation(types.ModuleType):
    """cssutils as premailer sees it, with property validation off.

    premailer's `disable_validation=True` does not reach two of its calls: `merge_styles` parses each
    element's existing inline style with `csstext_to_pairs(style)` (validate defaults to True) and
    `align_floating_images` calls `cssutils.parseStyle(style)`. Validating makes cssutils compile its
    property-grammar regular expressions on first use (~50 ms, most of premailer's first transform) and
    re-validate every <img> style on every build. Validation only logs (the log is silenced at CRITICAL)
    and never changes the parsed values, so the inlined HTML is byte-for-byte the same without it.
    """

    def __init__(self, real: types.ModuleType):
        super().__init__(real.__name__, real.__doc__)
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def parseStyle(self, cssText: str, encoding: str = "utf-8", validate: bool = False) -> Any:
        return self._real.parseStyle(cssText, encoding, validate=False)

    def parseString(self, cssText: str, encoding: str | None = None, href: str | None = None,
                    media: Any = None, title: str | None = None, validate: bool = False) -> Any:
        return self._real.parseString(cssText, encoding, href, media, title, validate=False)


@lru_cache(maxsize=1)
def _premailer() -> type:
    """premailer's Premailer class, imported once per process and set up to skip the work the build
    does not need (see the two classes above; docs/performance.md has the measurements)."""
    stub = None
    if "requests" not in sys.modules:
        stub = sys.modules["requests"] = _RequestsOnDemand("requests")
    try:
        import premailer.merge_style
        import premailer.premailer
    finally:
        if stub is not None and sys.modules.get("requests") is stub:
            del sys.modules["requests"]  # later `import requests` elsewhere gets the real package
    for module in (premailer.premailer, premailer.merge_style):
        real = getattr(module, "cssutils", None)
        if isinstance(real, types.ModuleType) and not isinstance(real, _CssutilsWithoutValidation):
            module.cssutils = _CssutilsWithoutValidation(real)
    premailer_class: type = premailer.premailer.Premailer
    return premailer_class


def inline_css(html: str) -> str:
    """Inline the CSS for mail clients that ignore <style>, keeping what the phone layout needs."""
    # premailer: ~0.1 s to import, so only when building; configured once per process (see _premailer).
    # MRML's own reset styles stay in <style>; inlining them on every table would add ~10 KB.
    html = _STYLE_RE.sub(lambda m: m.group(0) if INLINE_MARKER in m.group(2) else
                         f'<style data-premailer="ignore"{m.group(1)}>{m.group(2)}</style>', html)
    inlined: str = _premailer()(
        html,
        keep_style_tags=True,  # the @media rules must stay in <style>
        strip_important=False,  # the phone layout depends on !important
        disable_basic_attributes=["width", "height"],  # keep <img width="160">; Outlook obeys the attribute
        allow_network=False,  # the build makes no network request
        allow_loading_external_files=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        exclude_pseudoclasses=True,
        remove_classes=False,
    ).transform()
    # premailer (lxml) drops MRML's lower-case doctype; without one Apple Mail renders in quirks mode.
    return inlined if inlined.lstrip()[:9].lower() == "<!doctype" else "<!doctype html>\n" + inlined


def content_links(edition: Edition) -> list[str]:
    """Every link the edition's authors wrote (Markdown links, then buttons and image links); not the
    template's own links (website, view in browser, unsubscribe), which vary with the settings."""
    urls = [href for text in iter_texts(edition) for href, _, _ in markup.links(text.text, edition.allow_html)]
    for section in edition.sections:
        for item in section.items:
            urls += [button.url for button in item.all_buttons]
            if item.image and item.image.link:
                urls.append(item.image.link)
    return urls


def image_key(src: str) -> str:
    """One spelling of a local image's path, however the HTML wrote it: premailer percent-encodes `src`
    ("foto%20congres.jpg"), MRML escapes `&` ("&amp;"), and a Mac may spell "é" as "e" plus an accent.
    The sender (cid: swap) and `check` both look images up by this key, so they agree."""
    return unicodedata.normalize("NFC", unquote(html_lib.unescape(src)))


def embed_images(html: str, cids: dict[str, str]) -> str:
    """Each local image's `src` replaced by `cid:...` (its key in `cids` is `image_key` of the path)."""

    def swap(match: re.Match[str]) -> str:
        cid = cids.get(image_key(match.group(3)))
        return f"{match.group(1)}{match.group(2)}cid:{cid}{match.group(2)}" if cid else match.group(0)

    return IMG_SRC_RE.sub(swap, html)


def count_links(edition: Edition) -> int:
    return len(content_links(edition))


def render(loaded: LoadedEdition, theme: Theme, *, web_url: str | None = None, root: Path | None = None) -> Rendered:
    """Render one edition; pure apart from reading templates (no network, no writes).

    `root` is the project folder, where a local theme logo is (`build` passes it); without it the logo is
    taken to be the edition's project's: two folders up from the edition folder.
    """
    started = time.perf_counter()
    edition = loaded.edition
    local = [i.image.src for s in edition.sections for i in s.items
             if i.image and not is_web_address(i.image.src)]
    # A local image is written in the HTML as its path inside the edition folder ("./images/a.png" becomes
    # "images/a.png"): the form the sender looks for to swap in the embedded copy (cid:).
    image_src = {src: (loaded.folder / src).relative_to(loaded.folder).as_posix() for src in local}
    templates = Project(root or loaded.folder.parent.parent).templates_dir  # overrides the package's, file by file
    mjml_source = to_mjml(edition, theme, templates=templates, web_url=web_url, unsubscribe_url=UNSUBSCRIBE_FIELD,
                          image_src=image_src)
    html = with_head_metas(inline_css(_compile(mjml_source, loaded, templates)))
    # premailer wrote the preheader's fillers as characters: as entities they take 18 bytes as sent, not 21
    html = html.replace("\u034f\u200c\u00a0", PREHEADER_FILLER)
    web_page = _compile(to_mjml(edition, theme, templates=templates, web_url=None, unsubscribe_url=None,
                                image_src=image_src), loaded, templates)
    web_html = with_head_metas(merge.defaults(web_page, "html"))  # public: "Beste lezer,", never "[[aanhef|...]]"
    text = plain.render_text(edition, theme, web_url=web_url, unsubscribe_url=UNSUBSCRIBE_FIELD)
    result = Rendered(
        mjml=mjml_source, html=html, web_html=web_html, text=text, warnings=list(loaded.warnings),
        items=sum(len(s.items) for s in edition.sections), links=count_links(edition),
        images=len(_IMG_RE.findall(html)), html_bytes_qp=qp_size(html),
        image_files={src: loaded.folder / src for src in image_src.values()},  # each file once
    )
    for logo in (theme.logo, theme.logo and theme.logo_dark):
        if logo and not is_web_address(logo):
            result.image_files[logo] = (root or loaded.folder.parent.parent) / logo  # from the project folder
    if result.html_bytes_qp >= GMAIL_CLIP_BYTES:
        result.warnings.append(Diagnostic(
            "warning", loaded.display_path, None, "",
            f"the HTML is {result.html_bytes_qp:,} bytes as sent; Gmail clips messages over {GMAIL_CLIP_BYTES:,} bytes",
            fix="shorten the edition or move long items to the website", code="size"))
    result.seconds = time.perf_counter() - started
    return result
