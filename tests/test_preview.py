"""`newsletter preview` over real HTTP (no browser): what it serves, what it refuses, live rebuilds, stopping."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.project import Project
from newsletter_cli.web.preview import PreviewServer

from helpers import assert_no_traceback
from test_preview_support import (
    WAIT_SECONDS,
    add_images,
    edit,
    get,
    png,
    state,
    wait_for_rebuild,
)

SECRET = "s3cret-Pa55word"
SMTP_HOST = "smtp.example-mailhost.test"


@pytest.fixture
def edition(project: Path) -> Path:
    return add_images(project)


@pytest.fixture
def server(project: Path, edition: Path):
    (project / ".env").write_text(
        f'NEWSLETTER_FROM="VZHG Secretariaat <nieuwsbrief@vzhg.nl>"\nSMTP_HOST={SMTP_HOST}\n'
        f"SMTP_USERNAME=nieuwsbrief@vzhg.nl\nSMTP_PASSWORD={SECRET}\n", encoding="utf-8")
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as running:
        yield running
    assert "SMTP_PASSWORD" not in os.environ  # .env is read, not copied into the environment (the browser's)


def test_page_shows_inbox_line_size_and_text_but_no_smtp_settings(server: PreviewServer):
    status, body, kind = get(server, "/")
    page = body.decode()
    assert status == 200 and kind.startswith("text/html")
    assert "VZHG Secretariaat" in page and "nieuwsbrief@vzhg.nl" in page
    assert "Nieuwsbrief VZHG - september 2025" in page  # subject
    assert "Najaarscongres 21 november: Een weerbaar Zuid-Holland" in page  # preheader
    assert re.search(r"\d+\.\d KB</strong> of 102 KB", page)
    assert 'id="desktop"' in page and 'id="phone"' in page
    assert "Breed beeld" in page and "<pre>" in page  # the plain-text part is on the page
    for response in (page, get(server, "/email.html")[1].decode(), get(server, "/state.json")[1].decode()):
        assert SECRET not in response and SMTP_HOST not in response


def test_page_without_sender_says_how_to_set_it(project: Path, edition: Path):
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as running:
        page = get(running, "/")[1].decode()
    assert "Sender not set" in page and "NEWSLETTER_FROM" in page


def test_email_is_served_with_merge_fields_filled(server: PreviewServer):
    status, body, _ = get(server, "/email.html")
    html = body.decode()
    assert status == 200 and "[[" not in html and 'href="#unsubscribe"' in html
    assert "<title>Nieuwsbrief VZHG - september 2025</title>" in html
    status, body, kind = get(server, "/email.txt")
    assert status == 200 and kind.startswith("text/plain") and "Breed beeld" in body.decode()
    assert get(server, "/web.html")[0] == 200


def test_images_and_logo_are_served(server: PreviewServer):
    status, body, kind = get(server, "/images/foto.png")
    assert status == 200 and kind == "image/png" and body.startswith(b"\x89PNG")
    status, body, kind = get(server, "/assets/logo.png")  # the theme's logo, as the email refers to it
    assert status == 200 and kind == "image/png"


OUTSIDE = [
    "/../../.env", "/%2e%2e/%2e%2e/.env", "/%2E%2E/.env", "/images/../../../.env", "/images/%2e%2e/edition.yaml",
    "/.env", "/../.env", "/edition.yaml", "/images/", "/images", "/build/email.html", "/theme.yaml",
    "//etc/passwd", "/images/..%2f..%2f..%2f.env", "/images/%5c..%5c..%5c.env", "/assets/", "/%00",
    "/images/foto.png/..", "/images/./../../.env", "/assets/../.env",
]


def test_outside_paths_and_folders_are_refused(server: PreviewServer):
    answers = {path: get(server, path) for path in OUTSIDE}
    assert {path: status for path, (status, _, _) in answers.items() if status != 404} == {}
    assert not any(SECRET.encode() in body for _, body, _ in answers.values())


# Each refusal rule of preview_http.allowed_file and the handler on its own, over a raw request line (no client
# normalises the path): each test fails when its rule is taken out.

def test_a_hidden_image_is_refused(server: PreviewServer, edition: Path):
    """Rule: no part may start with '.' (macOS leaves '._foto.png' beside every photo copied from a Mac)."""
    (edition.parent / "images" / "._foto.png").write_bytes(png(4, 4))
    assert get(server, "/images/._foto.png")[0] == 404
    assert get(server, "/images/foto.png")[0] == 200


def test_dot_dot_is_refused_even_where_it_stays_inside_images(server: PreviewServer):
    """Rule: no '..' part, also when the path would resolve to an image inside images/."""
    assert get(server, "/images/../images/foto.png")[0] == 404
    assert get(server, "/images/%2e%2e/images/foto.png")[0] == 404


def test_a_backslash_is_refused(server: PreviewServer, edition: Path):
    """Rule: no backslash (a folder separator on Windows); a file whose name holds one is not served either."""
    (edition.parent / "images" / "a\\b.png").write_bytes(png(4, 4))
    assert get(server, "/images/a%5Cb.png")[0] == 404


def test_a_nul_byte_is_refused_without_breaking_the_connection(server: PreviewServer):
    """Rule: no NUL byte: a clean 404, not an error inside the server."""
    assert get(server, "/images/foto.png%00")[0] == 404
    assert get(server, "/images/foto.png%00.png")[0] == 404


def test_an_image_outside_the_images_folder_is_refused(server: PreviewServer, edition: Path):
    """Rule: only files inside images/ (or those the build refers to), not an image elsewhere in the edition."""
    (edition.parent / "scan.png").write_bytes(png(4, 4))
    assert get(server, "/scan.png")[0] == 404


def test_a_file_that_is_not_an_image_is_refused(server: PreviewServer, edition: Path):
    """Rule: only image types, also inside images/."""
    (edition.parent / "images" / "notities.txt").write_text(SECRET, encoding="utf-8")
    status, body, _ = get(server, "/images/notities.txt")
    assert status == 404 and SECRET.encode() not in body


def test_a_symlink_out_of_images_is_refused(server: PreviewServer, project: Path):
    link = project / "editions" / "2025-09" / "images" / "env.png"
    link.symlink_to(project / ".env")
    assert get(server, "/images/env.png")[0] == 404


def test_saving_the_yaml_rebuilds_and_the_event_stream_says_so(server: PreviewServer, edition: Path):
    parts = server.url.split(":")
    events = socket.create_connection(("127.0.0.1", int(parts[-1].strip("/"))), timeout=WAIT_SECONDS)
    events.sendall(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
    stream = events.makefile("rb")
    seen = state(server)["version"]
    head = stream.readline()
    while (line := stream.readline()) and not line.startswith(b"data:"):
        if line.lower().startswith(b"content-type"):
            assert b"text/event-stream" in line
    assert head.startswith(b"HTTP/1.1 200") and line.strip() == f"data: {seen}".encode()  # the current version first

    edit(edition, 'title: "Breed beeld"', 'title: "Nieuw kopje na opslaan"')
    version = wait_for_rebuild(server, seen)
    while (line := stream.readline()) and not line.startswith(b"data:"):
        pass
    assert line.strip() == f"data: {version}".encode()
    events.close()
    assert "Nieuw kopje na opslaan" in get(server, "/email.html")[1].decode()


def test_a_broken_edit_keeps_the_last_good_render_and_a_fix_recovers(server: PreviewServer, edition: Path):
    seen = state(server)["version"]
    edit(edition, 'title: "Breed beeld"', 'titel: "Breed beeld"')
    seen = wait_for_rebuild(server, seen)
    current = state(server)
    line = next(n for n, row in enumerate(edition.read_text(encoding="utf-8").splitlines(), 1) if "titel:" in row)
    assert f"editions/2025-09/edition.yaml:{line}" in current["error"] and "unknown field 'titel'" in current["error"]
    page = get(server, "/")[1].decode()
    assert 'id="build-error"' in page and "unknown field &#39;titel&#39;" in page
    assert "Breed beeld" in get(server, "/email.html")[1].decode()  # the last good render stays

    edit(edition, 'titel: "Breed beeld"', 'title: "Weer goed"')
    wait_for_rebuild(server, seen)
    assert state(server)["error"] is None
    assert 'id="build-error"' not in get(server, "/")[1].decode()
    assert "Weer goed" in get(server, "/email.html")[1].decode()


def test_images_and_theme_changes_rebuild(server: PreviewServer, project: Path):
    seen = state(server)["version"]
    (project / "editions" / "2025-09" / "images" / "foto.png").write_bytes(png(800, 400))
    seen = wait_for_rebuild(server, seen)
    (project / "theme.yaml").write_text('logo: assets/logo.png\nshort_name: "ZHG"\n', encoding="utf-8")
    wait_for_rebuild(server, seen)
    assert "Nieuwsbrief ZHG" in get(server, "/email.html")[1].decode()


def test_a_bad_edition_at_start_still_serves_the_error(project: Path, edition: Path):
    edit(edition, "date: 2025-09-25", "date: 2025-09-31")
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as running:
        page = get(running, "/")[1].decode()
        assert "is not a valid date" in page and "edition.yaml:3" in page
        assert get(running, "/email.html")[0] == 404  # nothing good to show yet
        seen = state(running)["version"]
        edit(edition, "date: 2025-09-31", "date: 2025-09-30")
        wait_for_rebuild(running, seen)
        assert get(running, "/email.html")[0] == 200


def test_the_edition_folder_is_left_alone(project: Path, edition: Path):
    with PreviewServer(edition, "127.0.0.1", 0, project=Project(project)) as running:
        out_dir = running.state.out_dir
        assert (out_dir / "email.html").is_file()
    assert not (edition.parent / "build").exists() and not out_dir.exists()


def test_a_port_in_use_is_a_clear_error(project: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["preview", "2025-09", "--port", str(port), "--no-open"])
    assert result.exit_code == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.output
    assert_no_traceback(result)


def test_an_unknown_edition_is_a_clear_error(project: Path):
    result = CliRunner().invoke(cli, ["preview", "2031-01", "--port", "0", "--no-open"])
    assert result.exit_code == 2 and "No edition '2031-01'" in result.output


def test_ctrl_c_stops_the_command_cleanly(project: Path):
    command = [sys.executable, "-c", "from newsletter_cli.cli import main; main()",
               "preview", "--port", "0", "--no-open"]
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = []
        while "Ctrl-C" not in "".join(output):
            line = process.stdout.readline()
            assert line, "".join(output)
            output.append(line)
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", "".join(output))
        assert url, "".join(output)
        with socket.create_connection(("127.0.0.1", int(url.group(1))), timeout=WAIT_SECONDS) as client:
            client.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # an open event stream must not block stopping
            assert client.recv(100).startswith(b"HTTP/1.")
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=WAIT_SECONDS)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == 0, rest
    assert "Preview stopped." in rest and "Traceback" not in rest


def test_the_page_lists_the_checks_findings_with_their_place(server: PreviewServer):
    """The page's list is `newsletter check`'s (run here as the secretary would), not the server's own state."""
    checked = CliRunner().invoke(cli, ["check", "2025-09"])
    found = re.findall(r"^(error|warning): ([^:\n]+): ", checked.output, re.MULTILINE)
    counted = re.search(r"(\d+) errors?, (\d+) warnings?", checked.output)
    assert found and counted, checked.output  # the placeholder postal address, the size close to Gmail's clip
    page = get(server, "/")[1].decode()
    for _severity, place in found:
        assert f"<code>{place}</code>" in page
    assert f"Warnings and findings ({int(counted.group(1)) + int(counted.group(2))})" in page


