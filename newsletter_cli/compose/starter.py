"""`newsletter init FOLDER`: a new project folder with everything a secretariat starts from.

The installed package carries the default templates and house style; a project is the association's own
folder next to it: its editions, a templates/ folder for the templates it changes (empty but for a README:
every other template comes from the program, so an upgrade reaches it), its theme.yaml, example
settings and lists, and a short README in Dutch. The questions themselves are asked by cli.py.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from babel.dates import format_date
from pydantic import ValidationError

from newsletter_cli.compose.model import Agenda, Edition, Intro, Section, Theme
from newsletter_cli.compose.new import write_edition
from newsletter_cli.errors import InputError
from newsletter_cli.project import (
    EDITION_FILE,
    EDITIONS_DIR,
    TEMPLATES_DIR,
    THEME_FILE,
    Project,
    display,
)

FILES = Path(__file__).parent / "starter_files"
# (file in the package, name in the project)
COPIED = (("env.example", ".env.example"), ("recipients.example.csv", "recipients.example.csv"),
          ("review.example.csv", "review.example.csv"), ("README.md", "README.md"),
          ("templates-README.md", f"{TEMPLATES_DIR}/README.md"), ("gitignore", ".gitignore"))
LOGO_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class HouseStyle:
    """The answers to init's questions."""

    name: str
    short_name: str
    website: str
    address: str
    primary: str = Theme.model_fields["primary"].default
    accent: str = Theme.model_fields["accent"].default
    logo: Path | None = None


def short_name(name: str) -> str:
    """The initials of a name, as associations abbreviate themselves: Vereniging Zuid-Hollandse Gemeenten -> VZHG."""
    return "".join(word[0].upper() for word in re.split(r"[\s-]+", name) if word[:1].isalpha()) or name


def check_colour(value: str) -> str:
    value = value.strip()
    if not COLOUR.match(value):
        raise ValueError(f"'{value}' is not a colour: write it as # and six hex digits, e.g. #00566e")
    return value


def check_website(value: str) -> str:
    """A website as written, with https:// added when it starts with the name (vzhg.nl, www.vzhg.nl/nieuws)."""
    value = value.strip()
    if value and "://" not in value and not value.startswith(("http:", "https:", "/")):
        value = f"https://{value}"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or "." not in parts.netloc:
        raise ValueError(f"'{value}' is not a website address: write it in full, e.g. https://vzhg.nl/")
    return value


def check_logo(value: str | Path) -> Path:
    path = Path(value).expanduser()
    if path.suffix.lower() not in LOGO_SUFFIXES:
        raise ValueError(f"'{value}' is not a PNG, JPEG or GIF file; email programs show only those")
    if not path.is_file():
        raise ValueError(f"'{value}' does not exist; give the path of the logo file")
    return path


def conflicts(folder: Path) -> list[Path]:
    """What init would overwrite in `folder`; it writes into an empty or new folder only."""
    names = [EDITIONS_DIR, THEME_FILE, TEMPLATES_DIR, *(name.split("/")[0] for _, name in COPIED)]
    return [folder / name for name in dict.fromkeys(names) if (folder / name).exists()]


def create(folder: Path, style: HouseStyle, today: dt.date | None = None) -> list[Path]:
    """Write the project; returns what it wrote (top-level entries) for the summary."""
    if taken := conflicts(folder):
        raise InputError(f"{display(folder)} already has {', '.join(p.name for p in taken)}; init never overwrites "
                         "anything: pick a new folder name, or run init in an empty folder")
    theme = _theme(style)
    today = today or dt.date.today()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = [_write_theme(folder, theme, style.logo), _starter_edition(folder, theme, today)]
        for source, name in COPIED:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(FILES / source, target)
            written.append(target)
    except OSError as exc:
        raise InputError(f"Cannot write the project to {display(folder)}: {exc.strerror or exc}") from None
    return written


def _theme(style: HouseStyle) -> Theme:
    logo = f"logo{style.logo.suffix.lower()}" if style.logo else None
    try:
        return Theme(name=style.name.strip(), short_name=style.short_name.strip(), website=style.website.strip(),
                     address=style.address.strip(), primary=style.primary, accent=style.accent, logo=logo)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"The house style is not usable: {details}") from None


def _write_theme(folder: Path, theme: Theme, logo: Path | None) -> Path:
    if logo is not None and theme.logo:
        shutil.copyfile(logo, folder / theme.logo)
    keys = ("name", "short_name", "website", "address", "logo", "primary", "accent")
    data = {key: getattr(theme, key) for key in keys if getattr(theme, key) is not None}
    header = ("# House style: the association's name, website, postal address (in every email's footer),\n"
              "# colours (#RRGGBB) and logo (a file in this folder). Save and `newsletter preview` shows it.\n")
    target = Project(folder).theme_file
    target.write_text(header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def _starter_edition(folder: Path, theme: Theme, today: dt.date) -> Path:
    """This month's edition, with the sections most newsletters have and placeholder items."""
    month = format_date(today, "LLLL y", locale="nl")
    shape = Edition(
        subject=f"Nieuwsbrief {theme.short_name} - {month}", date=today, locale="nl",
        intro=Intro(heading="[[aanhef|Beste lezer]],", signature=f"Het bestuur van de {theme.name}"),
        sections=[Section(title="Vanuit het bestuur"), Section(title="Uit de regio")],
        agenda=Agenda(title="Agenda"),
    )
    target = Project(folder).editions_dir / today.strftime("%Y-%m") / EDITION_FILE
    write_edition(target, shape, "newsletter init", today, shape.subject)
    return target
