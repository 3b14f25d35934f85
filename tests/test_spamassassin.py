"""The example as sent, scored by SpamAssassin's local rules (Debian's `spamassassin`; `-L`: no network, no DNS
lists): it must stay well on the ham side (<= -0.5), as it does without the preheader's white-on-white colour
(HTML_FONT_LOW_CONTRAST, +0.7) that issue 21 removed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter_cli.compose.build import build, load_theme
from newsletter_cli.deliver.message import MessageFactory
from newsletter_cli.members.recipients import Recipient
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings

pytestmark = pytest.mark.slow  # SpamAssassin takes 3-4 s to load its rules
REPO = Path(__file__).resolve().parent.parent
SETTINGS = {"NEWSLETTER_FROM": "VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>", "NEWSLETTER_REPLY_TO": "secretariaat@vzhg.nl",
            "LIST_UNSUBSCRIBE": "afmelden@vzhg.nl https://vzhg.nl/afmelden?e={email}&t={token}",
            "LIST_UNSUBSCRIBE_SECRET": "s3cret-s3cret-s3cret"}
MAX_SCORE = -0.5


def score(message: bytes, home: Path) -> tuple[float, list[str]]:
    """SpamAssassin's score and the rules that fired, local tests only, no Bayes, nothing learnt."""
    spamassassin = shutil.which("spamassassin")
    if spamassassin is None:
        pytest.skip("SpamAssassin is not installed (Debian: apt-get install spamassassin; `make system-packages`)")
    done = subprocess.run([spamassassin, "-L", "-t", "-x", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"],
                          input=message, capture_output=True, timeout=120, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    report = done.stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+) required=[\d.]+ tests=(.*?)\s+autolearn",
                       report, re.MULTILINE | re.DOTALL)
    assert status, report[-2000:] + done.stderr.decode("utf-8", "replace")
    return float(status.group(1)), re.split(r"[,\s]+", status.group(2).strip())


def test_the_example_scores_as_ham(tmp_path: Path) -> None:
    project = Project(REPO)
    built = build(REPO / "editions" / "2025-09" / "edition.yaml", tmp_path / "build", theme=load_theme(project),
                  project=project)
    message = MessageFactory(built, parse_settings(SETTINGS, {}), project=Project.here()).for_recipient(
        Recipient("lois@example.org", "Loïs de Vries"))
    points, rules = score(message, tmp_path)
    print(f"SpamAssassin: {points} ({', '.join(rules)})")
    assert "HTML_FONT_LOW_CONTRAST" not in rules
    assert points <= MAX_SCORE, rules
