"""Helpers for the preview tests (no tests here): a tiny PNG writer, an edition with images, a running server."""

from __future__ import annotations

import http.client
import json
import struct
import zlib
from pathlib import Path
from urllib.parse import urlsplit

from newsletter_cli.web.preview import PreviewServer

WAIT_SECONDS = 20.0  # generous: only how long a failing test waits, never an assertion about speed


def png(width: int, height: int, rgb: tuple[int, int, int] = (0, 86, 110)) -> bytes:
    """A valid one-colour PNG, written without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


IMAGE_ITEM = '''
  - title: "Met foto"
    items:
      - title: "Breed beeld"
        body: "Een [ontzettend-lange-link-zonder-spaties-die-niet-kan-afbreken-op-een-smalle-telefoon](https://vzhg.nl/agenda/)."
        image: {src: images/foto.png, alt: "Zaal met deelnemers", width: 600}
        schedule:
          - {time: "09.30 – 10.00", what: "Inloop met koffie en thee in de grote zaal van het provinciehuis"}
          - {time: "10.00 – 12.30", what: "Workshops"}
'''


def add_images(project: Path) -> Path:
    """Give the example edition a wide photo, a schedule and a local logo (via theme.yaml)."""
    folder = project / "editions" / "2025-09"
    (folder / "images").mkdir(exist_ok=True)
    (folder / "images" / "foto.png").write_bytes(png(1200, 600))
    (project / "assets").mkdir(exist_ok=True)
    (project / "assets" / "logo.png").write_bytes(png(320, 80, (255, 255, 255)))
    (project / "theme.yaml").write_text("logo: assets/logo.png\n", encoding="utf-8")
    path = folder / "edition.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\nagenda:", IMAGE_ITEM + "agenda:", 1), encoding="utf-8")
    return path


def get(server: PreviewServer, raw_path: str) -> tuple[int, bytes, str]:
    """A GET with the path sent exactly as given (no client-side normalisation of '..')."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("GET", raw_path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        connection.close()


def state(server: PreviewServer) -> dict:
    return json.loads(get(server, "/state.json")[1])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def wait_for_rebuild(server: PreviewServer, seen: int) -> int:
    """The version after the next rebuild; fails the test if none comes."""
    version = server.state.wait_for_change(seen, WAIT_SECONDS)
    assert version != seen, "no rebuild after the file was saved"
    return version
