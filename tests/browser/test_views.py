"""The views of issue 13 in a bare page (the harness; no Jupyter): true colours, narrow widths,
zoom on an 80 × 64 model, approximate cells, and the SVG / PNG export."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from contextlib import contextmanager

import known_scores as k
import numpy as np
import pytest
from harness import serve_widget, traits_for, wait_rendered
from notebook_page import NotebookPage, rgb_close, save_screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SVG = "{http://www.w3.org/2000/svg}"


@contextmanager
def open_widget(browser, tmp_path, traits, width=1200):
    with serve_widget(tmp_path, traits) as url:
        page = browser.new_page(viewport={"width": width, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        wait_rendered(page)
        # the canvas readers of the notebook tests work on any page holding the widget
        yield page, NotebookPage(page, "lab"), page.locator(".headwidget")
        page.close()
        assert errors == [], f"page errors: {errors}"


def known_traits(**overrides):
    return traits_for(
        k.VALUES, k.TASKS, k.CATEGORIES, normalization="raw", threshold=k.THRESHOLD,
        vmax=k.VMAX, **overrides,
    )  # fmt: skip


def big_scores(n_tasks=20, n_layers=80, n_heads=64):
    rng = np.random.default_rng(1)
    values = np.abs(rng.normal(0.0, 0.002, (n_tasks, n_layers, n_heads))).astype(np.float32)
    return values, [f"task {i:02d}" for i in range(n_tasks)]


def test_a_cell_below_the_threshold_has_its_colour_maps_colour(browser, tmp_path, artifacts):
    with open_widget(browser, tmp_path, known_traits()) as (page, nb, widget):
        page.mouse.move(1, 1)
        save_screenshot(widget, artifacts, "true-colours")
        # background cells: every one below the threshold
        for layer, head in [(0, 1), (3, 3), (5, 2)]:
            value = k.value(k.COPYING, layer, head)
            assert value < k.THRESHOLD
            expected = k.colormap_rgb(value / k.VMAX)
            actual = nb.cell_pixel(widget, k.COPYING, layer, head)
            assert rgb_close(actual, expected, tol=3), (layer, head, actual, expected)
        # a head that passes keeps its colour inside an outline the key explains
        inside = nb.cell_pixel(widget, k.COPYING, 1, 2)
        assert rgb_close(inside, k.colormap_rgb(k.value(k.COPYING, 1, 2) / k.VMAX), tol=3)
        expect(widget.locator('.hw-key-item[data-mark="outline"]')).to_contain_text(
            "outlined: head passes the threshold"
        )


def test_faded_cells_follow_the_threshold_and_true_colours_come_back(browser, tmp_path, artifacts):
    """The buffers are refilled only when what they show changes: faded cells follow the
    threshold; turning fading off again shows every cell in its colour map colour."""
    layer, head = 0, 1
    value = k.value(k.COPYING, layer, head)
    true_rgb = k.colormap_rgb(value / k.VMAX)
    faded = tuple(round(255 + (c - 255) * 0.28) for c in true_rgb)  # 28 % kept, white page
    with open_widget(browser, tmp_path, known_traits(fade_below=True)) as (page, nb, widget):
        page.mouse.move(1, 1)
        assert rgb_close(nb.cell_pixel(widget, k.COPYING, layer, head), faded, tol=3)
        field = widget.locator("input.hw-threshold-value")
        field.fill(f"{value / 2:.4f}")
        field.press("Enter")
        expect(widget.locator(".hw-count").first).not_to_contain_text(f"≥ {k.THRESHOLD}")
        page.wait_for_timeout(100)
        assert rgb_close(nb.cell_pixel(widget, k.COPYING, layer, head), true_rgb, tol=3)
        field.fill(str(k.THRESHOLD))
        field.press("Enter")
        page.wait_for_timeout(100)
        assert rgb_close(nb.cell_pixel(widget, k.COPYING, layer, head), faded, tol=3)
        widget.get_by_label("fade heads below the threshold").uncheck()
        page.wait_for_timeout(100)
        assert rgb_close(nb.cell_pixel(widget, k.COPYING, layer, head), true_rgb, tol=3)


@pytest.mark.parametrize("width", [560, 420])
def test_narrow_pages_never_break_a_title_inside_a_word(browser, tmp_path, artifacts, width):
    names = ["copying", "Semantic Understanding", "country → capital city", "Extraordinarily-long"]
    values = np.random.default_rng(0).random((4, 30, 9)).astype(np.float32)
    traits = traits_for(values, names, {n: "Knowledge" for n in names})
    with open_widget(browser, tmp_path, traits, width=width) as (page, _, widget):
        save_screenshot(page, artifacts, f"narrow-{width}")
        titles = widget.locator(".hw-panel-title")
        expect(titles).to_have_count(len(names))
        for name, title in zip(names, titles.all(), strict=True):
            lines = title.text_content().split("\n")
            words = name.split()
            for line in lines:
                for word in line.split():
                    # whole words, or a word cut at its end with an ellipsis; never a word's tail
                    assert word in words or (
                        word.endswith("…") and any(w.startswith(word[:-1]) for w in words)
                    ), f"{name!r} shown as {lines}"
            # the browser shows exactly these lines: no further wrapping inside a line
            height = title.evaluate("(e) => e.getBoundingClientRect().height")
            assert height == pytest.approx(17 * len(lines), abs=1), (name, lines, height)
            assert name in title.get_attribute("title")
        boxes = [c.bounding_box() for c in widget.locator("canvas.hw-canvas").all()]
        assert all(b["x"] + b["width"] <= width for b in boxes), "a panel sticks out of the page"
        # the tooltip stays inside the widget
        first = widget.locator("canvas.hw-canvas").last
        box = first.bounding_box()
        page.mouse.move(box["x"] + box["width"] - 12, box["y"] + 20)
        tip = widget.locator(".hw-tooltip")
        expect(tip).to_be_visible()
        tip_box = tip.bounding_box()
        assert tip_box["x"] >= 0 and tip_box["x"] + tip_box["width"] <= width + 1


def test_a_zoomed_80_by_64_panel_has_at_least_6_px_per_head(browser, tmp_path, artifacts):
    values, names = big_scores()
    with open_widget(browser, tmp_path, traits_for(values, names), width=1400) as (page, nb, w):
        ticks = page.evaluate(
            "() => document.querySelector('canvas.hw-canvas').dataset.rows"
        )  # fmt: skip
        assert ticks == "80"
        w.locator("button.hw-zoom").first.click()
        expect(w.locator("canvas.hw-canvas")).to_have_count(1)
        info = nb.canvas_info(w, "task 00")
        cell_w, cell_h = info.cell_size()
        assert min(cell_w, cell_h) >= 6, f"{cell_w:.2f} × {cell_h:.2f} px per head"
        save_screenshot(w, artifacts, "zoom-80x64")
        # the wheel zooms in around the pointer; the ticks follow; a double click shows it all
        canvas = w.locator("canvas.hw-canvas")
        x, y = info.page_point(40, 32)
        page.mouse.move(x, y)
        for _ in range(3):
            page.mouse.wheel(0, -100)
        expect(canvas).to_have_attribute("data-window", re.compile(r"^\d+,\d+,\d+,\d+$"))
        r0, c0, rows, cols = map(int, canvas.get_attribute("data-window").split(","))
        assert rows < 80 and cols < 64 and r0 <= 40 < r0 + rows and c0 <= 32 < c0 + cols
        page.mouse.move(x, y + 1)  # the head under the pointer is still layer 40, head 32
        expect(w.locator(".hw-tooltip")).to_contain_text("Layer 40 · Head 32")
        save_screenshot(w, artifacts, "zoom-80x64-wheel")
        canvas.dblclick()
        expect(canvas).not_to_have_attribute("data-window", re.compile(".*"))
        w.locator('button[role=tab][data-tab="all"]').click()
        expect(w.locator("canvas.hw-canvas")).to_have_count(20)


def test_a_box_zoom_on_an_80_by_64_panel(browser, tmp_path, artifacts):
    values, names = big_scores(n_tasks=4)
    with open_widget(browser, tmp_path, traits_for(values, names), width=900) as (page, nb, w):
        w.locator("button.hw-zoom").first.click()
        canvas = w.locator("canvas.hw-canvas")
        expect(canvas).to_have_count(1)
        expect(canvas).to_have_css("cursor", "crosshair")
        reset = w.locator("button.hw-zoom-reset")
        expect(reset).to_be_hidden()
        info = nb.canvas_info(w, "task 00")
        # hovering: the tooltip and the cross-hair's head
        page.mouse.move(*info.page_point(30, 10))
        expect(w.locator(".hw-tooltip")).to_contain_text("Layer 30 · Head 10")
        # drag a box from layer 30, head 10 to layer 49, head 25 (past a few cells, either way)
        page.mouse.down()
        page.mouse.move(*info.page_point(40, 20), steps=4)
        page.mouse.move(*info.page_point(49, 25), steps=4)
        save_screenshot(w, artifacts, "box-zoom-80x64-band")
        page.mouse.up()
        expect(canvas).to_have_attribute("data-window", "30,10,20,16")
        expect(reset).to_be_visible()
        cell_w, cell_h = info.plot_width / 16, info.plot_height / 20
        assert min(cell_w, cell_h) >= 6, f"{cell_w:.2f} × {cell_h:.2f} px per head"
        # the corner heads of the box are now the corners of the map
        page.mouse.move(info.page_x + info.plot_left + 2, info.page_y + info.plot_top + 2)
        expect(w.locator(".hw-tooltip")).to_contain_text("Layer 30 · Head 10")
        x = info.page_x + info.plot_left + info.plot_width - 2
        page.mouse.move(x, info.page_y + info.plot_top + info.plot_height - 2)
        expect(w.locator(".hw-tooltip")).to_contain_text("Layer 49 · Head 25")
        expect(w.locator(".hw-live")).not_to_contain_text("Layer")  # the drag selected nothing
        save_screenshot(w, artifacts, "box-zoom-80x64")
        reset.click()
        expect(canvas).not_to_have_attribute("data-window", re.compile(".*"))
        expect(reset).to_be_hidden()


def test_approximate_cells_are_dotted_and_can_be_hidden(browser, tmp_path, artifacts):
    exact = np.ones(k.VALUES.shape, bool)
    exact[0, 3:, :] = False  # the lower half of copying is still approximate
    traits = known_traits(exact=exact, provenance={"method": "attribution"})
    with open_widget(browser, tmp_path, traits) as (page, nb, widget):
        page.mouse.move(1, 1)
        key = widget.locator('.hw-key-item[data-mark="dotted"]')
        expect(key).to_contain_text("dotted: approximate (attribution), 15 of 90 cells")
        save_screenshot(widget, artifacts, "approximate")

        def spread(layer: int, head: int) -> int:
            pixels = nb.cell_interior_pixels(widget, k.COPYING, layer, head, inset=1)
            return max(max(p[:3]) - min(p[:3]) for p in pixels) - min(
                max(p[:3]) - min(p[:3]) for p in pixels
            )

        assert spread(4, 3) > 40, "an approximate cell is not dotted"
        assert spread(1, 3) < 10, "an exact cell is dotted"
        widget.locator("input.hw-exact-only").check()
        expect(widget.locator('.hw-key-item[data-mark="dotted"]')).to_contain_text(
            "15 approximate (attribution) cells hidden"
        )
        counts = widget.locator(f'.hw-count[data-task="{k.COPYING}"]')
        exact_hot = sum(1 for (t, layer, _), v in k.HOT.items() if t == k.COPYING and layer < 3)
        expect(counts).to_contain_text(f"{exact_hot} head")


def test_svg_and_png_exports(browser, tmp_path, artifacts):
    with open_widget(browser, tmp_path, known_traits(title="known")) as (page, nb, widget):
        nb.click_cell(widget, k.COPYING, 1, 2)  # a selection, which the exports leave out
        widget.locator("select.hw-export-format").select_option("svg:1")
        with page.expect_download() as info:
            widget.locator("button.hw-export").click()
        assert info.value.suggested_filename == "headwidget-all.svg"
        path = artifacts / "export.svg"
        info.value.save_as(str(path))
        root = ET.parse(path).getroot()
        lines = [t.text for t in root.iter(f"{SVG}text")]
        text = " ".join(lines)  # a title wrapped at spaces is consecutive lines
        titles = widget.locator(".hw-panel-title").all_text_contents()
        shown = [t.replace("\n", " ") for t in titles]
        assert len(shown) == k.N_TASKS and shown[0] == k.COPYING
        for title in shown:  # as shown: a word too long for the panel ends in "…"
            assert title in text, f"{title!r} missing from the SVG's text: {lines[:30]}"
        assert {"Layer", "Head", "known"} <= set(lines)
        assert len(root.findall(f".//{SVG}image")) >= k.N_TASKS  # the cells, one image a panel
        sizes = {}
        for scale in (1, 2, 3):
            widget.locator("select.hw-export-format").select_option(f"png:{scale}")
            with page.expect_download() as info:
                widget.locator("button.hw-export").click()
            path = artifacts / f"export-{scale}x.png"
            info.value.save_as(str(path))
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            sizes[scale] = struct.unpack(">II", data[16:24])
        for scale in (2, 3):
            assert sizes[scale][0] == pytest.approx(scale * sizes[1][0], abs=1), sizes
