"""The command line: a thin click layer over the library. Heavy modules are imported per command."""

from __future__ import annotations

from pathlib import Path

import click

from . import __version__

EDITION_HELP = "An edition id (2025-09), its folder or its edition.yaml; default: the newest edition."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
def cli():
    """Compose, preview, check and send the association's email newsletter.

    Run the commands from the project folder (the one with editions/). Typical month:

    \b
      newsletter new 2025-10 --from 2025-09   start from last month
      newsletter build 2025-10                render HTML and text
      newsletter preview 2025-10              look at it in the browser
      newsletter check 2025-10                find broken links, size, ...
      newsletter send 2025-10 --test          send to the review list
      newsletter send 2025-10 --recipients leden.csv
    """


def print_warnings(warnings) -> None:
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@cli.command()
@click.argument("edition", required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the files here instead of editions/<id>/build/.")
def build(edition, out_dir):
    """Render an edition to email.html, email.txt, email.mjml and web.html.

    EDITION is an edition id (2025-09), its folder or its edition.yaml; without it, the newest edition.
    Prints a summary: items, links, images and the size as sent against Gmail's clipping limit.
    """
    from .build import build as run_build
    from .loader import display, resolve
    from .render import GMAIL_CLIP_BYTES

    result = run_build(resolve(edition), out_dir)
    r = result.rendered
    print_warnings(r.warnings)
    size_kb = r.html_bytes_qp / 1000
    verdict = "OK" if r.html_bytes_qp < GMAIL_CLIP_BYTES else "TOO BIG: Gmail will clip it"
    click.echo(f"Built {result.loaded.display_path} in {r.seconds:.2f} s")
    click.echo(f"  {r.items} items, {r.links} links, {r.images} images, {len(r.warnings)} warnings")
    click.echo(f"  HTML {size_kb:.1f} KB as sent (quoted-printable); Gmail clips at "
               f"{GMAIL_CLIP_BYTES / 1000:.0f} KB: {verdict}")
    click.echo(f"  Output: {display(result.out_dir)}/email.html, email.txt, email.mjml, web.html")


@cli.command()
@click.argument("edition_id")
@click.option("--from", "source", metavar="EDITION", help="Copy the structure of this edition (default: the newest).")
def new(edition_id, source):
    """Start a new edition (e.g. 2025-10) from the structure of an earlier one.

    Copies the sections, intro heading and the agenda rows that are still ahead, with placeholder items.
    """
    from .loader import display
    from .newedition import create

    path = create(edition_id, source)
    click.echo(f"Created {display(path)}")
    click.echo(f"Edit it, then run: newsletter preview {edition_id}")


def main() -> None:
    cli()
