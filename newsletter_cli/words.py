"""How the command line writes numbers of things: '1 image', '2 images', '10,500 messages' (one language)."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` with a thousands separator and the noun in the singular or plural ('1 image', '10,500 images')."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
