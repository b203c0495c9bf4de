"""How sure each map is, in the widget and its exports: the sem / significant traits, reliability
in the task records and titles, the "significant" threshold mode, categories from reliable maps
only, and the marks in saved pages and images (headwidget.views.uncertainty).

These tests need the built front end (``cd js && npm ci && npm run build``); no browser.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import traitlets

from headwidget import HeadScores
from headwidget.views import uncertainty as unc
from headwidget.views.plotting import plot_scores
from headwidget.views.widget import TRAIT_OPTIONS, HeadImportanceGrid

TASKS = ["copying", "noise", "counting", "antonym"]


def scores_with_effects(seed: int = 0) -> HeadScores:
    """4 tasks x 6 layers x 5 heads: copying and antonym have a few strong heads over 16
    examples (reliable maps), noise is noise (r ~ 0), counting keeps no per-example effects."""
    rng = np.random.default_rng(seed)
    shape, n = (6, 5), 16
    effects = {}
    for name in ("copying", "noise", "antonym"):
        true = np.zeros(shape)
        if name != "noise":
            true.ravel()[rng.choice(true.size, 6, replace=False)] = rng.uniform(2, 4, 6)
        effects[name] = (true[..., None] + rng.normal(0, 0.5, (*shape, n))).astype(np.float32)
    values = np.stack(
        [effects[t].mean(-1) if t in effects else rng.gamma(0.5, 1.0, shape) for t in TASKS]
    ).astype(np.float32)
    return HeadScores(
        values,
        TASKS,
        categories={"copying": "Algorithmic", "noise": "Algorithmic", "counting": "Knowledge"},
        accuracy={"copying": 0.9, "noise": 0.8, "counting": 0.1, "antonym": 0.95},
        meta={"model": "tiny/llama", "metric": "logprob", "examples": dict.fromkeys(TASKS, 16)},
        effects=effects,
    )


def decoded(grid: HeadImportanceGrid, name: str, dtype: str) -> np.ndarray:
    return np.frombuffer(getattr(grid, name), dtype=dtype).reshape(grid.shape)


def test_sem_significance_and_reliability_go_to_the_browser() -> None:
    scores = scores_with_effects()
    grid = HeadImportanceGrid(scores)
    np.testing.assert_array_equal(decoded(grid, "sem", "<f4"), scores.sem.astype(np.float32))
    codes = decoded(grid, "significant", "u1")
    source = scores.sem_source
    assert (codes[source == "none"] == unc.UNTESTED).all()  # counting: no effects
    tested = source != "none"
    np.testing.assert_array_equal(codes[tested] == unc.SIGNIFICANT, scores.significant()[tested])
    assert codes[0].max() == unc.SIGNIFICANT and (codes[1] != unc.SIGNIFICANT).all()
    reliability = scores.reliability()
    needed = scores.examples_needed()
    records = {task["name"]: task for task in grid.tasks}
    for name in ("copying", "noise", "antonym"):
        assert records[name]["reliability"] == pytest.approx(reliability[name])
        assert records[name]["examples_needed"] == needed[name]
    assert records["copying"]["reliability"] > 0.9 > 0.5 > records["noise"]["reliability"]
    assert records["counting"]["reliability"] is None
    assert grid.significance_array() is not None


def test_scores_without_effects_send_nothing_and_streamed_values_clear_it() -> None:
    plain = HeadScores(np.ones((2, 3, 4), np.float32), ["a", "b"])
    grid = HeadImportanceGrid(plain)
    assert grid.sem == b"" and grid.significant == b"" and grid.significance_array() is None
    assert [task["reliability"] for task in grid.tasks] == [None, None]
    grid.set_scores(scores_with_effects())
    assert grid.sem and grid.significant
    grid._publish(grid.values_array())  # a streamed update: no uncertainty yet
    assert grid.sem == b"" and grid.significant == b""
    grid.set_scores(plain)  # another shape
    assert grid.sem == b"" and grid.shape == [2, 3, 4]


def test_new_options_are_traits_and_are_checked() -> None:
    scores = scores_with_effects()
    for name in ("mark_insignificant", "min_reliability", "categories_from"):
        assert name in TRAIT_OPTIONS
    grid = HeadImportanceGrid(
        scores,
        mark_insignificant=True,
        min_reliability=0.8,
        categories_from="reliable",
        threshold_mode="significant",
    )
    assert (grid.mark_insignificant, grid.min_reliability) == (True, 0.8)
    assert (grid.categories_from, grid.threshold_mode) == ("reliable", "significant")
    assert HeadImportanceGrid(scores).mark_insignificant is False  # off by default
    with pytest.raises(TypeError, match="unknown option.*'mark_insignficant'.*mark_insignificant"):
        HeadImportanceGrid(scores, mark_insignficant=True)
    for option, value in (
        ("categories_from", "some"),
        ("threshold_mode", "significance"),
        ("min_reliability", float("nan")),
    ):
        with pytest.raises(traitlets.TraitError):
            HeadImportanceGrid(scores, **{option: value})
    with pytest.raises(traitlets.TraitError, match="sem has 3 bytes but shape"):
        grid.sem = b"abc"
    with pytest.raises(traitlets.TraitError, match="significant has 2 bytes but shape"):
        grid.significant = b"\x00\x01"


def test_significant_mode_passes_significant_heads_at_or_above_the_threshold() -> None:
    scores = scores_with_effects()
    grid = HeadImportanceGrid(scores, threshold_mode="significant", threshold=0.0)
    share = scores.normalized("share").values
    significant = scores.significant()
    expected = ((share >= 0.0) & significant).sum(axis=(1, 2))
    np.testing.assert_array_equal(grid.assignment().counts, expected)
    assert expected[1] == 0 and expected[0] > 0  # noise: nothing significant
    grid.threshold = 0.05
    expected = ((share >= 0.05) & significant).sum(axis=(1, 2))
    np.testing.assert_array_equal(grid.assignment().counts, expected)
    # without a test nothing passes
    plain = HeadImportanceGrid(HeadScores(np.ones((1, 2, 2)), ["a"]), threshold_mode="significant")
    assert plain.assignment().counts.tolist() == [0]


def test_categories_from_reliable_maps_leave_out_noisy_and_failing_tasks() -> None:
    scores = scores_with_effects()
    grid = HeadImportanceGrid(scores, threshold=0.0)
    everything = grid.assignment()
    grid.categories_from = "reliable"
    reliable = grid.assignment()
    np.testing.assert_array_equal(everything.counts, reliable.counts)
    # Algorithmic: copying only (noise is noisy); Knowledge: counting fails (accuracy 0.1)
    share = scores.normalized("share").values
    algorithmic = reliable.names.index("Algorithmic")
    np.testing.assert_array_equal(reliable.membership[algorithmic], share[0] >= 0)
    assert not reliable.membership[reliable.names.index("Knowledge")].any()
    assert everything.membership[reliable.names.index("Knowledge")].all()


def test_saved_page_inlines_sem_and_significance(tmp_path) -> None:
    grid = HeadImportanceGrid(scores_with_effects(), mark_insignificant=True)
    page = grid.save(tmp_path / "grid.html").read_text(encoding="utf-8")

    def element(element_id: str) -> str:
        match = re.search(rf'<script [^>]*id="{element_id}">(.*?)</script>', page, re.S)
        assert match, element_id
        return match.group(1)

    assert base64.b64decode(element("headwidget-sem")) == grid.sem
    assert base64.b64decode(element("headwidget-significant")) == grid.significant
    assert '"mark_insignificant": true' in element("headwidget-state")
    assert '"reliability": 0.' in element("headwidget-state")


def svg_text(path) -> str:
    return " ".join(ET.parse(path).getroot().itertext())


def test_images_show_reliability_noisy_maps_and_the_marks(tmp_path) -> None:
    scores = scores_with_effects()
    r = scores.reliability()
    grid = HeadImportanceGrid(scores)
    text = svg_text(grid.save(tmp_path / "plain.svg"))
    assert f"r = {r['copying']:.2f}" in text
    assert f"noisy: add examples · r = {r['noise']:.2f}" in text
    assert "not significant" not in text  # marks off by default
    grid.mark_insignificant = True
    grid.threshold_mode = "significant"
    grid.threshold = 0.0
    text = svg_text(grid.save(tmp_path / "marked.svg"))
    assert "striped: not significant (Wilcoxon signed-rank, FDR 5% per task)" in text
    assert "significant heads ≥" in text
    grid.tab = "categories"
    grid.categories_from = "reliable"
    text = svg_text(grid.save(tmp_path / "categories.svg"))
    assert "1 of 2 left out" in text  # Algorithmic: noise left out
    assert "significant heads" in text and "noisy or failing task(s) left out" in text
    assert grid.save(tmp_path / "marked.png").read_bytes()[:4] == b"\x89PNG"
    assert grid.save(tmp_path / "marked.pdf").read_bytes()[:5] == b"%PDF-"


def test_hatching_covers_exactly_the_cells_that_are_not_significant() -> None:
    scores = scores_with_effects()
    fig = plot_scores(scores, tasks=["copying"], mark_insignificant=True)
    ax = fig.axes[0]
    (patch,) = [p for p in ax.patches if p.get_hatch() == "\\\\\\\\"]
    cells = patch.get_path().vertices.reshape(-1, 5, 2)
    area = sum((c[1, 0] - c[0, 0]) * (c[2, 1] - c[1, 1]) for c in cells)
    assert area == pytest.approx((~scores.significant()[0]).sum())
    with pytest.raises(ValueError, match="mark_insignificant=True needs per-example effects"):
        plot_scores(HeadScores(np.ones((1, 2, 2)), ["a"]), mark_insignificant=True)
    # a title per map with its reliability, without significance tests when not asked for
    titles = [ax.get_title() for ax in plot_scores(scores).axes[:4]]
    assert "r = " in titles[0] and "noisy: add examples" in titles[1] and "r = " not in titles[2]
