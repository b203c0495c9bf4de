"""Shared by the picture scripts: a grid's standalone page, opened in headless Chromium (Debian's
``chromium`` through Playwright) and screenshotted.

    with chromium() as browser:
        screenshot_grid(browser, grid, Path("docs/grid.png"), width=1100)
        tooltip = screenshot_hovered(browser, grid, Path("docs/hover.png"), "copying", (3, 2),
                                     width=1100, height=900)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# the page point of a head's cell in a panel: layer on x and head on y (the last head at the top)
# where the panel is wider in cells than tall (the Categories view), else layer on y
HEAD_POINT_JS = """
([panel, layer, head]) => {
  const c = [...document.querySelectorAll('canvas.hw-canvas')]
    .find((e) => e.dataset.panel === panel);
  c.scrollIntoView({block: 'nearest'});
  const b = c.getBoundingClientRect(), d = c.dataset;
  const pw = Number(d.plotWidth), ph = Number(d.plotHeight);
  const rows = Number(d.rows), cols = Number(d.cols);
  const [row, col] = cols > rows ? [rows - 1 - head, layer] : [layer, head];
  return [b.left + Number(d.plotLeft) + (col + 0.5) * pw / cols,
          b.top + Number(d.plotTop) + (row + 0.5) * ph / rows];
}
"""


@contextmanager
def chromium(executable: str = CHROMIUM) -> Iterator[Any]:
    """A headless Chromium browser (Playwright), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot_grid(
    browser: Any,
    grid: Any,
    out: Path,
    *,
    width: int,
    height: int = 900,
    scheme: str = "light",
    ready: str = ".headwidget canvas",
    edit_html: Callable[[str], str] | None = None,
    before_open: Callable[[Any], None] | None = None,
    act: Callable[[Any], None] | None = None,
    settle_ms: int = 0,
    clip_height: int | None = None,
) -> None:
    """Save ``grid`` as a page, open it at ``width`` x ``height`` CSS pixels in ``scheme``,
    wait for ``ready``, let ``act(page)`` use it, and screenshot the widget into ``out`` (its
    top ``clip_height`` pixels when given). ``edit_html`` rewrites the page first;
    ``before_open(page)`` runs before it loads."""
    with tempfile.TemporaryDirectory() as tmp:
        page_path = grid.save(Path(tmp) / "grid.html")
        if edit_html is not None:
            html = page_path.read_text(encoding="utf-8")
            page_path.write_text(edit_html(html), encoding="utf-8")
        page = browser.new_page(
            viewport={"width": width, "height": height}, device_scale_factor=1, color_scheme=scheme
        )
        try:
            if before_open is not None:
                before_open(page)
            page.goto(page_path.resolve().as_uri())
            page.locator(ready).first.wait_for(state="visible", timeout=30_000)
            if act is not None:
                act(page)
            if settle_ms:
                page.wait_for_timeout(settle_ms)
            out.parent.mkdir(parents=True, exist_ok=True)
            widget = page.locator(".headwidget")
            if clip_height:
                box = widget.bounding_box()
                clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": clip_height}
                page.screenshot(path=str(out), clip=clip)
            else:
                widget.screenshot(path=str(out))
        finally:
            page.close()


def screenshot_hovered(
    browser: Any,
    grid: Any,
    out: Path,
    panel: str,
    head: tuple[int, int],
    *,
    width: int,
    height: int,
) -> str:
    """Screenshot ``grid`` into ``out`` (:func:`screenshot_grid`, once the widget is ready) with
    the mouse on ``head`` (layer, head) of ``panel`` (:data:`HEAD_POINT_JS`); returns the
    tooltip's text."""
    tooltip: list[str] = []

    def hover(page: Any) -> None:
        x, y = page.evaluate(HEAD_POINT_JS, [panel, *head])
        page.mouse.move(x, y)
        page.locator(".hw-tooltip").wait_for(state="visible")
        tooltip.append(page.locator(".hw-tooltip").inner_text())

    screenshot_grid(
        browser,
        grid,
        out,
        width=width,
        height=height,
        ready='.headwidget[data-ready="true"] canvas',
        act=hover,
        settle_ms=150,
    )
    return tooltip[0]
