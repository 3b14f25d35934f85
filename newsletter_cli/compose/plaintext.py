"""The plain-text part, written from the model (not scraped from the HTML)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from markdown_it.token import Token

from newsletter_cli.compose import i18n
from newsletter_cli.compose import markdown as markup
from newsletter_cli.compose.merge import FIELD_RE
from newsletter_cli.compose.model import iter_texts

if TYPE_CHECKING:
    from newsletter_cli.compose.model import Edition, Event, Item, Theme

WIDTH = 76


def shown_url(href: str) -> str:
    """A link's address as the text part prints it: a bare e-mail address without `mailto:` (easier to read
    and copy), but a mailto: link with a subject or body stays whole, so it still opens with them filled in
    and the merge engine sees a merge field in it stands in a URL (and encodes its value as the HTML does)."""
    if href.lower().startswith("mailto:") and "?" not in href and "[[" not in href:
        return href[len("mailto:"):]
    return href


def _wrap(text: str, indent: str = "", first: str | None = None) -> list[str]:
    """Lines of at most WIDTH characters; a line with a merge field is left whole: the merge engine wraps
    it once the field is filled (a value may be longer or shorter than the field)."""
    if FIELD_RE.search(text):
        return [(first if first is not None else indent) + text]
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
            out.append("" if out and out[-1] == "\n" else " ")  # the line end after a <br>
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link_open":
            href, start = str(child.attrGet("href") or ""), len(out)
        elif kind == "link_close" and href is not None:
            target = shown_url(href)
            shown = "".join(out[start:]).strip()
            if shown not in (target, href.removeprefix("mailto:")):  # a bare URL as link text is not repeated
                urls.append(target)
            href = None
        elif kind == "image":
            out.append(child.content or str(child.attrGet("alt") or ""))
    return "".join(out)


def markdown_to_text(source: str, allow_html: bool = False) -> str:
    """Paragraphs, lists and headings of a Markdown text, wrapped, each link's URL on its own line.

    List items are indented under their marker at any depth; a paragraph after the first inside an item
    (and each item of a loose list) is set off by a blank line, as in the Markdown source."""
    lines: list[str] = []
    lists: list[dict[str, Any]] = []  # per open list: counter (-1 for bullets), indent of its items' text
    items: list[dict[str, Any]] = []  # per open list item: indent of its text, pending marker, blocks so far
    row: list[str] | None = None  # the cells of the table row being read
    row_urls: list[str] = []
    for token in markup.tokens(source, allow_html):
        kind = token.type
        if kind == "tr_open":
            row, row_urls = [], []
            continue
        if kind == "tr_close" and row is not None:
            indent = items[-1]["indent"] if items else ""
            lines.extend(_wrap(" | ".join(row), indent + "  ", indent))
            lines.extend(indent + url for url in row_urls)
            row = None
            continue
        if kind == "table_close":
            lines.append("")
            continue
        if row is not None and kind == "inline" and token.children is not None:
            row.append(_inline(token.children, row_urls).replace("\n", " "))
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            base = items[-1]["indent"] if items else ""
            if items:
                items[-1]["blocks"] += 1
            lists.append({"counter": -1 if kind == "bullet_list_open" else int(token.attrGet("start") or 1),
                          "base": base, "count": 0})
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                lines.append("")
        elif kind == "list_item_open":
            current = lists[-1]
            marker = "- " if current["counter"] < 0 else f"{current['counter']}. "
            if current["counter"] >= 0:
                current["counter"] += 1
            current["count"] += 1
            items.append({"first": current["base"] + marker, "indent": current["base"] + " " * len(marker),
                          "blocks": 0, "nth": current["count"]})
        elif kind == "list_item_close":
            item = items.pop()
            if item["first"] is not None:  # an empty item still shows its marker
                lines.append(item["first"].rstrip())
        elif kind == "paragraph_open" and items:
            item = items[-1]
            loose = not token.hidden
            if loose and (item["blocks"] > 0 or item["nth"] > 1) and lines and lines[-1]:
                lines.append("")
            item["blocks"] += 1
        elif kind == "inline" and token.children is not None:
            urls: list[str] = []
            content = _inline(token.children, urls)
            if items:
                item = items[-1]
                rest = item["indent"]
                first = item["first"] if item["first"] is not None else rest
                item["first"] = None
            else:
                first = rest = ""
            for n, part in enumerate(content.split("\n")):
                lines.extend(_wrap(part, rest, first if n == 0 else rest))
            lines.extend(rest + url for url in urls)
            if not items:
                lines.append("")
        elif kind == "fence" or kind == "code_block":
            indent = items[-1]["indent"] if items else ""
            lines.extend(indent + row for row in token.content.rstrip("\n").split("\n"))
            lines.append("")
        elif kind == "hr":
            lines.extend(["-" * 20, ""])
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def event_labels(event: Event, t: dict[str, str]) -> dict[str, dict[str, str]]:
    """The event box's labels: the edition's own (text, emoji or both) or the template's words. Each with
    `name`, the word a screen reader gets when the label is only an emoji, and `line`, the label as the text
    part writes it before its value ("Datum: ", "📅 Datum: ", but "📅 " without a colon)."""
    labels: dict[str, dict[str, str]] = {}
    for key, word in (("heading", "practical"), ("date", "date"), ("time", "time"), ("location", "location")):
        given = getattr(event.labels, key)
        text = t[word] if given is None else given.strip()
        wordy = any(ch.isalnum() for ch in text)
        labels[key] = {"text": text, "name": text if wordy else t[word],
                       "line": f"{text}: " if wordy else (f"{text} " if text else "")}
    return labels


def _heading(title: str, char: str) -> list[str]:
    lines = _wrap(title)
    return [*lines, char * max(len(line) for line in lines), ""]


def _item(item: Item, body: str | None, edition: Edition, t: dict[str, str]) -> list[str]:
    out = _heading(item.title, "-")
    if body is not None:
        out += [body, ""]
    if item.event:
        labels = event_labels(item.event, t)
        if labels["heading"]["text"]:
            out += _wrap(labels["heading"]["text"])
        dates = i18n.date_list(item.event.date, edition.locale, weekday=True)
        out += _wrap(f"{labels['date']['line']}{dates}", "  ", "")
        if item.event.time:
            out += _wrap(f"{labels['time']['line']}{item.event.time}", "  ", "")
        if item.event.location:
            out += _wrap(f"{labels['location']['line']}{item.event.location}", "  ", "")
        out.append("")
    if item.schedule:
        width = min(max(len(row.time) for row in item.schedule), 20)
        out.append(t["programme"])
        for row in item.schedule:
            out += _wrap(f"{row.time.ljust(width)}  {row.what}", " " * (width + 2), "")
        out.append("")
    for button in item.all_buttons:
        out += [*_wrap(f"{button.label}:"), shown_url(button.url), ""]
    return out


def render_text(edition: Edition, theme: Theme, *, web_url: str | None = None,
                unsubscribe_url: str | None = None) -> str:
    """The whole plain-text part."""
    t = i18n.strings(edition.locale)
    text = {field.field: markdown_to_text(field.text, edition.allow_html) for field in iter_texts(edition)}
    out: list[str] = []
    if web_url:
        out += [f"{t['view_in_browser']}:", web_url, ""]
    month = i18n.month_year(edition.date, edition.locale)
    out += [*_wrap(theme.name), *_wrap(f"{t['newsletter']} {theme.short_name} - {month}"), "=" * 40, ""]
    if edition.intro:
        if edition.intro.heading:
            out += [*_wrap(edition.intro.heading), ""]
        out += [text.get(("intro", "body"), ""), ""]
        if ("intro", "signature") in text:
            out += [text[("intro", "signature")], ""]
    for s, section in enumerate(edition.sections):
        out += ["", *_heading(section.title.upper(), "=")]
        if ("sections", s, "intro") in text:
            out += [text[("sections", s, "intro")], ""]
        for i, item in enumerate(section.items):
            out += _item(item, text.get(("sections", s, "items", i, "body")), edition, t)
    if edition.agenda:
        out += ["", *_heading(edition.agenda.title, "=")]
        for row in edition.agenda.rows:  # what, then when, as the HTML's agenda
            out += _wrap(f"{row.what}: {i18n.date_list(row.date, edition.locale)}", "  ")
        out.append("")
    out += ["-" * 40, *_wrap(theme.name), *_wrap(theme.address), theme.website, "",
            *_wrap(t["why"].format(name=theme.name))]
    if unsubscribe_url:
        out += [*_wrap(f"{t['unsubscribe_text']}:"), unsubscribe_url]
    return "\n".join(out).rstrip() + "\n"
