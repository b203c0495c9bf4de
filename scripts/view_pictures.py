"""Redraw the README's gallery of the widget's views, docs/views/*.png, from the demo model's
shipped maps (``headwidget.demo.load_demo_scores``), in headless Chromium.

Each picture is the self-contained page that ``HeadImportanceGrid.save("x.html")`` writes, opened
in Debian's ``chromium`` through Playwright, used as a person would (tabs, box zoom, hover, a
click) and screenshotted. ``compare.png`` sets exact ablation of the cognitive tasks, computed
here on the demo model on ``--examples`` (12) examples each, against the shipped cognitive map
(attribution, 42 examples, 20 cells refined exactly); ``--ablation exact.npz`` reuses the exact
scores saved there (computing and saving them when the file is missing), ``--no-compare`` skips
the picture. This writes tracked files, so it is its own
command (also ``bash scripts/demo.sh docs``):

    python scripts/view_pictures.py                 # all pictures into docs/views/
    python scripts/view_pictures.py --only zoom dark
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grid_page import CHROMIUM, chromium, screenshot_grid

from headwidget import HeadImportanceGrid, HeadScores
from headwidget.demo import load_demo_scores

ROOT = Path(__file__).resolve().parents[1]

# where a cell (row, col of the shown window) of a panel's canvas is on the page
CELL_POINT_JS = """
([panel, row, col]) => {
  const c = [...document.querySelectorAll('canvas.hw-canvas')]
    .find((e) => e.dataset.panel === panel);
  c.scrollIntoView({block: 'nearest'});
  const b = c.getBoundingClientRect(), d = c.dataset;
  const [r0, c0, rows, cols] = (d.window || `0,0,${d.rows},${d.cols}`).split(',').map(Number);
  const pw = Number(d.plotWidth), ph = Number(d.plotHeight);
  return [b.left + Number(d.plotLeft) + (col - c0 + 0.5) * pw / cols,
          b.top + Number(d.plotTop) + (row - r0 + 0.5) * ph / rows];
}
"""

# a native <select> opens outside the page (not in a screenshot): show its options as a list
# box over the page instead, as the open menu looks
OPEN_SELECT_JS = """
(sel) => {
  const r = sel.getBoundingClientRect();
  const box = sel.cloneNode(true);
  box.size = Math.min(box.options.length, 12);
  Object.assign(box.style, {position: 'fixed', left: `${r.left}px`, top: `${r.bottom + 2}px`,
    zIndex: 1000, boxShadow: '0 3px 10px rgba(0,0,0,0.25)', height: 'auto',
    minWidth: `${r.width}px`});
  box.value = sel.value;
  sel.closest('.headwidget').append(box);
}
"""


def _cell(page: Any, panel: str, row: int, col: int) -> tuple[float, float]:
    x, y = page.evaluate(CELL_POINT_JS, [panel, row, col])
    return x, y


def _drag_box(page: Any, task: str, first: tuple[int, int], last: tuple[int, int]) -> None:
    """Enlarge ``task``'s panel and drag a box from cell ``first`` to ``last``, button held."""
    page.locator(f'button.hw-zoom[aria-label="Enlarge {task}"]').click()
    page.wait_for_function("document.querySelectorAll('canvas.hw-canvas').length === 1")
    page.mouse.move(*_cell(page, task, *first))
    page.mouse.down()
    page.mouse.move(*_cell(page, task, *last), steps=6)


def zoom(page: Any) -> None:
    """One task enlarged, box-zoomed to layers 8-27 and hovered: cross-hair and tooltip."""
    task = "country → capital"
    _drag_box(page, task, (8, 0), (27, 8))
    page.mouse.up()
    page.locator("canvas.hw-canvas[data-window]").wait_for()
    page.mouse.move(*_cell(page, task, 15, 5))
    page.locator(".hw-tooltip").wait_for()


def box_band(page: Any) -> None:
    """The box being dragged over an enlarged panel (the band of layers × heads)."""
    _drag_box(page, "country → capital", (12, 1), (22, 6))


