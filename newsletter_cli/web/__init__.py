"""The browser side: the live preview and the static archive site."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

PAGE_TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def page_environment() -> jinja2.Environment:
    """Jinja for the preview and archive pages (HTML, autoescaped); the email's own templates live in compose/."""
    from newsletter_cli.compose.render import bytecode_cache

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PAGE_TEMPLATES)), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                              bytecode_cache=bytecode_cache())
