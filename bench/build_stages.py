"""One fresh process: time each stage of `newsletter build` in process (the CLI command itself, run through
click), then warm rebuilds as the preview server does them (same process, `build()` again plus the offline
checks). Prints one JSON object.

Usage: python bench/build_stages.py PROJECT_DIR [--unpatched-premailer] [--rebuilds N]

The stages are measured by wrapping the functions the command calls (load, to_mjml, MJML, inline_css,
render_text, write_outputs, run_checks), so the split follows the real code path rather than a copy of it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import time

t_start = time.perf_counter()
parser = argparse.ArgumentParser()
parser.add_argument("project")
parser.add_argument("--unpatched-premailer", action="store_true",
                    help="use premailer as imported, without render._premailer()'s set-up (the 'before')")
parser.add_argument("--rebuilds", type=int, default=12)
parser.add_argument("--out", help="where the build goes (default PROJECT/out)")
args = parser.parse_args()
os.chdir(args.project)
out: dict[str, float] = {}


def timed_import(label: str, fn) -> None:
    t = time.perf_counter()
    fn()
    out[label] = time.perf_counter() - t


timed_import("import click + CLI", lambda: __import__("newsletter_cli.cli"))
timed_import("import core (pydantic, yaml, jinja2, markdown-it, babel)",
             lambda: __import__("newsletter_cli.compose.build") and __import__("newsletter_cli.compose.render"))
timed_import("import mjml (MRML)", lambda: __import__("mjml"))
from newsletter_cli import cli
from newsletter_cli.compose import build as B
from newsletter_cli.compose import plaintext as plain
from newsletter_cli.compose import render as R

if args.unpatched_premailer:
    def _unpatched():
        import premailer

        R._premailer = lambda: premailer.Premailer
    timed_import("import premailer (cssutils, lxml, requests)", _unpatched)
else:
    timed_import("import premailer (cssutils, lxml, requests)", R._premailer)
check = None
if importlib.util.find_spec("newsletter_cli.check.content"):
    timed_import("import check (offline checks)", lambda: __import__("newsletter_cli.check.content"))
    from newsletter_cli.check import content as check

stage: dict[str, float] = {}


def timed(module, name: str, label: str) -> None:
    real = getattr(module, name, None)
    if real is None:
        return

    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            stage[label] = stage.get(label, 0.0) + time.perf_counter() - t

    setattr(module, name, wrapper)


LOAD = "load + validate edition.yaml"
timed(B, "load", LOAD)
timed(B, "read_theme", LOAD)
timed(R, "to_mjml", "templates (Jinja2, Markdown, dates; email + web)")
timed(R, "mjml_to_html", "MJML -> HTML (MRML; email + web)")
timed(R, "inline_css", "inline CSS (premailer)")
timed(plain, "render_text", "plain text")
timed(B, "write_outputs", "write the 4 files")
if check is not None:
    timed(check, "run_checks", "offline checks (build prints them)")

outdir = args.out or os.path.join(args.project, "out")
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        cli.cli.main(["build", "2025-09", "--out", outdir], standalone_mode=False)
    except SystemExit:
        pass
total = time.perf_counter() - t0
out.update(stage)
out["other (CLI output, counts, QP size, ...)"] = total - sum(stage.values())
result = {"stages": out, "command": total, "process_to_built": time.perf_counter() - t_start}

# Warm rebuilds, as the preview server does after a save: unchanged, then with the text edited each time.
from pathlib import Path

from newsletter_cli.project import Project

project = Project.here()  # one project for every rebuild, as the preview server has
edition = project.resolve("2025-09")
path = Path(edition)
original = path.read_text(encoding="utf-8")


def rebuild(checks: bool = True) -> float:
    t = time.perf_counter()
    built = B.build(edition, Path(outdir), project=project)
    if checks and check is not None:
        check.run_checks(built, project=project)
    return time.perf_counter() - t


build_only = [rebuild(checks=False) for _ in range(args.rebuilds)]
unchanged = [rebuild() for _ in range(args.rebuilds)]
stage.clear()
edited = []
for i in range(args.rebuilds):
    path.write_text(original.replace("Najaarscongres 21 november", f"Najaarscongres 21 november ({i})", 1),
                    encoding="utf-8")
    edited.append(rebuild())
path.write_text(original, encoding="utf-8")
result["warm_build"] = build_only
result["warm_unchanged"] = unchanged
result["warm_edited"] = edited
result["warm_stages_edited"] = {k: v / args.rebuilds for k, v in stage.items()}
print(json.dumps(result))
