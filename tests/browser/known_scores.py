"""The known scores the end-to-end tests display, and what a person should see for them.

3 tasks × 6 layers × 5 heads, shown with ``normalization="raw"``, ``vmax=1.0`` and
``threshold=0.3``, so every expected colour, count, rank and category follows from the numbers
below without re-implementing the widget.

- Every task has 30 distinct background values in [0, 0.28] (all below the threshold) and a few
  hand-placed hot cells above it.
- ``copying`` is Algorithmic, ``country → capital`` is Knowledge, the third task (an HTML
  injection attempt as its name) has no category and one NaN cell.

>>> VALUES.shape, float(VALUES[0, 1, 2])
((3, 6, 5), 0.5)
"""

from __future__ import annotations

import json
import math

import numpy as np

COPYING = "copying"
CAPITAL = "country → capital"
XSS = "<img src=x onerror=alert(1)>"
TASKS = [COPYING, CAPITAL, XSS]
CATEGORIES: dict[str, str | None] = {COPYING: "Algorithmic", CAPITAL: "Knowledge", XSS: None}
N_TASKS, N_LAYERS, N_HEADS = 3, 6, 5

THRESHOLD = 0.3  # initial threshold, raw units
THRESHOLD_FROM_PYTHON = 0.6  # what the "Python -> JS" cell sets
VMAX = 1.0

# (task, layer, head) -> value; everything else is background below THRESHOLD.
HOT: dict[tuple[str, int, int], float] = {
    (COPYING, 1, 2): 0.5,
    (COPYING, 0, 0): 0.9,
    (COPYING, 4, 1): 0.4,
    (COPYING, 2, 3): 0.65,
    (CAPITAL, 1, 2): 0.7,
    (CAPITAL, 5, 4): 1.6,  # above vmax: drawn at the top colour
    (CAPITAL, 3, 0): 0.45,
    (CAPITAL, 2, 3): 0.35,
    (XSS, 0, 4): 0.8,
    (XSS, 5, 0): 0.55,
    (XSS, 1, 2): 0.33,
}
NAN_CELL = (XSS, 3, 1)


def _build_values() -> np.ndarray:
    rng = np.random.default_rng(20250101)
    values = np.empty((N_TASKS, N_LAYERS, N_HEADS), dtype=np.float32)
    for t in range(N_TASKS):
        background = rng.permutation(N_LAYERS * N_HEADS) * (0.28 / (N_LAYERS * N_HEADS - 1))
        values[t] = background.reshape(N_LAYERS, N_HEADS)
    for (task, layer, head), value in HOT.items():
        values[TASKS.index(task), layer, head] = value
    task, layer, head = NAN_CELL
    values[TASKS.index(task), layer, head] = np.nan
    return values


VALUES = _build_values()


def value(task: str, layer: int, head: int) -> float:
    return float(VALUES[TASKS.index(task), layer, head])


def counts(threshold: float) -> dict[str, int]:
    """Heads passing ``threshold`` per task (NaN never passes), compared in float64 like JS."""
    v = VALUES.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return {task: int(np.sum(v[i] >= threshold)) for i, task in enumerate(TASKS)}


def top_percent_counts(top_percent: float) -> dict[str, int]:
    """Heads passing each task in top-percent mode: the k best, k = max(1, ceil(p% of valid))."""
    result = {}
    for i, task in enumerate(TASKS):
        valid = VALUES[i][~np.isnan(VALUES[i])]
        k = max(1, math.ceil(top_percent / 100 * valid.size))
        cutoff = np.sort(valid.astype(np.float64))[::-1][k - 1]
        result[task] = int(np.sum(valid >= cutoff))
    return result


def rank(task: str, layer: int, head: int) -> tuple[int, int]:
    """(rank, number of ranked heads) of a cell within its task, 1 = most important."""
    row = VALUES[TASKS.index(task)]
    valid = row[~np.isnan(row)]
    return int(np.sum(valid > row[layer, head])) + 1, int(valid.size)


