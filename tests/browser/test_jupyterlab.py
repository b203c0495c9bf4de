"""The grid in a real JupyterLab, checked the way a person sees it.

One JupyterLab page and kernel for the module; every test re-runs the cell that displays the grid
(``lab_widget``), so each starts from the same fresh view of the known scores in known_scores.py.
"""

from __future__ import annotations

import re

import known_scores as k
import numpy as np
import pytest
from notebook_page import (
    CanvasInfo,
    NotebookPage,
    displayed_counts,
    python_state,
    rgb_close,
    save_screenshot,
)
from playwright.sync_api import Locator, expect

pytestmark = pytest.mark.browser

SET_THRESHOLD_CELL = 2


def layer_head_to_rc(info: CanvasInfo, layer: int, head: int) -> tuple[int, int]:
    """Row/column of a head in a panel, whichever way round the panel is drawn.

    layer_x draws figure B's axes: layer on x (0 at the left), head on y pointing UP, so head 0
    is the bottom row and row 0 (the top row) is the highest head.
    """
    if (info.rows, info.cols) == (k.N_LAYERS, k.N_HEADS):
        return layer, head
    assert (info.rows, info.cols) == (k.N_HEADS, k.N_LAYERS), (
        f"panel {info.panel!r} has {info.rows} rows × {info.cols} cols; expected"
        f" {k.N_LAYERS}×{k.N_HEADS} (layers × heads) or its transpose"
    )
    return k.N_HEADS - 1 - head, layer


def shown_threshold(widget: Locator) -> float:
    """The threshold as the user reads it, in the number field beside the slider."""
    field = widget.locator("input.hw-threshold-value")
    expect(field).to_be_visible()
    return float(field.input_value())


def tooltip_lines(widget: Locator) -> list[str]:
    tooltip = widget.locator(".hw-tooltip")
    expect(tooltip).to_be_visible()
    return [line.strip() for line in tooltip.inner_text().splitlines() if line.strip()]


def click_tab(widget: Locator, name: str) -> Locator:
    tab = widget.locator('[role="tablist"] button[role="tab"]').filter(
        has_text=re.compile(f"^{re.escape(name)}$")
    )
    expect(tab).to_have_count(1)
    tab.click()
    return tab


def test_known_cells_have_the_expected_viridis_colour(lab: NotebookPage, lab_widget, artifacts):
    nb, widget = lab, lab_widget
    nb.move_mouse_away()
    panels = widget.locator("canvas.hw-canvas")
    expect(panels).to_have_count(k.N_TASKS)
    for task in k.TASKS:
        info = nb.canvas_info(widget, task)
        assert (info.rows, info.cols) == (k.N_LAYERS, k.N_HEADS), (
            f"layer_y orientation: rows should be layers, cols heads; panel {task!r} has"
            f" {info.rows}×{info.cols}"
        )
    save_screenshot(widget, artifacts, "lab-all-tasks")
    # value / vmax, above the threshold so not dimmed; 1.6 is above vmax=1 -> the top colour.
    for task, layer, head in [(k.COPYING, 1, 2), (k.COPYING, 0, 0), (k.CAPITAL, 5, 4)]:
        expected = k.colormap_rgb(k.value(task, layer, head) / k.VMAX)
        actual = nb.cell_pixel(widget, task, layer, head)
        assert rgb_close(actual, expected), (
            f"{task!r} layer {layer} head {head} = {k.value(task, layer, head)} is drawn"
            f" {actual[:3]}, expected viridis {expected}"
        )
    # The colour bar exists and its top label flags that values above vmax are clipped.
    expect(widget.locator("canvas.hw-colorbar")).to_have_count(1)
    labels = widget.evaluate(
        "(root) => [...root.querySelectorAll('*')].filter(e => e.children.length === 0)"
        ".map(e => e.textContent.trim()).filter(t => /^[0-9.]+\\+$/.test(t))"
    )
    assert labels, "no colour-bar label ending in '+' although a value (1.6) exceeds vmax=1.0"
    assert abs(float(labels[0].rstrip("+")) - k.VMAX) < 1e-6, f"top label {labels[0]!r}"


