"""How sure each map is, in a real JupyterLab and Notebook 7: the tooltip's ± interval, the
reliability in the titles with the noisy mark, and the not-significant stripes that leave the
significant cells in their colour-bar colour.

Its own notebook (one per UI, each with its own kernel) on the session's Jupyter server: two
tasks of 6 layers x 8 heads with per-example effects, "steady" (three strong heads, reliable) and
"noisy" (noise only, reliability near 0).
"""

from __future__ import annotations

import re

import known_scores as k
import pytest
from lab_server import write_notebook
from notebook_page import NotebookPage, notebook_path, open_notebook, rgb_close, save_screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# builds `scores` (run here too, for the expected numbers) and, in the notebook, shows the grid
SCORES_SOURCE = """\
import numpy as np
from headwidget.scores import HeadScores
from headwidget.views.widget import HeadImportanceGrid

rng = np.random.default_rng(7)
shape, n = (6, 8), 16
true = np.zeros(shape)
true[1, 2], true[4, 5], true[0, 7] = 3.0, 2.0, 2.5
effects = {
    "steady": (true[..., None] + rng.normal(0, 0.3, (*shape, n))).astype(np.float32),
    "noisy": rng.normal(0, 1.0, (*shape, n)).astype(np.float32),
}
values = np.stack([effects[t].mean(-1) for t in ("steady", "noisy")])
scores = HeadScores(
    values, ["steady", "noisy"], categories={"steady": "Algorithmic", "noisy": "Knowledge"},
    effects=effects, meta={"metric": "logprob"},
)
"""
GRID_SOURCE = (
    'grid = HeadImportanceGrid(scores, normalization="raw", vmin=0.0, vmax=3.0,'
    " mark_insignificant=True)\ngrid"
)
VMAX = 3.0


def expected_scores():
    namespace: dict = {}
    exec(SCORES_SOURCE, namespace)  # noqa: S102 - our own source, run here as in the notebook
    return namespace["scores"]


@pytest.fixture(scope="module", params=["lab", "notebook"])
def marks_page(request, browser, jupyter_server):
    """The uncertainty notebook open in JupyterLab, then in Notebook 7 (a file per UI, so that
    each has its own kernel)."""
    ui = request.param
    name = f"uncertainty-{ui}.ipynb"
    write_notebook(jupyter_server.root_dir / name, [SCORES_SOURCE + GRID_SOURCE])
    context, nb = open_notebook(browser, jupyter_server.url(notebook_path(ui, name)), ui)
    yield nb
    context.close()


def test_tooltip_interval_reliability_titles_and_stripes(marks_page: NotebookPage, artifacts):
    nb = marks_page
    scores = expected_scores()
    reliability = scores.reliability()
    assert reliability["steady"] >= 0.7 > reliability["noisy"]
    widget = nb.show_widget(0)

    # titles: the reliability, the noisy map marked in the error colour like "fails"
    steady = widget.locator(".hw-panel").filter(has=nb.page.locator('[data-panel="steady"]'))
    noisy = widget.locator(".hw-panel").filter(has=nb.page.locator('[data-panel="noisy"]'))
    expect(steady.locator(".hw-reliability")).to_have_text(f"r = {reliability['steady']:.2f}")
    note = noisy.locator(".hw-reliability.hw-noisy-badge")
    expect(note).to_have_text(
        re.compile(rf"noisy: add examples\s*·\s*r = {reliability['noisy']:.2f}".replace(".", r"\."))
    )
    style = "(e) => [getComputedStyle(e).color, getComputedStyle(e).fontWeight]"
    fails_style = widget.evaluate(
        """(root) => {
          const e = document.createElement('div');
          e.className = 'hw-accuracy hw-fails-badge';
          root.querySelector('.hw-panel-head').append(e);
          const style = [getComputedStyle(e).color, getComputedStyle(e).fontWeight];
          e.remove();
          return style;
        }"""
    )
    assert note.evaluate(style) == fails_style  # styled like "model fails this task"
    assert steady.locator(".hw-reliability").evaluate(style) != fails_style

    # the tooltip: value ± 1.96 sem, in raw units here
    nb.hover_cell(widget, "steady", 1, 2)
    tooltip = widget.locator(".hw-tooltip")
    expect(tooltip).to_be_visible()
    text = tooltip.inner_text()
    match = re.search(r"importance ([\d.]+) ± ([\d.]+) \(95 %\)", text)
    assert match, text
    value, half = map(float, match.groups())
    assert value == pytest.approx(float(scores.values[0, 1, 2]), rel=1e-3)
    assert half == pytest.approx(1.96 * float(scores.sem[0, 1, 2]), rel=1e-3)
    assert "significant (Wilcoxon signed-rank, FDR 5%)" in text
    save_screenshot(widget, artifacts, f"{nb.ui}-uncertainty-tooltip")
    nb.move_mouse_away()
    nb.page.wait_for_timeout(150)  # the hover mark is taken off at the next frame

    # stripes: a significant head keeps its colour-bar colour everywhere, a head that is not
    # significant shows light stripe pixels over its colour
    significant = scores.significant()
    assert significant[0, 1, 2] and not significant[0, 3, 3]
    expected = k.colormap_rgb(float(scores.values[0, 1, 2]) / VMAX)
    inside = nb.cell_interior_pixels(widget, "steady", 1, 2, inset=3)  # inside its outline
    assert all(rgb_close(p, expected, tol=10) for p in inside), (expected, inside[:4])
    plain = k.colormap_rgb(max(0.0, float(scores.values[0, 3, 3])) / VMAX)
    striped = nb.cell_interior_pixels(widget, "steady", 3, 3, inset=3)
    assert any(sum(p[:3]) > sum(plain) + 120 for p in striped), (plain, striped[:8])
    assert any(rgb_close(p, plain, tol=10) for p in striped)  # the colour shows between stripes
    assert widget.locator('.hw-key-item[data-mark="striped"]').count() == 1
    if nb.ui == "lab":  # (Notebook 7 logs errors of its own while it starts)
        assert nb.page_errors == [], f"page errors: {nb.page_errors}"  # type: ignore[attr-defined]
