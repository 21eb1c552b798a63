"""Render a report in headless Chromium and check that every embedded image loaded.

The page is copied with a small probe script appended (the report itself has no scripts); the
probe records, on the load event, how many images exist and how many decoded with a non-zero
width. Used by tests and by examples/check_report_browser.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000")
PROBE = """<script>
addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.setAttribute("data-images-total", images.length);
  document.body.setAttribute("data-images-loaded",
    images.filter(i => i.complete && i.naturalWidth > 0).length);
});
</script>"""


@dataclass(frozen=True)
class BrowserCheck:
    """What the browser saw: images on the page, images decoded, and the screenshot if any."""

    images_total: int
    images_loaded: int
    screenshot: Path | None = None

    @property
    def ok(self) -> bool:
        return self.images_total > 0 and self.images_loaded == self.images_total


def find_chromium() -> str | None:
    """The path of a Chromium/Chrome executable, or None."""
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _chromium(executable: str, profile: Path, args: list[str], timeout: float) -> str:
    command = [executable, *FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{executable} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def check_in_browser(html_path: str | Path, screenshot: str | Path | None = None,
                     executable: str | None = None, window: tuple[int, int] = (1280, 2700),
                     timeout: float = 120) -> BrowserCheck:
    """Load `html_path` in headless Chromium; count decoded images; optionally screenshot it."""
    executable = executable or find_chromium()
    if executable is None:
        raise FileNotFoundError("no chromium executable found. Fix: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="disco-report-") as tmp:
        tmp = Path(tmp)
        probed = tmp / "probed.html"
        page = Path(html_path).read_text(encoding="utf-8")
        probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = _chromium(executable, tmp / "profile", ["--dump-dom", probed.as_uri()], timeout)
        counts = {name: int(value) for name, value in
                  re.findall(r'data-images-(total|loaded)="(\d+)"', dom)}
        shot = None
        if screenshot is not None:
            shot = Path(screenshot).resolve()
            _chromium(executable, tmp / "profile", [f"--screenshot={shot}",
                                                    f"--window-size={window[0]},{window[1]}",
                                                    "--hide-scrollbars",
                                                    Path(html_path).resolve().as_uri()], timeout)
    return BrowserCheck(counts.get("total", 0), counts.get("loaded", 0), shot)
