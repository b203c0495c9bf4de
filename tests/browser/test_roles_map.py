"""Head roles on the map, in a real JupyterLab and Notebook 7: the glyphs on the right cells, the
role filter from the roles bar, the roles in the tooltip, the Roles tab, and the drill-down's
"what a head writes" computed by the kernel from the model the grid holds.

Its own notebook (one per UI, each with its own kernel) on the session's Jupyter server: a tiny
random Llama of 4 layers x 4 heads scored live on one task with source words, and made-up role
maps with known heads: previous token at (1, 2), induction at (2, 3), both at (3, 0), layer 0
all first token (not shown by default).
"""

from __future__ import annotations

import re

import pytest
from lab_server import REPO_ROOT, write_notebook
from notebook_page import NotebookPage, notebook_path, open_notebook, rgb_close, save_screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TASK = "capital"
PAIRS = [("cat", "dog"), ("bird", "fish"), ("red", "blue"), ("one", "two"), ("big", "small"),
         ("hot", "cold"), ("up", "down"), ("yes", "no")]  # fmt: skip
SETUP_SOURCE = f"""\
import sys
sys.path.insert(0, {str(REPO_ROOT / "tests")!r})
import numpy as np
from tiny_models import tiny_model, word_tokenizer
from headwidget import Example, HeadImportanceGrid, HeadScores, Task

tok = word_tokenizer()
tiny = tiny_model("llama", vocab_size=len(tok), n_layers=4)
task = Task({TASK!r}, [Example(f"{{s}} ->", f" {{t}}", source=s) for s, t in {PAIRS!r}])
maps = np.full((3, 4, 4), 0.05, np.float32)
maps[0, 1, 2], maps[1, 2, 3], maps[0, 3, 0], maps[1, 3, 0] = 0.8, 0.9, 0.5, 0.6
maps[2, 0, :] = 0.7
role_maps = HeadScores(
    maps, ["previous token", "induction", "first token"], meta={{"units": "attention share"}}
)
"""
GRID_SOURCE = (
    "grid = HeadImportanceGrid(tiny, tok, tasks=[task], roles=role_maps, batch_size=8)\ngrid"
)
STATE_SOURCE = "print('ROLES', grid.role_filter, grid.roles_shown)"
WHITE = (255, 255, 255)


@pytest.fixture(scope="module", params=["lab", "notebook"])
def roles_page(request, browser, jupyter_server):
    """The roles notebook open in JupyterLab, then in Notebook 7 (a file per UI, so that each
    has its own kernel)."""
    ui = request.param
    name = f"roles-{ui}.ipynb"
    write_notebook(jupyter_server.root_dir / name, [SETUP_SOURCE + GRID_SOURCE, STATE_SOURCE])
    context, nb = open_notebook(browser, jupyter_server.url(notebook_path(ui, name)), ui)
    yield nb
    context.close()


def glyph_points(nb: NotebookPage, widget, layer: int, head: int, k: int = 1):
    """The centres of the k glyphs of a head's cell (CSS px on its canvas)."""
    info = nb.canvas_info(widget, TASK)
    x, y = info.cell_center(layer, head)
    width, _ = info.cell_size()
    return [(x + (j - (k - 1) / 2) / k * width, y) for j in range(k)]


def corner(nb: NotebookPage, widget, layer: int, head: int):
    """A point inside a head's cell, clear of its glyph and outline."""
    info = nb.canvas_info(widget, TASK)
    width, height = info.cell_size()
    return info.plot_left + (head + 0.12) * width, info.plot_top + (layer + 0.88) * height


