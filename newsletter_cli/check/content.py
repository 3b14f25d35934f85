"""`newsletter check`: find what embarrasses a secretariat after sending (links, images, size, ...)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt

from newsletter_cli.check import a11y as check_a11y
from newsletter_cli.check import links as check_links
from newsletter_cli.check.base import Context
from newsletter_cli.compose import i18n, merge
from newsletter_cli.compose import markdown as markup
from newsletter_cli.compose.model import YamlPath
from newsletter_cli.compose.render import GMAIL_CLIP_BYTES
from newsletter_cli.errors import Diagnostic
from newsletter_cli.project import Project
from newsletter_cli.words import count

if TYPE_CHECKING:
    from newsletter_cli.compose.build import Build

GMAIL_WARN_BYTES = 90_000
MESSAGE_WARN_BYTES = 2_000_000
MESSAGE_MAX_BYTES = 10_000_000  # many mail servers refuse larger messages
HEADER_BYTES = 3_000  # headers and MIME boundaries, roughly
SUBJECT_MAX = 78
TEXT_PART_MIN_RATIO = 0.6  # the plain text should hold at least this share of the HTML's words
WORDS_PER_IMAGE = 60
# Texts that `newsletter new` puts in a fresh edition, to be replaced.
PLACEHOLDERS = ("Schrijf hier het voorwoord", "Titel van het bericht", "Schrijf hier de tekst van het bericht",
                "Eén zin die in de inbox onder het onderwerp verschijnt", "https://...")
_HANDLED_ELSEWHERE = {"safelink", "size"}  # warnings of the loader/renderer that check reports itself


def run_checks(build: Build, *, online: bool = False, timeout: float = 10.0,
               project: Project) -> list[Diagnostic]:
    """Every finding for one built edition, errors first; `online` also fetches each link."""
    ctx = context_for(build, project)
    found_links = check_links.collect_links(ctx)
    facts = check_a11y.html_facts(build.rendered.html)
    results = [w for w in build.rendered.warnings if w.code not in _HANDLED_ELSEWHERE]
    results += check_size(ctx)
    results += check_links.check_links(ctx, found_links)
    images = check_links.collect_images(ctx)
    results += check_links.check_images(ctx, images)
    results += check_content(ctx)
    results += check_a11y.check_html(ctx, facts)
    results += check_a11y.check_contrast(ctx)
    results += check_a11y.check_logo(ctx)
    results += check_deliverability(ctx, facts)
    results += check_templates(project)
    if online:
        from newsletter_cli.check.online import check_online

        results += check_online(ctx, found_links, images, timeout=timeout)
    return sort_findings(results)


def check_templates(project: Project) -> list[Diagnostic]:
    """The project's template copies that keep the email at an older version of the program's template."""
    from newsletter_cli.compose.overrides import fix_for, outdated
    from newsletter_cli.project import display

    return [Diagnostic("warning", display(t.copy), None, "", t.outdated, fix_for(t), "template-outdated")
            for t in outdated(project.templates_dir) if t.copy is not None]


def sort_findings(findings: list[Diagnostic]) -> list[Diagnostic]:
    """Errors first, then by file and line; the same finding twice is shown once."""
    unique = list(dict.fromkeys(findings))
    return sorted(unique, key=lambda d: (d.severity != "error", d.file, d.line or 0))


def context_for(build: Build, project: Project) -> Context:
    """The check context: the build plus the theme it was built with (and its line numbers, for findings)."""
    used = build.theme
    return Context(build, used.theme, used.file, used.lines, root=project.root)


def check_size(ctx: Context) -> list[Diagnostic]:
    """The HTML part against Gmail's clipping, and the whole message with its images."""
    from newsletter_cli.compose.qp import qp_size

    rendered = ctx.build.rendered
    size = rendered.html_bytes_qp
    results = []
    longest = _longest_items(ctx)
    fix = f"shorten the longest items ({longest}) or move long texts to the website" if longest else \
        "shorten the edition or move long texts to the website"
    if size >= GMAIL_CLIP_BYTES:
        results.append(ctx.at("error", (), f"the HTML is {size:,} bytes as sent; Gmail clips messages over "
                              f"{GMAIL_CLIP_BYTES:,} bytes (102 KB): readers see '[Message clipped]' and lose "
                              "the end, including the unsubscribe link", fix, "size"))
    elif size >= GMAIL_WARN_BYTES:
        results.append(ctx.at("warning", (), f"the HTML is {size:,} bytes as sent, close to the {GMAIL_CLIP_BYTES:,} "
                              "bytes (102 KB) over which Gmail clips messages", fix, "size"))
    images = sum(_base64_size(f.stat().st_size) for f in check_links.local_image_files(ctx))
    total = size + qp_size(rendered.text) + images + HEADER_BYTES
    if total >= MESSAGE_MAX_BYTES:
        results.append(ctx.at("error", (), f"the whole message with its images is about {total / 1e6:.1f} MB; "
                              f"many mail servers refuse messages over {MESSAGE_MAX_BYTES / 1e6:.0f} MB",
                              "make the images smaller", "message-size"))
    elif total >= MESSAGE_WARN_BYTES:
        results.append(ctx.at("warning", (), f"the whole message with its images is about {total / 1e6:.1f} MB; "
                              "that is slow to open on a phone", "make the images smaller", "message-size"))
    return results


