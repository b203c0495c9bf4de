"""Drive one open notebook (JupyterLab or Notebook 7) the way a person does, and read the widget.

>>> nb = NotebookPage(page, ui="lab")       # doctest: +SKIP
>>> nb.open(server.url("lab/tree/grid.ipynb?reset"))
>>> nb.run_cell(0); widget = nb.wait_widget()
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lab_server import LAB_IDLE_TEXT
from playwright.sync_api import Locator, Page, expect

KERNEL_TIMEOUT_MS = 90_000
WIDGET_SELECTOR = '.jp-OutputArea .headwidget[data-testid="headwidget"][data-ready="true"]'


@dataclass
class CanvasInfo:
    """Geometry of one ``canvas.hw-canvas`` as the DOM contract describes it (CSS px)."""

    panel: str
    rows: int
    cols: int
    plot_left: float
    plot_top: float
    plot_width: float
    plot_height: float
    page_x: float  # canvas top-left in page coordinates
    page_y: float
    scale_x: float  # device pixels per CSS px of the backing store
    scale_y: float

    def cell_center(self, row: int, col: int) -> tuple[float, float]:
        """Centre of a cell in CSS px relative to the canvas."""
        x = self.plot_left + (col + 0.5) * self.plot_width / self.cols
        y = self.plot_top + (row + 0.5) * self.plot_height / self.rows
        return x, y

    def cell_size(self) -> tuple[float, float]:
        return self.plot_width / self.cols, self.plot_height / self.rows

    def page_point(self, row: int, col: int) -> tuple[float, float]:
        x, y = self.cell_center(row, col)
        return self.page_x + x, self.page_y + y


_CANVAS_INFO_JS = """
([root, panel]) => {
  const canvas = [...root.querySelectorAll('canvas.hw-canvas')]
    .find((c) => c.dataset.panel === panel);
  if (!canvas) return null;
  canvas.scrollIntoView({block: 'center', inline: 'nearest'});
  const box = canvas.getBoundingClientRect();
  const d = canvas.dataset;
  return {
    panel: d.panel, rows: Number(d.rows), cols: Number(d.cols),
    plot_left: Number(d.plotLeft), plot_top: Number(d.plotTop),
    plot_width: Number(d.plotWidth), plot_height: Number(d.plotHeight),
    page_x: box.left, page_y: box.top,
    scale_x: canvas.width / box.width, scale_y: canvas.height / box.height,
  };
}
"""

_PIXELS_JS = """
([root, panel, points]) => {
  const canvas = [...root.querySelectorAll('canvas.hw-canvas')]
    .find((c) => c.dataset.panel === panel);
  const box = canvas.getBoundingClientRect();
  const sx = canvas.width / box.width, sy = canvas.height / box.height;
  const ctx = canvas.getContext('2d');
  return points.map(([x, y]) => {
    const d = ctx.getImageData(Math.floor(x * sx), Math.floor(y * sy), 1, 1).data;
    return [d[0], d[1], d[2], d[3]];
  });
}
"""


class NotebookPage:
    """One notebook open in a browser page; ``ui`` is ``"lab"`` or ``"notebook"`` (Notebook 7)."""

    def __init__(self, page: Page, ui: Literal["lab", "notebook"]) -> None:
        self.page = page
        self.ui = ui

    # -- notebook -------------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.wait_idle()

    def wait_idle(self) -> None:
        if self.ui == "lab":
            self.page.get_by_text(LAB_IDLE_TEXT).wait_for(timeout=KERNEL_TIMEOUT_MS)
        else:
            self.page.locator(".jp-Toolbar-kernelName", has_text="Python 3 (ipykernel)").wait_for(
                timeout=KERNEL_TIMEOUT_MS
            )
            indicator = self.page.locator(".jp-Notebook-ExecutionIndicator")
            expect(indicator).to_contain_text("Kernel status: Idle", timeout=KERNEL_TIMEOUT_MS)

    def cell(self, index: int) -> Locator:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def _prompt(self, index: int) -> str:
        return self.cell(index).locator(".jp-InputPrompt").first.inner_text().strip()

    def run_cell(self, index: int, timeout_ms: int = KERNEL_TIMEOUT_MS) -> str:
        """Click the cell's editor, press Shift+Enter, wait until it has run; return its output."""
        before = self._prompt(index)
        self.cell(index).locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")
        prompt = self.cell(index).locator(".jp-InputPrompt").first
        # "[*]:" while queued or running, then "[n]:" with a new n.
        expect(prompt).not_to_have_text(before, timeout=timeout_ms)
        expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=timeout_ms)
        return self.cell(index).locator(".jp-OutputArea").inner_text()

    # -- widget ---------------------------------------------------------------------------------

    def show_widget(self, cell_index: int = 0) -> Locator:
        """(Re-)run the cell that displays the grid and return the fresh, ready widget root."""
        # Mark any previous view so that we wait for the new one, not the old one.
        self.page.evaluate(
            "() => document.querySelectorAll('.headwidget').forEach(e => e.dataset.e2eStale = '1')"
        )
        self.run_cell(cell_index)
        widget = self.cell(cell_index).locator(f"{WIDGET_SELECTOR}:not([data-e2e-stale])")
        widget.wait_for(timeout=KERNEL_TIMEOUT_MS)
        return widget

    def canvas_info(self, widget: Locator, panel: str) -> CanvasInfo:
        handle = widget.element_handle()
        info = self.page.evaluate(_CANVAS_INFO_JS, [handle, panel])
        if info is None:
            panels = widget.evaluate(
                "(root) => [...root.querySelectorAll('canvas.hw-canvas')].map(c => c.dataset.panel)"
            )
            raise AssertionError(f"no canvas.hw-canvas with data-panel={panel!r}; found {panels}")
        return CanvasInfo(**info)

    def pixels(
        self, widget: Locator, panel: str, points: list[tuple[float, float]]
    ) -> list[tuple[int, int, int, int]]:
        """RGBA of the canvas at CSS-px points relative to the canvas."""
        handle = widget.element_handle()
        return [tuple(p) for p in self.page.evaluate(_PIXELS_JS, [handle, panel, points])]

    def cell_pixel(
        self, widget: Locator, panel: str, row: int, col: int
    ) -> tuple[int, int, int, int]:
        info = self.canvas_info(widget, panel)
        return self.pixels(widget, panel, [info.cell_center(row, col)])[0]

    def cell_interior_pixels(
        self, widget: Locator, panel: str, row: int, col: int, inset: float = 2.0
    ) -> list[tuple[int, int, int, int]]:
        """Every CSS pixel of a cell's interior (``inset`` px away from its edges)."""
        info = self.canvas_info(widget, panel)
        width, height = info.cell_size()
        x0 = info.plot_left + col * width + inset
        y0 = info.plot_top + row * height + inset
        xs = [x0 + i for i in range(max(1, int(width - 2 * inset)))]
        ys = [y0 + j for j in range(max(1, int(height - 2 * inset)))]
        return self.pixels(widget, panel, [(x, y) for y in ys for x in xs])

    def hover_cell(self, widget: Locator, panel: str, row: int, col: int) -> None:
        info = self.canvas_info(widget, panel)
        self.page.mouse.move(*info.page_point(row, col))

    def click_cell(self, widget: Locator, panel: str, row: int, col: int) -> None:
        info = self.canvas_info(widget, panel)
        self.page.mouse.click(*info.page_point(row, col))

    def move_mouse_away(self) -> None:
        self.page.mouse.move(1, 1)


