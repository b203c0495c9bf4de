"""Which heads pass the threshold, and which categories they belong to.

This is the Python twin of the rule the widget's front end applies (``js/src``); both are checked
against the same fixture (``tests/fixtures/categories_cases.json``) so they cannot drift apart.

The rule, on already-normalized values ``v[t, l, h]`` (see :meth:`HeadScores.normalized`):

- the cutoff of task ``t`` is ``threshold`` ("value" mode), or in "top_percent" mode the k-th
  largest non-NaN value of the task with ``k = max(1, ceil(top_percent * n_valid / 100))``;
- head ``(l, h)`` passes task ``t`` iff ``v[t, l, h]`` is not NaN and ``v[t, l, h] >= cutoff``
  (so ties at the cutoff all pass) and, where a ``significant`` mask is given (the widget's
  "significant" threshold mode, value cutoff ``threshold``), the cell is significant;
- a head belongs to category ``C`` iff it passes at least one *counted* task whose category is
  ``C`` (tasks without a category never contribute; every task is counted unless ``counted``
  says otherwise, see :func:`headwidget.views.uncertainty.counted_tasks`);
- its label is its single category's name, ``"2 categories"`` … ``"4 categories"``,
  ``"5+ categories"``, or ``"Unclassified"``.

Comparisons are made in float64 on the (float32) values, as JavaScript does.

>>> import numpy as np
>>> values = np.array([[[0.5, 0.1]], [[0.2, 0.3]]])          # 2 tasks, 1 layer, 2 heads
>>> result = assign_categories(values, ["Knowledge", "Linguistic"], threshold=0.25)
>>> result.labels.tolist(), result.counts.tolist()
([['Knowledge', 'Linguistic']], [1, 1])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CATEGORY_COLORS",
    "EXTRA_CATEGORY_COLORS",
    "MULTI_CATEGORY_COLORS",
    "UNCLASSIFIED",
    "UNCLASSIFIED_COLOR",
    "CategoryAssignment",
    "assign_categories",
    "category_color",
    "category_colors",
    "category_membership",
    "category_names",
    "default_threshold",
    "head_labels",
    "legend_labels",
    "multi_label",
    "pass_counts",
    "passing_heads",
    "task_cutoffs",
    "top_k",
]

#: Fixed colours (matplotlib tab10) of the four categories of the MAPS figure.
CATEGORY_COLORS: dict[str, str] = {
    "Algorithmic": "#1f77b4",
    "Knowledge": "#ff7f0e",
    "Linguistic": "#2ca02c",
    "Translation": "#d62728",
}
#: Colours handed, in order of first appearance, to categories not in :data:`CATEGORY_COLORS`
#: (cycled when there are more than three such categories).
EXTRA_CATEGORY_COLORS: tuple[str, ...] = ("#17becf", "#bcbd22", "#7f7f7f")
#: Colours of heads that belong to several categories.
MULTI_CATEGORY_COLORS: dict[str, str] = {
    "2 categories": "#9467bd",
    "3 categories": "#8c564b",
    "4 categories": "#e377c2",
    "5+ categories": "#393b79",
}
UNCLASSIFIED = "Unclassified"
UNCLASSIFIED_COLOR = "#d9d9d9"


def _as_values(values: np.ndarray | Sequence) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 3:
        raise ValueError(
            f"values must have shape [n_tasks, n_layers, n_heads], got shape {array.shape}"
        )
    return array


def _check_mode(threshold: float | None, top_percent: float | None) -> None:
    if (threshold is None) == (top_percent is None):
        raise ValueError(
            "give exactly one of threshold= (a value cutoff) or top_percent= (a share of each"
            " task's heads, in (0, 100])"
        )
    if threshold is not None and math.isnan(float(threshold)):
        raise ValueError("threshold must be a number, got NaN")
    if top_percent is not None and not 0 < float(top_percent) <= 100:
        raise ValueError(f"top_percent must be in (0, 100], got {top_percent!r}")


def default_threshold(values: np.ndarray | Sequence, percentile: float = 95.0) -> float:
    """A threshold that about 5% of heads pass: the 95th percentile of the (normalized) values
    over all tasks, rounded to 2 significant digits.

    When that percentile is not above 0 (mostly-zero maps), the smallest positive value is used
    instead (unrounded), so that a 0 threshold does not let every zero-score head pass; 0.0 when
    nothing is positive or no value is finite (NaN and ±inf are left out).

    >>> default_threshold(np.arange(1000, dtype=np.float32).reshape(1, 10, 100) / 1e6)
    0.00095
    """
    array = np.asarray(values, dtype=np.float64)
    valid = array[np.isfinite(array)]  # an infinite score would make an infinite threshold
    if valid.size == 0:
        return 0.0
    cutoff = float(np.percentile(valid, percentile))
    if not cutoff > 0:
        positive = valid[valid > 0]
        if positive.size == 0:
            return 0.0
        # not rounded: rounding up could leave no head passing
        return float(positive.min())
    return float(f"{cutoff:.2g}")


def top_k(top_percent: float, n_valid: int) -> int:
    """How many heads of a task with ``n_valid`` non-NaN scores are in its top ``top_percent``.

    ``max(1, ceil(top_percent * n_valid / 100))``; multiplying before dividing keeps whole
    results exact (``10 * 30 / 100 == 3``, whereas ``0.1 * 30 == 3.0000000000000004``).

    >>> top_k(5, 1024), top_k(10, 30), top_k(0.01, 8)
    (52, 3, 1)
    """
    return max(1, math.ceil(float(top_percent) * n_valid / 100))


def task_cutoffs(
    values: np.ndarray | Sequence,
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
) -> np.ndarray:
    """The cutoff of each task, float64 ``[n_tasks]``.

    A task with no non-NaN value gets ``+inf`` in "top_percent" mode (no head can pass it).

    >>> task_cutoffs([[[1.0, 2.0, 2.0, float("nan")]]], top_percent=50).tolist()
    [2.0]
    """
    _check_mode(threshold, top_percent)
    array = _as_values(values)
    n_tasks = array.shape[0]
    if threshold is not None:
        return np.full(n_tasks, float(threshold))
    cutoffs = np.full(n_tasks, np.inf)
    for t in range(n_tasks):
        valid = array[t][~np.isnan(array[t])]
        if valid.size:
            k = top_k(float(top_percent), valid.size)  # type: ignore[arg-type]
            cutoffs[t] = np.sort(valid)[::-1][k - 1]
    return cutoffs


def passing_heads(
    values: np.ndarray | Sequence,
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
    significant: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean ``[n_tasks, n_layers, n_heads]``: does the head pass the task's cutoff (and,
    with ``significant``, a bool mask of the values' shape, is its cell significant)?

    >>> passing_heads([[[0.1, float("nan"), 0.3]]], threshold=0.1).tolist()
    [[[True, False, True]]]
    >>> passing_heads([[[0.1, 0.2]]], threshold=0.1, significant=[[[False, True]]]).tolist()
    [[[False, True]]]
    """
    array = _as_values(values)
    cutoffs = task_cutoffs(array, threshold=threshold, top_percent=top_percent)
    return _passing(array, cutoffs, significant)


