"""suppressions.csv: who must never get the newsletter again, as a file a secretary can open in Excel.

Columns `email;reason;date;edition;detail`, UTF-8 with BOM, `;` (what Dutch Excel reads without questions).
Every cell Excel could read as a formula (= + - @ tab CR at the start; an address like +31-70-...@gemeente.nl
too) is written with a leading quote, and read back without it. Addresses are compared in one normal form
(`normal_address`: IDNA domain, lower case), so punycode and Unicode spellings meet.
Every change rewrites the whole file into a temporary file and renames it over the old one, under a lock:
never a half-written file, and two commands at once cannot lose each other's lines. Each address once.
A file made by hand (only an email column, commas) is kept: its rows stay, the new columns are added.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter_cli.errors import InputError, NewsletterError
from newsletter_cli.members.lists import EMAIL_NAMES, cell_text, excel_safe, find_column, normal_address, read_rows
from newsletter_cli.project import Project, display

if TYPE_CHECKING:
    from filelock import FileLock

FILE = "suppressions.csv"  # in the project folder
COLUMNS = ("email", "reason", "date", "edition", "detail")
REASONS = ("unsubscribed", "bounced", "requested", "complaint")
LOCK_TIMEOUT = 60


@dataclass(frozen=True)
class Suppression:
    email: str
    reason: str
    date: str = ""
    edition: str = ""
    detail: str = ""

    @property
    def key(self) -> str:
        """The address in the one form addresses are compared in (IDNA domain, lower case)."""
        return normal_address(self.email)


def default_path(project: Project) -> Path:
    """suppressions.csv in the project folder: where `newsletter send` looks for it."""
    return project.root / FILE


def existing(project: Project) -> Path | None:
    """The project's suppressions.csv when there is one (what a send leaves out by default)."""
    path = default_path(project)
    return path if path.is_file() else None


def today() -> str:
    return dt.date.today().isoformat()


def _cell(value: str) -> str:
    """A value Excel shows as text, on one line (the detail comes from strangers; an address may start with +)."""
    return excel_safe(" ".join(value.split()))


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The file's columns (ours first, then any the user added) and its rows as dicts; empty if missing."""
    if not path.is_file():
        return list(COLUMNS), []
    _, header, rows, _ = read_rows(path, allow_empty=True)
    column = find_column(header, EMAIL_NAMES)  # 'E-mail', 'E-mailadres', ... as a member list may name it
    out: list[dict[str, str]] = []
    if column is None:  # a bare list of addresses, no header line
        column = 0
        if header and "@" in header[0]:
            out.append({"email": cell_text(header[0])})
        header = ["email"]
    names = [("email" if i == column else name) for i, name in enumerate(header)]
    for _, row in rows:
        if len(row) > column and row[column].strip():
            out.append({name: cell_text(row[i]) for i, name in enumerate(names) if name and i < len(row)})
    extra = [n for n in names if n and n not in COLUMNS]
    return [*COLUMNS, *extra], out


def read(path: Path) -> dict[str, Suppression]:
    """Address (lower case) -> its suppression, first row wins."""
    _, rows = _read(path)
    found: dict[str, Suppression] = {}
    for row in rows:
        entry = Suppression(row["email"], row.get("reason", ""), row.get("date", ""), row.get("edition", ""),
                            row.get("detail", ""))
        found.setdefault(entry.key, entry)
    return found


def addresses(path: Path) -> set[str]:
    """The addresses never to send to (unsubscribed, bounced), in their normal form (`normal_address`): what a
    send leaves out of its list. A file made by hand may have only a column of addresses, or no header line."""
    return set(read(path))


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(buffer.getvalue().encode("utf-8-sig"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except PermissionError:
        tmp.unlink(missing_ok=True)
        raise NewsletterError(f"{display(path)}: cannot save it (is it open in Excel?). Close it and run the "
                              "command again; nothing was changed.") from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NewsletterError(f"{display(path)}: cannot save it: {exc.strerror}. Nothing was changed.") from None


def _locked(path: Path) -> FileLock:
    from filelock import FileLock

    return FileLock(str(path.with_name(f".{path.name}.lock")), timeout=LOCK_TIMEOUT)


def add(path: Path, entries: Iterable[Suppression]) -> list[Suppression]:
    """Add the entries whose address is not in the file yet; returns those added (in order)."""
    from filelock import Timeout

    try:
        with _locked(path):
            columns, rows = _read(path)
            have = {normal_address(row["email"]) for row in rows}
            added: list[Suppression] = []
            for entry in entries:
                if entry.key in have:
                    continue
                have.add(entry.key)
                added.append(entry)
                rows.append({"email": entry.email.strip(), "reason": entry.reason, "date": entry.date or today(),
                             "edition": entry.edition, "detail": entry.detail})
            if added:
                _write(path, columns, rows)
            return added
    except Timeout:
        raise NewsletterError(f"{display(path)} is being changed by another command; try again in a minute.") from None


def remove(path: Path, address: str) -> Suppression | None:
    """Take an address off the list; returns what was there, or None if it was not on it."""
    from filelock import Timeout

    key = normal_address(address)
    try:
        with _locked(path):
            columns, rows = _read(path)
            keep = [row for row in rows if normal_address(row["email"]) != key]
            if len(keep) == len(rows):
                return None
            gone = next(row for row in rows if normal_address(row["email"]) == key)
            _write(path, columns, keep)
            return Suppression(gone["email"], gone.get("reason", ""), gone.get("date", ""), gone.get("edition", ""),
                               gone.get("detail", ""))
    except Timeout:
        raise NewsletterError(f"{display(path)} is being changed by another command; try again in a minute.") from None


def check_address(address: str) -> str:
    """A valid address (normalized) for `newsletter suppress`, or a clear error."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InputError(f"'{address}' is not a valid email address: {exc}") from None
