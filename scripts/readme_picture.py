"""Regenerate the README's picture, docs/grid.png: the widget as a browser draws it.

Renders the standalone page that ``HeadImportanceGrid.save("grid.html")`` writes in headless
Chromium (Debian's ``chromium`` through Playwright) and screenshots the widget. The scores come
from the headless demo (``python scripts/demo.py`` writes demo-output/<suite>.npz).

    python scripts/readme_picture.py demo-output/operations.npz --tab categories --out docs/grid.png
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from headwidget import HeadImportanceGrid, HeadScores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", type=Path, help="a saved HeadScores .npz")
    parser.add_argument("--out", type=Path, default=Path("docs/grid.png"))
    parser.add_argument("--tab", default="all", help='"all", "categories" or "task:<name>"')
    parser.add_argument("--width", type=int, default=1100, help="page width in CSS pixels")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    grid = HeadImportanceGrid(HeadScores.load(args.scores), tab=args.tab)
    with tempfile.TemporaryDirectory() as tmp:
        page_path = grid.save(Path(tmp) / "grid.html")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(
                viewport={"width": args.width, "height": 800}, device_scale_factor=1
            )
            page.goto(page_path.resolve().as_uri())
            widget = page.locator(".headwidget canvas").first
            widget.wait_for(state="visible", timeout=30_000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".headwidget").screenshot(path=str(args.out))
            browser.close()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