STATE_CELL = 1  # the cell that prints the grid's traits (known_scores.STATE_CELL_SOURCE)


def python_state(nb: NotebookPage) -> dict:
    """Run the cell that prints the widget's traits as Python sees them."""
    output = nb.run_cell(STATE_CELL)
    match = re.search(r"STATE (\{.*\})", output)
    assert match, f"the state cell printed {output!r}"
    return json.loads(match.group(1))


def displayed_counts(widget: Locator) -> dict[str, int]:
    counts = {}
    for item in widget.locator(".hw-count").all():
        text = item.inner_text()
        match = re.search(r"(\d+)\s+heads?\b", text)
        assert match, f".hw-count text {text!r} does not say how many heads"
        counts[item.get_attribute("data-task")] = int(match.group(1))
    return counts


def rgb_close(actual: tuple[int, ...], expected: tuple[int, int, int], tol: int = 8) -> bool:
    return all(abs(int(a) - int(e)) <= tol for a, e in zip(actual[:3], expected, strict=True))


def save_screenshot(target: Page | Locator, artifacts: Path, name: str) -> Path:
    """Save a screenshot of a page or element as ``test-artifacts/<name>.png``."""
    path = artifacts / f"{name}.png"
    target.screenshot(path=str(path))
    return path


class DialogWatcher:
    """Records every alert/confirm/prompt a page raises (an injected script would raise one)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, dialog) -> None:
        self.messages.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


def notebook_path(ui: Literal["lab", "notebook"], name: str) -> str:
    """The server path of notebook ``name`` in JupyterLab (a fresh workspace) or Notebook 7."""
    return f"lab/tree/{name}?reset" if ui == "lab" else f"notebooks/{name}"


def open_notebook(
    browser: Any, url: str, ui: Literal["lab", "notebook"]
) -> tuple[Any, NotebookPage]:
    """A new browser context (1400 x 1000) and the notebook at ``url`` open in it in ``ui``,
    kernel idle; the page's errors gather in ``nb.page_errors`` and its dialogs (dismissed) in
    ``nb.dialogs``. Close the context when done."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    dialogs = DialogWatcher()
    page.on("dialog", dialogs)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    nb = NotebookPage(page, ui)
    nb.open(url)
    nb.dialogs = dialogs  # type: ignore[attr-defined]
    nb.page_errors = errors  # type: ignore[attr-defined]
    return context, nb
