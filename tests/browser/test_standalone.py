"""The built bundle against a fake anywidget model in a bare page: quick, no Jupyter involved.

Checks the model side of the contract that the Jupyter tests can only see through the kernel:
what the front end writes back (set + save_changes), that it follows model changes, and the
``data-last-redraw-ms`` figure the redraw benchmark reads.
"""

from __future__ import annotations

import math

import known_scores as k
import pytest
from harness import serve_widget, traits_for, wait_rendered
from notebook_page import displayed_counts
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def harness_page(browser, widget_bundle, tmp_path):
    traits = traits_for(
        k.VALUES,
        k.TASKS,
        k.CATEGORIES,
        normalization="raw",
        threshold=k.THRESHOLD,
        vmax=k.VMAX,
        title="harness",
    )
    with serve_widget(tmp_path, traits) as url:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        wait_rendered(page)
        yield page
        page.close()
        assert errors == [], f"page errors: {errors}"


def test_slider_writes_threshold_back_and_records_redraw_time(harness_page):
    page = harness_page
    root = page.locator(".headwidget")
    redraw = float(root.get_attribute("data-last-redraw-ms") or "nan")
    assert math.isfinite(redraw) and redraw >= 0, f"data-last-redraw-ms={redraw}"
    slider = page.locator("input[type=range].hw-threshold")
    page.evaluate("window.__model.changes = []; window.__model.saved = 0")
    low, high = float(slider.get_attribute("min") or 0), float(slider.get_attribute("max") or 100)
    slider.fill(str(low + 0.75 * (high - low)))
    changes = page.evaluate("window.__model.changes")
    thresholds = [value for name, value in changes if name == "threshold"]
    assert thresholds, f"moving the slider set no threshold on the model; sets: {changes}"
    assert page.evaluate("window.__model.saved") >= 1, "set() without save_changes()"
    threshold = thresholds[-1]
    # the trait is the threshold the user reads beside the slider, not the slider position
    field = page.locator("input.hw-threshold-value")
    expect(field).to_have_value(str(threshold))
    # square-root scale up to the colour bar's top (vmax): 3/4 of the way is (3/4)² vmax
    assert threshold == pytest.approx(0.5625 * k.VMAX, rel=1e-3)
    assert displayed_counts(page.locator(".headwidget")) == k.counts(float(field.input_value()))


def test_typed_threshold_is_set_exactly_and_bad_text_reverts(harness_page):
    page = harness_page
    field = page.locator("input.hw-threshold-value")
    expect(field).to_have_value(str(k.THRESHOLD))
    page.evaluate("window.__model.changes = []")
    field.fill("0.00042")
    field.press("Enter")
    changes = page.evaluate("window.__model.changes")
    assert ["threshold", 0.00042] in changes, changes
    # every background head (up to 0.28) passes; only the NaN head never does
    expected = k.counts(0.00042)
    count = page.locator(f'.hw-count[data-task="{k.XSS}"]')
    expect(count).to_contain_text(f"{expected[k.XSS]} heads")
    assert displayed_counts(page.locator(".headwidget")) == expected
    page.evaluate("window.__model.changes = []")
    field.fill("abc")
    field.press("Tab")  # leaving the field commits; invalid text is put back
    expect(field).to_have_value("0.00042")
    assert page.evaluate("window.__model.changes") == []


def test_follows_model_changes_from_python(harness_page):
    page = harness_page
    page.evaluate("window.__model.fromPython('tab', 'categories')")
    legend = page.locator(".hw-legend .hw-legend-item")
    expect(legend.first).to_be_visible()
    assert [t.strip() for t in legend.all_inner_texts()] == k.EXPECTED_LEGEND
    selected = page.locator('[role="tab"][aria-selected="true"]')
    expect(selected).to_have_text("Categories")
    page.evaluate(f"window.__model.fromPython('threshold', {k.THRESHOLD_FROM_PYTHON})")
    page.evaluate("window.__model.fromPython('tab', 'all')")
    count = page.locator(f'.hw-count[data-task="{k.COPYING}"]')
    expect(count).to_contain_text(f"{k.counts(k.THRESHOLD_FROM_PYTHON)[k.COPYING]} head")
