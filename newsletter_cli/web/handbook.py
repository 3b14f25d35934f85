"""`newsletter handbook`: the Dutch handbook for the secretariat, shipped with the program.

The handbook is written once, in docs/handleiding.md (with its screenshots); building the package copies it
into newsletter_cli/handbook/ (setup.py), so an installed program carries it. Run from a source checkout, the
docs/ folder itself is used. It is shown as a web page in the browser (markdown-it renders it).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

from newsletter_cli.errors import NewsletterError

HANDBOOK_FILE = "handleiding.md"
INSTALLED = Path(__file__).resolve().parent.parent / "handbook"  # the package's copy (made by setup.py)
SOURCE = Path(__file__).resolve().parent.parent.parent / "docs"  # a source checkout
STYLE = """body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:52rem;margin:2rem auto;
padding:0 1rem;color:#1d1d1d}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .6rem;vertical-align:top}
code{background:#f2f2f2;padding:0 .2rem;border-radius:3px}pre{background:#f2f2f2;padding:.8rem;overflow:auto}
img{max-width:100%}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}"""


def handbook_file() -> Path:
    """The handbook's Markdown file: the installed copy, else the source checkout's."""
    for folder in (INSTALLED, SOURCE):
        if (folder / HANDBOOK_FILE).is_file():
            return folder / HANDBOOK_FILE
    raise NewsletterError("The handbook is missing from this installation (newsletter_cli/handbook/handleiding.md); "
                          "reinstall the program, e.g. pipx reinstall newsletter.")


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")


def render(source: Path) -> str:
    """The handbook as one HTML page; images and links stay relative to the Markdown file's folder."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(source.read_text(encoding="utf-8-sig"))
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and index + 1 < len(tokens):  # anchors, so that a heading can be linked to
            token.attrSet("id", _slug(tokens[index + 1].content))
        for child in token.children or []:  # the screenshots are next to the Markdown file, not the page
            src = str(child.attrGet("src") or "")
            if child.type == "image" and src and ":" not in src and not src.startswith("/"):
                child.attrSet("src", (source.parent / src).resolve().as_uri())
    title = next((tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"), "Handleiding")
    body = md.renderer.render(tokens, md.options, {})
    return (f'<!DOCTYPE html>\n<html lang="nl"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n")


def write_html(folder: Path) -> Path:
    """The handbook as handleiding.html in `folder` (the user's cache folder: the package may be read-only)."""
    source = handbook_file()
    target = folder / "handleiding.html"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(render(source), encoding="utf-8")
    except OSError as exc:
        raise NewsletterError(f"Cannot write the handbook to {target}: {exc.strerror or exc}") from None
    return target