def _base64_size(raw: int) -> int:
    """Bytes of a base64 MIME part: 4 per 3, lines of 76 plus CRLF."""
    encoded = 4 * math.ceil(raw / 3)
    return encoded + 2 * math.ceil(encoded / 76)


def _longest_items(ctx: Context, count: int = 2) -> str:
    edition = ctx.build.loaded.edition
    sizes = [(len(markup.to_html(item.body, edition.allow_html).encode()), item.title)
             for section in edition.sections for item in section.items]
    top = sorted(sizes, reverse=True)[:count]
    return ", ".join(f'"{title}" {size / 1000:.0f} KB' for size, title in top if size)


def check_content(ctx: Context) -> list[Diagnostic]:
    """Subject, preheader, empty sections and items, dates in the past, leftover placeholders."""
    edition = ctx.build.loaded.edition
    results: list[Diagnostic] = []
    subject = merge.defaults(edition.subject, "header").strip()  # as a reader without own values sees it
    if not subject:
        results.append(ctx.at("error", ("subject",), "the subject is empty", "write a subject", "subject"))
    elif len(subject) > SUBJECT_MAX:
        results.append(ctx.at("warning", ("subject",), f"the subject is {len(subject)} characters; over "
                              f"{SUBJECT_MAX} it is cut off in most inboxes", "shorten it", "subject-long"))
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.6:
        results.append(ctx.at("warning", ("subject",), "the subject is mostly in CAPITALS; readers and spam "
                              "filters take that as shouting", "write it in normal sentence case", "subject-caps"))
    if subject.count("!") >= 2:
        results.append(ctx.at("warning", ("subject",), f"the subject has {subject.count('!')} exclamation marks; "
                              "spam filters distrust that", "use one at most", "subject-exclamation"))
    if not edition.preheader.strip():
        results.append(ctx.at("warning", (), "there is no preheader; the inbox then shows the first words of "
                              "the email (the masthead) next to the subject", "add preheader: with one sentence",
                              "preheader"))
    for s, section in enumerate(edition.sections):
        if not section.items and not section.intro.strip():
            results.append(ctx.at("error", ("sections", s), "the section is empty: it would show a heading with "
                                  "nothing under it", "add items or remove the section", "section-empty"))
        for i, item in enumerate(section.items):
            path = ("sections", s, "items", i)
            if not item.body.strip():
                alone = not (item.image or item.event or item.schedule or item.all_buttons)
                results.append(ctx.at("error" if alone else "warning", path, "the item has no text (body)" +
                                      (" and nothing else" if alone else ""), "add body: with the text", "item-empty"))
            if item.event:
                results += _past_dates(ctx, (*path, "event", "date"), item.event.date, "the event")
    if edition.agenda:
        for r, row in enumerate(edition.agenda.rows):
            results += _past_dates(ctx, ("agenda", "rows", r, "date"), row.date, f"agenda row '{row.what}'")
    results += _placeholders(ctx)
    return results


def _past_dates(ctx: Context, path: YamlPath, dates: list[dt.date], what: str) -> list[Diagnostic]:
    edition_date = ctx.build.loaded.edition.date
    return [ctx.at("warning", path, f"{what} is on {day.isoformat()}, before the edition date "
                   f"{edition_date.isoformat()}", "is it left over from an earlier edition?", "date-past")
            for day in dates if day < edition_date]


def _placeholders(ctx: Context) -> list[Diagnostic]:
    results = []
    for number, row in enumerate(ctx.source_lines, start=1):
        if row.lstrip().startswith("#"):
            continue
        for text in PLACEHOLDERS:
            if text.lower() in row.lower():
                results.append(ctx.at_line("error", number, f"the placeholder text '{text}' is still there",
                                           "replace it by the real text", "placeholder"))
    return results


