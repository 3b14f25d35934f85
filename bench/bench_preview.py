"""Preview: from saving edition.yaml to the reloaded page in headless Chromium (Debian's, driven by
Playwright), with `newsletter preview` running as the user runs it, in its own process."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_build import make_project
from common import NEWSLETTER, Sample

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANCHOR = "Najaarscongres 21 november"
SHOWN = """(m) => ['desktop', 'phone'].every(id => {
  const f = document.getElementById(id);
  const d = f && f.contentDocument;
  return !!(d && d.readyState === 'complete' && d.body && d.body.textContent.includes(m));
})"""


def run(edits: int = 8) -> dict:
    chromium = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if not chromium:
        return {"error": "Chromium is missing: run `make chromium`"}
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="nl-bench-preview-") as tmp:
        project = make_project(Path(tmp) / "project")
        edition = project / "editions" / "2025-09" / "edition.yaml"
        original = edition.read_text(encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_", "ARCHIVE_BASE_URL"))}
        server = subprocess.Popen([NEWSLETTER, "preview", "2025-09", "--port", "0", "--no-open"], cwd=project, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[tuple[float, str]] = []
        url_found = threading.Event()
        url = [""]

        def read_output():
            for line in server.stdout:
                lines.append((time.perf_counter(), line.rstrip()))
                m = re.search(r"https?://\S+", line)
                if m and not url_found.is_set():
                    url[0] = m.group(0).rstrip(".,)")
                    url_found.set()

        threading.Thread(target=read_output, daemon=True).start()
        try:
            if not url_found.wait(30):
                return {"error": "the preview server printed no URL: " + " | ".join(l for _, l in lines[-5:])}
            time.sleep(1.0)  # let the watchers start
            total, rebuild = Sample(), Sample()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.goto(url[0], wait_until="load")
                for i in range(edits):
                    marker = f"{ANCHOR} edit{i}x{time.monotonic_ns() % 100000}"
                    seen_lines = len(lines)
                    started = time.perf_counter()
                    edition.write_text(original.replace(ANCHOR, marker, 1), encoding="utf-8")
                    deadline = started + 10
                    shown_at = None
                    while time.perf_counter() < deadline:
                        try:
                            if page.evaluate(SHOWN, marker):
                                shown_at = time.perf_counter()
                                break
                        except PlaywrightError:
                            pass  # the page is reloading
                        time.sleep(0.005)
                    if shown_at is None:
                        return {"error": f"edit {i} did not show within 10 s", "server": [l for _, l in lines[-5:]]}
                    total.add(shown_at - started)
                    built = [l for _, l in lines[seen_lines:] if "built in" in l]
                    m = re.search(r"built in ([0-9.]+) s", built[-1]) if built else None
                    if m:
                        rebuild.add(float(m.group(1)))
                    time.sleep(0.7)  # settle: the next save is a new change, not part of this one
                browser.close()
        finally:
            edition.write_text(original, encoding="utf-8")
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    return {"save_to_reloaded": total.as_dict(), "server_rebuild_reported": rebuild.as_dict()}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 6), indent=1))