def categories(page: Any) -> None:
    """Categories, one head clicked: its importance in every task below the grid."""
    page.mouse.click(*_cell(page, "All Categories", 1, 0))
    page.mouse.move(*_cell(page, "All Categories", 1, 0))
    page.locator(".hw-tooltip").wait_for()


def tabs_menu(page: Any) -> None:
    """18 tasks at 900 px: the tabs that do not fit are in a menu, shown open."""
    menu = page.locator("select.hw-tab-menu")
    menu.wait_for()
    menu.evaluate(OPEN_SELECT_JS)


def export_menu(page: Any) -> None:
    """The export formats (SVG; PNG 1×-3×), shown open."""
    page.locator("select.hw-export-format").evaluate(OPEN_SELECT_JS)


#: name -> (suite, grid options, viewport width, colour scheme, interaction, clip height or None)
VIEWS: dict[str, tuple[str, dict[str, Any], int, str, Callable[[Any], None] | None, int | None]] = {
    "zoom": ("operations", {}, 900, "light", zoom, None),
    "box-zoom": ("operations", {}, 900, "light", box_band, None),
    "categories": ("operations", {"tab": "categories"}, 1100, "light", categories, None),
    "dark": ("cognitive", {}, 1100, "dark", None, None),
    "narrow": ("cognitive", {}, 560, "light", None, 1000),
    "tabs-menu": ("operations", {}, 900, "light", tabs_menu, 420),
    "export-menu": ("cognitive", {}, 1100, "light", export_menu, 300),
}


def compare_scores_for_picture(saved: Path | None, examples: int) -> tuple[HeadScores, HeadScores]:
    """Exact ablation of the cognitive tasks on ``examples`` examples each (``saved``, else
    computed on the demo model) and the shipped cognitive map (attribution with exact
    refinement) of the same tasks."""
    from headwidget import load_suite, score_heads
    from headwidget.demo import load_demo_model

    shipped = load_demo_scores("cognitive")
    if saved is not None and saved.exists():
        return HeadScores.load(saved), shipped
    model, tokenizer = load_demo_model()
    tasks = load_suite(**{**shipped.meta["suite"], "max_examples": examples})
    exact = score_heads(
        model, tokenizer, tasks, method="ablation", metric=str(shipped.meta.get("metric")),
        ablation=str(shipped.meta.get("ablation")), keep_examples=True, progress=True,
    )  # fmt: skip
    if saved is not None:
        exact.save(saved)
    return exact, shipped


def shoot(browser: Any, grid: HeadImportanceGrid, out: Path, width: int, scheme: str,
          act: Callable[[Any], None] | None, clip_height: int | None) -> None:  # fmt: skip
    screenshot_grid(
        browser, grid, out, width=width, scheme=scheme,
        ready='.headwidget[data-ready="true"] canvas', act=act, settle_ms=150,
        clip_height=clip_height,
    )  # fmt: skip
    print(f"saved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "views")
    parser.add_argument("--only", nargs="*", help=f"some of: {', '.join([*VIEWS, 'compare'])}")
    parser.add_argument("--no-compare", action="store_true", help="skip compare.png")
    parser.add_argument(
        "--ablation", type=Path, help="exact scores of the cognitive tasks: reused, or saved there"
    )
    parser.add_argument("--examples", type=int, default=12, help="compare: exact on K (12)")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    wanted = set(args.only or [*VIEWS, "compare"])
    if args.no_compare:
        wanted.discard("compare")
    args.out.mkdir(parents=True, exist_ok=True)

    with chromium(args.chromium) as browser:
        for name, (suite, options, width, scheme, act, clip) in VIEWS.items():
            if name in wanted:
                grid = HeadImportanceGrid(load_demo_scores(suite), **options)
                shoot(browser, grid, args.out / f"{name}.png", width, scheme, act, clip)
        if "compare" in wanted:
            ablation, attribution = compare_scores_for_picture(args.ablation, args.examples)
            grid = HeadImportanceGrid(ablation, compare=attribution, grid_columns=4)
            shoot(browser, grid, args.out / "compare.png", 1100, "light", None, None)


if __name__ == "__main__":
    main()
