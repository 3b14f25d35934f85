"""Reading a member list from Excel (issue 20): a sheet whose rows were formatted down to row 1,048,576
(stored dimension A1:T1048576), 300 members with 20 columns: the tool (python-calamine) against openpyxl in
read-only mode (what it used before), each a whole process, with the process's own peak RSS.

With the dimension A1:XFD1048576 (a whole row formatted) openpyxl pads every row to 16,384 columns and did
not finish within 5 minutes; the tool reads that one in the same second (tests/test_corpus_excel_lists.py).

Run on its own: `.venv/bin/python bench/bench_lists.py` (not part of `make bench`'s page yet). Needs openpyxl
(a test dependency) for the peer and to write the workbook.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import Sample, fmt_sample, time_process
from test_corpus_excel_lists import formatted_to_the_bottom

TOOL = ("from pathlib import Path; from newsletter_cli.members.recipients import read_recipients; "
        "from newsletter_cli.project import Project; "
        "print(len(read_recipients(Path('leden.xlsx'), project=Project(Path('.'))).recipients))")
OPENPYXL = ("import io; from openpyxl import load_workbook; "
            "wb = load_workbook(io.BytesIO(open('leden.xlsx', 'rb').read()), read_only=True, data_only=True); "
            "print(sum(1 for row in wb.worksheets[0].iter_rows(values_only=True) if any(row)))")


def run(rounds: int = 3) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-lists-") as tmp:
        folder = Path(tmp)
        formatted_to_the_bottom(folder / "leden.xlsx", dimension="A1:T1048576")
        size = (folder / "leden.xlsx").stat().st_size
        results = {}
        for name, code, times_run in (("tool (python-calamine)", TOOL, rounds), ("openpyxl read-only", OPENPYXL, 1)):
            times, peaks = Sample(), []
            for _ in range(times_run):  # openpyxl: once, it takes most of a minute
                seconds, peak = time_process([sys.executable, "-c", code], cwd=folder, own_rss=True)
                times.add(seconds)
                peaks.append(peak)
            results[name] = {"median_s": times.median, "peak_mib": max(peaks) / 1024}
            print(f"{name:<24} {fmt_sample(times)}  peak {max(peaks) / 1024:.0f} MiB  ({size / 1000:.0f} KB file)")
    return results


if __name__ == "__main__":
    run()