def test_panel_names_and_counts_are_readable(lab: NotebookPage, lab_widget):
    """A person must be able to read each panel's task name and its count, not "country…"."""
    clipped = lab_widget.evaluate(
        """(root, names) => [...root.querySelectorAll('*')]
          .filter((e) => e.closest('[role="tablist"]') === null && e.children.length === 0
                         && e.getClientRects().length > 0
                         && (e.matches('.hw-count') || names.includes(e.textContent.trim())))
          .filter((e) => e.scrollWidth > e.clientWidth + 1)
          .map((e) => `${e.className}: "${e.textContent.trim()}" needs ${e.scrollWidth}px,`
                      + ` shows ${e.clientWidth}px`)""",
        k.TASKS,
    )
    assert clipped == [], "text cut off (ellipsis) in the All tasks view:\n" + "\n".join(clipped)


def test_nan_cell_is_hatched_and_its_tooltip_says_na(lab: NotebookPage, lab_widget, artifacts):
    nb, widget = lab, lab_widget
    nb.move_mouse_away()
    task, layer, head = k.NAN_CELL
    pixels = {p[:3] for p in nb.cell_interior_pixels(widget, task, layer, head)}
    zero = k.colormap_rgb(0.0)
    assert not all(rgb_close(p, zero) for p in pixels), "the NaN cell is drawn as the colour of 0"
    assert len(pixels) >= 2, f"the NaN cell is one flat colour {pixels}, not a hatched pattern"
    nb.hover_cell(widget, task, layer, head)
    lines = tooltip_lines(widget)
    save_screenshot(widget, artifacts, "lab-nan-tooltip")
    assert lines[0] == k.XSS, f"tooltip's first line should be the task name, got {lines}"
    assert lines[1] == f"Layer {layer} · Head {head}"
    assert any("n/a" in line for line in lines), f"NaN tooltip does not say n/a: {lines}"


def test_hover_shows_task_layer_head_importance_rank_categories(
    lab: NotebookPage, lab_widget, artifacts
):
    nb, widget = lab, lab_widget
    expect(widget.locator(".hw-tooltip")).to_be_hidden()
    task, layer, head = k.COPYING, 1, 2
    nb.hover_cell(widget, task, layer, head)
    lines = tooltip_lines(widget)
    save_screenshot(nb.page, artifacts, "lab-tooltip")
    assert len(lines) == 6, f"tooltip lines: {lines}"
    assert lines[0] == task
    assert lines[1] == f"Layer {layer} · Head {head}"
    importance = re.fullmatch(r"importance (\S+)", lines[2])
    assert importance, f"third line {lines[2]!r}"
    value = k.value(task, layer, head)
    assert float(importance.group(1)) == pytest.approx(value, rel=1e-3)
    # the raw value and its share of the task's total, whichever scale is shown
    both = re.fullmatch(r"raw (\S+)(?: \(.+\))? · share (\S+)", lines[3])
    assert both, f"fourth line {lines[3]!r}"
    share = value / np.nansum(np.abs(k.VALUES[k.TASKS.index(task)]))
    assert float(both.group(1)) == pytest.approx(value, rel=1e-3)
    assert float(both.group(2)) == pytest.approx(share, rel=1e-3)
    rank, total = k.rank(task, layer, head)
    assert lines[4] == f"rank {rank} of {total}"
    assert lines[5] == "categories: " + ", ".join(k.head_categories(layer, head))

    nb.hover_cell(widget, task, 0, 1)  # a head that passes no task
    expect(widget.locator(".hw-tooltip")).to_contain_text("Layer 0 · Head 1")
    assert tooltip_lines(widget)[5] == "categories: none"

    nb.move_mouse_away()
    expect(widget.locator(".hw-tooltip")).to_be_hidden()


def test_click_on_a_cell_reaches_python(lab: NotebookPage, lab_widget):
    nb, widget = lab, lab_widget
    nb.click_cell(widget, k.COPYING, 2, 3)
    state = python_state(nb)
    assert state["selected_head"] == [2, 3]
    assert state["selected_task"] == k.COPYING


def test_arrow_keys_move_the_selection(lab: NotebookPage, lab_widget):
    nb, widget = lab, lab_widget
    nb.click_cell(widget, k.COPYING, 2, 3)
    canvas = widget.locator(f'canvas.hw-canvas[data-panel="{k.COPYING}"]')
    expect(canvas).to_be_focused()
    assert canvas.get_attribute("aria-label"), "the heatmap canvas has no aria-label"
    nb.page.keyboard.press("ArrowRight")  # next head
    nb.page.keyboard.press("ArrowDown")  # next layer (layer 0 at the top)
    live = widget.locator(".hw-live")
    expect(live).to_contain_text(re.compile(r"layer 3\b.*head 4\b", re.IGNORECASE))
    state = python_state(nb)
    assert state["selected_head"] == [3, 4], f"after → and ↓ from (2, 3): {state}"


