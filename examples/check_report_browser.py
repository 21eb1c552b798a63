"""Open a run's report.html in headless Chromium, check every figure loaded, save a screenshot.

Usage: python examples/check_report_browser.py OUTPUT_DIR [--screenshot report.png]
Exit status 0 when every embedded image decoded, 1 otherwise (2 without Chromium).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disco_ray.report.browser import check_in_browser, find_chromium


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path, help="a `disco-ray run` output directory")
    parser.add_argument("--screenshot", type=Path, help="PNG to write (default: "
                        "OUTPUT_DIR/report_screenshot.png)")
    args = parser.parse_args(argv)
    html = args.output_dir / "report.html"
    if not html.is_file():
        print(f"{html}: not found. Fix: run `disco-ray run` (report: true) first")
        return 1
    if find_chromium() is None:
        print("no chromium found. Fix: apt-get install -y chromium")
        return 2
    shot = args.screenshot or args.output_dir / "report_screenshot.png"
    check = check_in_browser(html, screenshot=shot)
    print(f"{html}: {check.images_loaded}/{check.images_total} images loaded; "
          f"screenshot {check.screenshot}")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
