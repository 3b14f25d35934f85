"""The tools a user would pick instead, installed by the bench itself into bench/.peers/ (gitignored).

- the official MJML command line (npm `mjml`), in bench/.peers/mjml/
- mailmerge (PyPI `mailmerge`, the mail-merge CLI), in its own venv bench/.peers/mailmerge/ so that its
  dependencies never touch the project's venv.

Both are pinned so that two runs of `make bench` compare against the same peer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parent / ".peers"
MJML_VERSION = "5.4.1"
MAILMERGE_VERSION = "2.3.0"


def _run(cmd: list[str], **kwargs) -> None:
    print("  $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def mjml_cli() -> Path:
    """Path of the official MJML CLI, installing it with npm on first use."""
    root = PEERS / "mjml"
    binary = root / "node_modules" / ".bin" / "mjml"
    stamp = root / f".installed-{MJML_VERSION}"
    if not stamp.exists():
        if shutil.which("npm") is None:
            raise RuntimeError("npm is needed to install the MJML CLI peer (Node.js 18 or newer)")
        root.mkdir(parents=True, exist_ok=True)
        print(f"Installing the MJML CLI {MJML_VERSION} into {root} ...", flush=True)
        _run(["npm", "install", "--prefix", str(root), "--no-audit", "--no-fund", "--loglevel=error",
              f"mjml@{MJML_VERSION}"], stdout=subprocess.DEVNULL)
        stamp.touch()
    return binary


def mailmerge_cli() -> Path:
    """Path of the mailmerge CLI in its own venv, installing it with pip on first use."""
    root = PEERS / "mailmerge"
    binary = root / "bin" / "mailmerge"
    stamp = root / f".installed-{MAILMERGE_VERSION}"
    if not stamp.exists():
        print(f"Installing mailmerge {MAILMERGE_VERSION} into {root} ...", flush=True)
        _run([sys.executable, "-m", "venv", str(root)])
        _run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              f"mailmerge=={MAILMERGE_VERSION}"])
        stamp.touch()
    return binary


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not found"


if __name__ == "__main__":
    print(mjml_cli())
    print(mailmerge_cli())