def test_threshold_slider_changes_the_counts(lab: NotebookPage, lab_widget):
    nb, widget = lab, lab_widget
    assert displayed_counts(widget) == k.counts(k.THRESHOLD)
    assert shown_threshold(widget) == k.THRESHOLD
    slider = widget.locator("input[type=range].hw-threshold")
    expect(slider).to_have_count(1)
    low, high = (float(slider.get_attribute(a) or d) for a, d in [("min", "0"), ("max", "100")])
    slider.fill(str(low + 0.5 * (high - low)))  # sets the value, dispatches input + change
    # the user reads the new threshold beside the slider; Python holds that same value
    expect(widget.locator("input.hw-threshold-value")).not_to_have_value(str(k.THRESHOLD))
    shown = shown_threshold(widget)
    threshold = python_state(nb)["threshold"]
    assert threshold == pytest.approx(shown, rel=1e-9), f"shown {shown}, Python has {threshold}"
    # the slider's top is the colour bar's top (vmax), and the scale is not linear: halfway
    # along is a quarter of vmax
    assert shown == pytest.approx(k.VMAX / 4, rel=1e-3), shown
    expected = k.counts(shown)
    assert expected != k.counts(k.THRESHOLD), "test data: pick a slider position that matters"
    expect(widget.locator(".hw-count").first).to_be_visible()
    assert displayed_counts(widget) == expected, f"threshold {shown}"


def test_typing_a_threshold_sets_it_exactly(lab: NotebookPage, lab_widget):
    nb, widget = lab, lab_widget
    field = widget.locator("input.hw-threshold-value")
    field.fill("0.62")
    field.press("Enter")
    expect(widget.locator(f'.hw-count[data-task="{k.COPYING}"]')).to_contain_text(
        f"{k.counts(0.62)[k.COPYING]} head"
    )
    assert displayed_counts(widget) == k.counts(0.62)
    assert python_state(nb)["threshold"] == 0.62
    # above the slider's top (vmax = 1): accepted, the thumb parks at the end
    field.fill("1.2")
    field.press("Enter")
    slider = widget.locator("input[type=range].hw-threshold")
    expect(slider).to_have_value(slider.get_attribute("max") or "")
    assert displayed_counts(widget) == k.counts(1.2)
    field.fill("not a number")
    field.press("Enter")
    expect(field).to_have_value("1.2")
    assert python_state(nb)["threshold"] == 1.2


def test_setting_the_threshold_in_python_updates_slider_and_counts(lab: NotebookPage, lab_widget):
    nb, widget = lab, lab_widget
    slider = widget.locator("input[type=range].hw-threshold")
    before = slider.input_value()
    nb.run_cell(SET_THRESHOLD_CELL)
    expected = k.counts(k.THRESHOLD_FROM_PYTHON)
    expect(widget.locator(f'.hw-count[data-task="{k.COPYING}"]')).to_contain_text(
        re.compile(rf"^\D*{expected[k.COPYING]}\s+heads?\b")
    )
    assert displayed_counts(widget) == expected
    assert slider.input_value() != before, "the slider did not move when Python set threshold"


def test_task_tab_shows_that_task_alone(lab: NotebookPage, lab_widget, artifacts):
    nb, widget = lab, lab_widget
    tabs = widget.locator('[role="tablist"] button[role="tab"]')
    names = [t.strip() for t in tabs.all_inner_texts()]
    assert names == ["All tasks", "Categories", *k.TASKS], f"tabs: {names}"
    expect(tabs.first).to_have_attribute("aria-selected", "true")
    tab = click_tab(widget, k.CAPITAL)
    expect(tab).to_have_attribute("aria-selected", "true")
    for other in tabs.all():
        if other.inner_text().strip() != k.CAPITAL:
            expect(other).not_to_have_attribute("aria-selected", "true")
    canvases = widget.locator("canvas.hw-canvas")
    expect(canvases).to_have_count(1)
    expect(canvases).to_have_attribute("data-panel", k.CAPITAL)
    nb.move_mouse_away()
    save_screenshot(widget, artifacts, "lab-task-tab")
    actual = nb.cell_pixel(widget, k.CAPITAL, 1, 2)
    expected = k.colormap_rgb(k.value(k.CAPITAL, 1, 2) / k.VMAX)
    assert rgb_close(actual, expected), f"single panel (1,2): {actual[:3]} != {expected}"
    assert python_state(nb)["tab"] == f"task:{k.CAPITAL}"