def _passing(
    array: np.ndarray, cutoffs: np.ndarray, significant: np.ndarray | Sequence | None = None
) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        passing = ~np.isnan(array) & (array >= cutoffs[:, None, None])
    if significant is not None:
        mask = np.asarray(significant)
        if mask.shape != array.shape:
            raise ValueError(
                f"significant must have the shape of values {array.shape}, got {mask.shape}"
            )
        passing &= mask.astype(bool)
    return passing


def pass_counts(
    values: np.ndarray | Sequence,
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
) -> np.ndarray:
    """Number of passing heads per task, int ``[n_tasks]``."""
    passing = passing_heads(values, threshold=threshold, top_percent=top_percent)
    return passing.sum(axis=(1, 2)).astype(np.int64)


def category_names(task_categories: Sequence[str | None]) -> list[str]:
    """Categories in order of first appearance, without ``None``.

    >>> category_names(["Knowledge", None, "Algorithmic", "Knowledge"])
    ['Knowledge', 'Algorithmic']
    """
    names: list[str] = []
    for category in task_categories:
        if category is not None and category not in names:
            names.append(category)
    return names


def category_membership(
    values: np.ndarray | Sequence,
    task_categories: Sequence[str | None],
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
) -> tuple[list[str], np.ndarray]:
    """``(names, membership)``: membership is boolean ``[n_categories, n_layers, n_heads]``."""
    passing = passing_heads(values, threshold=threshold, top_percent=top_percent)
    return _membership(passing, task_categories)


def _membership(
    passing: np.ndarray,
    task_categories: Sequence[str | None],
    counted: Sequence[bool] | None = None,
) -> tuple[list[str], np.ndarray]:
    categories = list(task_categories)
    if len(categories) != passing.shape[0]:
        raise ValueError(
            f"got {len(categories)} task categories for {passing.shape[0]} tasks; give one"
            " category (or None) per task"
        )
    if counted is not None and len(counted) != len(categories):
        raise ValueError(f"counted has {len(counted)} entries for {len(categories)} tasks")
    names = category_names(categories)
    membership = np.zeros((len(names), *passing.shape[1:]), dtype=bool)
    for t, category in enumerate(categories):
        if category is not None and (counted is None or counted[t]):
            membership[names.index(category)] |= passing[t]
    return names, membership


