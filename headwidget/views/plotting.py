"""Static matplotlib figures in the style of the published head-importance figures.

``kind="tasks"``: one heatmap per task in a grid (4 columns), Layer on y with 0 at the top, Head
on x, viridis, one shared colour bar "Heads Importance" whose top label ends in "+" when values
are clipped (the "Heads Importance" figure of Cognitive Mirrors).
``kind="categories"``: "All Categories" plus one panel per category, layer on x and head on y,
every head coloured by its category label (the MAPS figure); see :mod:`headwidget.views.categories`.
Where the scores keep per-example effects, each title gives its map's split-half reliability
("r = 0.82", "noisy: add examples" below ``min_reliability``) and, on request, cells that are not
significant are hatched (:mod:`headwidget.views.uncertainty`).

>>> fig = plot_scores(scores)                                   # doctest: +SKIP
>>> fig.savefig("heads.png", dpi=150)                           # doctest: +SKIP
>>> plot_scores(scores, kind="categories", top_percent=5)       # doctest: +SKIP
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..scores import HeadScores
from . import categories as cat
from . import uncertainty as unc
from .path_marks import PathMarks, mark_paths
from .roles import RoleMarks, mark_figure
from .ticks import axis_ticks, colorbar_ticks, decimals_for

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["COLORMAPS", "axis_ticks", "colorbar_ticks", "figure_text", "plot_scores"]

#: The widget's colour map names and the matplotlib map each one draws with.
COLORMAPS = {"viridis": "viridis", "magma": "magma", "cividis": "cividis", "diverging": "RdBu_r"}
_NAN_HATCH_COLOR = "#b0b0b0"
_PANEL_INCHES = 2.4
#: A name drawn in a figure: lines of about a panel's width at 10 pt, at most three, as the
#: widget wraps its titles. Names and the title are drawn as written (no math text, no TeX).
_NAME_WIDTH = 30
_NAME_LINES = 3
_LITERAL = {"parse_math": False, "usetex": False}


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "headwidget's static plots need matplotlib: pip install 'headwidget[plot]'"
        ) from err
    return matplotlib, Figure


def figure_text(text: str, width: int = _NAME_WIDTH, lines: int = _NAME_LINES) -> str:
    r"""``text`` as a figure draws it: cut to at most ``lines`` lines of ``width`` characters
    before anything is measured (so a name of a megabyte draws as fast as a short one), ending
    in "…" when cut; wrapped at spaces, other whitespace drawn as spaces, and unprintable
    characters (control characters, lone surrogates) written escaped (``\x1b``).

    >>> figure_text("a\x1bb"), figure_text("x" * 100, width=10, lines=2)
    ('a\\x1bb', 'xxxxxxxxxx\nxxxxxxxxx…')
    """
    cut = len(text) > width * lines
    if cut:
        text = text[: width * lines - 1]
    if not text.isprintable():
        text = "".join(
            c if c.isprintable() else " " if c.isspace() else repr(c)[1:-1] for c in text
        )
    if cut:
        text += "…"
    return "\n".join(textwrap.wrap(text, width, max_lines=lines, placeholder="…"))


def _color_limits(
    values: np.ndarray, colormap: str, vmin: float | None, vmax: float | None
) -> tuple[float, float]:
    finite = np.abs(values[np.isfinite(values)])
    if vmax is None:
        # as the widget: the 99.5th percentile of |values|, so one outlier does not wash out
        vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        if not vmax > 0:
            vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    if vmin is None:
        vmin = -vmax if colormap == "diverging" else 0.0
    if not vmax > vmin:
        raise ValueError(f"vmax ({vmax}) must be greater than vmin ({vmin})")
    return float(vmin), float(vmax)


def _hatch_background(ax: Axes, extent: tuple[float, float, float, float]) -> None:
    """Hatch the whole panel behind the image, so NaN (transparent) cells read as "n/a"."""
    from matplotlib.patches import Rectangle

    left, right, bottom, top = extent
    ax.add_patch(
        Rectangle(
            (left, min(bottom, top)),
            right - left,
            abs(top - bottom),
            facecolor="white",
            edgecolor=_NAN_HATCH_COLOR,
            hatch="////",
            linewidth=0,
            zorder=0,
        )
    )


def _draw_matrix(
    ax: Axes, matrix: np.ndarray, orientation: str, **imshow_kwargs
) -> tuple[object, str, str]:
    """Draw a [n_layers, n_heads] matrix; returns (image, x label, y label)."""
    n_layers, n_heads = matrix.shape[:2]
    if orientation == "layer_y":
        image_data, origin = matrix, "upper"
        x_label, y_label, n_x, n_y = "Head", "Layer", n_heads, n_layers
    else:
        image_data, origin = np.swapaxes(matrix, 0, 1), "lower"
        x_label, y_label, n_x, n_y = "layer", "head", n_layers, n_heads
    extent = (-0.5, n_x - 0.5, n_y - 0.5, -0.5) if origin == "upper" else None
    image = ax.imshow(
        image_data,
        origin=origin,
        interpolation="nearest",
        aspect="equal",
        zorder=1,
        **imshow_kwargs,
    )
    if extent is None:
        extent = (-0.5, n_x - 0.5, -0.5, n_y - 0.5)
    _hatch_background(ax, extent)
    ax.set_xticks(axis_ticks(n_x))
    ax.set_yticks(axis_ticks(n_y))
    ax.tick_params(labelsize=8, length=2)
    return image, x_label, y_label


def _grid_shape(n_panels: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n_panels))
    return math.ceil(n_panels / ncols), ncols


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def plot_scores(
    scores: HeadScores,
    *,
    kind: Literal["tasks", "categories"] = "tasks",
    normalization: Literal["share", "raw"] = "share",
    tasks: Sequence[str] | None = None,
    vmax: float | None = None,
    vmin: float | None = None,
    colormap: str = "viridis",
    color_range: Literal["shared", "per_task"] = "shared",
    threshold: float | None = None,
    top_percent: float | None = None,
    orientation: Literal["layer_y", "layer_x"] | None = None,
    ncols: int = 4,
    title: str | None = None,
    colorbar_label: str = "Heads Importance",
    min_accuracy: float = 0.2,
    min_reliability: float = unc.MIN_RELIABILITY,
    mark_insignificant: bool = False,
    significant_only: bool = False,
    categories_from: Literal["all", "reliable"] = "all",
    uncertainty: unc.MapUncertainty | None = None,
    roles: RoleMarks | None = None,
    paths: PathMarks | None = None,
) -> Figure:
    """A matplotlib figure of ``scores`` in the published style.

    ``kind="tasks"`` draws one heatmap per task (``tasks`` picks and orders them), 4 per row, with
    one shared colour bar (``color_range="per_task"`` gives each panel its own). ``vmax=None`` is
    the 99.5th percentile of the absolute normalized values; cells above it draw at the top
    colour and the top tick reads e.g. "0.0040+". With ``threshold`` or ``top_percent`` the
    passing heads are outlined and counted in the panel titles. Where ``scores.accuracy`` has a
    task's clean accuracy its title gives it, and a task below ``min_accuracy`` is marked
    "model fails this task" (its map is noise, not a circuit).

    ``kind="categories"`` draws "All Categories" and one panel per category (layer on x, head on
    y); heads are coloured by :func:`headwidget.views.categories.assign_categories` with
    ``threshold`` (default: :func:`headwidget.views.categories.default_threshold`) or
    ``top_percent``.

    How sure each map is, where ``scores`` keep per-example effects (or ``uncertainty`` gives it,
    :func:`headwidget.views.uncertainty.map_uncertainty`): each title gives the map's split-half
    reliability ("r = 0.82"; "noisy: add examples" below ``min_reliability``; a category panel
    the range over its tasks); ``mark_insignificant`` hatches the cells that are not significant
    (Wilcoxon signed-rank, FDR 5 % per task; a category panel: heads significant in none of its
    counted tasks), the other cells keep their colour-bar colour; ``significant_only`` lets only
    significant cells pass (and, with ``threshold`` / ``top_percent``, only those that also pass
    it); ``categories_from="reliable"`` leaves the tasks marked noisy or failing out of the
    categories (:func:`headwidget.views.uncertainty.counted_tasks`). ``roles`` / ``paths`` (a
    :class:`.roles.RoleMarks` / :class:`.path_marks.PathMarks`) draw role glyphs / arrows.

    Returns a :class:`matplotlib.figure.Figure` (not registered with pyplot, so it is not shown
    twice in notebooks): ``fig.savefig("heads.png", dpi=150)``.

    >>> import numpy as np
    >>> from headwidget import HeadScores
    >>> fig = plot_scores(HeadScores(np.random.rand(8, 32, 32), [f"t{i}" for i in range(8)]))
    >>> len(fig.axes)  # 8 panels + the colour bar
    9
    """
    if not isinstance(scores, HeadScores):
        raise TypeError(f"plot_scores() takes a HeadScores, got {type(scores).__name__}")
    for name, value, choices in (
        ("kind", kind, ("tasks", "categories")),
        ("normalization", normalization, ("share", "raw")),
        ("colormap", colormap, tuple(COLORMAPS)),
        ("color_range", color_range, ("shared", "per_task")),
        ("categories_from", categories_from, unc.CATEGORIES_FROM),
    ):
        _check_choice(name, value, choices)
    orientation, order = _checked(scores, kind, orientation, threshold, top_percent, tasks)
    _, Figure = _matplotlib()
    values = scores.normalized(normalization).values[order]
    names = [scores.tasks[i] for i in order]
    marks = unc.FigureMarks.of(scores, order, uncertainty, mark_insignificant, significant_only)
    accuracy = [scores.accuracy.get(name) for name in names]
    headings = [_heading(figure_text(n), a, min_accuracy, r, min_reliability)
                for n, a, r in zip(names, accuracy, marks.reliability, strict=True)]  # fmt: skip
    task_categories = [scores.categories.get(name) for name in names]
    if kind == "tasks":
        fig = _plot_tasks(
            Figure,
            values,
            headings,
            vmin=vmin,
            vmax=vmax,
            colormap=colormap,
            color_range=color_range,
            threshold=threshold,
            top_percent=top_percent,
            orientation=orientation,
            ncols=ncols,
            colorbar_label=colorbar_label,
            marks=marks,
        )
    else:
        counted = unc.counted_tasks(
            marks.reliability,
            accuracy,
            categories_from=categories_from,
            min_reliability=min_reliability,
            min_accuracy=min_accuracy,
        )
        fig = _plot_categories(
            Figure,
            values,
            task_categories,
            threshold=threshold,
            top_percent=top_percent,
            orientation=orientation,
            ncols=ncols,
            marks=marks,
            counted=counted,
            notes=(min_reliability, categories_from),
        )
    if title:
        fig.suptitle(figure_text(title, width=80, lines=2), **_LITERAL)
    mark_figure(fig, roles, orientation)
    mark_paths(fig, paths if kind == "tasks" else None, orientation, names)
    return fig


def _checked(
    scores: HeadScores,
    kind: str,
    orientation: str | None,
    threshold: float | None,
    top_percent: float | None,
    tasks: Sequence[str] | None,
) -> tuple[str, list[int]]:
    """plot_scores' orientation and the indices of the tasks drawn, checked."""
    if orientation is None:
        orientation = "layer_y" if kind == "tasks" else "layer_x"
    _check_choice("orientation", orientation, ("layer_y", "layer_x"))
    if threshold is not None and top_percent is not None:
        raise ValueError("give threshold= or top_percent=, not both")
    if tasks is not None:
        missing = [name for name in tasks if name not in scores.tasks]
        if missing:
            raise KeyError(f"no task(s) {missing} in these scores; the tasks are {scores.tasks}")
        order = [scores.tasks.index(name) for name in tasks]
    else:
        order = list(range(len(scores.tasks)))
    if not order:
        raise ValueError("no tasks to plot")
    return orientation, order


