"""Markdown (CommonMark) for body text: one parser, used for HTML, plain text and link checks."""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token


@lru_cache(maxsize=2)
def parser(allow_html: bool = False) -> MarkdownIt:
    """CommonMark with tables; raw HTML is escaped unless the edition allows it."""
    md = MarkdownIt("commonmark", {"html": allow_html, "xhtmlOut": True, "breaks": False})
    md.enable("table")
    return md


def tokens(text: str, allow_html: bool = False) -> list[Token]:
    return parser(allow_html).parse(text)


def to_html(text: str, allow_html: bool = False) -> str:
    return parser(allow_html).render(text)


def links(text: str, allow_html: bool = False) -> list[tuple[str, str, int]]:
    """Every link in `text` as (href, link text, line offset within the text)."""
    found: list[tuple[str, str, int]] = []
    for block in tokens(text, allow_html):
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
            elif child.type == "softbreak":
                offset += 1
                if href is not None:
                    label.append(" ")
    return found
