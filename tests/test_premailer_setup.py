"""render._premailer(): premailer without CSS validation and without importing `requests` up front must give
byte-for-byte the HTML that premailer as imported gives (see docs/performance.md, "premailer")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from newsletter_cli.compose import render
from newsletter_cli.compose.build import load_theme
from newsletter_cli.compose.load import load
from newsletter_cli.project import Project

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_YAML = REPO / "editions" / "2025-09" / "edition.yaml"

# premailer exactly as imported, in a fresh interpreter, through the same inline_css().
UNPATCHED = """
import json, sys
import premailer
from newsletter_cli.compose import render
render._premailer = lambda: premailer.Premailer
print(json.dumps([render.inline_css(h) for h in json.load(sys.stdin)]))
"""


def _mrml_html(edition_yaml: Path) -> str:
    loaded = load(edition_yaml)
    mjml = render.to_mjml(loaded.edition, load_theme(Project.here()), web_url=None, unsubscribe_url=render.UNSUBSCRIBE_FIELD)
    return render.mjml_to_html(mjml)


def test_inlined_html_is_identical_to_unconfigured_premailer(tmp_path: Path):
    with_images = tmp_path / "editions" / "2025-09" / "edition.yaml"
    with_images.parent.mkdir(parents=True)
    data = yaml.safe_load(EXAMPLE_YAML.read_text(encoding="utf-8"))
    items = [item for section in data["sections"] for item in section["items"]]
    for n, item in enumerate(items[:3]):  # <img style> takes premailer's align_floating_images path
        item["image"] = {"src": f"https://vzhg.nl/img/{n}.jpg", "alt": f"foto {n}", "width": 560}
    with_images.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    sources = [_mrml_html(EXAMPLE_YAML), _mrml_html(with_images)]
    assert "<img" in sources[1]

    ours = [render.inline_css(html) for html in sources]
    theirs = json.loads(subprocess.run([sys.executable, "-c", UNPATCHED], input=json.dumps(sources), text=True,
                                       capture_output=True, check=True, cwd=REPO).stdout)
    assert ours == theirs


def test_requests_is_the_real_package_after_set_up():
    render._premailer()
    assert not isinstance(sys.modules.get("requests"), render._RequestsOnDemand)  # the stand-in is gone
    import requests

    assert not isinstance(requests, render._RequestsOnDemand) and callable(requests.Session)


def test_premailer_still_reaches_requests_through_the_stand_in():
    import premailer.premailer

    render._premailer()
    assert premailer.premailer.requests.get is __import__("requests").get
