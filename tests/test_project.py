"""One Project, handed down: every path a command uses is the project folder's, not the current folder's."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter_cli.compose.build import build
from newsletter_cli.deliver.plan import plan
from newsletter_cli.deliver.request import ReviewList, SendRequest
from newsletter_cli.errors import InputError
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings


def test_paths_are_the_project_folders_wherever_the_command_runs(project: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "review.csv").write_text("email\nredactie@example.org\n", encoding="utf-8")
    (project / ".env").write_text("ARCHIVE_BASE_URL=https://vzhg.nl/nieuwsbrief\n", encoding="utf-8")
    here = Project(project)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # no editions, no .env, no review.csv here

    assert here.list_editions() == ["2025-09"]
    built = build(here.resolve("2025-09"), project=here)
    assert "https://vzhg.nl/nieuwsbrief/2025-09/" in built.rendered.text  # ARCHIVE_BASE_URL from the project's .env
    settings = parse_settings({"NEWSLETTER_FROM": "VZHG <nieuwsbrief@vzhg.nl>", "REVIEW_LIST": "review.csv"}, {})
    planned = plan(SendRequest("2025-09", ReviewList(), dry_run=True), here.using(settings))
    assert [r.email for r in planned.recipients] == ["redactie@example.org"]

    with pytest.raises(InputError, match="No editions in"):
        Project.here().resolve(None)


def test_settings_are_read_once_and_only_when_needed(project: Path) -> None:
    """`build` needs no valid .env: a broken line fails the settings, not the archive address."""
    (project / ".env").write_text("ARCHIVE_BASE_URL=https://vzhg.nl/nb\nSMTP_PASWORD=x\n", encoding="utf-8")
    here = Project(project)
    assert here.archive_base_url == "https://vzhg.nl/nb"
    with pytest.raises(InputError, match=r"\.env:2: SMTP_PASWORD is not a setting; did you mean SMTP_PASSWORD\?"):
        _ = here.settings
    (project / ".env").write_text("ARCHIVE_BASE_URL=https://elsewhere.example/\n", encoding="utf-8")
    assert here.archive_base_url == "https://vzhg.nl/nb"  # read once per run
