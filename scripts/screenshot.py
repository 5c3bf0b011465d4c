"""Write docs/report.png, the README's picture of `pmgdns verify --format html`.

The same 50-domain fleet as tests/test_report.py (DMARC FAIL on d07, DKIM FAIL on d23, MX WARN
on d41), with d07's finding expanded. Needs chromium. Run from the repository root:

    PYTHONPATH=src .venv/bin/python scripts/screenshot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.test_report import fleet_doc, png_size, screenshot  # noqa: E402

from pmgdns.reports.html import verify_html  # noqa: E402

SIZE = (1280, 840)


def main() -> None:
    page = ROOT / "build" / "report-docs.html"
    page.parent.mkdir(exist_ok=True)
    # expand the first problem (d07's DMARC) so the picture shows a finding
    page.write_text(verify_html(fleet_doc()).replace("<details>", "<details open>", 1),
                    encoding="utf-8")
    png = ROOT / "docs" / "report.png"
    screenshot(page, png, SIZE)
    print(f"{png}: {png_size(png)[0]}x{png_size(png)[1]}, {png.stat().st_size} bytes")


if __name__ == "__main__":
    main()
