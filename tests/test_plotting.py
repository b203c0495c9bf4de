"""Static figures (headwidget.views.plotting): structure, labels and colours of the published
styles."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex  # noqa: E402

from headwidget import HeadScores  # noqa: E402
from headwidget.views import categories as cat  # noqa: E402
from headwidget.views.plotting import axis_ticks, colorbar_ticks, plot_scores  # noqa: E402

FIGURE_A = [
    "Knowledge Recall",
    "Retrieval",
    "Logical Reasoning",
    "Decision-making",
    "Semantic Understanding",
    "Syntactic Understanding",
    "Inference",
    "Math Calculation",
]
FOUR = ["Algorithmic", "Knowledge", "Linguistic", "Translation"]


def figure_a_scores(n_layers: int = 32, n_heads: int = 32) -> HeadScores:
    rng = np.random.default_rng(0)
    values = rng.gamma(0.4, 1.0, size=(8, n_layers, n_heads)).astype(np.float32)
    values[:, 5, 7] *= 40  # one hot spot per task, far above the 99.5th percentile
    values[2, 1, 1] = np.nan
    categories = dict(zip(FIGURE_A, FOUR * 2, strict=True))
    return HeadScores(values, FIGURE_A, categories=categories)


def panels(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_tasks_figure_is_a_2x4_grid_with_one_shared_colorbar(tmp_path) -> None:
    fig = plot_scores(figure_a_scores())
    axes = panels(fig)
    assert len(axes) == 8 and len(colorbars(fig)) == 1
    assert [ax.get_title() for ax in axes] == FIGURE_A
    # only the left column says "Layer", only the bottom row "Head"
    assert [ax.get_ylabel() for ax in axes] == ["Layer", "", "", "", "Layer", "", "", ""]
    assert [ax.get_xlabel() for ax in axes] == ["", "", "", "", "Head", "Head", "Head", "Head"]
    # rows and columns of the grid: 2 distinct tops, 4 distinct lefts
    positions = [ax.get_position() for ax in axes]
    assert len({round(p.y0, 3) for p in positions}) == 2
    assert len({round(p.x0, 3) for p in positions}) == 4
    ax = axes[0]
    assert list(ax.get_yticks()) == [0, 6, 12, 18, 24, 30]
    assert list(ax.get_xticks()) == [0, 6, 12, 18, 24, 30]
    bottom, top = ax.get_ylim()
    assert top < bottom  # layer 0 at the top
    image = ax.images[0]
    assert image.get_cmap().name == "viridis"
    assert image.get_array().shape == (32, 32)
    bar = colorbars(fig)[0]
    assert bar.get_ylabel() == "Heads Importance"
    labels = [tick.get_text() for tick in bar.get_yticklabels()]
    assert labels[0] == "0.0000" and labels[-1].endswith("+")
    fig.savefig(tmp_path / "a.png", dpi=50)


def test_clipped_colour_bar_top_label_reads_vmax_plus() -> None:
    fig = plot_scores(figure_a_scores(), vmax=0.004)
    labels = [t.get_text() for t in colorbars(fig)[0].get_yticklabels()]
    assert labels == [
        "0.0000", "0.0005", "0.0010", "0.0015", "0.0020", "0.0025", "0.0030", "0.0035", "0.0040+",
    ]  # fmt: skip
    for ax in panels(fig):
        assert ax.images[0].get_clim() == (0.0, 0.004)


def test_no_plus_when_nothing_is_clipped() -> None:
    scores = figure_a_scores()
    top = float(np.nanmax(scores.normalized().values))
    labels = [
        t.get_text() for t in colorbars(plot_scores(scores, vmax=top * 2))[0].get_yticklabels()
    ]
    assert not labels[-1].endswith("+")


def test_nan_cells_are_transparent_over_a_hatched_panel() -> None:
    fig = plot_scores(figure_a_scores())
    ax = panels(fig)[2]
    image = ax.images[0]
    assert np.ma.is_masked(image.get_array()[1, 1])
    assert image.get_cmap().get_bad()[3] == 0  # transparent
    assert any(patch.get_hatch() for patch in ax.patches)


def test_threshold_counts_and_outlines_passing_heads() -> None:
    scores = figure_a_scores()
    fig = plot_scores(scores, threshold=0.01)
    counts = cat.pass_counts(scores.normalized().values, threshold=0.01)
    for ax, count in zip(panels(fig), counts, strict=True):
        assert ax.get_title().endswith(f"{count} head{'s' if count != 1 else ''} ≥ 0.010")
        outlines = [p for p in ax.patches if not p.get_hatch()]
        assert len(outlines) == count
    fig = plot_scores(scores, top_percent=1)
    assert panels(fig)[0].get_title() == "Knowledge Recall\n11 heads in top 1%"  # ceil(10.24)


def test_titles_give_clean_accuracy_and_mark_failed_tasks() -> None:
    values = np.random.default_rng(1).random((3, 4, 4))
    scores = HeadScores(values, ["a", "b", "c"], accuracy={"a": 0.9, "b": 0.05})
    titles = [ax.get_title() for ax in plot_scores(scores).axes[:3]]
    assert titles == ["a\naccuracy 0.90", "b\naccuracy 0.05: model fails this task", "c"]
    strict = plot_scores(scores, min_accuracy=0.95).axes[0].get_title()
    assert strict == "a\naccuracy 0.90: model fails this task"


def test_partial_last_row_and_layout_options() -> None:
    scores = figure_a_scores(n_layers=12, n_heads=8)
    fig = plot_scores(scores, tasks=FIGURE_A[:5], ncols=4, orientation="layer_x")
    axes = panels(fig)
    assert len(axes) == 5
    # the x label goes on every panel that has no panel below it
    assert [ax.get_xlabel() for ax in axes] == ["", "layer", "layer", "layer", "layer"]
    assert axes[0].images[0].get_array().shape == (8, 12)  # head rows, layer columns
    fig = plot_scores(scores, color_range="per_task", colormap="diverging", normalization="raw")
    assert len(colorbars(fig)) == 8
    low, high = panels(fig)[0].images[0].get_clim()
    assert low == -high


def test_categories_figure_matches_the_maps_layout() -> None:
    scores = figure_a_scores()
    fig = plot_scores(scores, kind="categories", threshold=0.003)
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["All Categories", *FOUR]
    assert axes[0].get_xlabel() == "layer" and axes[0].get_ylabel() == "head"
    legend = axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == [
        "4 categories", "3 categories", "2 categories",
        "Translation", "Linguistic", "Knowledge", "Algorithmic", "Unclassified",
    ]  # fmt: skip
    # "All Categories" colours by label; a category panel shows its heads in its colour, the
    # rest grey
    result = cat.assign_categories(
        scores.normalized().values, [scores.categories[t] for t in FIGURE_A], threshold=0.003
    )
    all_rgb = axes[0].images[0].get_array()  # [head, layer, rgb] in layer_x orientation
    for layer, head in [(5, 7), (0, 0), (20, 30)]:
        assert to_hex(all_rgb[head, layer]) == result.colors[result.labels[layer, head]]
    knowledge = axes[2].images[0].get_array()
    member = result.membership[1]
    assert {to_hex(c) for c in knowledge[member.T]} == {"#ff7f0e"}
    assert {to_hex(c) for c in knowledge[~member.T]} == {"#d9d9d9"}


@pytest.mark.parametrize("kind", ["tasks", "categories"])
def test_layer_x_puts_head_0_at_the_bottom_like_figure_b(kind) -> None:
    """The widget's layer_x convention: layer on x (0 at the left), head on y pointing up."""
    scores = figure_a_scores(n_layers=12, n_heads=8)
    fig = plot_scores(scores, kind=kind, orientation="layer_x", threshold=0.003)
    ax = panels(fig)[0]
    # the first column carries the y label, the bottom row the x label
    assert (panels(fig)[-1].get_xlabel(), ax.get_ylabel()) == ("layer", "head")
    assert ax.get_xlim() == (-0.5, 11.5)  # layer 0 at the left
    assert ax.get_ylim() == (-0.5, 7.5)  # head 0 at the bottom, the highest head at the top
    assert list(ax.get_yticks()) == axis_ticks(8)
    image = ax.images[0]
    assert image.origin == "lower" and image.get_array().shape[:2] == (8, 12)
    # the data pixel drawn at the bottom-left corner is layer 0 / head 0
    display = ax.transData.transform([(0, 0), (0, 7)])
    assert display[0][1] < display[1][1]
    if kind == "tasks":
        values = scores.normalized().values[0]
        assert image.get_array()[0, 0] == pytest.approx(values[0, 0])
        assert image.get_array()[7, 3] == pytest.approx(values[3, 7])
    # layer_y (figure A) keeps layer 0 at the top
    axes = panels(plot_scores(scores, kind=kind, orientation="layer_y", threshold=0.003))
    assert (axes[-1].get_xlabel(), axes[0].get_ylabel()) == ("Head", "Layer")
    assert axes[0].get_ylim() == (11.5, -0.5)


