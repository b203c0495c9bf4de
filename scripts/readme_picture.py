"""Regenerate the README's picture, docs/grid.png: the widget as a browser draws it.

Renders the standalone page that ``HeadImportanceGrid.save("grid.html")`` writes in headless
Chromium (Debian's ``chromium`` through Playwright) and screenshots the widget. The scores come
from the headless demo (``python scripts/demo.py`` writes demo-output/<suite>.npz).

    python scripts/readme_picture.py demo-output/operations.npz --tab categories --out docs/grid.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grid_page import CHROMIUM, chromium, screenshot_grid

from headwidget import HeadImportanceGrid, HeadScores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", type=Path, help="a saved HeadScores .npz")
    parser.add_argument("--out", type=Path, default=Path("docs/grid.png"))
    parser.add_argument("--tab", default="all", help='"all", "categories" or "task:<name>"')
    parser.add_argument("--width", type=int, default=1100, help="page width in CSS pixels")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()

    grid = HeadImportanceGrid(HeadScores.load(args.scores), tab=args.tab)
    with chromium(args.chromium) as browser:
        screenshot_grid(browser, grid, args.out, width=args.width, height=800)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
