"""Member lists as the secretariat has them: an Excel workbook (.xlsx), or a CSV file from Excel in UTF-8 or
Windows-1252, with or without a `sep=;` first line, a title above the column names, and the column of addresses
called anything from `Email` to `E-mailadres 1`.

Every form is turned into one UTF-8 CSV text in which line N is row N of the file (lines that are not part of
the list, such as a title or `sep=;`, are left empty), so that the reader in recipients.py and every message
can name the line (or the Excel row) the user sees. What was guessed comes back as notices, for cli.py to show.
`read_rows` reads that text with the csv module (recipients.py and suppressions.py both read their files so);
the cell helpers keep a cell that Excel would take for a formula inert, and addresses in one form to compare.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.errors import InputError
from newsletter_cli.project import display
from newsletter_cli.textfile import BOM, line_at

MAX_BYTES = 100_000_000
SAVE_AS_UTF8 = "in Excel: File > Save As > 'CSV UTF-8 (comma delimited)' ('CSV UTF-8 (door komma's gescheiden)')"
EMAIL_NAMES = ("email", "emailadres", "emailaddress", "mail", "mailadres", "mailaddress")
NAME_NAMES = ("name", "naam", "volledigenaam", "fullname")
HEADER_SEARCH = 10  # how many non-blank lines may stand above the column names (a title, a date, ...)
LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # a physical line with its end, or the last one
_SEP_RE = re.compile(r"sep=(.)\s*$", re.IGNORECASE)
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")  # a non-ASCII character as UTF-8 writes it
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes Excel read a cell as a formula
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0"  # the old binary Excel format (.xls)


@dataclass
class ListText:
    """A list as UTF-8 CSV text, line numbers kept; `text` is None when the file holds nothing."""

    text: str | None
    delimiter: str = ","
    notices: list[str] = field(default_factory=list)


def normalize_column(name: str) -> str:
    """'E-mail adres 1' -> 'emailadres': case, spaces, hyphens, dots and a trailing number do not matter."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return re.sub(r"\d+$", "", re.sub(r"[\s\-_.]+", "", folded))


def find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    """The first column (left to right) whose name normalizes to one of `names`."""
    return next((i for i, cell in enumerate(header) if normalize_column(cell) in names), None)


def suggestion(header: list[str]) -> str | None:
    """The column that was most likely meant as the addresses (for "did you mean"), or None."""
    for cell in header:
        key = normalize_column(cell)
        if key and ("mail" in key or difflib.get_close_matches(key, EMAIL_NAMES, n=1, cutoff=0.75)):
            return cell
    return None


