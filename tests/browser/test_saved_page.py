"""A page written by ``grid.save("x.html")``, opened from disk: no Python, no Jupyter behind it.

The page's own model stands in for the kernel: an automatic threshold follows a change of
normalization as it does in Python, and awkward task names cannot break the inlined state.
"""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from headwidget import HeadScores
from headwidget.views import categories as cat
from headwidget.views.widget import HeadImportanceGrid

pytestmark = pytest.mark.browser

TRICKY = "<!--<script>x</script>"


def scores(name: str = "capital") -> HeadScores:
    values = np.random.default_rng(0).gamma(0.5, 1.0, size=(2, 8, 8)).astype(np.float32)
    return HeadScores(
        values,
        [name, "copying"],
        categories={name: "Knowledge", "copying": "Algorithmic"},
        descriptions={name: name},
    )


@pytest.fixture
def open_saved(browser, widget_bundle, tmp_path):
    pages = []

    def open_page(grid: HeadImportanceGrid):
        path = grid.save(tmp_path / f"grid{len(pages)}.html")
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        pages.append((page, errors))
        page.goto(path.as_uri())
        page.wait_for_selector('.headwidget[data-ready="true"]', timeout=30_000)
        return page

    yield open_page
    for page, errors in pages:
        page.close()
        assert errors == [], f"page errors: {errors}"


def test_a_task_named_like_a_comment_and_script_still_renders(open_saved):
    page = open_saved(HeadImportanceGrid(scores(TRICKY), title=TRICKY))
    expect(page.locator(".hw-tab", has_text=TRICKY)).to_have_count(1)
    assert page.title() == TRICKY


def test_an_automatic_threshold_follows_normalization_in_the_page(open_saved):
    data = scores()
    share = cat.default_threshold(data.normalized("share").values)
    raw = cat.default_threshold(data.values)
    page = open_saved(HeadImportanceGrid(data))
    field = page.locator("input.hw-threshold-value")
    select = page.locator("select.hw-normalization")
    expect(field).to_have_value(str(share))
    select.select_option("raw")
    expect(field).to_have_value(str(raw))
    select.select_option("share")
    expect(field).to_have_value(str(share))
    # a threshold typed in is the user's: a change of normalization converts it, as Python does
    field.fill("0.0123")
    field.press("Enter")
    grid = HeadImportanceGrid(data, threshold=0.0123)
    grid.normalization = "raw"
    select.select_option("raw")
    expect(field).not_to_have_value("0.0123")
    assert float(field.input_value()) == pytest.approx(grid.threshold, rel=1e-9)


def test_a_chosen_threshold_is_converted_in_the_page_as_in_python(open_saved):
    grid = HeadImportanceGrid(scores(), threshold=0.02)
    page = open_saved(grid)
    field = page.locator("input.hw-threshold-value")
    expect(field).to_have_value("0.02")
    counts = page.locator(".hw-count").all_inner_texts()
    page.locator("select.hw-normalization").select_option("raw")
    grid.normalization = "raw"
    assert grid.threshold != 0.02
    expect(field).not_to_have_value("0.02")
    assert float(field.input_value()) == pytest.approx(grid.threshold, rel=1e-9)
    heads = [int(c.split()[0]) for c in counts]
    after = [int(c.split()[0]) for c in page.locator(".hw-count").all_inner_texts()]
    assert sum(after) == sum(heads), (counts, page.locator(".hw-count").all_inner_texts())
