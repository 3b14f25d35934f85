"""`newsletter new`: start next month's edition from the structure of the last one."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from babel.dates import format_date

from newsletter_cli.compose import load as loader
from newsletter_cli.compose.model import Edition
from newsletter_cli.compose.render import environment
from newsletter_cli.errors import InputError
from newsletter_cli.project import EDITION_FILE, Project, current, display

ID_RE = re.compile(r"^\d{4}-\d{2}$")


def guess_date(edition_id: str, previous: dt.date) -> dt.date:
    """The new edition's date: same day of the month as the previous one, in the month the id names."""
    if ID_RE.match(edition_id):
        year, month = map(int, edition_id.split("-"))
        if 1 <= month <= 12:
            for day in (previous.day, 28):
                try:
                    return dt.date(year, month, day)
                except ValueError:
                    continue
    return previous + dt.timedelta(days=30)


def create(edition_id: str, source_id: str | None, project: Project | None = None) -> Path:
    """Write editions/<id>/edition.yaml from the source edition; returns its path."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", edition_id):
        raise InputError(f"'{edition_id}' is not a usable edition id; use the year and month, e.g. 2025-10")
    project = current(project)
    target = project.editions_dir / edition_id / EDITION_FILE
    if target.exists():
        raise InputError(f"{display(target)} already exists; pick another id or edit that file")
    source = loader.load(project.resolve(source_id)).edition
    new_date = guess_date(edition_id, source.date)
    old_month = format_date(source.date, "LLLL y", locale=source.locale)
    new_month = format_date(new_date, "LLLL y", locale=source.locale)
    write_edition(target, source, source_id or project.list_editions()[-1], new_date,
                  source.subject.replace(old_month, new_month))
    return target


def write_edition(target: Path, source: Edition, source_label: str, new_date: dt.date, subject: str) -> None:
    """Write an edition.yaml with the structure of `source` and placeholder items (and its images/ folder)."""
    text = environment().get_template("new_edition.yaml.j2").render(
        source=source, source_id=source_label, date=new_date.isoformat(), subject=subject,
        agenda_rows=[{"date": [d for d in row.date if d >= new_date], "what": row.what}
                     for row in (source.agenda.rows if source.agenda else []) if max(row.date) >= new_date],
        q=_quote,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / "images").mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")


def _quote(value: str) -> str:
    """A YAML double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
