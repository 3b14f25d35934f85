"""Markdown (CommonMark) for body text: one parser, used for HTML, plain text and link checks.

Two additions for what authors write: `<br>` is a line break even where raw HTML is off (it was printed
literally), and a heading inside a text (`###`) is a sub-heading, smaller than the item's title (h3), never
one that looks like it: every heading in a text is rendered as h4.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from newsletter_cli.compose.merge import FIELD_RE


@lru_cache(maxsize=2)
def parser(allow_html: bool = False) -> MarkdownIt:
    """CommonMark with tables; raw HTML is escaped unless the edition allows it."""
    md = MarkdownIt("commonmark", {"html": allow_html, "xhtmlOut": True, "breaks": False})
    md.enable("table")
    _keep_merge_fields(md)
    _authors_habits(md)
    return md


_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
SUBHEADING = "h4"  # an item's title is h3, a section's h2


def _line_break_tag(state: StateInline, silent: bool) -> bool:
    """`<br>`, `<br/>` or `<br />` in a text: a hard line break (as two spaces or a backslash at a line's end)."""
    if state.src[state.pos] != "<":
        return False
    match = _BR_RE.match(state.src, state.pos)
    if match is None:
        return False
    if not silent:
        state.push("hardbreak", "br", 0)
    state.pos = match.end()
    return True


def _subheadings(state: StateCore) -> None:
    """A heading inside a text is a sub-heading: h4, below the item's title, whatever the number of #."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close") and token.tag in ("h1", "h2", "h3"):
            token.tag = SUBHEADING


def _authors_habits(md: MarkdownIt) -> None:
    md.inline.ruler.before("autolink", "line_break_tag", _line_break_tag)
    md.core.ruler.push("subheadings", _subheadings)


def _keep_merge_fields(md: MarkdownIt) -> None:
    """Leave `[[email]]` in a link address as written (not `%5B%5Bemail%5D%5D`), so it is filled per
    recipient; the rest of the address is normalised as usual."""
    normalize = md.normalizeLink

    def normalize_link(url: str) -> str:
        out, start = [], 0
        for match in FIELD_RE.finditer(url):
            out += [normalize(url[start:match.start()]) if match.start() > start else "", match.group(0)]
            start = match.end()
        return "".join(out) + (normalize(url[start:]) if start < len(url) or not out else "")

    md.normalizeLink = normalize_link  # type: ignore[method-assign]


# A build parses each text for the HTML, the plain text, the loader's link check and the checks; the
# preview server rebuilds on every save. Parsing once per distinct text keeps that cheap. The cached
# tokens are shared: callers read them and never change them.
_CACHE_SIZE = 1024


@lru_cache(maxsize=_CACHE_SIZE)
def _parsed(text: str, allow_html: bool, checking: bool) -> tuple[Token, ...]:
    md = _checking_parser(allow_html) if checking else parser(allow_html)
    return tuple(md.parse(text))


def tokens(text: str, allow_html: bool = False) -> list[Token]:
    return list(_parsed(text, allow_html, False))


@lru_cache(maxsize=_CACHE_SIZE)
def to_html(text: str, allow_html: bool = False) -> str:
    md = parser(allow_html)
    html: str = md.renderer.render(list(_parsed(text, allow_html, False)), md.options, {})
    return html


@lru_cache(maxsize=2)
def _checking_parser(allow_html: bool = False) -> MarkdownIt:
    """Like `parser`, but keeps links with any scheme (javascript:, data:, file:) so they can be reported;
    the rendering parser silently turns those into plain text."""
    md = MarkdownIt("commonmark", {"html": allow_html, "xhtmlOut": True, "breaks": False})
    md.enable("table")
    _keep_merge_fields(md)
    _authors_habits(md)
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


# `[text](target)` left as plain text: CommonMark does not make a link of it (a space in the address,
# unbalanced brackets); the reader would see the brackets and no link.
_UNPARSED_LINK_RE = re.compile(r"\[([^\[\]\n]+)\]\(([^)\n]*)\)?")
_HTML_HREF_RE = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


def links(text: str, allow_html: bool = False) -> list[tuple[str, str, int]]:
    """Every link in `text` as (href, link text, line offset within the text).

    Links the renderer would drop (a `javascript:` address) are included, so the loader can report them,
    and so are `href`s in raw HTML when the edition allows it. `[text](target)` that Markdown does not
    make a link of at all is found by `unparsed_links`."""
    found: list[tuple[str, str, int]] = []
    for block in tokens_for_check(text, allow_html):
        if block.type == "html_block" and allow_html:
            offset = block.map[0] if block.map else 0
            found += [(next(g for g in m.groups() if g is not None), "", offset)
                      for m in _HTML_HREF_RE.finditer(block.content)]
        if block.type != "inline" or not block.children:
            continue
        offset = block.map[0] if block.map else 0
        href: str | None = None
        label: list[str] = []
        for child in block.children:
            if child.type == "link_open":
                href, label = str(child.attrGet("href") or ""), []
            elif child.type == "link_close" and href is not None:
                found.append((href, "".join(label).strip(), offset))
                href = None
            elif href is not None and child.type in ("text", "code_inline"):
                label.append(child.content)
            elif child.type == "html_inline" and allow_html:
                found += [(next(g for g in m.groups() if g is not None), "", offset)
                          for m in _HTML_HREF_RE.finditer(child.content)]
            elif child.type == "softbreak":
                offset += 1
                if href is not None:
                    label.append(" ")
    return found


def unparsed_links(text: str, allow_html: bool = False) -> list[tuple[str, str, int]]:
    """`[text](target)` that Markdown did not turn into a link, as (target, link text, line offset)."""
    found: list[tuple[str, str, int]] = []
    for block in tokens_for_check(text, allow_html):
        if block.type != "inline" or not block.children:
            continue
        offset = block.map[0] if block.map else 0
        for child in block.children:
            if child.type == "text":
                found += [(m.group(2).strip(), m.group(1).strip(), offset)
                          for m in _UNPARSED_LINK_RE.finditer(child.content)]
            elif child.type == "softbreak":
                offset += 1
    return found


def tokens_for_check(text: str, allow_html: bool = False) -> list[Token]:
    return list(_parsed(text, allow_html, True))
