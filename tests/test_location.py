"""Where the project folder lives: UNC paths work for the SQLite journals (their file: URI), and `doctor` (and
`init`) warn about a folder synced to the cloud or on a network drive."""

from __future__ import annotations

import sqlite3
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from click.testing import CliRunner

from newsletter_cli.check import location
from newsletter_cli.cli import cli
from newsletter_cli.project import sqlite_uri


@pytest.mark.parametrize(("path", "uri"), [
    # SQLite takes no host in a URI: a UNC path keeps its two slashes after the empty host (file:////server/...)
    (PureWindowsPath(r"\\server\share\Nieuwsbrief\vzhg\mailbox.sqlite"),
     "file:////server/share/Nieuwsbrief/vzhg/mailbox.sqlite?mode=ro"),
    (PureWindowsPath(r"\\nas.vzhg.local\secretariaat$\nieuws brief\editions\2025-09\journal.sqlite"),
     "file:////nas.vzhg.local/secretariaat%24/nieuws%20brief/editions/2025-09/journal.sqlite?mode=ro"),
    (PureWindowsPath(r"C:\Users\Secretariaat\Documents\vzhg\mailbox.sqlite"),
     "file:///C:/Users/Secretariaat/Documents/vzhg/mailbox.sqlite?mode=ro"),
    (PureWindowsPath(r"Z:\vzhg #1\100%?\mailbox.sqlite"), "file:///Z:/vzhg%20%231/100%25%3F/mailbox.sqlite?mode=ro"),
    (PurePosixPath("/home/secretariaat/vzhg/mailbox.sqlite"), "file:///home/secretariaat/vzhg/mailbox.sqlite?mode=ro"),
])
def test_sqlite_uri(path, uri) -> None:
    assert sqlite_uri(path, mode="ro") == uri
    assert PureWindowsPath(r"\\server\share\x.sqlite").as_uri() == "file://server/share/x.sqlite"  # what SQLite refused


def test_sqlite_opens_the_uri_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "nieuws brief #1" / "100% ?"
    folder.mkdir(parents=True)
    db = sqlite3.connect(folder / "mailbox.sqlite")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (42)")
    db.commit()
    db.close()
    ro = sqlite3.connect(sqlite_uri(folder / "mailbox.sqlite", mode="ro"), uri=True)
    assert ro.execute("SELECT x FROM t").fetchone() == (42,)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("INSERT INTO t VALUES (1)")
    ro.close()
    # A path given as //x/... (the UNC form after an empty host) is what POSIX reads as /x/...: SQLite accepts it.
    unc_shaped = sqlite_uri(PurePosixPath("/" + (folder / "mailbox.sqlite").as_posix()), mode="ro")
    assert unc_shaped.startswith("file:////")
    assert sqlite3.connect(unc_shaped, uri=True).execute("SELECT x FROM t").fetchone() == (42,)