def _heading(
    name: str,
    accuracy: float | None,
    min_accuracy: float,
    reliability: float | None = None,
    min_reliability: float = unc.MIN_RELIABILITY,
) -> str:
    lines = [name]
    if accuracy is not None and not math.isnan(accuracy):
        fails = ": model fails this task" if accuracy < min_accuracy else ""
        lines.append(f"accuracy {accuracy:.2f}{fails}")
    note, _ = unc.reliability_note(reliability, min_reliability)
    if note:
        lines.append(note)
    return "\n".join(lines)


def _plot_tasks(
    Figure,
    values,
    names,
    *,
    vmin,
    vmax,
    colormap,
    color_range,
    threshold,
    top_percent,
    orientation,
    ncols,
    colorbar_label,
    marks,
):
    import matplotlib

    n_tasks, n_layers, n_heads = values.shape
    nrows, ncols = _grid_shape(n_tasks, ncols)
    aspect = n_layers / n_heads if orientation == "layer_y" else n_heads / n_layers
    width = ncols * _PANEL_INCHES + (1.2 if color_range == "shared" else 0.8 * ncols)
    height = nrows * (0.85 * _PANEL_INCHES * min(max(aspect, 0.4), 2.5) + 0.45)
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    # NaN cells transparent, over the hatched background
    cmap = matplotlib.colormaps[COLORMAPS[colormap]].with_extremes(bad=(0, 0, 0, 0))
    passing = None
    if marks.significant is not None:  # significant_only: alone, or with the threshold's cutoff
        alone = threshold is None and top_percent is None
        passing = cat.passing_heads(
            values,
            threshold=-np.inf if alone else threshold,
            top_percent=top_percent,
            significant=marks.significant,
        )
    elif threshold is not None or top_percent is not None:
        passing = cat.passing_heads(values, threshold=threshold, top_percent=top_percent)
    shared_limits = _color_limits(values, colormap, vmin, vmax)
    for t in range(n_tasks):
        ax = axes[t // ncols][t % ncols]
        limits = (
            shared_limits
            if color_range == "shared"
            else _color_limits(values[t : t + 1], colormap, vmin, vmax)
        )
        image, x_label, y_label = _draw_matrix(
            ax, values[t], orientation, cmap=cmap, vmin=limits[0], vmax=limits[1]
        )
        heading = names[t]
        if marks.hatch is not None:
            unc.hatch_cells(ax, unc.panel_unmarked(marks.hatch, [t]), orientation)
        if passing is not None:
            count = int(passing[t].sum())
            rule = (
                f"≥ {threshold:.{decimals_for(0, threshold or 1)}f}"
                if threshold is not None
                else (f"in top {top_percent:g}%" if top_percent is not None else "")
            )
            heads = f"head{'' if count == 1 else 's'}"
            if marks.significant is not None:
                heads = f"significant {heads}"
            heading += f"\n{count} {heads} {rule}".rstrip()
            _outline(ax, passing[t], orientation)
        ax.set_title(heading, fontsize=10, **_LITERAL)
        row, col = divmod(t, ncols)
        if col == 0:
            ax.set_ylabel(y_label)
        # the x label goes on every panel with no panel below it
        if t + ncols >= n_tasks:
            ax.set_xlabel(x_label)
        if color_range == "per_task":
            _colorbar(fig, image, ax, limits, values[t], colorbar_label=None)
    for t in range(n_tasks, nrows * ncols):
        axes[t // ncols][t % ncols].set_visible(False)
    if color_range == "shared":
        used = [axes[t // ncols][t % ncols] for t in range(n_tasks)]
        image = used[0].images[0]
        _colorbar(fig, image, used, shared_limits, values, colorbar_label=colorbar_label)
    if marks.legend():
        fig.legend(handles=marks.legend(), loc="outside lower right", fontsize=8, frameon=False)
    return fig


def _colorbar(fig, image, ax, limits, values, *, colorbar_label) -> None:
    vmin, vmax = limits
    with np.errstate(invalid="ignore"):
        clipped = bool(np.nanmax(values, initial=-np.inf) > vmax)
    bar = fig.colorbar(image, ax=ax, shrink=0.9 if isinstance(ax, list) else 0.8, aspect=30)
    ticks, labels = colorbar_ticks(vmin, vmax, clipped)
    bar.set_ticks(ticks, labels=labels)
    bar.ax.tick_params(labelsize=8)
    if colorbar_label:
        bar.set_label(colorbar_label)


def _outline(ax, passing: np.ndarray, orientation: str) -> None:
    from matplotlib.patches import Rectangle

    for layer, head in zip(*np.nonzero(passing), strict=True):
        x, y = (head, layer) if orientation == "layer_y" else (layer, head)
        ax.add_patch(
            Rectangle(
                (x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="#ff2d2d", linewidth=0.8, zorder=2
            )
        )


def _plot_categories(
    Figure,
    values,
    task_categories,
    *,
    threshold,
    top_percent,
    orientation,
    ncols,
    marks,
    counted,
    notes,
):
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    if threshold is None and top_percent is None:
        # significant_only alone: every significant head passes
        threshold = -np.inf if marks.significant is not None else cat.default_threshold(values)
    result = cat.assign_categories(
        values,
        task_categories,
        threshold=threshold,
        top_percent=top_percent,
        significant=marks.significant,
        counted=counted,
    )
    if not result.names:
        raise ValueError(
            "kind='categories' needs tasks with categories; these scores have none (give"
            " HeadScores(categories={task: category}) or plot kind='tasks')"
        )
    n_layers, n_heads = values.shape[1:]
    grey = to_rgb(cat.UNCLASSIFIED_COLOR)
    panels = [("All Categories", result.labels)]
    panels += [(name, result.membership[i]) for i, name in enumerate(result.names)]
    n_panels = len(panels)
    # the MAPS figure has all panels in one row; wrap only past ``ncols + 1`` panels
    nrows, ncols = _grid_shape(n_panels, max(ncols + 1, 5))
    aspect = n_heads / n_layers if orientation == "layer_x" else n_layers / n_heads
    panel_height = _PANEL_INCHES * min(max(aspect, 0.4), 2.5)
    fig = Figure(
        figsize=(ncols * _PANEL_INCHES + 1.8, nrows * (panel_height + 0.6)), layout="constrained"
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for p, (name, data) in enumerate(panels):
        ax = axes[p // ncols][p % ncols]
        rgb = np.empty((n_layers, n_heads, 3))
        if p == 0:
            for label, color in result.colors.items():
                rgb[data == label] = to_rgb(color)
        else:
            rgb[:] = grey
            rgb[data] = to_rgb(result.colors[name])
        _, x_label, y_label = _draw_matrix(ax, rgb, orientation)
        # the panel's tasks: every categorised task, or the category's
        tasks = [
            t for t, c in enumerate(task_categories) if c is not None and (p == 0 or c == name)
        ]
        if marks.hatch is not None:
            shown = [t for t in tasks if counted[t]]
            unc.hatch_cells(ax, unc.panel_unmarked(marks.hatch, shown), orientation)
        note, _ = unc.group_reliability_note(
            [marks.reliability[t] for t in tasks], [counted[t] for t in tasks], *notes
        )
        ax.set_title("\n".join(filter(None, (figure_text(name), note))), fontsize=10, **_LITERAL)
        if p % ncols == 0:
            ax.set_ylabel(y_label)
        if p + ncols >= n_panels:
            ax.set_xlabel(x_label)
    for p in range(n_panels, nrows * ncols):
        axes[p // ncols][p % ncols].set_visible(False)
    handles = [
        Patch(facecolor=result.colors[label], edgecolor="none", label=figure_text(label))
        for label in result.legend
    ] + marks.legend()
    if top_percent is not None:
        rule = f"top {top_percent:g}% per task"
    else:
        rule = f"threshold {threshold:g}" if np.isfinite(threshold) else ""
    if marks.significant is not None:
        rule = f"significant heads{f', {rule}' if rule else ''}"
    if not all(counted):
        rule += f"\n{counted.count(False)} noisy or failing task(s) left out"
    axes[0][0].legend(
        handles=handles,
        loc="center right",
        bbox_to_anchor=(-0.28, 0.5),
        fontsize=8,
        frameon=False,
        title=rule,
        title_fontsize=8,
        handlelength=1.0,
    )
    for text in axes[0][0].get_legend().get_texts():
        text.set(**_LITERAL)
    return fig