def test_glyphs_filter_tooltip_roles_tab_and_what_a_head_writes(
    roles_page: NotebookPage, artifacts
):
    import torch
    from tiny_models import tiny_model, word_tokenizer

    from headwidget import Example, Task
    from headwidget.methods.ov_circuit import head_mapping

    nb = roles_page
    widget = nb.show_widget(0)
    expect(widget.locator(".hw-progress")).to_contain_text("done in", timeout=90_000)
    nb.move_mouse_away()
    nb.page.wait_for_timeout(150)

    # glyphs: white on the heads with a shown role, none elsewhere (first token is not shown)
    for layer, head, k in ((1, 2, 1), (2, 3, 1), (3, 0, 2)):
        for point in glyph_points(nb, widget, layer, head, k):
            (pixel,) = nb.pixels(widget, TASK, [point])
            assert rgb_close(pixel, WHITE, tol=12), (layer, head, pixel)
    for layer, head in ((0, 0), (0, 1), (1, 1), (2, 0)):
        (pixel,) = nb.pixels(widget, TASK, glyph_points(nb, widget, layer, head))
        assert not rgb_close(pixel, WHITE, tol=40), (layer, head, pixel)
    bar = widget.locator(".hw-roles")
    expect(bar.locator(".hw-role-toggle")).to_have_count(3)
    expect(bar.locator('.hw-role-toggle[data-role="first token"] input')).not_to_be_checked()
    expect(bar.locator('.hw-role-toggle[data-role="induction"] .hw-role-count')).to_have_text("(2)")
    save_screenshot(widget, artifacts, f"{nb.ui}-roles-glyphs")

    # the tooltip lists the head's roles with their scores
    nb.hover_cell(widget, TASK, 3, 0)
    expect(widget.locator(".hw-tooltip")).to_contain_text(
        "roles: induction 0.60, previous token 0.50"
    )
    nb.move_mouse_away()
    nb.page.wait_for_timeout(150)

    # the filter: heads without induction fade (and lose their glyphs), the others stay
    before_kept = nb.pixels(widget, TASK, [corner(nb, widget, 2, 3)])[0]
    before_faded = nb.pixels(widget, TASK, [corner(nb, widget, 1, 1)])[0]
    bar.locator("select.hw-role-filter").select_option("induction")
    expect(widget.locator('.hw-key-item[data-mark="faded"]')).to_contain_text(
        "heads without the role induction"
    )
    nb.page.wait_for_timeout(150)
    assert rgb_close(nb.pixels(widget, TASK, [corner(nb, widget, 2, 3)])[0], before_kept[:3])
    faded = nb.pixels(widget, TASK, [corner(nb, widget, 1, 1)])[0]
    assert sum(faded[:3]) > sum(before_faded[:3]) + 60, (before_faded, faded)  # toward white
    (centre,) = nb.pixels(widget, TASK, glyph_points(nb, widget, 1, 2))
    assert not rgb_close(centre, WHITE, tol=40)  # (1, 2) has no induction: no glyph now
    for point in glyph_points(nb, widget, 2, 3):
        assert rgb_close(nb.pixels(widget, TASK, [point])[0], WHITE, tol=12)
    assert "ROLES induction ['previous token', 'induction']" in nb.run_cell(1)
    save_screenshot(widget, artifacts, f"{nb.ui}-roles-filter")
    bar.locator("select.hw-role-filter").select_option("")

    # the drill-down: the head's roles, and its mapping of the task's sources from the kernel
    nb.click_cell(widget, TASK, 2, 3)
    section = widget.locator(".hw-writes")
    expect(section).to_be_visible()
    expect(section.locator(".hw-writes-role.hw-role-passes")).to_have_text(["induction 0.90"])
    tok = word_tokenizer()
    torch.manual_seed(0)
    model = tiny_model("llama", vocab_size=len(tok), n_layers=4)
    task = Task(TASK, [Example(f"{s} ->", f" {t}", source=s) for s, t in PAIRS])
    mapping = head_mapping(model, tok, 2, 3, task)
    expected = [
        f"{p.source} → {p.target.strip()} (rank {p.rank}"
        + ("" if p.rank == 1 else f"; top: {p.top.strip()}")
        + ")"
        for p in mapping.pairs
    ]
    pairs = section.locator(".hw-writes-pair")
    expect(pairs).to_have_text(expected, timeout=30_000)
    in_top = sum(p.rank <= mapping.k for p in mapping.pairs)
    expect(section.locator(".hw-writes-fraction")).to_contain_text(
        f"{in_top} of {len(mapping.pairs)} pairs in its top {mapping.k}"
    )
    expect(section.locator(".hw-writes-promoted .hw-writes-token").first).to_be_visible()
    save_screenshot(widget, artifacts, f"{nb.ui}-roles-writes")

    # the Roles tab: one panel per role
    widget.locator('button.hw-tab[data-tab="roles"]').click()
    expect(widget.locator("canvas.hw-canvas")).to_have_count(3)
    expect(widget.locator(".hw-role-panel-count")).to_have_text(
        [re.compile(r"2 heads ≥ 0\.4"), re.compile(r"2 heads ≥ 0\.4"), re.compile(r"4 heads")]
    )
    if nb.ui == "lab":  # (Notebook 7 logs errors of its own while it starts)
        assert nb.page_errors == [], f"page errors: {nb.page_errors}"  # type: ignore[attr-defined]


