"""`newsletter archive`: a static site with every edition's web version, newest first, ready to publish.

Layout (what ARCHIVE_BASE_URL points at):  index.html, <id>/index.html, <id>/<image paths as in the edition>.
Each edition is built with `build()` into a temporary folder; nothing is written unless all editions build.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from newsletter_cli.compose import i18n, merge
from newsletter_cli.compose.build import Build, ThemeFile, archive_url, build, read_theme
from newsletter_cli.compose.model import Theme
from newsletter_cli.errors import EditionError, InputError
from newsletter_cli.project import EDITION_FILE, Project, display, display_dir
from newsletter_cli.web import page_environment

INDEX_FILE = "index.html"


@dataclass
class ArchivedEdition:
    """One edition on the site."""

    id: str
    subject: str
    preheader: str
    date: dt.date
    locale: str
    web_html: str
    files: list[tuple[Path, str]] = field(default_factory=list)  # (source file, path relative to <id>/)

    @property
    def month(self) -> str:
        return i18n.month_year(self.date, self.locale)


@dataclass
class ArchiveResult:
    out_dir: Path
    editions: list[ArchivedEdition]  # newest first
    skipped: list[str]  # why an edition was left out


def collect(tmp: Path, project: Project, theme: ThemeFile, *, include_future: bool = False,
            today: dt.date | None = None) -> tuple[list[ArchivedEdition], list[str]]:
    """Build every edition into `tmp` (all problems reported together); editions dated after today are drafts.
    The images made smaller by the build are in `tmp`: keep it until the site is written."""
    today = today or dt.date.today()
    editions, skipped, problems = [], [], []
    for edition_id in reversed(project.list_editions()):
        try:
            result = build(project.editions_dir / edition_id / EDITION_FILE, tmp / edition_id, theme, project=project)
        except EditionError as exc:
            problems += [str(p) for p in exc.problems] or [exc.message]
            continue
        edition = result.loaded.edition
        draft = _draft_reason(result, today, project)
        if draft and not include_future:
            skipped.append(f"{edition_id}: {draft} (a draft?); use --all to include it")
            continue
        files = [(path, src) for src, path in result.rendered.image_files.items()]
        # a merge field in the subject or preheader shows its default, as on the pages ("[[naam|leden]]": "leden")
        editions.append(ArchivedEdition(edition_id, merge.defaults(edition.subject, "header"),
                                        merge.defaults(edition.preheader, "header"), edition.date,
                                        edition.locale, result.rendered.web_html, files))
    if problems:
        raise InputError("The archive was not written; fix these editions first:\n" + "\n".join(problems))
    return editions, skipped


def _draft_reason(result: Build, today: dt.date, project: Project) -> str | None:
    """Why an edition looks unfinished: dated after today, or placeholder text left by `newsletter new`."""
    if result.loaded.edition.date > today:
        return f"dated {result.loaded.edition.date.isoformat()}, after today"
    from newsletter_cli.check.content import run_checks

    placeholders = [d for d in run_checks(result, project=project) if d.code == "placeholder"]
    return f"it still has placeholder text ({placeholders[0].place})" if placeholders else None


def index_html(editions: list[ArchivedEdition], theme: Theme) -> str:
    """The site's front page: every edition, newest first, in the newest edition's language."""
    locale = editions[0].locale if editions else "nl"
    words = i18n.strings(locale)
    return page_environment().get_template("archive_index.html.j2").render(
        editions=editions, theme=theme, locale=locale, words=words,
        intro=words["archive_intro"].format(name=theme.name),
    )


def write_site(editions: list[ArchivedEdition], out_dir: Path, theme: Theme) -> None:
    """Write each edition's folder, then the index (so a half-written site never lists a missing page)."""
    site = out_dir.resolve()
    try:
        site.mkdir(parents=True, exist_ok=True)
        for edition in editions:
            folder = site / edition.id
            folder.mkdir(exist_ok=True)
            _write(folder / INDEX_FILE, edition.web_html)
            for source, rel in edition.files:
                target = (folder / rel).resolve()
                if not target.is_relative_to(site):
                    raise InputError(f"{display(source)}: the image path '{rel}' points outside the edition's "
                                     "folder; put the image in the edition's images/ folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        _write(site / INDEX_FILE, index_html(editions, theme))
    except OSError as exc:
        raise InputError(f"Cannot write the archive to {display(out_dir)}: {exc.strerror or exc}") from None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_archive(out_dir: Path, project: Project, *, include_future: bool = False,
                  today: dt.date | None = None) -> ArchiveResult:
    """Build all editions and write the static site into `out_dir`."""
    with tempfile.TemporaryDirectory(prefix="newsletter-archive-") as tmp:
        theme = read_theme(project)  # once, for every edition and the index page
        editions, skipped = collect(Path(tmp), project, theme, include_future=include_future, today=today)
        if not editions and not skipped:
            raise InputError(f"No editions in {display_dir(project.editions_dir)}. Start one with: newsletter new "
                             "YYYY-MM")
        write_site(editions, out_dir, theme.theme)
    return ArchiveResult(out_dir, editions, skipped)


def report(result: ArchiveResult, project: Project) -> list[str]:
    """What the command prints: what was written, what was left out, where to publish it."""
    shown = display(result.out_dir)
    lines = [f"Wrote {shown}/index.html and {len(result.editions)} edition page"
             f"{'s' if len(result.editions) != 1 else ''}: " + (", ".join(e.id for e in result.editions) or "none")]
    lines += [f"  left out {why}" for why in result.skipped]
    if not result.editions:
        return lines
    url = archive_url(project, result.editions[0].id)
    if url:
        lines.append(f"Publish the contents of {shown}/ so that {url} shows the newest edition.")
    else:
        lines.append(f"Publish the contents of {shown}/ on a website, then set ARCHIVE_BASE_URL in .env to its "
                     "address: the emails then carry a 'view in your browser' link to their page there.")
    return lines