def test_what_counts_as_a_source_change(project: Path):
    from newsletter_cli.compose.render import TEMPLATES
    from newsletter_cli.web.preview import _is_source

    folder = (project / "editions" / "2025-09").resolve()
    assert _is_source(folder / "edition.yaml", folder) and _is_source(folder / "images" / "foto.jpg", folder)
    assert _is_source(TEMPLATES / "partials" / "item.mjml.j2", folder)
    for ignored in ("build/email.html", "outbox/1.eml", ".edition.yaml.swp", "edition.yaml~", "images/.DS_Store"):
        assert not _is_source(folder / ignored, folder), ignored


def test_a_template_error_is_shown_with_its_file_and_line():
    import jinja2

    from newsletter_cli.web.preview_state import _describe

    with pytest.raises(jinja2.TemplateSyntaxError) as caught:
        jinja2.Environment().parse("line one\n{% if %}", filename="partials/item.mjml.j2")
    assert _describe(caught.value).startswith("partials/item.mjml.j2:2: TemplateSyntaxError")


# --- issue 20: the Host header (DNS rebinding), .env changes, the same counts as check -----------------------

def raw_request(server: PreviewServer, host: bytes | None, path: bytes = b"/email.html",
                version: bytes = b"HTTP/1.1") -> bytes:
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS) as client:
        header = b"Host: " + host + b"\r\n" if host is not None else b""
        client.sendall(b"GET " + path + b" " + version + b"\r\n" + header + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def test_only_localhost_names_and_the_listening_address_are_answered(server: PreviewServer):
    port = server.url.rstrip("/").rsplit(":", 1)[1].encode()
    for host in (b"localhost:" + port, b"127.0.0.1:" + port, b"LOCALHOST", b"127.0.0.1", b"[::1]:" + port,
                 b"preview.localhost:" + port, b"127.0.0.2"):
        answer = raw_request(server, host)
        assert answer.startswith(b"HTTP/1.1 200"), (host, answer[:80])
        assert b"Najaarscongres" in answer
    for host in (b"evil.example:" + port, b"vzhg.nl", b"localhost.evil.example", b"127.0.0.1.nip.io:" + port,
                 b"192.168.1.10:" + port, b""):
        for path in (b"/", b"/email.html", b"/events", b"/state.json", b"/images/foto.png"):
            answer = raw_request(server, host, path)
            assert answer.startswith(b"HTTP/1.1 421"), (host, path, answer[:80])
            assert b"Najaarscongres" not in answer and b"data:" not in answer
    assert raw_request(server, None, version=b"HTTP/1.0").startswith(b"HTTP/1.1 200")  # no Host: no browser


def test_host_allowed_when_listening_on_every_address():
    from newsletter_cli.web.preview_http import host_allowed

    assert host_allowed("192.168.1.10:8000", "0.0.0.0", "0.0.0.0")  # another computer, by the address
    assert host_allowed("[fe80::1]:8000", "::", "::")
    assert not host_allowed("evil.example:8000", "0.0.0.0", "0.0.0.0")  # a name still must be local
    assert host_allowed("mijnpc.local:8000", "192.168.1.10", "mijnpc.local")  # the name given with --host
    assert host_allowed("192.168.1.10", "192.168.1.10", "192.168.1.10")
    assert not host_allowed("192.168.1.11", "192.168.1.10", "192.168.1.10")


def test_a_changed_env_is_picked_up_without_a_restart(server: PreviewServer, project: Path):
    assert "VZHG Secretariaat" in get(server, "/")[1].decode()
    seen = state(server)["version"]
    (project / ".env").write_text('NEWSLETTER_FROM="Redactie Nieuwsbrief <redactie@vzhg.nl>"\n'
                                  "ARCHIVE_BASE_URL=https://vzhg.nl/nieuwsbrief-archief\n", encoding="utf-8")
    wait_for_rebuild(server, seen)
    page = get(server, "/")[1].decode()
    assert "Redactie Nieuwsbrief" in page and "VZHG Secretariaat" not in page
    assert "https://vzhg.nl/nieuwsbrief-archief/" in get(server, "/email.html")[1].decode()


def test_the_log_counts_the_findings_as_check_does(project: Path):
    """A safelink is a warning of the loader and an error of check: the log counted it twice."""
    from test_check import SAFELINK

    edition = project / "editions" / "2025-09" / "edition.yaml"
    edit(edition, "[Agenda - VZHG](https://vzhg.nl/agenda/)", f"[Agenda - VZHG]({SAFELINK})")
    lines: list[str] = []
    with PreviewServer(edition, "127.0.0.1", 0, echo=lines.append, project=Project(project)) as running:
        page = get(running, "/")[1].decode()
    checked = CliRunner().invoke(cli, ["check", "2025-09"])
    summary = re.search(r": (\d+ errors?, \d+ warnings?):", checked.output)
    assert summary, checked.output
    assert "built in" in lines[0] and f": {summary.group(1)} (listed on the page)" in lines[0], (lines, checked.output)
    shown = int(summary.group(1).split()[0]) + int(summary.group(1).split(", ")[1].split()[0])
    assert f"Warnings and findings ({shown})" in page
    assert page.count("Outlook safelink") == 1