def head_categories(layer: int, head: int, threshold: float = THRESHOLD) -> list[str]:
    """Categories of a head under the BRIEF's rule, in order of first appearance."""
    found: list[str] = []
    for i, task in enumerate(TASKS):
        category = CATEGORIES[task]
        cell = VALUES[i, layer, head]
        if category and not np.isnan(cell) and cell >= threshold and category not in found:
            found.append(category)
    return found


# Legend of the Categories tab at THRESHOLD: (1,2) and (2,3) pass both categorised tasks.
EXPECTED_LEGEND = ["2 categories", "Knowledge", "Algorithmic", "Unclassified"]
CATEGORY_HEX = {
    "Algorithmic": "#1f77b4",
    "Knowledge": "#ff7f0e",
    "2 categories": "#9467bd",
    "Unclassified": "#d9d9d9",
}


def hex_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def colormap_rgb(x: float, name: str = "viridis") -> tuple[int, int, int]:
    """The colour of ``x`` in [0, 1] from matplotlib's 256-entry LUT (the widget's reference)."""
    import matplotlib

    r, g, b, _ = matplotlib.colormaps[name](float(np.clip(x, 0.0, 1.0)))
    return round(r * 255), round(g * 255), round(b * 255)


def setup_cell_source() -> str:
    """Source of the notebook cell that builds the scores and displays the grid."""
    values_json = json.dumps(VALUES.astype(np.float64).tolist())  # NaN -> NaN, valid for json
    return "\n".join(
        [
            "import json",
            "import numpy as np",
            "from headwidget.scores import HeadScores",
            "from headwidget.views.widget import HeadImportanceGrid",
            "",
            f"values = np.array(json.loads({values_json!r}), dtype=np.float32)",
            f"scores = HeadScores(values, {TASKS!r}, categories={CATEGORIES!r})",
            "grid = HeadImportanceGrid(",
            f'    scores, normalization="raw", threshold={THRESHOLD!r}, vmax={VMAX!r}, title="e2e"',
            ")",
            "grid",
        ]
    )


STATE_TRAITS = [
    "selected_head",
    "selected_task",
    "tab",
    "threshold",
    "threshold_mode",
    "top_percent",
    "orientation",
]
STATE_CELL_SOURCE = (
    "import json\n"
    f"print('STATE ' + json.dumps({{name: getattr(grid, name) for name in {STATE_TRAITS!r}}}))"
)
SET_THRESHOLD_CELL_SOURCE = f"grid.threshold = {THRESHOLD_FROM_PYTHON!r}"


# -- per-example effects (the drill-down) ----------------------------------------------------

EXAMPLE_PROMPTS = [
    "Repeat the word: apple →",
    "Repeat the word: river →",
    "Repeat the word: stone →",
    "Repeat the word: cloud →",
    "Repeat the word: lantern, the longest prompt of the five, long enough to be shortened →",
]
EXAMPLE_ANSWERS = [" apple", " river", " stone", " cloud", " lantern"]
# each example's share of a head's mean effect: the mean of these is 1, so effects average to
# the head's value; example 4 (the long prompt) changes every head most, then example 0
EXAMPLE_WEIGHTS = [2.0, 0.5, 0.0, -0.5, 3.0]
EXAMPLE_CLEAN = [-0.5, -1.0, -1.5, -2.0, -0.25]


def examples_cell_source() -> str:
    """A cell (run after the setup cell) that displays the known scores with per-example
    effects for ``copying``: ``effects[l, h, e] = value[l, h] * EXAMPLE_WEIGHTS[e]``."""
    setup = setup_cell_source().split("grid = HeadImportanceGrid(")[0]  # imports, values
    return setup + "\n".join(
        [
            f"weights = np.array({EXAMPLE_WEIGHTS!r}, np.float32)",
            f"effects = {{{COPYING!r}: values[0][..., None] * weights}}",
            f"clean = {{{COPYING!r}: np.array({EXAMPLE_CLEAN!r})}}",
            f"texts = {{{COPYING!r}: list(zip({EXAMPLE_PROMPTS!r}, {EXAMPLE_ANSWERS!r}))}}",
            "ex_scores = HeadScores(",
            f"    values, {TASKS!r}, categories={CATEGORIES!r}, effects=effects, clean=clean,",
            "    examples=texts, meta={'metric': 'logprob'},",
            ")",
            "HeadImportanceGrid(",
            f'    ex_scores, normalization="raw", threshold={THRESHOLD!r}, vmax={VMAX!r}',
            ")",
        ]
    )


