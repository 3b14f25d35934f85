"""Words and dates the readers see (the email, its web page, the archive), in the edition's locale (Dutch by default).

The one table of those words: a new locale is one more entry here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from babel.dates import format_date
from babel.lists import format_list

STRINGS: dict[str, dict[str, str]] = {
    "nl": {
        "view_in_browser": "Bekijk deze nieuwsbrief in uw browser",
        "date": "Datum",
        "time": "Tijd",
        "location": "Locatie",
        "practical": "Praktische informatie",
        "programme": "Programma",
        "agenda": "Agenda",
        "newsletter": "Nieuwsbrief",
        "unsubscribe": "Afmelden",
        "why": "U ontvangt deze nieuwsbrief van de {name} omdat u op onze verzendlijst staat.",
        "unsubscribe_text": "Wilt u deze nieuwsbrief niet meer ontvangen? Meld u af",
        "links": "Links",
        "read_online": "Online lezen",
        "contents": "In deze nieuwsbrief",
        "archive_title": "Archief nieuwsbrief",
        "archive_intro": "Alle edities van de nieuwsbrief van de {name}, de nieuwste bovenaan.",
        "archive_empty": "Nog geen edities.",
    },
    "en": {
        "view_in_browser": "View this newsletter in your browser",
        "date": "Date",
        "time": "Time",
        "location": "Location",
        "practical": "Practical information",
        "programme": "Programme",
        "agenda": "Agenda",
        "newsletter": "Newsletter",
        "unsubscribe": "Unsubscribe",
        "why": "You receive this newsletter from the {name} because you are on our mailing list.",
        "unsubscribe_text": "No longer want to receive this newsletter? Unsubscribe",
        "links": "Links",
        "read_online": "Read online",
        "contents": "In this newsletter",
        "archive_title": "Newsletter archive",
        "archive_intro": "Every edition of the {name} newsletter, newest first.",
        "archive_empty": "No editions yet.",
    },
}


def strings(locale: str) -> dict[str, str]:
    """The words for `locale`; Dutch for a locale without its own."""
    return STRINGS.get(locale, STRINGS["nl"])


def long_date(day: dt.date, locale: str) -> str:
    """'vrijdag 21 november 2025'."""
    return format_date(day, "EEEE d MMMM y", locale=locale)


def day_month_year(day: dt.date, locale: str) -> str:
    """'21 november 2025'."""
    return format_date(day, "d MMMM y", locale=locale)


def month_year(day: dt.date, locale: str) -> str:
    """'september 2025'."""
    return format_date(day, "LLLL y", locale=locale)


def date_list(days: Sequence[dt.date], locale: str, weekday: bool = False) -> str:
    """'9 oktober en 4 december 2025' (the year once when all share it, as people write it); the weekday is
    added when asked for."""
    same_year = len({d.year for d in days}) == 1
    pattern = ("EEEE " if weekday else "") + "d MMMM"
    texts = [format_date(d, pattern if same_year and n < len(days) - 1 else pattern + " y", locale=locale)
             for n, d in enumerate(days)]
    return format_list(texts, locale=locale)