PIXEL_JS = """
([panel, x, y]) => {
  const c = [...document.querySelectorAll('canvas.hw-canvas')]
    .find((e) => e.dataset.panel === panel);
  const b = c.getBoundingClientRect(), s = c.width / b.width;
  return [...c.getContext('2d').getImageData(Math.floor(x * s), Math.floor(y * s), 1, 1).data];
}
"""


def test_a_saved_page_draws_the_glyphs_and_shows_what_was_precomputed(
    browser, widget_bundle, tmp_path
):
    import numpy as np

    from headwidget import HeadImportanceGrid, HeadScores

    values = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(1, 4, 4)
    maps = np.full((2, 4, 4), 0.05, np.float32)
    maps[0, 1, 2], maps[1, 2, 3] = 0.8, 0.9
    roles = HeadScores(maps, ["previous token", "induction"], meta={"units": "attention share"})
    grid = HeadImportanceGrid(HeadScores(values, [TASK]), roles=roles)
    record = {
        "task": TASK, "layer": 2, "head": 3, "sources": ["cat"], "copying": None,
        "mapping": {"k": 10, "fraction": 1.0, "in_top": 1, "n_pairs": 1, "skipped": 0,
                    "pairs": [{"source": "cat", "target": "dog", "rank": 2, "top": " cat"}]},
        "tokens": {"cat": {"promoted": [[" cat", 4.0]], "suppressed": [[" up", -2.0]]}},
    }  # fmt: skip
    grid.writes = {"2,3": {TASK: record}}
    path = grid.save(tmp_path / "roles.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_selector('.headwidget[data-ready="true"]', timeout=30_000)
    info = page.evaluate(
        """(panel) => {
          const d = [...document.querySelectorAll('canvas.hw-canvas')]
            .find((e) => e.dataset.panel === panel).dataset;
          return [Number(d.plotLeft), Number(d.plotTop), Number(d.plotWidth) / 4,
                  Number(d.plotHeight) / 4];
        }""",
        TASK,
    )
    left, top, width, height = info

    def pixel(layer: int, head: int) -> list[int]:
        x, y = left + (head + 0.5) * width, top + (layer + 0.5) * height
        return page.evaluate(PIXEL_JS, [TASK, x, y])

    assert rgb_close(tuple(pixel(1, 2)), WHITE, tol=12)  # previous token
    assert rgb_close(tuple(pixel(2, 3)), WHITE, tol=12)  # induction
    assert not rgb_close(tuple(pixel(0, 0)), WHITE, tol=40)
    expect(page.locator(".hw-roles .hw-role-toggle")).to_have_count(2)
    # the drill-down: the precomputed head, and a note for one that was not
    canvas = page.locator(f'canvas.hw-canvas[data-panel="{TASK}"]')
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + left + 3.5 * width, box["y"] + top + 2.5 * height)
    section = page.locator(".hw-writes")
    expect(section.locator(".hw-writes-pair")).to_have_text(["cat → dog (rank 2; top: cat)"])
    expect(section.locator(".hw-writes-promoted")).to_contain_text('" cat"')
    page.mouse.click(box["x"] + left + 0.5 * width, box["y"] + top + 0.5 * height)
    expect(section).to_contain_text("a saved page shows what grid.precompute_writes(...) kept")
    page.close()
    assert errors == [], f"page errors: {errors}"
