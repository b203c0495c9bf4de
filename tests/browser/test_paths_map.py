"""Paths between heads on the map, in a real JupyterLab and Notebook 7: the arrows drawn
between the right cells in their colours, the logits' marker below the last layer, an edge's
values on hover, and clicking a head fading the edges that do not touch it, the paths bar's
slider setting path_edges in the kernel.

A grid of made-up scores (one task, 4 layers x 4 heads, all cells alike) and made-up HeadPaths:
L0H1 -> L2H3 via k (+0.5), L1H0 -> L3H2 via q (-0.3), L3H2 -> logits (+0.8).
"""

from __future__ import annotations

import pytest
from lab_server import write_notebook
from notebook_page import NotebookPage, notebook_path, open_notebook, rgb_close, save_screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TASK = "capital"
SOURCE = f"""\
import numpy as np
from headwidget import HeadImportanceGrid, HeadPaths, HeadScores

scores = HeadScores(np.full((1, 4, 4), 0.05, np.float32), [{TASK!r}])
edges = np.array([[0, 0, 1, 2, 3, 1], [0, 1, 0, 3, 2, 0], [0, 3, 2, -1, -1, 3]])
effects = np.array([[0.5, 0.52, 0.48], [-0.3, -0.28, -0.32], [0.8, 0.82, 0.78]])
paths = HeadPaths(tasks=[{TASK!r}], n_layers=4, n_heads=4, heads={{}}, edges=edges,
                  effect=effects.mean(1), effects={{{TASK!r}: effects}})
grid = HeadImportanceGrid(scores, paths=paths)
grid
"""
ORANGE, BLUE = (255, 159, 28), (46, 196, 255)


@pytest.fixture(scope="module", params=["lab", "notebook"])
def paths_page(request, browser, jupyter_server):
    """The notebook in JupyterLab, then in Notebook 7."""
    name = f"paths-{request.param}.ipynb"
    write_notebook(jupyter_server.root_dir / name, [SOURCE, "print('EDGES', grid.path_edges)"])
    url = jupyter_server.url(notebook_path(request.param, name))
    context, nb = open_notebook(browser, url, request.param)
    yield nb
    context.close()


def along(info, a: tuple[int, int], b: tuple[int, int], n: int = 9):
    """Points along the segment between two heads' cell centres, clear of the ends."""
    (x0, y0), (x1, y1) = info.cell_center(*a), info.cell_center(*b)
    return [
        (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
        for t in [0.3 + 0.4 * k / (n - 1) for k in range(n)]
    ]


def test_arrows_on_the_right_cells_hover_and_selection(paths_page: NotebookPage, artifacts):
    nb = paths_page
    nb.page_errors.clear()  # type: ignore[attr-defined]  # Notebook 7's own, raised as it loads
    widget = nb.show_widget(0)
    nb.move_mouse_away()
    nb.page.wait_for_timeout(200)
    info = nb.canvas_info(widget, TASK)
    # the q edge (solid, hurts: blue) runs from L1H0's centre to L3H2's
    pixels = nb.pixels(widget, TASK, along(info, (1, 0), (3, 2)))
    assert all(rgb_close(p, BLUE, tol=40) for p in pixels), pixels
    # the k edge (dashed, helps: orange) from L0H1 to L2H3: orange along it, between dashes
    pixels = nb.pixels(widget, TASK, along(info, (0, 1), (2, 3), 15))
    assert sum(rgb_close(p, ORANGE, tol=40) for p in pixels) >= 5, pixels
    # no arrow where no edge runs: the cell centre of L0H3 keeps its colour
    (plain,) = nb.pixels(widget, TASK, [info.cell_center(0, 3)])
    assert not rgb_close(plain, ORANGE, tol=60) and not rgb_close(plain, BLUE, tol=60)
    # the logits edge: from L3H2 down to the marker at the middle of the plot's bottom edge
    bottom = (info.plot_left + info.plot_width / 2, info.plot_top + info.plot_height)
    (marker,) = nb.pixels(widget, TASK, [bottom])
    assert rgb_close(marker, (255, 255, 255), tol=30), marker
    expect(widget.locator('.hw-key-item[data-mark="paths"]')).to_contain_text("orange helps")
    save_screenshot(widget, artifacts, f"{nb.ui}-paths-arrows")

    # hovering the q edge shows its values: sem 0.02 / √3, times 1.96
    x, y = along(info, (1, 0), (3, 2))[4]
    nb.page.mouse.move(info.page_x + x, info.page_y + y)
    tooltip = widget.locator(".hw-tooltip")
    expect(tooltip).to_contain_text("L1H0 → L3H2 via q")
    expect(tooltip).to_contain_text("path effect -0.300 ± 0.023 (95 %)")
    nb.move_mouse_away()

    # clicking L0H1 keeps its edge and fades the q edge, which does not touch it
    nb.click_cell(widget, TASK, 0, 1)
    nb.move_mouse_away()
    nb.page.wait_for_timeout(250)
    faded = nb.pixels(widget, TASK, along(info, (1, 0), (3, 2)))
    assert not any(rgb_close(p, BLUE, tol=40) for p in faded), faded
    kept = nb.pixels(widget, TASK, along(info, (0, 1), (2, 3), 15))
    assert sum(rgb_close(p, ORANGE, tol=40) for p in kept) >= 5, kept
    save_screenshot(widget, artifacts, f"{nb.ui}-paths-selected")

    # the paths bar's slider: one edge per task (the logits edge, the strongest) reaches Python
    widget.locator("input.hw-path-edges").evaluate(
        "(s) => { s.value = '1'; s.dispatchEvent(new Event('input'));"
        " s.dispatchEvent(new Event('change')); }"
    )
    assert "EDGES 1" in nb.run_cell(1)
    nb.page.wait_for_timeout(250)
    kept = nb.pixels(widget, TASK, along(info, (0, 1), (2, 3), 15))
    assert not any(rgb_close(p, ORANGE, tol=40) for p in kept), kept
    assert not nb.page_errors  # type: ignore[attr-defined]
