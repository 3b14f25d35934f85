"""The Microsoft 365 token cache on disk: where it lives, how it is written, and what its failures mean.

MSAL keeps the sign-in (refresh token) in one file per user, outside the project, encrypted by the platform's
keystore where there is one. Whatever goes wrong with that file (half-written by a power cut, data the keystore
cannot decrypt, owned by another user after a `sudo newsletter login`, a lock left by a killed process, a
keyring that went away) ends in one CacheError that names the file and the way out: `newsletter logout`
(which removes even a damaged cache) and `newsletter login`. It is never blamed on the SMTP settings.
Every write goes to a file beside the cache first and then replaces it, so a crash leaves the old or the new
cache, never half of one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter_cli.errors import NewsletterError

CACHE_FILE = "msal-token-cache.bin"
WAY_OUT = "Run `newsletter logout` (it removes the damaged sign-in) and then `newsletter login`."


class CacheError(NewsletterError):
    """The token cache cannot be used; the message names the file and the way out, `why` what is wrong."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


class CacheProblem(Exception):
    """Raised inside MSAL's cache calls (deliberately not an OSError or ValueError, which MSAL and requests use
    for their own failures); turned into a CacheError at the edge of oauth.py."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class CacheInfo:
    location: Path
    encrypted: bool
    how: str  # one line for the user: where and how the token cache is kept


def cache_location() -> Path:
    """The token cache file (or, when encrypted by a keystore, its signal file): per user, not in the project."""
    import platformdirs

    return platformdirs.user_data_path("newsletter", appauthor=False, roaming=False) / CACHE_FILE


def lock_location(location: Path) -> Path:
    return location.with_name(location.name + ".lockfile")


def describe(exc: BaseException, location: Path) -> str:
    """What is wrong with the cache, in plain words (never its content: it holds the sign-in)."""
    if isinstance(exc, CacheProblem):
        return exc.what
    name = type(exc).__name__
    if location.is_dir():
        return "there is a folder where the file should be"
    if isinstance(exc, PermissionError):
        return (f"this user may not read or write it ({name}); it was perhaps made by another user, e.g. by "
                "`sudo newsletter login`")
    if name == "LockError":
        return (f"it is locked ({lock_location(location)} exists): another newsletter command is using it, or one "
                "was stopped in the middle. If no other newsletter command runs, delete that lock file")
    module = type(exc).__module__ or ""
    if any(word in f"{module}.{name}".lower() for word in ("secret", "keyring", "keychain", "gerror", "gi.")):
        return (f"the keystore that holds it (the desktop keyring, or the macOS Keychain) cannot be reached ({name}): "
                "unlock it, or sign in to the desktop session")
    if isinstance(exc, UnicodeDecodeError):
        return ("it holds data that cannot be read as a sign-in (encrypted by a keystore this session cannot reach, "
                "or damaged)")
    if name == "PersistenceDecryptionError":
        return "its data cannot be decrypted with this user's key (the keystore changed, or the file comes from "\
               "another user or computer)"
    if isinstance(exc, OSError):
        return f"it cannot be read or written ({exc.strerror or name})"
    return f"it cannot be used ({name})"


def cache_error(exc: BaseException, location: Path) -> CacheError:
    why = describe(exc, location)
    return CacheError(f"The Microsoft 365 sign-in kept in {location} cannot be used: {why}. " + WAY_OUT, why)


def write_aside(location: str, data: bytes) -> None:
    """Write `data` to a file beside `location`, then replace it: a crash leaves the old or the new file."""
    aside = f"{location}.{os.getpid()}.tmp"
    handle = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        for attempt in range(5):  # Windows refuses to replace a file another process is reading at that moment
            try:
                os.replace(aside, location)
                break
            except PermissionError:
                if os.name != "nt" or attempt == 4:
                    raise
                time.sleep(0.1)
    except BaseException:
        Path(aside).unlink(missing_ok=True)
        raise


class Guarded:
    """A persistence (msal_extensions) whose failures are CacheProblems, whose loads are checked to be whole
    JSON (a half-written file is named, not a JSONDecodeError deep in MSAL) and whose file writes replace."""

    def __init__(self, inner: Any, location: Path):
        self.inner = inner
        self.location = location
        self.is_encrypted = bool(getattr(inner, "is_encrypted", False))
        name = type(inner).__name__
        if name in ("FilePersistence", "FilePersistenceWithDataProtection"):
            self._file = True
        else:  # a keystore holds the data; the file is only a signal
            self._file = False

    def get_location(self) -> str:
        return str(self.location)

    def _not_found(self, exc: BaseException) -> bool:
        return type(exc).__name__ == "PersistenceNotFound"

    def load(self) -> str:
        try:
            text = str(self.inner.load())
        except Exception as exc:
            if self._not_found(exc):
                raise
            raise CacheProblem(describe(exc, self.location)) from None
        if text.strip():
            try:
                json.loads(text)
            except ValueError:
                raise CacheProblem("the file is damaged (incomplete or not a token cache; a computer that stopped "
                                   "while it was being written leaves it so)") from None
        return text

    def save(self, content: str) -> None:
        try:
            if not self._file:
                self.inner.save(content)
            elif type(self.inner).__name__ == "FilePersistenceWithDataProtection":
                write_aside(str(self.location), self.inner._dp_agent.protect(content))
            else:
                write_aside(str(self.location), content.encode("utf-8"))
        except Exception as exc:
            raise CacheProblem(describe(exc, self.location)) from None

    def time_last_modified(self) -> float:
        try:
            return float(self.inner.time_last_modified())
        except Exception as exc:
            if self._not_found(exc):
                raise
            raise CacheProblem(describe(exc, self.location)) from None


def token_cache(location: Path) -> tuple[Any, CacheInfo]:
    """MSAL's persisted token cache, encrypted where the platform can; the file fallback readable by the user only.
    Opened once per sign-in session (oauth.SignIn), not per process."""
    import msal_extensions

    try:
        location.parent.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            location.parent.chmod(0o700)
    except OSError as exc:
        raise cache_error(exc, location) from None
    try:
        persistence = msal_extensions.build_encrypted_persistence(str(location))
        keystore = type(persistence).__name__.replace("Persistence", "")
        names = {"FileWithDataProtection": "Windows DPAPI", "Keychain": "the macOS Keychain",
                 "Libsecret": "the desktop keyring (libsecret)"}
        info = CacheInfo(location, True, f"Sign-in kept encrypted with {names.get(keystore, keystore)} ({location}).")
    except (ImportError, RuntimeError, OSError, ValueError):  # no keystore (e.g. Linux without a desktop keyring)
        persistence = msal_extensions.FilePersistence(str(location))
        info = CacheInfo(location, False, f"Sign-in kept in {location}, readable only by you (this computer offers "
                                          "no keystore to encrypt it).")
    return msal_extensions.PersistedTokenCache(Guarded(persistence, location)), info


def protect(location: Path) -> None:
    """The unencrypted cache file: readable and writable by its owner only (POSIX; on Windows it is per user)."""
    if os.name == "posix" and location.is_file():
        try:
            location.chmod(0o600)
        except OSError:  # not ours (another user's file): reading it will say so
            pass


def remove(location: Path) -> list[str]:
    """Delete the cache (damaged or not), its lock and any file left beside it; what could not be removed."""
    import shutil

    try:  # the keystore's copy: overwritten with an empty cache where there is one
        persistence = token_cache(location)[0]._persistence.inner
        if type(persistence).__name__ in ("KeychainPersistence", "LibsecretPersistence"):
            persistence.save("{}")
    except Exception:
        pass
    left = []
    for path in (location, lock_location(location), *location.parent.glob(location.name + ".*.tmp")):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            left.append(f"{path} ({exc.strerror or type(exc).__name__})")
    return left
