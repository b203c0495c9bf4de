"""How sure each map is, as the widget and its exports show it (the Python twin of
``js/src/uncertainty.ts``).

From a :class:`~headwidget.HeadScores` with per-example effects
(:mod:`headwidget.scores.uncertainty`):

- each cell's standard error (``sem``, raw metric units), shown in the tooltip as a 95 % interval,
  ``value ± 1.96 sem`` (divided by the task's sum of absolute importances on the "share" scale);
- each cell's significance, one code per cell: :data:`SIGNIFICANT` (the Wilcoxon signed-rank test
  with Benjamini-Hochberg FDR control at :data:`ALPHA` per task rejects "no effect"),
  :data:`NOT_SIGNIFICANT`, or :data:`UNTESTED` (no per-example effects, or not finite in every
  example);
- each task's split-half reliability, shown in its panel title ("r = 0.82"), marked "noisy: add
  examples" below ``min_reliability``.

The category overlay can count only the tasks whose maps are reliable and that the model does not
fail (:func:`counted_tasks`, ``categories_from="reliable"``).

>>> reliability_note(0.82, 0.7), reliability_note(0.5, 0.7)
(('r = 0.82', False), ('noisy: add examples · r = 0.50', True))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..scores import HeadScores
from ..scores import uncertainty as measures
from .cell_runs import cells_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "ALPHA",
    "CATEGORIES_FROM",
    "FigureMarks",
    "INTERVAL_Z",
    "MIN_RELIABILITY",
    "NEEDED_TARGET",
    "NOT_SIGNIFICANT",
    "SIGNIFICANT",
    "UNTESTED",
    "MapUncertainty",
    "counted_tasks",
    "group_reliability_note",
    "hatch_cells",
    "map_uncertainty",
    "panel_unmarked",
    "reliability_note",
]

#: The false discovery rate the widget's significance marks control, per task.
ALPHA = 0.05
#: A 95 % interval is the value ± this many standard errors.
INTERVAL_Z = 1.96
#: Maps less reliable than this are marked "noisy: add examples" (``min_reliability``).
MIN_RELIABILITY = 0.7
#: The reliability the "examples needed" hint in a title's tooltip aims at.
NEEDED_TARGET = 0.9
#: Significance codes, one uint8 per cell (the ``significant`` trait).
NOT_SIGNIFICANT, SIGNIFICANT, UNTESTED = 0, 1, 2
#: Which tasks the category overlay counts: all, or the reliable ones the model does not fail.
CATEGORIES_FROM = ("all", "reliable")


@dataclass(frozen=True)
class MapUncertainty:
    """What the widget shows of how sure each map is (:func:`map_uncertainty`)."""

    #: float64 ``[tasks, layers, heads]``, raw metric units, NaN unknown; None: no effects at all
    sem: np.ndarray | None = None
    #: uint8 ``[tasks, layers, heads]`` of the codes above; None: no cell was tested
    significance: np.ndarray | None = None
    #: task -> split-half reliability (tasks with per-example effects; NaN where not measurable)
    reliability: dict[str, float] = field(default_factory=dict)
    #: task -> examples for a reliability of :data:`NEEDED_TARGET` (None: no projection reaches it)
    examples_needed: dict[str, int | None] = field(default_factory=dict)


def map_uncertainty(
    scores: HeadScores, alpha: float = ALPHA, *, significance: bool = True
) -> MapUncertainty:
    """Standard errors, significance codes and reliabilities of ``scores`` (from
    :attr:`HeadScores.sem`, :meth:`~HeadScores.significant`, :attr:`~HeadScores.sem_source` and
    :meth:`~HeadScores.reliability`); empty when they keep no per-example effects.
    ``significance=False`` skips the test (the costly part) and the standard errors.

    >>> map_uncertainty(HeadScores(np.ones((1, 2, 2)), ["t"])).significance is None
    True
    """
    if not scores.effects:
        return MapUncertainty()
    tested = scores.sem_source != "none"
    codes = None
    if significance and tested.any():
        codes = np.where(tested, scores.significant(alpha), UNTESTED).astype(np.uint8)
    reliability = {task: r for task, r in scores.reliability().items() if task in scores.effects}
    needed = {
        task: measures.examples_needed(r, scores.effects[task].shape[2], NEEDED_TARGET)
        for task, r in reliability.items()
    }
    return MapUncertainty(
        sem=scores.sem if significance else None,
        significance=codes,
        reliability=reliability,
        examples_needed=needed,
    )


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def counted_tasks(
    reliability: Sequence[float | None],
    accuracy: Sequence[float | None],
    *,
    categories_from: Literal["all", "reliable"] = "all",
    min_reliability: float = MIN_RELIABILITY,
    min_accuracy: float = 0.2,
) -> list[bool]:
    """Which tasks the category overlay counts (one bool per task): all of them, or with
    ``categories_from="reliable"`` all but those whose reliability is below ``min_reliability``
    (marked "noisy") or whose clean accuracy is below ``min_accuracy`` (marked "fails"). A task
    whose reliability or accuracy is unknown (None or NaN) is counted.

    >>> counted_tasks([0.9, 0.5, None], [0.1, 0.9, None], categories_from="reliable")
    [False, False, True]
    """
    if categories_from not in CATEGORIES_FROM:
        raise ValueError(
            f"categories_from must be one of {list(CATEGORIES_FROM)}, got {categories_from!r}"
        )
    if len(reliability) != len(accuracy):
        raise ValueError(f"got {len(reliability)} reliabilities for {len(accuracy)} accuracies")
    if categories_from == "all":
        return [True] * len(reliability)
    return [
        not (_known(r) and r < min_reliability) and not (_known(a) and a < min_accuracy)  # type: ignore[operator]
        for r, a in zip(reliability, accuracy, strict=True)
    ]


def reliability_note(reliability: float | None, min_reliability: float) -> tuple[str, bool]:
    """The reliability line of a task panel's title and whether it is marked noisy; ("", False)
    when unknown."""
    if not _known(reliability):
        return "", False
    r = float(reliability)  # type: ignore[arg-type]
    if r < min_reliability:
        return f"noisy: add examples · r = {r:.2f}", True
    return f"r = {r:.2f}", False


def group_reliability_note(
    reliability: Sequence[float | None],
    counted: Sequence[bool],
    min_reliability: float,
    categories_from: str = "all",
) -> tuple[str, bool]:
    """The reliability line of a category panel (over its tasks), and whether it is marked.

    "r = 0.71–0.93" (the range over its tasks' maps); with ``categories_from="all"`` and some
    map below ``min_reliability``: "noisy: 1 of 3 maps · r = 0.52–0.93" (marked); with
    ``"reliable"`` and some tasks left out: "r = … · 1 of 3 left out" over the counted ones
    ("all 3 maps left out", marked, when none is counted). ("", False) when none is known.

    >>> group_reliability_note([0.52, 0.93, None], [True] * 3, 0.7)
    ('noisy: 1 of 3 maps · r = 0.52–0.93', True)
    >>> group_reliability_note([0.52, 0.93, 0.8], [False, True, True], 0.7, "reliable")
    ('r = 0.80–0.93 · 1 of 3 left out', False)
    """
    n = len(reliability)
    if not any(_known(r) for r in reliability):
        return "", False
    maps = "map" if n == 1 else "maps"
    if categories_from == "reliable":
        left = sum(1 for c in counted if not c)
        if left == n:
            return f"{'its map' if n == 1 else f'all {n} maps'} left out", True
        span = _span([r for r, c in zip(reliability, counted, strict=True) if c])
        if not left:
            return span, False
        return " · ".join(filter(None, (span, f"{left} of {n} left out"))), False
    span = _span(reliability)
    noisy = sum(1 for r in reliability if _known(r) and r < min_reliability)  # type: ignore[operator]
    if noisy:
        return f"noisy: {noisy} of {n} {maps} · {span}", True
    return span, False


def _span(reliability: Sequence[float | None]) -> str:
    known = [f"{r:.2f}" for r in sorted(r for r in reliability if _known(r))]  # type: ignore[type-var]
    if not known:
        return ""
    return f"r = {known[0]}" if known[0] == known[-1] else f"r = {known[0]}–{known[-1]}"


def panel_unmarked(significance: np.ndarray, tasks: Sequence[int]) -> np.ndarray:
    """Bool ``[layers, heads]``: the heads a panel of ``tasks`` marks "not significant" — tested
    in some of the tasks and significant in none (a task panel: its one task).

    >>> codes = np.array([[[0, 1, 2]], [[0, 0, 2]]], np.uint8)
    >>> panel_unmarked(codes, [0, 1]).tolist()
    [[True, False, False]]
    """
    codes = significance[list(tasks)]
    tested = (codes != UNTESTED).any(axis=0)
    return tested & ~(codes == SIGNIFICANT).any(axis=0)


def hatch_cells(ax: Axes, mask: np.ndarray, orientation: str) -> None:
    """Hatch (white back-slashes) the cells of ``mask`` (bool ``[layers, heads]``) over a panel
    drawn by ``plotting._draw_matrix``; the other cells keep their colour-bar colour. One patch:
    the cells are merged into runs along each row."""
    from matplotlib.patches import PathPatch

    path = cells_path(mask, orientation)
    if path is None:
        return
    ax.add_patch(
        PathPatch(
            path,
            facecolor="none",
            # the hatch takes the edge colour (matplotlib < 3.10 has no hatchcolor); no edge drawn
            edgecolor=(1.0, 1.0, 1.0, 0.85),
            hatch="\\\\\\\\",
            linewidth=0,
            zorder=1.5,
        )
    )


class FigureMarks:
    """What a figure of :func:`headwidget.views.plotting.plot_scores` marks of how sure its maps
    are: the reliability of each drawn task, the significance mask that gates passing
    (``significant_only``) and the codes of the cells to hatch (``mark_insignificant``)."""

    def __init__(
        self,
        reliability: list[float | None],
        significant: np.ndarray | None,
        hatch: np.ndarray | None,
    ) -> None:
        self.reliability = reliability
        self.significant = significant
        self.hatch = hatch

    @classmethod
    def of(
        cls,
        scores: HeadScores,
        order: Sequence[int],
        uncertainty: MapUncertainty | None,
        mark_insignificant: bool,
        significant_only: bool,
    ) -> FigureMarks:
        if uncertainty is None:
            # significance only when it is drawn (the test is the costly part)
            wanted = mark_insignificant or significant_only
            uncertainty = map_uncertainty(scores, significance=wanted)
        codes = None if uncertainty.significance is None else uncertainty.significance[order]
        if codes is None and (mark_insignificant or significant_only):
            option = "mark_insignificant" if mark_insignificant else "significant_only"
            raise ValueError(
                f"{option}=True needs per-example effects (score_heads(keep_examples=True));"
                " these scores have none, so no cell was tested"
            )
        return cls(
            [uncertainty.reliability.get(scores.tasks[i]) for i in order],
            codes == SIGNIFICANT if significant_only and codes is not None else None,
            codes if mark_insignificant else None,
        )

    def legend(self) -> list[object]:
        """Legend handles of the marks drawn (the hatch), for the figure's legend."""
        if self.hatch is None:
            return []
        from matplotlib.patches import Patch

        return [
            Patch(
                facecolor="#21918c",
                edgecolor=(1.0, 1.0, 1.0, 0.85),
                hatch="\\\\\\\\",
                linewidth=0,
                label=f"striped: not significant (Wilcoxon signed-rank, FDR {ALPHA:.0%} per task)",
            )
        ]
