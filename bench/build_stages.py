"""One fresh process: time each stage of `newsletter build` in process, then warm rebuilds as the preview
server does them (same process, `build()` again). Prints one JSON object.

Usage: python bench/build_stages.py PROJECT_DIR [--unpatched-premailer] [--rebuilds N]

The stages are measured by wrapping the functions `build()` calls (load, to_mjml, MJML, inline_css,
render_text, write_outputs), so the split follows the real code path rather than a copy of it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

t_start = time.perf_counter()
parser = argparse.ArgumentParser()
parser.add_argument("project")
parser.add_argument("--unpatched-premailer", action="store_true",
                    help="use premailer as imported, without render._premailer()'s set-up (the 'before')")
parser.add_argument("--rebuilds", type=int, default=12)
args = parser.parse_args()
os.chdir(args.project)

out: dict[str, float] = {}
t0 = time.perf_counter()
from newsletter_cli import build as B, loader, render as R, text as plain  # noqa: E402

out["import newsletter (click-free core: pydantic, yaml, jinja2, markdown-it, babel)"] = time.perf_counter() - t0
t0 = time.perf_counter()
import mjml  # noqa: E402,F401

out["import mjml (MRML)"] = time.perf_counter() - t0
t0 = time.perf_counter()
if args.unpatched_premailer:
    import premailer  # noqa: E402

    R._premailer = lambda: premailer.Premailer
else:
    R._premailer()
out["import premailer (cssutils, lxml, requests)"] = time.perf_counter() - t0

stage: dict[str, float] = {}


def timed(module, name: str, label: str) -> None:
    real = getattr(module, name)

    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            stage[label] = stage.get(label, 0.0) + time.perf_counter() - t

    setattr(module, name, wrapper)


timed(B, "load", "load + validate edition.yaml")
timed(B, "load_theme", "load + validate edition.yaml")
timed(R, "to_mjml", "templates (Jinja2, Markdown, dates; email + web)")
timed(R, "mjml_to_html", "MJML -> HTML (MRML; email + web)")
timed(R, "inline_css", "inline CSS (premailer)")
timed(plain, "render_text", "plain text")
timed(B, "write_outputs", "write the 4 files")

edition = loader.resolve("2025-09")
outdir = os.path.join(args.project, "out")
t0 = time.perf_counter()
B.build(edition, __import__("pathlib").Path(outdir))
total = time.perf_counter() - t0
out.update(stage)
out["other (counts, QP size, ...)"] = total - sum(stage.values())
cold = {"stages": out, "first_build": total, "process_to_built": time.perf_counter() - t_start}

# Warm rebuilds, as the preview server does after a save: unchanged, then with the text edited each time.
from pathlib import Path  # noqa: E402

unchanged, edited = [], []
path = Path(edition)
original = path.read_text(encoding="utf-8")
for i in range(args.rebuilds):
    stage.clear()
    t0 = time.perf_counter()
    B.build(edition, Path(outdir))
    unchanged.append(time.perf_counter() - t0)
for i in range(args.rebuilds):
    path.write_text(original.replace("Najaarscongres 21 november", f"Najaarscongres 21 november ({i})", 1),
                    encoding="utf-8")
    t0 = time.perf_counter()
    B.build(edition, Path(outdir))
    edited.append(time.perf_counter() - t0)
warm_stages = dict(stage)
path.write_text(original, encoding="utf-8")
cold["warm_unchanged"] = unchanged
cold["warm_edited"] = edited
cold["warm_stages_last_edited"] = {k: v / args.rebuilds for k, v in warm_stages.items()}
print(json.dumps(cold))
