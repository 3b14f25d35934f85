"""Regenerate the screenshots in this folder from the shipped example edition.

Run from the project folder after changing the templates:  .venv/bin/python docs/screenshots/make_screenshots.py
Needs Debian's chromium (`make system-packages`) and Playwright (the test extra). Works on a temporary copy of the
example edition, so editions/ is left alone.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    sys.path.insert(0, str(PROJECT))
    from playwright.sync_api import sync_playwright

    from newsletter_cli.web.preview import PreviewServer

    work = Path(tempfile.mkdtemp(prefix="newsletter-screenshots-"))
    try:
        shutil.copytree(PROJECT / "editions" / "2025-09", work / "editions" / "2025-09",
                        ignore=shutil.ignore_patterns("build", "outbox", "journal*"))
        shutil.copy(PROJECT / "theme.yaml", work / "theme.yaml")
        os.chdir(work)
        os.environ["NEWSLETTER_FROM"] = "VZHG <nieuwsbrief@vzhg.nl>"
        os.environ.pop("ARCHIVE_BASE_URL", None)
        edition = work / "editions" / "2025-09" / "edition.yaml"
        with PreviewServer(edition, "127.0.0.1", 0, root=work) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            shots = [
                ("preview.png", server.url, {"width": 1280, "height": 860}, 1, False, "light"),
                ("desktop.png", server.url + "email.html", {"width": 680, "height": 1100}, 1, False, "light"),
                ("phone.png", server.url + "email.html", {"width": 375, "height": 760}, 2, True, "light"),
                # Dark mode as a mail client in dark mode shows it (the email's own dark colours).
                ("desktop-dark.png", server.url + "email.html", {"width": 680, "height": 1100}, 1, False, "dark"),
                ("phone-dark.png", server.url + "email.html", {"width": 375, "height": 760}, 2, True, "dark"),
            ]
            for name, url, viewport, scale, mobile, scheme in shots:
                context = browser.new_context(viewport=viewport, device_scale_factor=scale, is_mobile=mobile,
                                              color_scheme=scheme)
                page = context.new_page()
                page.goto(url, wait_until="load")
                page.screenshot(path=str(HERE / name))
                context.close()
                print(f"wrote docs/screenshots/{name}")
            text = edition.read_text(encoding="utf-8")
            seen = server.state.version
            edition.write_text(text.replace("date: 2025-09-25", "datum: 2025-09-25", 1), encoding="utf-8")
            server.state.wait_for_change(seen, 20)
            context = browser.new_context(viewport={"width": 1280, "height": 560})
            page = context.new_page()
            page.goto(server.url, wait_until="load")
            page.screenshot(path=str(HERE / "preview-error.png"))
            print("wrote docs/screenshots/preview-error.png")
            browser.close()
    finally:
        os.chdir(PROJECT)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
