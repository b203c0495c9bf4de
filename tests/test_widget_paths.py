"""Paths between heads on the grid (headwidget.views.grid_paths, path_marks): the traits and
their binary data, task / shape checks, unknown options, images and the saved page with the
arrows. The page test needs the built front end (``cd js && npm ci && npm run build``)."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import traitlets

from headwidget import HeadImportanceGrid, HeadPaths, HeadScores
from headwidget.views.path_marks import NEGATIVE, POSITIVE, PathMarks, edge_width
from headwidget.views.plotting import plot_scores


def task_scores() -> HeadScores:
    rng = np.random.default_rng(0)
    names = ["copying", "antonym", "capital"]
    return HeadScores(rng.random((3, 4, 5)).astype(np.float32), names,
                      meta={"model": "tiny/llama", "metric": "logprob"})  # fmt: skip


def head_paths(tasks=("antonym", "capital"), n_layers=4, n_heads=5) -> HeadPaths:
    """antonym: L0H1 -> L2H3 via k (+0.5), L1H0 -> L3H4 via q (-0.2), L2H3 -> logits (+0.8);
    capital: L1H1 -> L2H2 via v (+0.1)."""
    edges = [[0, 0, 1, 2, 3, 1], [0, 1, 0, 3, 4, 0], [0, 2, 3, -1, -1, 3], [1, 1, 1, 2, 2, 2]]
    rng = np.random.default_rng(1)
    effects = {"antonym": rng.normal([[0.5], [-0.2], [0.8]], 0.1, (3, 6)),
               "capital": rng.normal([[0.1]], 0.1, (1, 6))}  # fmt: skip
    effect = np.concatenate([effects["antonym"].mean(1), effects["capital"].mean(1)])
    return HeadPaths(
        tasks=list(tasks), n_layers=n_layers, n_heads=n_heads,
        heads={tasks[0]: np.array([[0, 1], [1, 0], [2, 3], [3, 4]])},
        edges=np.array(edges), effect=effect,
        effects=dict(zip(tasks, effects.values(), strict=True)),
    )  # fmt: skip


def test_paths_traits_carry_the_edges_as_binary_buffers() -> None:
    paths = head_paths()
    grid = HeadImportanceGrid(task_scores(), paths=paths)
    assert grid.paths is paths and grid.path_edges == 10
    edges, effect, sem = grid.path_arrays()
    # column 0 is the grid's task index (antonym is the grid's task 1, capital 2)
    np.testing.assert_array_equal(edges[:, 0], [1, 1, 1, 2])
    np.testing.assert_array_equal(edges[:, 1:], paths.edges[:, 1:])
    np.testing.assert_allclose(effect, paths.effect)
    np.testing.assert_allclose(sem, paths.sem, rtol=1e-6)
    assert len(grid.path_data) == 4 * 6 * 4 and len(grid.path_effect) == 16
    grid.path_edges = 2
    grid.set_paths(None)
    assert grid.path_arrays() is None and grid.path_data == b"" and grid.paths is None


def test_paths_from_a_file_and_path_edges_given_with_them(tmp_path) -> None:
    file = head_paths().save(tmp_path / "paths.npz")
    grid = HeadImportanceGrid(task_scores(), paths=file, path_edges=3)
    assert grid.path_edges == 3 and len(grid.path_arrays()[0]) == 4


def test_tasks_shape_and_type_are_checked_with_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"4 layers x 6 heads but the grid shows 4 x 5"):
        HeadImportanceGrid(task_scores(), paths=head_paths(n_heads=6))
    with pytest.raises(ValueError, match=r"task\(s\) \['plural'\] are not among the grid's"):
        HeadImportanceGrid(task_scores(), paths=head_paths(tasks=("antonym", "plural")))
    with pytest.raises(TypeError, match="paths= takes a HeadPaths"):
        HeadImportanceGrid(task_scores(), paths=[1, 2])
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['path_edge'\]"):
        HeadImportanceGrid(task_scores(), path_edge=3)
    grid = HeadImportanceGrid(task_scores(), paths=head_paths())
    with pytest.raises(traitlets.TraitError, match="path_edges must be an int >= 0"):
        grid.path_edges = -1
    with pytest.raises(traitlets.TraitError, match="path_data has 5 bytes"):
        grid.path_data = b"12345"


def test_set_scores_drops_paths_that_no_longer_fit() -> None:
    grid = HeadImportanceGrid(task_scores(), paths=head_paths())
    other = task_scores()
    other.values[:] = 0.5
    grid.set_scores(other)
    assert grid.paths is not None
    grid.set_scores(HeadScores(np.ones((1, 4, 5), np.float32), ["copying"]))
    assert grid.paths is None and grid.path_data == b""


def test_trace_paths_needs_the_model() -> None:
    grid = HeadImportanceGrid(task_scores())
    with pytest.raises(ValueError, match=r"grid.trace_paths\(model, tokenizer, tasks\)"):
        grid.trace_paths()


def test_arrow_widths_colours_and_channels() -> None:
    assert edge_width(0.8, 0.8) == pytest.approx(3.5) and edge_width(0.0, 0.8) == 0.8
    assert edge_width(-0.4, 0.8) == pytest.approx(0.8 + 2.7 / 2)
    fig = plot_scores(task_scores(), paths=PathMarks(head_paths(), n_edges=10))
    axes = {ax.get_label(): ax for ax in fig.axes}
    arrows = [p for p in axes["task:antonym"].patches if p.get_gid() == "path-arrow"]
    assert len(arrows) == 3
    assert not [p for p in axes["task:copying"].patches if p.get_gid() == "path-arrow"]
    colours = sorted(tuple(np.round(a.get_edgecolor()[:3], 3)) for a in arrows)
    import matplotlib.colors as mc

    want = sorted(tuple(np.round(mc.to_rgb(c), 3)) for c in (POSITIVE, POSITIVE, NEGATIVE))
    assert colours == want
    # L0H1 -> L2H3 (layer_y: x = head, y = layer); the logits marker below the last layer
    starts = {tuple(np.round(a._posA_posB[0], 3)) for a in arrows}
    assert (1.0, 0.0) in starts and (3.0, 2.0) in starts
    (marker,) = [line for line in axes["task:antonym"].lines if line.get_gid() == "path-logits"]
    assert tuple(marker.get_xydata()[0]) == (2.0, 3.5)
    # layers along x: (layer, head)
    fig = plot_scores(task_scores(), paths=PathMarks(head_paths(), 1), orientation="layer_x")
    ax = next(ax for ax in fig.axes if ax.get_label() == "task:antonym")
    (arrow,) = [p for p in ax.patches if p.get_gid() == "path-arrow"]
    assert tuple(np.round(arrow._posA_posB[0], 3)) == (2.0, 3.0)  # L2H3 -> logits, strongest
    assert arrow.get_facecolor()[3] == 0  # the logits' open head


def svg_gids(path) -> list[str]:
    return [el.get("id", "") for el in ET.parse(path).iter()]


def test_images_and_the_page_carry_the_arrows(tmp_path) -> None:
    grid = HeadImportanceGrid(task_scores(), paths=head_paths())
    svg = grid.save(tmp_path / "all.svg")
    ids = svg_gids(svg)
    assert sum(i.startswith("path-arrow") for i in ids) == 4
    assert (
        "path helps (effect &gt; 0)" in svg.read_text()
        or "path helps (effect > 0)" in svg.read_text()
    )
    grid.path_edges = 1
    assert sum(i.startswith("path-arrow") for i in svg_gids(grid.save(tmp_path / "one.svg"))) == 2
    with_arrows = grid.save(tmp_path / "with.png", scale=1)
    grid.path_edges = 0
    without = grid.save(tmp_path / "without.png", scale=1)
    assert with_arrows.read_bytes() != without.read_bytes()
    grid.path_edges = 7
    text = grid.save(tmp_path / "grid.html").read_text(encoding="utf-8")
    state = json.loads(re.search(r'id="headwidget-state">(.*?)</script>', text, re.S).group(1))
    assert state["path_edges"] == 7
    raw = re.search(r'id="headwidget-path_data">(.*?)</script>', text, re.S).group(1)
    edges = np.frombuffer(base64.b64decode(raw), "<i4").reshape(-1, 6)
    np.testing.assert_array_equal(edges[:, 0], [1, 1, 1, 2])


def test_trace_paths_on_the_held_model() -> None:
    from test_projection import PAIRS, operation
    from tiny_models import tiny_model, word_tokenizer

    from headwidget import trace_paths

    tok = word_tokenizer()
    model = tiny_model("llama", vocab_size=len(tok))
    tasks = [operation(PAIRS[:6])]
    grid = HeadImportanceGrid(model, tok, tasks=tasks)
    grid.compute()
    paths = grid.trace_paths(top=3)
    assert grid.paths is paths and len(grid.path_arrays()[0]) == len(paths.edges) > 0
    # the grid's scores chose the heads, as trace_paths(scores=...) does
    direct = trace_paths(model, tok, tasks, top=3, scores=grid.scores, progress=False)
    np.testing.assert_array_equal(paths.edges, direct.edges)
    np.testing.assert_allclose(paths.effect, direct.effect, atol=1e-6)