def test_categories_default_threshold_and_errors() -> None:
    scores = figure_a_scores()
    fig = plot_scores(scores, kind="categories")
    threshold = cat.default_threshold(scores.normalized().values)
    assert panels(fig)[0].get_legend().get_title().get_text() == f"threshold {threshold:g}"
    bare = HeadScores(scores.values, FIGURE_A)
    with pytest.raises(ValueError, match="needs tasks with categories"):
        plot_scores(bare, kind="categories")
    with pytest.raises(ValueError, match="kind must be one of"):
        plot_scores(scores, kind="scatter")
    with pytest.raises(ValueError, match="not both"):
        plot_scores(scores, threshold=0.1, top_percent=5)
    with pytest.raises(KeyError, match="no task"):
        plot_scores(scores, tasks=["nope"])


def test_headscores_plot_delegates() -> None:
    fig = figure_a_scores().plot(kind="categories", top_percent=5)
    assert [ax.get_title() for ax in panels(fig)][0] == "All Categories"


def test_missing_matplotlib_is_explained(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install 'headwidget\[plot\]'"):
        plot_scores(figure_a_scores())


def test_tick_helpers() -> None:
    assert axis_ticks(80) == [0, 16, 32, 48, 64]
    assert axis_ticks(64) == [0, 12, 24, 36, 48, 60]
    assert axis_ticks(2) == [0, 1]
    ticks, labels = colorbar_ticks(0.0, 1.7, clipped=False)
    assert ticks[-1] == 1.7 and labels[-1] == "1.7"
    assert colorbar_ticks(-0.004, 0.004, clipped=True)[1][-1] == "0.0040+"