def test_status_and_mailbox_read_the_journals_through_the_uri(project: Path) -> None:
    """The read-only opening that broke on UNC paths, run for real: status after a journal exists."""
    from newsletter_cli.mailbox.record import RECORD_FILE, Record
    from newsletter_cli.members.journal import JOURNAL_FILE, Journal

    Record(project / RECORD_FILE).close()  # mailbox.sqlite, as after a first `newsletter mailbox`
    with Journal(project / "editions" / "2025-09" / JOURNAL_FILE) as journal:
        journal.add(["lid@vzhg.nl"])
        journal.mark("lid@vzhg.nl", "sent", "250 OK")
    result = CliRunner().invoke(cli, ["status", "2025-09"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output and "mailbox.sqlite" not in result.output


@pytest.mark.parametrize(("path", "env", "service"), [
    (PureWindowsPath(r"C:\Users\Els\OneDrive - VZHG\Nieuwsbrief\vzhg"), {}, "OneDrive/SharePoint"),
    (PureWindowsPath(r"C:\Users\Els\OneDrive\Documenten\vzhg"), {}, "OneDrive"),
    (PureWindowsPath(r"D:\Sync\Werk\vzhg"), {"OneDriveCommercial": r"D:\Sync\Werk"}, "OneDrive/SharePoint"),
    (PureWindowsPath(r"c:\users\els\documents\vzhg"), {"OneDrive": r"C:\Users\Els\Documents"}, "OneDrive"),
    (PureWindowsPath(r"C:\Users\Els\Dropbox\vzhg"), {}, "Dropbox"),
    (PureWindowsPath(r"C:\Users\Els\iCloudDrive\vzhg"), {}, "iCloud"),
    (PureWindowsPath(r"G:\Mijn Drive\vzhg"), {}, "Google Drive"),
    (PurePosixPath("/Users/els/Library/Mobile Documents/com~apple~CloudDocs/vzhg"), {}, "iCloud"),
    (PurePosixPath("/Users/els/Library/CloudStorage/OneDrive-VZHG/vzhg"), {}, "OneDrive/SharePoint"),
    (PurePosixPath("/Users/els/Library/CloudStorage/GoogleDrive-els@vzhg.nl/My Drive/vzhg"), {}, "Google Drive"),
    (PureWindowsPath(r"C:\Users\Els\Documents\vzhg"), {"OneDrive": r"C:\Users\Els\OneDrive"}, None),
    (PurePosixPath("/Users/els/Documents/vzhg"), {}, None),
    (PureWindowsPath(r"C:\Nieuwsbrief\vzhg"), {}, None),
])
def test_synced_folders(path, env, service) -> None:
    assert location.synced_service(path, env) == service


def test_a_sharepoint_library_from_the_registry_list() -> None:
    roots = [r"C:\Users\Els\Vereniging ZHG\Secretariaat - Documenten"]
    path = PureWindowsPath(r"C:\Users\Els\Vereniging ZHG\Secretariaat - Documenten\Nieuwsbrief\vzhg")
    assert location.synced_service(path, {}, roots) == "OneDrive/SharePoint"
    assert location.synced_service(PureWindowsPath(r"C:\Users\Els\Vereniging ZHG\Eigen"), {}, roots) is None


def test_unc_and_network_mounts() -> None:
    assert location.is_unc(PureWindowsPath(r"\\server\share\vzhg"))
    assert not location.is_unc(PureWindowsPath(r"C:\vzhg"))
    mounts = ("/dev/sda1 / ext4 rw 0 0\n"
              "//nas/secretariaat /mnt/nas cifs rw 0 0\n"
              "nas:/export /home/els/net\\040werk nfs4 rw 0 0\n"
              "tmpfs /mnt/nas/tmp tmpfs rw 0 0\n")
    assert location.network_filesystem(Path("/mnt/nas/vzhg"), mounts) == "cifs"
    assert location.network_filesystem(Path("/home/els/net werk/vzhg"), mounts) == "nfs4"
    assert location.network_filesystem(Path("/mnt/nas/tmp/vzhg"), mounts) is None  # a local mount inside it
    assert location.network_filesystem(Path("/mnt/nasje/vzhg"), mounts) is None
    assert location.network_filesystem(Path("/home/els/vzhg"), mounts) is None


def test_doctor_warns_about_a_synced_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    synced = tmp_path / "OneDrive - VZHG" / "vzhg"
    synced.mkdir(parents=True)
    (synced / ".env").write_text("SMTP_HOST=\n", encoding="utf-8")
    (synced / ".env").chmod(0o600)
    monkeypatch.chdir(synced)
    result = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    assert "WARN    the project folder" in result.output and "is synced by OneDrive/SharePoint" in result.output
    assert ".env (with the passwords)" in result.output
    monkeypatch.chdir(project)
    (project / ".env").write_text("SMTP_HOST=\n", encoding="utf-8")
    (project / ".env").chmod(0o600)
    assert "is synced by" not in CliRunner().invoke(cli, ["doctor", "--no-dns"]).output


def test_init_warns_about_a_synced_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Dropbox").mkdir()
    result = CliRunner().invoke(cli, ["init", str(Path("Dropbox", "vzhg")), "--name", "VZHG", "--website", "vzhg.nl",
                                      "--address", "Postbus 1, 2500 AA Den Haag"])
    assert result.exit_code == 0, result.output
    assert "warning: the project folder" in result.output and "synced by Dropbox" in result.output
