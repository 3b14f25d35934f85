"""Text files the users write (edition.yaml, .env, recipient lists): UTF-8, or an error naming the line."""

from __future__ import annotations

from newsletter_cli.errors import InputError

BOM = b"\xef\xbb\xbf"


def decode_utf8(data: bytes, shown: str, how: str, *, what: str = "the file", quote_line: bool = True) -> str:
    """UTF-8 with or without a BOM (Notepad, Excel), never mojibake: else the line, the byte and what to do.

    `how` says how to save the file as UTF-8 in the program the user writes it with; `quote_line` shows the
    offending line as Windows-1252 would read it (never for a file that may hold a password).
    """
    data = data.removeprefix(BOM)  # so that the error's position is one in `data`
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        sample = ""
        if quote_line:
            start = data.rfind(b"\n", 0, exc.start) + 1
            end = data.find(b"\n", exc.start)
            text = data[start: end if end >= 0 else len(data)].decode("cp1252", errors="replace").strip()
            sample = f" ('{text[:60]}')"
        raise InputError(f"{shown}:{line}: {what} is not UTF-8 (byte 0x{data[exc.start]:02x}); it looks like "
                         f"Windows-1252{sample}. Save it as UTF-8: {how}.") from None
