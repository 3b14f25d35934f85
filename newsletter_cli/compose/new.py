"""`newsletter new`: start next month's edition from the structure of the last one."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from babel.dates import format_date, get_month_names

from newsletter_cli.compose import load as loader
from newsletter_cli.compose.model import Edition
from newsletter_cli.compose.render import environment
from newsletter_cli.errors import InputError
from newsletter_cli.project import EDITION_FILE, Project, display

ID_RE = re.compile(r"^(\d{4})-(\d{2})$")
ORDINALS = ("first", "second", "third", "fourth", "fifth")


@dataclass(frozen=True)
class NewEdition:
    """What `create` wrote, and how it chose the date (the command says so)."""

    path: Path
    date: dt.date
    date_reason: str


def parse_id(edition_id: str) -> tuple[int, int]:
    """(year, month) of an id such as 2025-10; an InputError that suggests the id for anything else.

    Ids are YYYY-MM so that sorting them sorts by date: 'the newest edition' is then the last month.
    """
    match = ID_RE.match(edition_id)
    if match and 1 <= int(match.group(2)) <= 12:
        return int(match.group(1)), int(match.group(2))
    if match:
        raise InputError(f"'{edition_id}' is not a usable edition id: {match.group(2)} is not a month (01-12); "
                         "use the year and month, e.g. 2025-10")
    hint = _suggest_id(edition_id)
    raise InputError(f"'{edition_id}' is not a usable edition id; write the year and month as YYYY-MM "
                     "(editions are ordered by it): " + (f"newsletter new {hint}" if hint else "e.g. 2025-10"))


def _suggest_id(text: str) -> str | None:
    """'oktober-2025' or 'Oct 2025' -> '2025-10': the month's name in Dutch or English and a year."""
    words = [w for w in re.split(r"[^0-9A-Za-zÀ-ÿ]+", text.lower()) if w]
    years = [w for w in words if re.fullmatch(r"\d{4}", w)]
    names = [(name.lower(), number) for locale in ("nl", "en")
             for number, name in get_month_names("wide", locale=locale).items()]
    months = {number for w in words if len(w) >= 3 and not w.isdigit()
              for name, number in names if name.startswith(w)}  # 'okt', 'sept', 'october'
    return f"{years[0]}-{months.pop():02d}" if len(years) == 1 and len(months) == 1 else None


def guess_date(year: int, month: int, previous: dt.date) -> tuple[dt.date, str]:
    """The new edition's date and why: the same weekday, in the same week of the month, as the previous one.

    Keeping the day of the month would move the newsletter to a weekend now and then (2025-09-25 was a
    Thursday, 2025-10-25 is a Saturday); 'the fourth Thursday' keeps the rhythm the secretariat sends in.
    A previous date in the month's fifth week becomes the last such weekday.
    """
    week = (previous.day - 1) // 7
    days = [day for day in range(1, calendar.monthrange(year, month)[1] + 1)
            if dt.date(year, month, day).weekday() == previous.weekday()]
    date = dt.date(year, month, days[min(week, len(days) - 1)])
    weekday = format_date(previous, "EEEE", locale="en")
    which = "last" if week >= 4 else ORDINALS[week]
    return date, (f"the {which} {weekday} of the month, like {previous.isoformat()}; "
                  "change date: in the file if you send on another day")


class _Dumper(yaml.SafeDumper):
    """PyYAML's emitter, with text of several lines written as a `|` block so that its line breaks stay."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.strip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def yaml_field(key: str, value: Any, indent: int = 0) -> str:
    """`key: value` as PyYAML writes it, its further lines indented to stand under `key`."""
    text = yaml.dump({key: value}, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000)
    return re.sub(r"\n(?=.)", "\n" + " " * indent, text.rstrip("\n"))  # blank lines stay empty


def yaml_flow(value: Any) -> str:
    """A value on one line in YAML's flow style, e.g. {date: [2025-10-09], what: Bestuursvergadering}."""
    return yaml.dump(value, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000,
                     default_flow_style=True).rstrip("\n").removesuffix("\n...")


def create(edition_id: str, source_id: str | None, project: Project) -> NewEdition:
    """Write editions/<id>/edition.yaml from the source edition."""
    year, month = parse_id(edition_id)
    target = project.editions_dir / edition_id / EDITION_FILE
    if target.exists():
        raise InputError(f"{display(target)} already exists; pick another id or edit that file")
    source = loader.load(project.resolve(source_id)).edition
    new_date, reason = guess_date(year, month, source.date)
    old_month = format_date(source.date, "LLLL y", locale=source.locale)
    new_month = format_date(new_date, "LLLL y", locale=source.locale)
    write_edition(target, source, source_id or project.list_editions()[-1], new_date,
                  source.subject.replace(old_month, new_month))
    return NewEdition(target, new_date, reason)


def write_edition(target: Path, source: Edition, source_label: str, new_date: dt.date, subject: str) -> None:
    """Write an edition.yaml with the structure of `source` and placeholder items (and its images/ folder)."""
    ahead = sorted((sorted(d for d in row.date if d >= new_date), row.what)
                   for row in (source.agenda.rows if source.agenda else []) if max(row.date) >= new_date)
    rows = [{"date": dates, "what": what} for dates, what in ahead]
    text = environment().get_template("new_edition.yaml.j2").render(
        source=source, source_id=source_label, date=new_date, subject=subject, agenda_rows=rows,
        field=yaml_field, flow=yaml_flow,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / "images").mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")