def check_deliverability(ctx: Context, facts: check_a11y.HtmlFacts) -> list[Diagnostic]:
    """Plain-text part as complete as the HTML, an unsubscribe link, enough text next to the images."""
    from newsletter_cli.compose.render import UNSUBSCRIBE_FIELD

    rendered = ctx.build.rendered
    results = []
    text_words = [w for w in rendered.text.split() if not re.match(r"^(https?://|mailto:|\[\[)", w)]
    html_words = facts.words
    if html_words and len(text_words) < TEXT_PART_MIN_RATIO * len(html_words):
        results.append(ctx.at("warning", (), f"the plain-text part has {len(text_words)} words against "
                              f"{len(html_words)} in the HTML; spam filters distrust a text part that says less",
                              "write the content as Markdown instead of raw HTML", "text-part"))
    unsubscribe_words = (*(words["unsubscribe"].lower() for words in i18n.STRINGS.values()), "uitschrijven")
    in_html = any(href.strip() == UNSUBSCRIBE_FIELD or any(w in (href + " " + text).lower() for w in unsubscribe_words)
                  for href, text in facts.anchors)
    if not in_html or UNSUBSCRIBE_FIELD not in rendered.text:
        part = "HTML" if not in_html else "plain-text part"
        results.append(ctx.at("error", (), f"the {part} has no unsubscribe link; mail providers mark newsletters "
                              "without one as spam, and the law requires it", "keep the footer's unsubscribe link "
                              "in the templates", "unsubscribe"))
    results += check_address(ctx)
    if facts.images and len(html_words) < WORDS_PER_IMAGE * facts.images:
        results.append(ctx.at("warning", (), f"the email is mostly images ({facts.images} images, "
                              f"{len(html_words)} words); spam filters distrust that and many readers see "
                              "blocked images", "add text, or use fewer images", "text-image-ratio"))
    return results


def check_address(ctx: Context) -> list[Diagnostic]:
    """The footer's postal address: a bulk sender must show a real one, not the built-in placeholder."""
    from newsletter_cli.compose.model import PLACEHOLDER_ADDRESS

    address = " ".join(ctx.theme.address.split())
    if address and address != PLACEHOLDER_ADDRESS:
        return []
    shown = f"is the placeholder '{PLACEHOLDER_ADDRESS}'" if address else "is empty"
    return [ctx.for_theme("error", "address", f"the postal address in the footer {shown}; a newsletter must show "
                          "the sender's real postal address (the law and the big mail providers require it)",
                          "set address: in theme.yaml to the association's postal address", "address")]


def counts(findings: list[Diagnostic]) -> tuple[int, int]:
    errors = sum(1 for d in findings if d.severity == "error")
    return errors, len(findings) - errors


def summary(findings: list[Diagnostic]) -> str:
    errors, warnings = counts(findings)
    return f"{count(errors, 'error')}, {count(warnings, 'warning')}"


def findings_json(edition: str, findings: list[Diagnostic]) -> str:
    errors, warnings = counts(findings)
    return json.dumps({"edition": edition, "errors": errors, "warnings": warnings,
                       "findings": [{**d.to_dict(), "place": d.place} for d in findings]},
                      ensure_ascii=False, indent=2)


def verdict(findings: list[Diagnostic]) -> str:
    """The last word of `newsletter check`."""
    errors, warnings = counts(findings)
    if errors:
        return "fix the errors before sending"
    return "ready to send" if not warnings else "ready to send; look at the warnings"


def check_edition(path: Path, *, project: Project, online: bool = False,
                  timeout: float = 10.0) -> tuple[str, list[Diagnostic]]:
    """`newsletter check`: build in memory (nothing is written) and check; (the edition as shown, findings).

    Raises EditionError when the edition cannot be loaded (its problems are the findings then).
    """
    import tempfile

    from newsletter_cli.compose.build import build_in_memory
    from newsletter_cli.compose.images import fit_images

    built = build_in_memory(path, project=project)
    with tempfile.TemporaryDirectory(prefix="newsletter-check-") as tmp:  # photos as sent; the edition untouched
        fit_images(built.loaded, built.theme.theme, built.rendered, Path(tmp), reuse=built.out_dir)
        return built.loaded.display_path, run_checks(built, online=online, timeout=timeout, project=project)
