"""The plain-text part, written from the model (not scraped from the HTML)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from markdown_it.token import Token

from . import i18n, markup

if TYPE_CHECKING:
    from .model import Edition, Item, Theme

WIDTH = 76


def _wrap(text: str, indent: str = "", first: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first if first is not None else indent,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [first or ""]


def _inline(children: list[Token], urls: list[str]) -> str:
    """Inline Markdown as text; each link's URL is collected to print on its own line."""
    out: list[str] = []
    href: str | None = None
    start = 0
    for child in children:
        kind = child.type
        if kind in ("text", "code_inline", "html_inline"):
            out.append(child.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link_open":
            href, start = str(child.attrGet("href") or ""), len(out)
        elif kind == "link_close" and href is not None:
            target = href.removeprefix("mailto:")
            if "".join(out[start:]).strip() != target:  # a bare URL as link text is not repeated
                urls.append(target)
            href = None
        elif kind == "image":
            out.append(child.content or str(child.attrGet("alt") or ""))
    return "".join(out)


def markdown_to_text(source: str, allow_html: bool = False) -> str:
    """Paragraphs, lists and headings of a Markdown text, wrapped, each link's URL on its own line."""
    lines: list[str] = []
    stack: list[list[int]] = []  # per open list: [counter or -1 for bullets]
    pending_marker: list[str] = []
    for token in markup.tokens(source, allow_html):
        kind = token.type
        if kind == "bullet_list_open":
            stack.append([-1])
        elif kind == "ordered_list_open":
            stack.append([int(token.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            stack.pop()
            if not stack:
                lines.append("")
        elif kind == "list_item_open":
            counter = stack[-1]
            pending_marker.append("- " if counter[0] < 0 else f"{counter[0]}. ")
            if counter[0] >= 0:
                counter[0] += 1
        elif kind == "inline" and token.children is not None:
            urls: list[str] = []
            content = _inline(token.children, urls)
            depth = max(len(stack) - 1, 0)
            indent = "   " * depth
            if pending_marker:
                marker = pending_marker.pop()
                first, rest = indent + marker, indent + " " * len(marker)
            else:
                first = rest = indent + ("   " if stack else "")
            for n, part in enumerate(content.split("\n")):
                lines.extend(_wrap(part, rest, first if n == 0 else rest))
            lines.extend(rest + url for url in urls)
            if not stack:
                lines.append("")
        elif kind == "fence" or kind == "code_block":
            lines.extend(token.content.rstrip("\n").split("\n"))
            lines.append("")
        elif kind == "hr":
            lines.extend(["-" * 20, ""])
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _heading(title: str, char: str) -> list[str]:
    return [title, char * min(len(title), WIDTH), ""]


def _item(item: Item, edition: Edition, t: dict[str, str]) -> list[str]:
    out = _heading(item.title, "-")
    if item.body:
        out += [markdown_to_text(item.body, edition.allow_html), ""]
    if item.event:
        out.append(t["practical"])
        out.append(f"{t['date']}: {i18n.date_list(item.event.date, edition.locale, weekday=True)}")
        if item.event.time:
            out.append(f"{t['time']}: {item.event.time}")
        if item.event.location:
            out.append(f"{t['location']}: {item.event.location}")
        out.append("")
    if item.schedule:
        width = max(len(row.time) for row in item.schedule)
        out.append(t["programme"])
        out += [f"{row.time.ljust(width)}  {row.what}" for row in item.schedule] + [""]
    for button in item.all_buttons:
        out += [f"{button.label}:", button.url.removeprefix("mailto:"), ""]
    return out


def render_text(edition: Edition, theme: Theme, *, web_url: str | None = None,
                unsubscribe_url: str | None = None) -> str:
    """The whole plain-text part."""
    t = i18n.strings(edition.locale)
    out: list[str] = []
    if web_url:
        out += [f"{t['view_in_browser']}:", web_url, ""]
    out += [f"{theme.name}", f"{t['newsletter']} {theme.short_name} - {i18n.month_year(edition.date, edition.locale)}",
            "=" * 40, ""]
    if edition.intro:
        if edition.intro.heading:
            out += [edition.intro.heading, ""]
        out += [markdown_to_text(edition.intro.body, edition.allow_html), ""]
        if edition.intro.signature:
            out += [markdown_to_text(edition.intro.signature, edition.allow_html), ""]
    for section in edition.sections:
        out += ["", *_heading(section.title.upper(), "=")]
        if section.intro:
            out += [markdown_to_text(section.intro, edition.allow_html), ""]
        for item in section.items:
            out += _item(item, edition, t)
    if edition.agenda:
        out += ["", *_heading(edition.agenda.title, "=")]
        rows = [(i18n.date_list(r.date, edition.locale), r.what) for r in edition.agenda.rows]
        for dates, what in rows:
            out += _wrap(f"{dates}: {what}", "  ")
        out.append("")
    out += ["-" * 40, theme.name, theme.address, theme.website, "", t["why"].format(name=theme.name)]
    if unsubscribe_url:
        out += [f"{t['unsubscribe_text']}:", unsubscribe_url]
    return "\n".join(out).rstrip() + "\n"
