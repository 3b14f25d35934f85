"""newsletter check --online, against a local HTTP server (never the internet)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from test_check import BASE, EDITION_ID, check_text, edit, line_of, with_image

from newsletter_cli.cli import cli

ROUTES = {  # path -> (status, Location)
    "/ok": (200, None),
    "/gone": (404, None),
    "/gone.png": (404, None),
    "/broken": (500, None),
    "/a": (301, "/b"),
    "/b": (302, "/ok"),
    "/once": (302, "/ok"),  # one temporary redirect is normal: no finding
    "/loop": (302, "/loop"),
}


class Site:
    """A local web server with the kinds of pages a link check meets; it records each request."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def answer(self) -> None:
                site.requests.append((self.command, self.path))
                if self.path == "/hang":
                    site.release.wait(10)
                    return
                if self.path == "/no-head" and self.command == "HEAD":
                    status, location = 405, None
                else:
                    status, location = ROUTES.get(self.path, (200, None)) if self.path != "/no-head" else (200, None)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(b"ok")

            do_GET = do_HEAD = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(project) -> Iterator[Site]:
    running = Site()
    # The footer links to the theme's website, which --online checks too: keep it on this machine.
    (project / "theme.yaml").write_text(f'website: "{running.base}/ok"\n', encoding="utf-8")
    yield running
    running.close()


def local(site: Site, text: str) -> str:
    """The edition with every web link moved to the local server (its other pages answer 200)."""
    return text.replace("https://vzhg.nl", site.base)


def edition_linking_to(site: Site, *paths: str) -> str:
    links = " ".join(f"[pagina {p.strip('/')}]({site.base}{p})" for p in paths)
    return local(site, edit(("De leergang begint in januari.", f"De leergang begint in januari. {links}")))


def online_findings(project, text: str) -> dict[str, object]:
    findings = check_text(project, text, online=True, timeout=0.5)
    return {f.message.split()[2]: f for f in findings if f.code == "link-online"}


def test_online_reports_dead_pages_server_errors_redirect_chains_and_timeouts(project, site):
    text = edition_linking_to(site, "/ok", "/gone", "/broken", "/a", "/once", "/hang", "/loop")
    found = online_findings(project, text)
    base = site.base
    assert set(found) == {f"{base}/gone", f"{base}/broken", f"{base}/a", f"{base}/hang", f"{base}/loop"}
    line = line_of(text, "/gone")
    gone = found[f"{base}/gone"]
    assert (gone.severity, gone.line, gone.where) == ("error", line, 'item "Leergang voor raadsleden"')
    assert "does not exist (404" in gone.message
    assert found[f"{base}/broken"].severity == "error" and "server error (500" in found[f"{base}/broken"].message
    chain = found[f"{base}/a"]
    assert chain.severity == "warning" and f"redirected (2 steps) to {base}/ok" in chain.message
    assert chain.fix == f"link directly to {base}/ok"
    hang = found[f"{base}/hang"]
    assert hang.severity == "warning" and "did not answer within 0.5 seconds" in hang.message
    assert found[f"{base}/loop"].severity == "error" and "circle" in found[f"{base}/loop"].message


def test_head_first_then_get_when_the_site_refuses_head(project, site):
    assert online_findings(project, edition_linking_to(site, "/ok", "/no-head")) == {}
    assert site.requests.count(("HEAD", "/ok")) == 1  # the link and the theme's website: the same URL, once
    assert ("GET", "/ok") not in site.requests
    assert [m for m, p in site.requests if p == "/no-head"] == ["HEAD", "GET"]


def test_the_same_link_twice_is_fetched_once_and_both_places_are_named(project, site):
    text = local(site, edit(("De leergang begint in januari.", f"De leergang [weg]({site.base}/gone) begint."),
                            ("schrijf u in voor de workshops.", f"schrijf u in voor de [workshops]({site.base}/gone).")))
    (finding,) = online_findings(project, text).values()
    assert finding.line == line_of(text, "[workshops]")
    assert f"also on line {line_of(text, '[weg]')}" in finding.message
    assert site.requests.count(("HEAD", "/gone")) == 1


def test_online_checks_web_images_too(project, site):
    image = f'        image: {{src: "{site.base}/gone.png", alt: "De zaal", width: 300}}\n'
    text = local(site, edit(with_image(image)))
    (finding,) = online_findings(project, text).values()
    assert (finding.severity, finding.line) == ("error", line_of(text, "gone.png"))
    assert finding.message.startswith(f"the image {site.base}/gone.png is not there")


def test_offline_by_default(project, site):
    check_text(project, edition_linking_to(site, "/ok"))
    assert site.requests == []


def test_check_online_on_the_command_line(project, site):
    text = edition_linking_to(site, "/gone")
    (project / "editions" / EDITION_ID).mkdir(parents=True)
    (project / "editions" / EDITION_ID / "edition.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", EDITION_ID, "--online", "--timeout", "0.5"])
    assert result.exit_code == 1
    assert f"error: editions/{EDITION_ID}/edition.yaml:{line_of(text, '/gone')}:" in result.output
    assert "with --online" in result.output
    assert BASE  # the base edition itself stays offline-clean: see test_check.py