def test_categories_tab_legend_and_colours(lab: NotebookPage, lab_widget, artifacts):
    nb, widget = lab, lab_widget
    click_tab(widget, "Categories")
    legend = widget.locator(".hw-legend .hw-legend-item")
    expect(legend.first).to_be_visible()
    labels = [t.strip() for t in legend.all_inner_texts()]
    assert labels == k.EXPECTED_LEGEND, f"legend {labels}"
    panels = widget.locator("canvas.hw-canvas")
    expect(panels.first).to_be_visible()
    names = [p.get_attribute("data-panel") for p in panels.all()]
    assert names == ["All Categories", "Algorithmic", "Knowledge"], f"panels {names}"
    nb.move_mouse_away()
    save_screenshot(widget, artifacts, "lab-categories")

    info = nb.canvas_info(widget, "All Categories")
    expected_all = {
        (1, 2): "2 categories",
        (2, 3): "2 categories",
        (0, 0): "Algorithmic",
        (4, 1): "Algorithmic",
        (5, 4): "Knowledge",
        (3, 0): "Knowledge",
        (0, 1): "Unclassified",
        (0, 4): "Unclassified",  # passes only the task without a category
    }
    for (layer, head), label in expected_all.items():
        row, col = layer_head_to_rc(info, layer, head)
        actual = nb.cell_pixel(widget, "All Categories", row, col)
        assert rgb_close(actual, k.hex_rgb(k.CATEGORY_HEX[label]), tol=4), (
            f"All Categories, layer {layer} head {head}: {actual[:3]}, expected {label}"
            f" {k.CATEGORY_HEX[label]}"
        )
    # A single-category panel: that category's heads in its colour, the rest grey.
    info = nb.canvas_info(widget, "Algorithmic")
    blue = k.hex_rgb(k.CATEGORY_HEX["Algorithmic"])
    for (layer, head), is_member in {(0, 0): True, (1, 2): True, (5, 4): False}.items():
        row, col = layer_head_to_rc(info, layer, head)
        r, g, b, _ = nb.cell_pixel(widget, "Algorithmic", row, col)
        if is_member:
            assert rgb_close((r, g, b), blue, tol=4), f"Algorithmic ({layer},{head}) {(r, g, b)}"
        else:
            assert max(r, g, b) - min(r, g, b) <= 12, f"non-member ({layer},{head}) not grey"


def test_task_name_with_html_is_shown_as_text(lab: NotebookPage, lab_widget):
    nb, widget = lab, lab_widget
    tab = widget.locator('[role="tablist"] button[role="tab"]', has_text=k.XSS)
    expect(tab).to_have_count(1)
    expect(tab).to_have_text(k.XSS)
    expect(widget.locator("img")).to_have_count(0)
    counts = widget.locator(".hw-count")
    assert k.XSS in [c.get_attribute("data-task") for c in counts.all()]
    click_tab(widget, k.XSS)
    expect(widget.locator("canvas.hw-canvas")).to_have_attribute("data-panel", k.XSS)
    expect(widget.locator("img")).to_have_count(0)
    nb.page.wait_for_timeout(200)  # an onerror handler would have fired by now
    assert nb.dialogs.messages == [], f"an injected handler ran: {nb.dialogs.messages}"
    assert nb.page_errors == [], f"page errors: {nb.page_errors}"


def test_top_percent_mode_counts_the_best_heads_of_each_task(lab: NotebookPage, lab_widget):
    nb, widget = lab, lab_widget
    widget.locator("select.hw-threshold-mode").select_option("top_percent")
    expected = k.top_percent_counts(5.0)
    expect(widget.locator(f'.hw-count[data-task="{k.COPYING}"]')).to_contain_text("in top 5%")
    assert displayed_counts(widget) == expected
    widget.locator("input[type=range].hw-threshold").fill("20")
    expect(widget.locator(f'.hw-count[data-task="{k.COPYING}"]')).to_contain_text("in top 20%")
    assert displayed_counts(widget) == k.top_percent_counts(20.0)
    state = python_state(nb)
    assert (state["threshold_mode"], state["top_percent"]) == ("top_percent", 20.0), state