def check_top_examples(nb, widget, artifacts, name: str) -> None:
    """Click copying's head (1, 2) in the grid of cell 3: the drill-down lists its examples,
    most changed first, with prompt (full text in the tooltip), answer, clean and ablated."""
    from notebook_page import save_screenshot
    from playwright.sync_api import expect

    nb.click_cell(widget, COPYING, 1, 2)
    panel = widget.locator(".hw-examples")
    expect(panel).to_be_visible()
    expect(panel.locator(".hw-drill-title")).to_contain_text("Layer 1 · Head 2 on each example")
    rows = panel.locator("tbody tr")
    expect(rows).to_have_count(len(EXAMPLE_PROMPTS))
    first = rows.nth(0).locator("td")
    value = float(VALUES[0, 1, 2])
    effect = value * EXAMPLE_WEIGHTS[4]
    expected = ["4", None, EXAMPLE_ANSWERS[4], f"{EXAMPLE_CLEAN[4]:g}",
                f"{EXAMPLE_CLEAN[4] - effect:g}", f"{effect:g}"]  # fmt: skip
    for i, text in enumerate(expected):
        if text is not None:
            expect(first.nth(i)).to_have_text(text)
    expect(first.nth(1)).to_have_attribute("title", EXAMPLE_PROMPTS[4])
    expect(first.nth(1)).to_contain_text("Repeat the word: lantern")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text(EXAMPLE_PROMPTS[0])
    expect(panel.locator("canvas.hw-spread")).to_be_visible()
    expect(panel).to_contain_text("drop in logprob")
    save_screenshot(widget, artifacts, name)


def model_cell_source() -> str:
    """A cell that displays a grid holding a tiny random Llama (tests/tiny_models.py), which
    scores one task of 6 examples when shown: the drill-down's attention pattern needs it."""
    from lab_server import REPO_ROOT

    return "\n".join(
        [
            "import sys",
            f"sys.path.insert(0, {str(REPO_ROOT / 'tests')!r})",
            "from tiny_models import WORDS, tiny_model, word_tokenizer",
            "from headwidget import HeadImportanceGrid, Task",
            "tok = word_tokenizer()",
            "tiny = tiny_model('llama', vocab_size=len(tok))",
            "words = list(WORDS)",
            "pairs = [(' '.join(words[i : i + 4]), ' ' + words[i + 5]) for i in range(6)]",
            "HeadImportanceGrid(tiny, tok, tasks=[Task('tiny task', pairs)], batch_size=8)",
        ]
    )


def check_attention_pattern(nb, widget, artifacts, name: str) -> None:
    """Click head (1, 2) of the tiny model's grid (cell 4), then "attention pattern": the
    kernel runs the model and the head's token x token attention is drawn."""
    from notebook_page import save_screenshot
    from playwright.sync_api import expect

    expect(widget.locator(".hw-progress")).to_contain_text("done in", timeout=60_000)
    nb.click_cell(widget, "tiny task", 1, 2)
    panel = widget.locator(".hw-examples")
    expect(panel.locator("tbody tr")).to_have_count(6)
    panel.locator("tbody tr").nth(1).click()
    chosen = panel.locator("tbody tr").nth(1).get_attribute("data-example")
    panel.locator("button.hw-attn-button").click()
    canvas = panel.locator("canvas.hw-attn-canvas")
    expect(canvas).to_be_visible(timeout=30_000)
    expect(canvas).to_have_attribute(
        "aria-label", f"attention of the head on example {chosen}: 6 tokens"
    )
    save_screenshot(widget, artifacts, name)
