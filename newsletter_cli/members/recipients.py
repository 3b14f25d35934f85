"""Recipient lists (read by lists.py: .xlsx, or CSV as Excel writes it), validated and deduplicated."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.errors import Diagnostic, InputError
from newsletter_cli.members import suppressions as suppression_list
from newsletter_cli.members.lists import (
    EMAIL_NAMES,
    NAME_NAMES,
    find_column,
    normal_address,
    parse,
    read_list,
    suggestion,
)
from newsletter_cli.project import Project, display
from newsletter_cli.words import count

EMAIL_COLUMNS = EMAIL_NAMES  # as lists.normalize_column writes them: 'E-mail adres 1' is 'emailadres'
NAME_COLUMNS = NAME_NAMES


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
    """A checked recipient list: its problems and counts, and the valid rows themselves only when read
    without a `sink` (small lists: the review list). A send streams the rows into its journal instead, so a
    list of 50,000 is never held in memory."""

    path: Path
    problems: list[Diagnostic] = field(default_factory=list)
    duplicates: int = 0
    suppressed: int = 0
    columns: list[str] = field(default_factory=list)
    suppressions_file: Path | None = None
    count: int = 0  # how many recipients (valid, not duplicate, not suppressed)
    kept: list[Recipient] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what reading the file guessed (encoding, sheet, title lines)
    warnings: list[str] = field(default_factory=list)  # what the user must look at (letters lost to '?')
    duplicate_of: list[tuple[int, int]] = field(default_factory=list)  # (row, the earlier row with that address)

    @property
    def rows(self) -> int:
        return self.count + len(self.problems) + self.duplicates + self.suppressed

    @property
    def recipients(self) -> list[Recipient]:
        """The valid rows in file order (empty when they went to a sink)."""
        return self.kept

    def __iter__(self) -> Iterator[Recipient]:
        return iter(self.kept)


def read_recipients(path: Path, suppressions: Path | None = None, *, project: Project,
                    sink: Callable[[Recipient], None] | None = None, sheet: str | None = None) -> RecipientList:
    """Read, validate, dedupe and filter a recipient list (CSV or .xlsx, `sheet` or the first one); bad rows
    become problems, not exceptions. Those in `suppressions` (by default the project's suppressions.csv, when
    there is one) are left out.

    The file is read and checked whole once (lists.py turns it into UTF-8 CSV text, line numbers kept), then
    its rows are read from that text with the csv module: each valid row goes to `sink` when given (a send's
    journal, which is the send's queue), else it is kept in the result.
    """
    from email_validator import EmailNotValidError, validate_email

    shown = display(path)
    listed = read_list(path, shown, sheet)
    header, rows, header_line = parse(shown, listed)
    email_col = find_column(header, EMAIL_COLUMNS)
    if email_col is None and any("@" in cell for cell in header):
        raise InputError(f"{shown}:{header_line}: the first line is an address, not the names of the columns. "
                         "Add a first line that names them, e.g. email;naam (the column of addresses must be called "
                         "'email').")
    if email_col is None:
        raise InputError(f"{shown}:{header_line}: there is no 'email' column (the first line has: "
                         f"{', '.join(repr(h) for h in header) or 'nothing'}). The first line must name the "
                         "columns, and the column of addresses must be called 'email'."
                         + _did_you_mean(header))
    name_col = find_column(header, NAME_COLUMNS)
    suppressions = suppressions if suppressions is not None else suppression_list.existing(project)
    suppressed = suppression_list.addresses(suppressions) if suppressions else set()
    result = RecipientList(path, columns=header, suppressions_file=suppressions, notices=listed.notices)
    keep = sink if sink is not None else result.kept.append
    seen: dict[str, int] = {}  # address -> the row it was first on
    lost: list[tuple[int, str]] = []  # (line, word) where a '?' stands for a letter plain CSV could not hold
    csv_file = not _is_workbook(path)
    for line, row in rows:
        if csv_file and len(lost) < LOST_SHOWN:
            lost += [(line, word) for i, cell in enumerate(row) if i != email_col for word in _lost_letters(cell)]
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
        fields = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header) if name}
        if name_col is not None and any(ch in fields.get(header[name_col], "") for ch in "\r\n\0"):
            result.problems.append(Diagnostic("error", shown, line, "", "the name contains a line break; a name "
                                              "goes into the To: header and must be one line", code="recipient"))
            continue
        key = address.lower()  # only a row judged whole counts as seen: a bad row never hides a good one
        if key in seen:
            result.duplicates += 1
            result.duplicate_of.append((line, seen[key]))
            continue
        seen[key] = line
        if normal_address(address) in suppressed or normal_address(raw) in suppressed:
            result.suppressed += 1
            continue
        fields["email"] = address
        name = fields.get(header[name_col], "") if name_col is not None else ""
        keep(Recipient(address, name, fields))
        result.count += 1
    del seen
    if lost:
        lines = sorted({line for line, _ in lost})
        result.warnings.append(
            f"{shown}: a '?' stands between letters on line{'s' * (len(lines) > 1)} "
            f"{', '.join(map(str, lines[:LOST_SHOWN]))}{' and more' if len(lost) >= LOST_SHOWN else ''} "
            f"({', '.join(repr(word) for _, word in lost[:3])}): Excel's plain 'CSV' cannot hold letters such as "
            f"ş, ı, ğ and writes '?' instead, so the email would say '{lost[0][1]}'. Save the list from Excel as "
            "'CSV UTF-8 (comma delimited)' or as an .xlsx workbook, and use that file.")
    if not result.rows:
        raise InputError(f"{shown}:{header_line}: there are no addresses below the first line ({', '.join(header)}). "
                         "Is this the right file?")
    return result


LOST_SHOWN = 10  # lines named in the warning about letters lost to '?'
_LOST_RE = re.compile(r"[^\W\d_]+(?:\?+[^\W\d_]+)+")  # a word with a '?' between letters: Gül?en, Y?lmaz


def _lost_letters(cell: str) -> list[str]:
    """Words in `cell` where a '?' stands between letters (not in a web address or a query: ?a=1)."""
    if "?" not in cell or "/" in cell or "=" in cell:
        return []
    return _LOST_RE.findall(cell)


def _is_workbook(path: Path) -> bool:
    """An .xlsx holds every letter; only a CSV can have lost them."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _did_you_mean(header: list[str]) -> str:
    meant = suggestion(header)
    return f" Did you mean '{meant}'? Then call that column 'email'." if meant else ""


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
    if result.count:
        return
    shown = display(result.path)
    if result.problems:
        raise InputError("\n".join([f"Nobody to send to in {shown}: {summary(result)}. Fix these rows:",
                                    *problem_lines(result)]))
    raise InputError(f"Nobody to send to in {shown}: {summary(result)}"
                     + (f"; the addresses are in {display(result.suppressions_file)}"
                        if result.suppressed and result.suppressions_file else ""))


def summary(result: RecipientList) -> str:
    """One line: '8 recipients (10 rows: 1 invalid, 1 duplicate, 0 suppressed)'."""
    return (f"{count(result.count, 'recipient')} ({count(result.rows, 'row')}: {len(result.problems):,} invalid, "
            f"{result.duplicates:,} duplicate, {result.suppressed:,} suppressed)")


def check_lines(result: RecipientList) -> list[str]:
    """What `newsletter recipients check` prints."""
    lines = [f"{display(result.path)}: {summary(result)}",
             f"  columns: {', '.join(result.columns)}"]
    if result.suppressions_file:
        lines.append(f"  suppressions: {display(result.suppressions_file)}")
    lines += [f"  note: {notice}" for notice in result.notices]
    lines += [f"  warning: {warning}" for warning in result.warnings]
    lines += [f"  {problem}" for problem in result.problems]
    lines += [f"  duplicate: row {line} has the same address as row {first}; only row {first} is sent to"
              for line, first in result.duplicate_of]
    return lines
