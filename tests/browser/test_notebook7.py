"""The grid in the Notebook 7 UI (``/notebooks/...`` of the same server)."""

from __future__ import annotations

import known_scores as k
import pytest
from notebook_page import NotebookPage, rgb_close, save_screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_grid_renders_in_notebook7_with_the_right_colours(notebook7: NotebookPage, artifacts):
    nb = notebook7
    widget = nb.show_widget(0)
    expect(widget.locator("canvas.hw-canvas")).to_have_count(k.N_TASKS)
    nb.move_mouse_away()
    save_screenshot(nb.page, artifacts, "notebook7")
    for task, layer, head in [(k.COPYING, 1, 2), (k.CAPITAL, 1, 2), (k.XSS, 0, 4)]:
        expected = k.colormap_rgb(k.value(task, layer, head) / k.VMAX)
        actual = nb.cell_pixel(widget, task, layer, head)
        assert rgb_close(actual, expected), (
            f"{task!r} ({layer}, {head}) drawn {actual[:3]}, expected viridis {expected}"
        )
    nb.hover_cell(widget, k.COPYING, 1, 2)
    expect(widget.locator(".hw-tooltip")).to_contain_text("Layer 1 · Head 2")
    assert nb.dialogs.messages == [], f"the page raised dialogs: {nb.dialogs.messages}"
