"""newsletter: compose, preview, check and send an association's email newsletter."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`__version__`, defined once in pyproject.toml and read from the installed package's metadata, only when
    asked (reading the metadata costs every command's start-up time otherwise)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsletter")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
