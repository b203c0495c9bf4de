"""The grid in the Notebook 7 UI (``/notebooks/...`` of the same server)."""

from __future__ import annotations

import re

import known_scores as k
import pytest
from notebook_page import NotebookPage, python_state, rgb_close, save_screenshot
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


def test_arrow_keys_move_the_selection_not_the_cell(notebook7: NotebookPage, artifacts):
    nb = notebook7
    widget = nb.show_widget(0)
    active = nb.page.locator(".jp-Notebook .jp-Cell.jp-mod-active")
    nb.click_cell(widget, k.COPYING, 2, 3)
    canvas = widget.locator(f'canvas.hw-canvas[data-panel="{k.COPYING}"]')
    expect(canvas).to_be_focused()
    before = active.get_attribute("data-windowed-list-index") or active.inner_text()[:40]
    for key in ("ArrowRight", "ArrowDown", "ArrowDown"):
        nb.page.keyboard.press(key)
    expect(widget.locator(".hw-live")).to_contain_text(
        re.compile(r"layer 4\b.*head 4\b", re.IGNORECASE)
    )
    expect(canvas).to_be_focused()
    after = active.get_attribute("data-windowed-list-index") or active.inner_text()[:40]
    assert after == before, "the arrow keys moved the notebook to another cell"
    save_screenshot(nb.page, artifacts, "notebook7-keyboard")
    assert python_state(nb)["selected_head"] == [4, 4]


def test_the_drill_down_lists_the_top_examples_of_a_clicked_head(
    notebook7: NotebookPage, artifacts
):
    widget = notebook7.show_widget(3)
    k.check_top_examples(notebook7, widget, artifacts, "notebook7-drill-examples")


def test_the_drill_down_draws_the_attention_pattern_of_a_held_model(
    notebook7: NotebookPage, artifacts
):
    widget = notebook7.show_widget(4)
    k.check_attention_pattern(notebook7, widget, artifacts, "notebook7-drill-attention")
