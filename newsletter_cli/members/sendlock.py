"""One send of an edition at a time: a lock file in the edition's folder, held for the whole send."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from newsletter_cli.errors import NewsletterError

LOCK_FILE = ".send.lock"


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Only one send of an edition at a time (the lock goes away by itself when the process dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise NewsletterError(f"Another send of this edition is running (lock: {folder / LOCK_FILE}). "
                              "Wait for it to finish, or stop it first.") from None
    try:
        yield
    finally:
        lock.release()