def test_orientation_switch_puts_layers_on_x(lab: NotebookPage, lab_widget, artifacts):
    nb, widget = lab, lab_widget
    widget.locator("select.hw-orientation").select_option("layer_x")
    canvas = widget.locator(f'canvas.hw-canvas[data-panel="{k.COPYING}"]')
    expect(canvas).to_have_attribute("data-rows", str(k.N_HEADS))
    expect(canvas).to_have_attribute("data-cols", str(k.N_LAYERS))
    nb.move_mouse_away()
    save_screenshot(widget, artifacts, "lab-layer-x")
    # Figure B: layer 0 / head 0 is the BOTTOM-left cell (head axis pointing up); the top-left
    # cell is layer 0 / the highest head.
    bottom_left = nb.cell_pixel(widget, k.COPYING, k.N_HEADS - 1, 0)
    expected = k.colormap_rgb(k.value(k.COPYING, 0, 0) / k.VMAX)
    assert rgb_close(bottom_left, expected), f"bottom-left {bottom_left[:3]} != (0, 0) {expected}"
    top_left = nb.cell_pixel(widget, k.COPYING, 0, 0)
    assert not rgb_close(top_left, expected), "top-left is drawn like layer 0 / head 0"
    # a background head is dimmed (below the threshold), so compare it to layer 4 / head 1 (hot)
    row, col = layer_head_to_rc(nb.canvas_info(widget, k.COPYING), 4, 1)
    assert (row, col) == (k.N_HEADS - 1 - 1, 4)
    actual = nb.cell_pixel(widget, k.COPYING, row, col)
    expected = k.colormap_rgb(k.value(k.COPYING, 4, 1) / k.VMAX)
    assert rgb_close(actual, expected), f"layer_x (layer 4, head 1): {actual[:3]} != {expected}"
    nb.hover_cell(widget, k.COPYING, k.N_HEADS - 1, 0)
    expect(widget.locator(".hw-tooltip")).to_contain_text("Layer 0 · Head 0")
    nb.hover_cell(widget, k.COPYING, 0, 1)
    expect(widget.locator(".hw-tooltip")).to_contain_text(f"Layer 1 · Head {k.N_HEADS - 1}")
    # arrow up moves to the visually higher cell: the next head
    nb.click_cell(widget, k.COPYING, k.N_HEADS - 1 - 2, 1)  # layer 1, head 2
    canvas.press("ArrowUp")
    expect(widget.locator(".hw-live")).to_contain_text(
        re.compile(r"layer 1\b.*head 3\b", re.IGNORECASE)
    )
    state = python_state(nb)
    assert state["orientation"] == "layer_x"
    assert state["selected_head"] == [1, 3], state
    # the categories view (figure B itself) uses the same axes: (0, 0) bottom-left, Algorithmic
    click_tab(widget, "Categories")
    info = nb.canvas_info(widget, "All Categories")
    assert (info.rows, info.cols) == (k.N_HEADS, k.N_LAYERS)
    nb.move_mouse_away()
    save_screenshot(widget, artifacts, "lab-layer-x-categories")
    for (layer, head), label in {(0, 0): "Algorithmic", (5, 4): "Knowledge"}.items():
        row, col = layer_head_to_rc(info, layer, head)
        actual = nb.cell_pixel(widget, "All Categories", row, col)
        assert rgb_close(actual, k.hex_rgb(k.CATEGORY_HEX[label]), tol=4), (layer, head, actual)


def test_export_downloads_a_png_of_the_current_view(lab: NotebookPage, lab_widget, artifacts):
    nb, widget = lab, lab_widget
    expect(widget.locator(".hw-progress")).to_be_hidden()  # idle: no progress line
    with nb.page.expect_download() as download_info:
        widget.locator("button.hw-export").click()
    download = download_info.value
    assert download.suggested_filename == "headwidget-all.png"
    path = artifacts / "lab-export.png"
    download.save_as(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "the export is not a PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 200 and height >= 100, f"exported image is only {width}×{height}"


def test_the_drill_down_lists_the_top_examples_of_a_clicked_head(lab: NotebookPage, artifacts):
    widget = lab.show_widget(3)
    k.check_top_examples(lab, widget, artifacts, "lab-drill-examples")


def test_the_drill_down_draws_the_attention_pattern_of_a_held_model(lab: NotebookPage, artifacts):
    widget = lab.show_widget(4)
    k.check_attention_pattern(lab, widget, artifacts, "lab-drill-attention")
