"""Recipient lists as Dutch Excel writes them: UTF-8 with or without BOM, `;` or `,`, one address a row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Diagnostic, InputError
from .loader import display

SUPPRESSIONS_FILE = "suppressions.csv"
EMAIL_COLUMNS = ("email", "e-mail", "emailadres", "e-mailadres", "mail", "email address", "e-mail address")
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
    data = data.removeprefix(b"\xef\xbb\xbf")  # the BOM, so that the error's position is one in `data`
    try:
        return data.decode("utf-8")
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


def _csv_problem(error: str) -> str:
    """What a csv.Error means for the person who made the file."""
    if "unexpected end of data" in error or "field larger than field limit" in error:
        return ("a quote (\") opened on this line is never closed, so the rest of the file would be read as one "
                "cell. Close the quote, or remove it.")
    if "expected after" in error:
        return ("a cell has text after its closing quote (\"). Put the whole cell in quotes and double each quote "
                "inside it (\"\"), or remove the quotes.")
    return f"cannot read this line: {error}"


def read_rows(path: Path, allow_empty: bool = False) -> tuple[str, list[str], Iterator[tuple[int, list[str]]], int]:
    """(shown name, header, (line, row) pairs, the header's line) of a CSV file; blank rows are skipped.

    An empty file is an error unless `allow_empty` (then: no header, no rows).
    """
    shown = display(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{shown}: the file is over {MAX_BYTES // 1_000_000} MB. Is this the right file?")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{shown}: cannot read the file: {exc.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{shown}: the file is UTF-16 (what Excel calls 'Unicode Text'), not UTF-8. "
                         f"Save it as UTF-8: {SAVE_AS_UTF8}.")
    nul = data.find(b"\0")
    if 0 <= nul < 4096:
        raise InputError(f"{shown}: this is not a CSV text file (is it an .xlsx? {SAVE_AS_UTF8}).")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{shown}:{line}: this line contains a NUL character (a zero byte), "
                         "so the file is damaged. Remove the character, or save the list again from Excel.")
    text = decode(data, shown)
    empty = InputError(f"{shown}: the file is empty; it needs a header line with an 'email' column.")
    first_line = next((line for line in text.splitlines() if line.strip(" \t;,")), None)
    if first_line is None:
        if allow_empty:
            return shown, [], iter(()), 1
        raise empty
    # Physical lines as an editor counts them (\n, \r\n or \r), line breaks inside quoted cells kept, so a name
    # with a line break is caught and U+2028 and the like do not split a row (str.splitlines would).
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first_line), strict=True)

    def rows() -> Iterator[tuple[int, list[str]]]:
        line = reader.line_num + 1
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield line, row
                line = reader.line_num + 1
        except csv.Error as exc:
            raise InputError(f"{shown}:{line}: {_csv_problem(str(exc))}") from None

    iterator = rows()
    header_row = next(iterator, None)
    if header_row is None:
        raise empty
    header = [cell.strip().lower() for cell in header_row[1]]
    return shown, header, iterator, header_row[0]


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def read_suppressions(path: Path) -> set[str]:
    """Addresses never to send to (unsubscribed, bounced), lower case: an 'email' column, or the first one."""
    shown, header, rows, _ = read_rows(path, allow_empty=True)  # nobody unsubscribed yet
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

    shown, header, rows, header_line = read_rows(path)
    email_col = _column(header, EMAIL_COLUMNS)
    if email_col is None and any("@" in cell for cell in header):
        raise InputError(f"{shown}:{header_line}: the first line is an address, not the names of the columns. "
                         "Add a first line that names them, e.g. email;naam (the column of addresses must be called "
                         "'email').")
    if email_col is None:
        raise InputError(f"{shown}:{header_line}: there is no 'email' column (the first line has: "
                         f"{', '.join(repr(h) for h in header) or 'nothing'}). The first line must name the "
                         "columns, and the column of addresses must be called 'email'.")
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
    if not result.rows:
        raise InputError(f"{shown}:{header_line}: there are no addresses below the first line ({', '.join(header)}). "
                         "Is this the right file?")
    return result


SHOWN_PROBLEMS = 20  # a send lists this many invalid rows; `newsletter recipients check` lists them all


def problem_lines(result: RecipientList, limit: int = SHOWN_PROBLEMS) -> list[str]:
    """The invalid rows as `file:line: message`, the first `limit` of them and how many more there are."""
    lines = [str(problem) for problem in result.problems[:limit]]
    if len(result.problems) > limit:
        lines.append(f"... and {len(result.problems) - limit} more invalid rows: "
                     f"newsletter recipients check {display(result.path)} lists them all")
    return lines


def require_recipients(result: RecipientList) -> None:
    """Refuse a list that leaves nobody to send to (every row invalid, a duplicate or suppressed)."""
    if result.recipients:
        return
    shown = display(result.path)
    if result.problems:
        raise InputError("\n".join([f"Nobody to send to in {shown}: {summary(result)}. Fix these rows:",
                                    *problem_lines(result)]))
    raise InputError(f"Nobody to send to in {shown}: {summary(result)}"
                     + (f"; the addresses are in {display(result.suppressions_file)}" if result.suppressed else ""))


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
