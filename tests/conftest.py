"""Shared fixtures: a throwaway project folder holding a copy of the shipped example edition."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers import is_setting

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "editions" / "2025-09"


@pytest.fixture(autouse=True)
def _user_data_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated unsubscribe secret (platformdirs' user data folder) goes to a temp folder, not ~/.local;
    the compiled templates (the user cache folder) likewise, not ~/.cache."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "user-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "user-cache"))


@pytest.fixture(scope="session")
def dns_server():
    """A local DNS server with vzhg.nl's records: `newsletter doctor` in a test never asks the internet."""
    from dns_server import GOOD_ZONE, DnsServer

    with DnsServer(GOOD_ZONE) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dns_server) -> Path:
    """A project folder with editions/2025-09 and theme.yaml copied in, as the current directory; no .env, no SMTP settings."""
    shutil.copytree(EXAMPLE, tmp_path / "editions" / "2025-09", ignore=shutil.ignore_patterns("build", "outbox", "journal*"))
    shutil.copy(REPO / "theme.yaml", tmp_path / "theme.yaml")  # the example's house style, with its postal address
    for name in list(os.environ):
        if is_setting(name):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DNS_SERVER", f"127.0.0.1:{dns_server.port}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def imap(tmp_path: Path):
    """A real Dovecot of this test's own (tests that use it skip where Dovecot is not installed)."""
    from imap_server import ImapServer

    with ImapServer(tmp_path) as server:
        yield server