def read_list(path: Path, shown: str, sheet: str | None = None) -> ListText:
    """The list in `path` (an .xlsx workbook or a CSV file, decided by its bytes) as UTF-8 CSV text."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{shown}: the file is over {MAX_BYTES // 1_000_000} MB. Is this the right file?")
        with path.open("rb") as handle:
            start = handle.read(100)
    except OSError as exc:
        raise InputError(f"{shown}: cannot read the file: {exc.strerror}") from None
    if start.startswith(_ZIP) and b"opendocument" in start:  # the uncompressed "mimetype" entry comes first
        raise InputError(f"{shown}: this is an OpenDocument spreadsheet (.ods, from LibreOffice). Save it as "
                         "'Excel 2007-365 (.xlsx)' or as CSV (UTF-8).")
    if start.startswith(_ZIP):
        return _from_workbook(path, shown, sheet)
    if start.startswith(_OLE):
        raise InputError(f"{shown}: this is an old Excel workbook (.xls). In Excel: File > Save As > "
                         "'Excel Workbook (*.xlsx)', or 'CSV UTF-8'.")
    if sheet is not None:
        raise InputError(f"{shown}: --sheet is for Excel workbooks (.xlsx); this is a CSV file.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{shown}: cannot read the file: {exc.strerror}") from None
    return _from_csv(data, shown)


def _from_csv(data: bytes, shown: str) -> ListText:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{shown}: the file is UTF-16 (what Excel calls 'Unicode Text'), not UTF-8. "
                         f"Save it as UTF-8: {SAVE_AS_UTF8}.")
    nul = data.find(b"\0")
    if 0 <= nul < 4096:
        raise InputError(f"{shown}: this is not a CSV text file. Save it from Excel as a workbook (.xlsx) or "
                         f"as CSV: {SAVE_AS_UTF8}.")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{shown}:{line}: this line contains a NUL character (a zero byte), "
                         "so the file is damaged. Remove the character, or save the list again from Excel.")
    text, notices = decode(data, shown)
    return prepare(text, None, notices)


def decode(data: bytes, shown: str) -> tuple[str, list[str]]:
    """UTF-8 (with or without BOM), else Windows-1252 with a notice: decided by the bytes, never mojibake.

    A file with both (UTF-8 characters and bytes that are not UTF-8) has been pasted together from two
    sources; no single reading is right, so it is refused at the first line that is not UTF-8.
    """
    data = data.removeprefix(BOM)  # so that the error's position is one in `data`
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        bad = exc.start
    line, sample = line_at(data, bad)
    if _UTF8_SEQUENCE.search(data):
        raise InputError(f"{shown}:{line}: the file mixes two encodings: it has UTF-8 text, but this line is "
                         f"Windows-1252 (byte 0x{data[bad]:02x}: '{sample}'). Open it in Excel, check the "
                         f"accented letters, and save it again: {SAVE_AS_UTF8}.")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = line_at(data, exc.start)[0]
        raise InputError(f"{shown}:{line}: the file is neither UTF-8 nor Windows-1252 (byte "
                         f"0x{data[exc.start]:02x}); save it again: {SAVE_AS_UTF8}.") from None
    notice = (f"read as Windows-1252 (Excel's plain 'CSV' on Windows), not UTF-8: check the accented letters "
              f"on line {line} ('{sample}')")
    return text, [notice]


def sniff_delimiter(header: str) -> str:
    """`;` (Dutch Excel), `,` or a tab: whichever the header line has most of."""
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _blank(line: str) -> bool:
    return not line.strip(" \t;,")


def _cells(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def prepare(text: str, delimiter: str | None, notices: list[str], unit: str = "line") -> ListText:
    """Understand `sep=;` and find the line with the column names (the first one naming an address column among
    the first few, else the first line with something on it); the lines above it are emptied, numbers kept."""
    lines = LINE_RE.finditer(text)
    blanked, number, header = 0, 0, None
    first: tuple[int, int] | None = None  # (line number, offset) of the first non-blank line
    looked = 0
    for match in lines:
        number += 1
        line = match.group().rstrip("\r\n")
        sep = _SEP_RE.match(line) if number == 1 else None
        if sep:
            delimiter, blanked = sep.group(1), match.end()
            continue
        if _blank(line):
            continue
        first = first or (number, match.start())
        if find_column([c.strip() for c in _cells(line, delimiter or sniff_delimiter(line))], EMAIL_NAMES) is not None:
            header = (number, match.start(), line)
            break
        looked += 1
        if looked >= HEADER_SEARCH:
            break
    if first is None:
        return ListText(None, delimiter or ",", notices)
    if header is None:
        number, offset = first
        line = LINE_RE.match(text, offset).group().rstrip("\r\n")  # type: ignore[union-attr]
    else:
        number, offset, line = header
        if number > first[0]:
            notices.append(f"the column names are on {unit} {number}; the {unit}s above them are skipped")
    if offset or blanked:
        text = "\n" * (number - 1) + text[offset:]
    return ListText(text, delimiter or sniff_delimiter(line), notices)


def _cell_text(value: object) -> str:
    """A cell as the user sees it: 12.0 as 12, a date as 2025-09-30, line breaks inside a cell as spaces."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return " ".join(str(value).split()) if isinstance(value, str) and ("\n" in value or "\r" in value) \
        else str(value)


