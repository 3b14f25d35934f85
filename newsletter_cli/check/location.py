"""Where the project folder lives: a synced folder (OneDrive, SharePoint, Dropbox, iCloud, Google Drive) copies
`.env` with its passwords to the cloud and to every computer of the account, and the send journal (SQLite)
can be damaged by a sync or a network share (its locks and write-ahead log need a local disk).

What is detected, honestly: a synced folder by its path (the names the sync programs give their folders, and
Windows' OneDrive variables); a network folder by a UNC path (\\\\server\\share), a mapped network drive on
Windows (GetDriveTypeW), and on Linux an NFS/SMB/SSHFS mount (/proc/self/mounts). A macOS network volume or
"Desktop & Documents in iCloud" is not detected: the handbook says where to put the folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

# Folder names the sync programs make (Windows, macOS), lower case; "OneDrive - Org" and "Org - Site" too.
SYNCED_NAMES = {"onedrive": "OneDrive", "dropbox": "Dropbox", "icloud drive": "iCloud", "iclouddrive": "iCloud",
                "mobile documents": "iCloud", "google drive": "Google Drive", "googledrive": "Google Drive",
                "my drive": "Google Drive", "mijn drive": "Google Drive", "sharepoint": "SharePoint"}
ONEDRIVE_VARIABLES = ("OneDriveCommercial", "OneDriveConsumer", "OneDrive")  # set by OneDrive on Windows
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "afpfs", "9p", "fuse.rclone",
                       "davfs", "fuse.davfs2", "ceph", "glusterfs")
DRIVE_REMOTE = 4  # GetDriveTypeW: a mapped network drive


def synced_service(path: PurePath, env: Mapping[str, str], sync_roots: Sequence[str] = ()) -> str | None:
    """The sync service whose folder holds `path` (OneDrive, Dropbox, ...), or None. Pure: the path, the
    environment and the folders OneDrive syncs (SharePoint libraries too, from the Windows registry)."""
    for root in sync_roots:
        if root and _inside(path, type(path)(root)):
            return "OneDrive/SharePoint"
    for variable in ONEDRIVE_VARIABLES:
        folder = env.get(variable, "")
        if folder and _inside(path, type(path)(folder)):
            return "OneDrive" if variable != "OneDriveCommercial" else "OneDrive/SharePoint"
    parts = [part.lower() for part in path.parts]
    if "cloudstorage" in parts:  # macOS: ~/Library/CloudStorage/OneDrive-..., Dropbox, GoogleDrive-...
        after = path.parts[parts.index("cloudstorage") + 1:]
        return _service(after[0]) or "a cloud storage service" if after else "a cloud storage service"
    for part in path.parts:
        if found := _service(part):
            return found
    return None


def onedrive_roots() -> list[str]:
    """Every folder OneDrive syncs on this Windows account, SharePoint libraries included (their MountPoint in
    HKCU\\Software\\SyncEngines\\Providers\\OneDrive). Empty elsewhere or when it cannot be read."""
    if os.name != "nt":
        return []
    import importlib

    try:
        winreg: Any = importlib.import_module("winreg")
        roots = []
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, r"Software\SyncEngines\Providers\OneDrive") as key:
            for index in range(winreg.QueryInfoKey(key)[0]):
                with winreg.OpenKey(key, winreg.EnumKey(key, index)) as provider:
                    try:
                        roots.append(str(winreg.QueryValueEx(provider, "MountPoint")[0]))
                    except OSError:
                        continue
        return roots
    except (OSError, ImportError):
        return []


def _service(name: str) -> str | None:
    lower = name.lower()
    if lower.startswith("onedrive"):  # OneDrive, OneDrive - VZHG, OneDrive-VZHG (macOS)
        return "OneDrive/SharePoint" if lower != "onedrive" else "OneDrive"
    if lower.startswith("googledrive-"):
        return "Google Drive"
    return SYNCED_NAMES.get(lower)


def _inside(path: PurePath, folder: PurePath) -> bool:
    here = [p.lower() for p in path.parts] if isinstance(path, PureWindowsPath) else list(path.parts)
    there = [p.lower() for p in folder.parts] if isinstance(folder, PureWindowsPath) else list(folder.parts)
    return bool(there) and here[:len(there)] == there


def is_unc(path: PurePath) -> bool:
    """\\\\server\\share\\... (or //server/share/...) on Windows."""
    return isinstance(path, PureWindowsPath) and path.drive.startswith(("\\\\", "//"))


def network_filesystem(path: Path, mounts: str) -> str | None:
    """The network file system type of the mount holding `path`, from /proc/self/mounts' text, or None."""
    best: tuple[int, str] | None = None
    text = str(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = text == point or text.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and (best is None or len(point) > best[0]):
            best = (len(point), fields[2])
    return best[1] if best and best[1] in NETWORK_FILESYSTEMS else None


def _mapped_network_drive(path: Path) -> bool:
    if os.name != "nt" or not path.drive or is_unc(PureWindowsPath(path)):
        return False
    import ctypes

    return bool(ctypes.windll.kernel32.GetDriveTypeW(f"{path.drive}\\") == DRIVE_REMOTE)  # type: ignore[attr-defined]


def network_kind(path: Path) -> str | None:
    """'a network share (UNC path)', 'a mapped network drive (Z:)', 'an nfs mount', or None."""
    if os.name == "nt":
        if is_unc(PureWindowsPath(path)):
            return "a network share (UNC path)"
        try:
            return f"a mapped network drive ({path.drive})" if _mapped_network_drive(path) else None
        except (OSError, AttributeError):
            return None
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
    except OSError:  # macOS and others: not detected (the handbook says where the folder belongs)
        return None
    kind = network_filesystem(path, mounts)
    return f"a network file system ({kind})" if kind else None


def location_warnings(root: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """What is risky about where the project folder is: synced to the cloud, or on a network drive."""
    try:
        root = root.resolve()
    except OSError:
        root = root.absolute()
    warnings = []
    if service := synced_service(root, os.environ if env is None else env, onedrive_roots()):
        warnings.append(f"the project folder {root} is synced by {service}: .env (with the passwords) goes to the "
                        "cloud and to every computer of the account, and a sync during a send can damage the send "
                        "journal. Move the folder to a local one that is not synced, e.g. C:\\Nieuwsbrief\\vzhg "
                        "or ~/Nieuwsbrief/vzhg (`newsletter handbook`, first page).")
    if kind := network_kind(root):
        warnings.append(f"the project folder {root} is on {kind}: the send journal (SQLite) can be damaged over a "
                        "network, and a second computer may send at the same time. Keep the folder on this "
                        "computer's own disk; share it with a colleague by copying, not by sending from both.")
    return warnings
