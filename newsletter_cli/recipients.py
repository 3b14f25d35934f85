"""Recipient lists as Dutch Excel writes them: UTF-8 with or without BOM, `;` or `,`, one address a row."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Diagnostic, InputError
from .loader import display

SUPPRESSIONS_FILE = "suppressions.csv"
EMAIL_COLUMNS = ("email", "e-mail", "emailadres", "e-mailadres", "mail", "email address")
NAME_COLUMNS = ("name", "naam")
MAX_BYTES = 100_000_000
SAVE_AS_UTF8 = "in Excel: File > Save As > 'CSV UTF-8 (comma delimited)' ('CSV UTF-8 (door komma's gescheiden)')"


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str  # normalized by the validator (domain in lower case)
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict, compare=False)  # every column, names in lower case

    @property
    def key(self) -> str:
        """What makes two rows the same person: the address, case-insensitively."""
        return self.email.lower()


@dataclass
class RecipientList:
    path: Path
    recipients: list[Recipient] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    duplicates: int = 0
    suppressed: int = 0
    columns: list[str] = field(default_factory=list)
    suppressions_file: Path | None = None

    @property
    def rows(self) -> int:
        return len(self.recipients) + len(self.problems) + self.duplicates + self.suppressed


def decode(data: bytes, shown: str) -> str:
    """UTF-8 (with or without BOM) or a clear error naming the line, never mojibake."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        sample = data[start: end if end >= 0 else len(data)].decode("cp1252", errors="replace").strip()
        raise InputError(
            f"{shown}:{line}: the file is not UTF-8 (byte 0x{data[exc.start]:02x}); it looks like Windows-1252 "
            f"('{sample[:60]}'). Save it as UTF-8: {SAVE_AS_UTF8}.") from None


def sniff_delimiter(header: str) -> str:
    """`;` (Dutch Excel), `,` or a tab: whichever the header line has most of."""
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_rows(path: Path) -> tuple[str, list[str], Iterator[tuple[int, list[str]]]]:
    """(shown name, header, (line, row) pairs) of a CSV file; blank rows are skipped."""
    shown = display(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{shown}: the file is over {MAX_BYTES // 1_000_000} MB. Is this the right file?")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{shown}: cannot read the file: {exc.strerror}") from None
    if b"\0" in data[:4096]:
        raise InputError(f"{shown}: this is not a CSV text file (is it an .xlsx? {SAVE_AS_UTF8}).")
    text = decode(data, shown)
    if not text.strip():
        raise InputError(f"{shown}: the file is empty; it needs a header line with an 'email' column.")
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    reader = csv.reader(text.splitlines(), delimiter=sniff_delimiter(first_line))

    def rows() -> Iterator[tuple[int, list[str]]]:
        line = reader.line_num + 1
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield line, row
                line = reader.line_num + 1
        except csv.Error as exc:
            raise InputError(f"{shown}:{line}: cannot read this line: {exc}") from None

    iterator = rows()
    header_row = next(iterator, None)
    header = [cell.strip().lower() for cell in (header_row[1] if header_row else [])]
    return shown, header, iterator


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def read_suppressions(path: Path) -> set[str]:
    """Addresses never to send to (unsubscribed, bounced), lower case: an 'email' column, or the first one."""
    shown, header, rows = read_rows(path)
    column = _column(header, EMAIL_COLUMNS)
    found: set[str] = set()
    if column is None:
        column = 0
        if header and "@" in header[0]:
            found.add(header[0])
    for _, row in rows:
        if len(row) > column and row[column].strip():
            found.add(row[column].strip().lower())
    return found


def default_suppressions() -> Path | None:
    path = Path.cwd() / SUPPRESSIONS_FILE
    return path if path.is_file() else None


def read_recipients(path: Path, suppressions: Path | None = None) -> RecipientList:
    """Read, validate, dedupe and filter a recipient CSV; bad rows become problems, not exceptions."""
    from email_validator import EmailNotValidError, validate_email

    shown, header, rows = read_rows(path)
    email_col = _column(header, EMAIL_COLUMNS)
    if email_col is None:
        raise InputError(f"{shown}:1: there is no 'email' column (the first line has: "
                         f"{', '.join(repr(h) for h in header) or 'nothing'}). Name the column of addresses 'email'.")
    name_col = _column(header, NAME_COLUMNS)
    suppressions = suppressions if suppressions is not None else default_suppressions()
    suppressed = read_suppressions(suppressions) if suppressions else set()
    result = RecipientList(path, columns=header, suppressions_file=suppressions)
    seen: set[str] = set()
    for line, row in rows:
        raw = row[email_col].strip() if len(row) > email_col else ""
        if not raw:
            result.problems.append(Diagnostic("error", shown, line, "", "no email address on this line",
                                              code="recipient"))
            continue
        try:
            address = validate_email(raw, check_deliverability=False, allow_smtputf8=False).normalized
        except EmailNotValidError as exc:
            result.problems.append(Diagnostic("error", shown, line, "", f"'{raw}' is not a valid email address: {exc}",
                                              code="recipient"))
            continue
        key = address.lower()
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        if key in suppressed or raw.lower() in suppressed:
            result.suppressed += 1
            continue
        fields = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header) if name}
        if name_col is not None and any(ch in fields.get(header[name_col], "") for ch in "\r\n\0"):
            result.problems.append(Diagnostic("error", shown, line, "", "the name contains a line break; a name "
                                              "goes into the To: header and must be one line", code="recipient"))
            continue
        fields["email"] = address
        name = fields.get(header[name_col], "") if name_col is not None else ""
        result.recipients.append(Recipient(address, name, fields))
    return result


def summary(result: RecipientList) -> str:
    """One line: '8 recipients (10 rows: 1 invalid, 1 duplicate, 0 suppressed)'."""
    return (f"{len(result.recipients)} recipients ({result.rows} rows: {len(result.problems)} invalid, "
            f"{result.duplicates} duplicate, {result.suppressed} suppressed)")


def check_lines(result: RecipientList) -> list[str]:
    """What `newsletter recipients check` prints."""
    lines = [f"{display(result.path)}: {summary(result)}",
             f"  columns: {', '.join(result.columns)}"]
    if result.suppressions_file:
        lines.append(f"  suppressions: {display(result.suppressions_file)}")
    lines += [f"  {problem}" for problem in result.problems]
    return lines