def _rows_as_csv(rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """One CSV line per sheet row, empty rows between kept as empty lines (so line N is row N); the empty rows
    after the last one with a value (a million formatted rows below the list) are dropped, never held."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    empty = 0  # empty rows seen since the last one with a value
    for row in rows:
        if all(value is None or value == "" for value in row):
            empty += 1
            continue
        cells = [_cell_text(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:  # only spaces
            empty += 1
            continue
        writer.writerow(cells)
        yield "\n" * empty + buffer.getvalue()
        empty = 0
        buffer.seek(0)
        buffer.truncate()


def _from_workbook(path: Path, shown: str, sheet: str | None) -> ListText:
    """The first sheet (or `sheet`) of an .xlsx workbook, read with python-calamine (Rust).

    Not openpyxl: a sheet whose rows were formatted down to row 1,048,576 (a 108 KB file) took it 45 s and
    over 600 MB even in read-only mode, one Python object per empty row; calamine keeps only the cells with a
    value (under a second, a few MB). The stored dimension is not used, so a bogus or missing one does no harm.
    """
    from python_calamine import CalamineWorkbook

    try:
        # From the bytes, not the path: the format is told by the content, whatever the file is called.
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(path.read_bytes()))
        names = list(workbook.sheet_names)
        if sheet is not None and sheet not in names:
            raise InputError(f"{shown}: there is no sheet '{sheet}'; the workbook has: "
                             f"{', '.join(repr(n) for n in names)}.")
        chosen = sheet if sheet is not None else names[0]
        rows = workbook.get_sheet_by_name(chosen).to_python(skip_empty_area=False)  # row 1 first: line N is row N
        text = "".join(_rows_as_csv(rows))
    except InputError:
        raise
    except Exception as exc:  # a damaged workbook fails in many ways inside calamine and zipfile
        raise InputError(f"{shown}: this looks like an Excel workbook, but it cannot be read ({exc}). Open it in "
                         "Excel and save it again as 'Excel Workbook (*.xlsx)'.") from None
    if len(names) > 1 and not text.strip(" \n,"):
        raise InputError(f"{shown}: the sheet '{chosen}' is empty; the workbook has: "
                         f"{', '.join(repr(n) for n in names)}. Choose one with --sheet NAME.")
    notices = []
    if len(names) > 1:
        notices.append(f"sheet '{chosen}' (the workbook has {len(names)} sheets: {', '.join(names)}; "
                       "--sheet NAME reads another)")
    return prepare(text, ",", notices, unit="row")


def _csv_problem(error: str) -> str:
    """What a csv.Error means for the person who made the file."""
    if "unexpected end of data" in error or "field larger than field limit" in error:
        return ("a quote (\") opened on this line is never closed, so the rest of the file would be read as one "
                "cell. Close the quote, or remove it.")
    if "expected after" in error:
        return ("a cell has text after its closing quote (\"). Put the whole cell in quotes and double each quote "
                "inside it (\"\"), or remove the quotes.")
    return f"cannot read this line: {error}"


def empty(shown: str) -> InputError:
    return InputError(f"{shown}: the file is empty; it needs a header line with an 'email' column.")


Rows = Iterator[tuple[int, list[str]]]  # (line, cells) of each non-blank row, in file order


def parse(shown: str, listed: ListText) -> tuple[list[str], Rows, int]:
    """(header in lower case, (line, row) pairs, the header's line) of a list's text, read with the csv module.

    Lines are counted as an editor counts them (\n, \r\n or \r; line breaks inside quoted cells kept), so a
    name with a line break is caught and U+2028 and the like do not split a row (str.splitlines would).
    """
    if listed.text is None:
        raise empty(shown)
    text = listed.text  # the lines are sliced from it as the reader goes (a StringIO would copy it whole)
    reader = csv.reader((match.group() for match in LINE_RE.finditer(text)), delimiter=listed.delimiter,
                        strict=True)

    def rows() -> Rows:
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
        raise empty(shown)
    header = [cell.strip().lower() for cell in header_row[1]]
    return header, iterator, header_row[0]


def read_rows(path: Path, allow_empty: bool = False) -> tuple[str, list[str], Rows, int]:
    """(shown name, header, (line, row) pairs, the header's line) of a list file; blank rows are skipped.

    An empty file is an error unless `allow_empty` (then: no header, no rows).
    """
    shown = display(path)
    listed = read_list(path, shown)
    if listed.text is None and allow_empty:
        return shown, [], iter(()), 1
    return (shown, *parse(shown, listed))


def normal_address(address: str) -> str:
    """The one form addresses are compared in: lower case, the domain in IDNA (xn--) form, so that
    `user@xn--bcher-kva.example` and `User@Bücher.example` are the same member."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address.lower()
    import idna

    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        pass
    return f"{local}@{domain}".lower()


def cell_text(value: str) -> str:
    """A cell as written by `excel_safe`, read back: the quote that kept a formula character inert is dropped."""
    value = value.strip()
    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_START else value


def excel_safe(value: str) -> str:
    """A value Excel shows as text: a leading = + - @ tab or CR would make it a formula, so it gets a quote."""
    return "'" + value if value[:1] in FORMULA_START else value