def multi_label(n_categories: int) -> str:
    """Label of a head in ``n_categories`` (>= 2) categories."""
    return "5+ categories" if n_categories >= 5 else f"{n_categories} categories"


def _labels_from_membership(names: list[str], membership: np.ndarray) -> np.ndarray:
    counts = membership.sum(axis=0)
    labels = np.full(membership.shape[1:], UNCLASSIFIED, dtype=object)
    for c, name in enumerate(names):
        labels[(counts == 1) & membership[c]] = name
    for n in np.unique(counts[counts >= 2]):
        labels[counts == n] = multi_label(int(n))
    return labels


def head_labels(
    values: np.ndarray | Sequence,
    task_categories: Sequence[str | None],
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
) -> np.ndarray:
    """Label of every head, an object array of str ``[n_layers, n_heads]``."""
    names, membership = category_membership(
        values, task_categories, threshold=threshold, top_percent=top_percent
    )
    return _labels_from_membership(names, membership)


def legend_labels(names: Sequence[str]) -> list[str]:
    """Legend entries for categories ``names`` (in order of appearance), as in the MAPS figure.

    Multi-category labels that can occur (most first), then the categories in reverse order of
    appearance, then "Unclassified".

    >>> legend_labels(["Algorithmic", "Knowledge", "Linguistic", "Translation"])[:4]
    ['4 categories', '3 categories', '2 categories', 'Translation']
    """
    names = list(names)
    most = min(len(names), 5)
    multi = [multi_label(n) for n in range(most, 1, -1)]
    return [*multi, *reversed(names), UNCLASSIFIED]


def category_colors(names: Sequence[str]) -> dict[str, str]:
    """Colour (hex) of every label that can occur with categories ``names``.

    >>> category_colors(["Knowledge", "Syntax"])["Syntax"]
    '#17becf'
    """
    colors: dict[str, str] = {}
    extra = 0
    for name in names:
        if name in CATEGORY_COLORS:
            colors[name] = CATEGORY_COLORS[name]
        else:
            colors[name] = EXTRA_CATEGORY_COLORS[extra % len(EXTRA_CATEGORY_COLORS)]
            extra += 1
    colors.update(MULTI_CATEGORY_COLORS)
    colors[UNCLASSIFIED] = UNCLASSIFIED_COLOR
    return colors


def category_color(label: str, names: Sequence[str] = ()) -> str:
    """Colour of one label; ``names`` (categories in order of appearance) decides the colours of
    categories outside the standard four.

    >>> category_color("Translation"), category_color("2 categories")
    ('#d62728', '#9467bd')
    """
    colors = category_colors(list(names) if label in names else [*names, label])
    return colors[label]


@dataclass
class CategoryAssignment:
    """Everything the category view shows, from :func:`assign_categories`."""

    #: Categories in order of first appearance.
    names: list[str]
    #: Boolean ``[n_categories, n_layers, n_heads]``.
    membership: np.ndarray
    #: Label of every head, object array of str ``[n_layers, n_heads]``.
    labels: np.ndarray
    #: Passing heads per task, int ``[n_tasks]``.
    counts: np.ndarray
    #: Cutoff of each task, float64 ``[n_tasks]``.
    cutoffs: np.ndarray
    #: Legend entries, in display order.
    legend: list[str]
    #: Colour of every label.
    colors: dict[str, str]


def assign_categories(
    values: np.ndarray | Sequence,
    task_categories: Sequence[str | None],
    *,
    threshold: float | None = None,
    top_percent: float | None = None,
    significant: np.ndarray | None = None,
    counted: Sequence[bool] | None = None,
) -> CategoryAssignment:
    """Apply the whole rule at once (see the module docstring): ``significant`` (bool, the
    values' shape) lets only significant cells pass; ``counted`` (one bool per task) leaves the
    tasks marked False out of the categories (their heads still pass and are counted)."""
    array = _as_values(values)
    cutoffs = task_cutoffs(array, threshold=threshold, top_percent=top_percent)
    passing = _passing(array, cutoffs, significant)
    names, membership = _membership(passing, task_categories, counted)
    return CategoryAssignment(
        names=names,
        membership=membership,
        labels=_labels_from_membership(names, membership),
        counts=passing.sum(axis=(1, 2)).astype(np.int64),
        cutoffs=cutoffs,
        legend=legend_labels(names),
        colors=category_colors(names),
    )
