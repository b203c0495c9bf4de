"""Interrupting a grid that scores its model, in Notebook 7: the grid keeps its layers and its
size; the cell shows one line, not a traceback long enough to turn the output into a short
scrolled box that squeezes the grid (issue 13). Notebook 7 makes the box once the output is
taller than about 1,800 px when an output is added, so the grid here is that tall by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_server import write_notebook
from notebook_page import KERNEL_TIMEOUT_MS, WIDGET_SELECTOR, NotebookPage, save_screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TESTS_DIR = Path(__file__).resolve().parents[1]

CELL = f"""\
import sys, time
sys.path.insert(0, {str(TESTS_DIR)!r})
from tiny_models import tiny_model, word_tokenizer
from headwidget import HeadImportanceGrid, Task

tokenizer = word_tokenizer()
model = tiny_model("llama", vocab_size=len(tokenizer), n_layers=6)
examples = [("one two ->", " three"), ("two three ->", " four")]
tasks = [Task(f"task {{i}}", examples) for i in range(14)]
grid = HeadImportanceGrid(model, tokenizer, tasks=tasks, grid_columns=1)  # a tall grid
grid.sync_interval = 0.0
take_block = grid.take_block

def slow_block(*args, **kwargs):  # slow enough to interrupt by hand
    take_block(*args, **kwargs)
    time.sleep(0.3)

grid.take_block = slow_block
grid
"""


def test_an_interrupt_leaves_one_line_and_the_grid_unsqueezed(browser, jupyter_server, artifacts):
    write_notebook(jupyter_server.root_dir / "interrupt.ipynb", [CELL])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        nb = NotebookPage(page, "notebook")
        nb.open(jupyter_server.url("notebooks/interrupt.ipynb"))
        nb.cell(0).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        widget = nb.cell(0).locator(WIDGET_SELECTOR)
        progress = widget.locator(".hw-progress")
        expect(progress).to_contain_text("ETA", timeout=KERNEL_TIMEOUT_MS)
        height = widget.bounding_box()["height"]
        assert height > 1900, height

        page.locator('[data-command="notebook:interrupt-kernel"]').first.click()
        expect(progress).to_contain_text("interrupted after", timeout=KERNEL_TIMEOUT_MS)
        prompt = nb.cell(0).locator(".jp-InputPrompt").first
        expect(prompt).to_have_text("[1]:", timeout=KERNEL_TIMEOUT_MS)
        page.wait_for_timeout(500)  # let the output area settle (Notebook 7 decides on scrolling)
        nb.cell(0).locator(".jp-OutputArea-output").last.scroll_into_view_if_needed()
        save_screenshot(page, artifacts, "notebook7-interrupted")

        # Notebook 7 has marked the cell for a scrolled output box; the grid is not squeezed
        assert "jp-mod-outputsScrolled" in (nb.cell(0).get_attribute("class") or "")
        outputs = nb.cell(0).locator(".jp-Cell-outputArea")
        visible = outputs.evaluate("(e) => e.clientHeight")
        assert visible >= height, f"the output area shows {visible} px of a {height} px grid"
        assert widget.bounding_box()["height"] >= height - 1
        error = nb.cell(0).locator(".jp-OutputArea-output", has_text="KeyboardInterrupt")
        expect(error).to_have_count(1)
        expect(error).to_contain_text("KeyboardInterrupt: scoring interrupted after")
        assert error.inner_text().strip().count("\n") == 0, error.inner_text()
    finally:
        context.close()
