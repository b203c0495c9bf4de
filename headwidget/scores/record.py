"""HeadScores: the importance of every (task, layer, head), with its provenance."""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import uncertainty
from .file import ScoresFileError
from .format import read_scores, write_scores

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = ["HeadScores"]


@dataclass
class HeadScores:
    """Importance of every attention head for every task.

    ``values[t, l, h]`` is the mean drop of the task's metric when head ``h`` of layer ``l`` is
    ablated (positive = the head helps the task). ``baseline[task]`` is the clean metric and
    ``accuracy[task]`` the clean accuracy (every answer token the argmax), where measured.
    ``method`` names how the values were computed; ``exact`` (bool, same shape as ``values``)
    marks the cells computed exactly, where a method approximates (``None``: all exact).

    Per example, where kept (``score_heads(keep_examples=...)``; not for weights-only
    ``"projection"``): ``effects[task]`` (float32 ``[n_layers, n_heads, n_examples]``) is each
    example's drop, in the metric's raw units, whose mean over examples is ``values`` (before
    any normalization); ``clean[task]`` (float64 ``[n_examples]``) the un-ablated metric of
    each example, so the ablated metric is ``clean - effects``; ``examples[task]`` the
    ``(prompt, answer)`` texts. Memory: ``n_layers * n_heads * n_examples * 4`` bytes per task
    (80 x 64 heads x 100 examples: 2 MB; 30 x 9 x 100: 108 kB).

    How sure each map is, from the per-example effects: :attr:`sem`, :meth:`reliability`,
    :meth:`examples_needed`, :meth:`p_values`, :meth:`significant`, :attr:`sem_source`
    (:mod:`headwidget.scores.uncertainty`). A HeadScores with per-example effects carries
    ``meta["uncertainty"]``, the procedures and defaults that compute them.

    >>> import numpy as np
    >>> scores = HeadScores(np.ones((1, 2, 3), np.float32), ["copying"])
    >>> scores.shape, float(scores.normalized("share").values.sum())
    ((1, 2, 3), 1.0)
    """

    values: np.ndarray
    tasks: list[str]
    categories: dict[str, str | None] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    method: str = "ablation"
    exact: np.ndarray | None = None
    effects: dict[str, np.ndarray] = field(default_factory=dict)
    clean: dict[str, np.ndarray] = field(default_factory=dict)
    examples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        if values.ndim != 3:
            raise ValueError(
                f"HeadScores.values must have shape [n_tasks, n_layers, n_heads], got shape"
                f" {values.shape}"
            )
        if not np.issubdtype(values.dtype, np.number):
            raise TypeError(f"HeadScores.values must be numeric, got dtype {values.dtype}")
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.tasks = [str(name) for name in self.tasks]
        if len(self.tasks) != values.shape[0]:
            raise ValueError(
                f"HeadScores has {values.shape[0]} task rows in values but {len(self.tasks)} task"
                f" names; give one name per row"
            )
        duplicates = sorted(name for name, n in Counter(self.tasks).items() if n > 1)
        if duplicates:
            raise ValueError(f"HeadScores task names must be unique; repeated: {duplicates}")
        unknown = set(self.categories) - set(self.tasks)
        if unknown:
            raise ValueError(f"categories given for unknown task(s) {sorted(unknown)}")
        self.categories = {name: self.categories.get(name) for name in self.tasks}
        self.baseline = {name: float(v) for name, v in self.baseline.items()}
        self.descriptions = {name: str(v) for name, v in self.descriptions.items()}
        unknown = set(self.accuracy) - set(self.tasks)
        if unknown:
            raise ValueError(f"accuracy given for unknown task(s) {sorted(unknown)}")
        self.accuracy = {name: float(v) for name, v in self.accuracy.items()}
        self.method = str(self.method)
        if self.exact is not None:
            exact = np.asarray(self.exact)
            if exact.dtype != np.bool_:
                raise TypeError(f"HeadScores.exact must be a bool array, got dtype {exact.dtype}")
            if exact.shape != values.shape:
                raise ValueError(
                    f"HeadScores.exact must have the shape of values {values.shape}, got"
                    f" {exact.shape}"
                )
            self.exact = None if exact.all() else np.ascontiguousarray(exact, dtype=bool)
        self.meta = dict(self.meta)
        self._check_examples(values.shape)
        if self.effects:  # how sem, reliability(), significant() are computed, saved with them
            self.meta["uncertainty"] = copy.deepcopy(uncertainty.SETTINGS)

    def _check_examples(self, shape: tuple[int, ...]) -> None:
        """Per-example fields: known tasks, shapes that agree with values and each other."""
        for name, given in (("effects", self.effects), ("clean", self.clean)):
            unknown = set(given) - set(self.tasks)
            if unknown:
                raise ValueError(f"{name} given for unknown task(s) {sorted(unknown)}")
        unknown = set(self.examples) - set(self.tasks)
        if unknown:
            raise ValueError(f"examples given for unknown task(s) {sorted(unknown)}")
        effects: dict[str, np.ndarray] = {}
        for task in self.tasks:
            if task not in self.effects:
                continue
            array = np.asarray(self.effects[task])
            if array.ndim != 3 or tuple(array.shape[:2]) != tuple(shape[1:]):
                raise ValueError(
                    f"effects[{task!r}] must have shape [n_layers, n_heads, n_examples] with"
                    f" {tuple(shape[1:])} layers x heads, got {array.shape}"
                )
            if not np.issubdtype(array.dtype, np.number):
                raise TypeError(f"effects[{task!r}] must be numeric, got dtype {array.dtype}")
            effects[task] = np.ascontiguousarray(array, dtype=np.float32)
        clean: dict[str, np.ndarray] = {}
        for task, given in self.clean.items():
            array = np.asarray(given)
            if array.ndim != 1 or not np.issubdtype(array.dtype, np.number):
                raise ValueError(f"clean[{task!r}] must be a 1-D numeric array, got {array.shape}")
            clean[task] = np.ascontiguousarray(array, dtype=np.float64)
        examples: dict[str, list[tuple[str, str]]] = {}
        for task, pairs in self.examples.items():
            checked = []
            for pair in pairs:
                if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
                    raise ValueError(f"examples[{task!r}] must be (prompt, answer) strings")
                checked.append((pair[0], pair[1]))
            examples[task] = checked
        for task in set(effects) | set(clean) | set(examples):
            sizes = {
                name: n
                for name, n in (
                    ("effects", effects[task].shape[2] if task in effects else None),
                    ("clean", len(clean[task]) if task in clean else None),
                    ("examples", len(examples[task]) if task in examples else None),
                )
                if n is not None
            }
            if len(set(sizes.values())) > 1:
                raise ValueError(f"task {task!r} has different numbers of examples: {sizes}")
        self.effects, self.clean, self.examples = effects, clean, examples

    def example_effects(self, task: str, layer: int, head: int) -> np.ndarray | None:
        """Each example's drop for head ``(layer, head)`` of ``task`` (float32
        ``[n_examples]``, raw metric units), or None where not kept.

        >>> drops = scores.example_effects("copying", 0, 2)  # mean: values[0,0,2]  # doctest: +SKIP
        """
        self._index(task)
        _, n_layers, n_heads = self.shape
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise IndexError(
                f"head ({layer}, {head}) is outside the scores' {n_layers} layers x {n_heads}"
                " heads (numbered from 0)"
            )
        if task not in self.effects:
            return None
        return self.effects[task][layer, head]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_tasks, n_layers, n_heads)``."""
        return tuple(self.values.shape)  # type: ignore[return-value]

    @property
    def n_layers(self) -> int:
        return self.values.shape[1]

    @property
    def n_heads(self) -> int:
        return self.values.shape[2]

    def __getitem__(self, task: str) -> np.ndarray:
        """The ``[n_layers, n_heads]`` matrix of one task."""
        return self.values[self._index(task)]

    def _index(self, task: str) -> int:
        try:
            return self.tasks.index(task)
        except ValueError:
            raise KeyError(f"no task {task!r}; the tasks are {self.tasks}") from None

    def __repr__(self) -> str:
        n_tasks, n_layers, n_heads = self.shape
        model = self.meta.get("model")
        about = f", model={model!r}" if model else ""
        return f"HeadScores({n_tasks} tasks × {n_layers} layers × {n_heads} heads{about})"

    def normalized(self, how: Literal["share", "raw"] = "share") -> HeadScores:
        """Scores rescaled for comparison across tasks.

        ``"share"`` divides each task by the sum of its absolute importances, so each task's map
        sums (in absolute value) to 1 and an average head scores ``1 / n_heads_total`` — the
        0–0.004 scale of the published "Heads Importance" figure. A task whose heads all score 0
        stays 0. ``"raw"`` returns an unchanged copy.
        """
        if how == "raw":
            return self._replace(self.values.copy())
        if how != "share":
            raise ValueError(f"normalized() takes 'share' or 'raw', got {how!r}")
        # in float64, rounded to float32 once: as the widget's front end computes it, so that
        # grid.assignment() agrees with the browser to the last bit
        values = self.values.astype(np.float64)
        totals = np.nansum(np.abs(values), axis=(1, 2), keepdims=True)
        safe = np.where(totals > 0, totals, 1.0)
        meta = {**self.meta, "normalization": "share"}
        return self._replace((values / safe).astype(np.float32), meta=meta)

    def _replace(self, values: np.ndarray, meta: Mapping[str, Any] | None = None) -> HeadScores:
        return HeadScores(
            values,
            list(self.tasks),
            dict(self.categories),
            dict(self.baseline),
            dict(meta if meta is not None else self.meta),
            dict(self.descriptions),
            dict(self.accuracy),
            self.method,
            None if self.exact is None else self.exact.copy(),
            dict(self.effects),
            dict(self.clean),
            dict(self.examples),
        )

    def top_heads(self, task: str, k: int = 10) -> list[tuple[int, int, float]]:
        """The ``k`` most important ``(layer, head, importance)`` of a task, best first (all of
        them when ``k`` exceeds the number of heads). Never-scored (NaN) heads are never
        ranked, so a shard's task may give fewer than ``k``."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"top_heads() takes k >= 0 (an int), got {k!r}")
        flat = self[task].ravel()
        scored = np.flatnonzero(~np.isnan(flat))
        order = scored[np.argsort(-flat[scored], kind="stable")][:k]
        return [(int(i // self.n_heads), int(i % self.n_heads), float(flat[i])) for i in order]

    def to_pandas(self) -> pandas.DataFrame:
        """A tidy table: one row per (task, layer, head) with columns
        ``task, category, layer, head, importance``."""
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "HeadScores.to_pandas() needs pandas: pip install 'headwidget[pandas]'"
            ) from err
        n_tasks, n_layers, n_heads = self.shape
        per_task = n_layers * n_heads
        return pd.DataFrame(
            {
                "task": np.repeat(self.tasks, per_task),
                "category": np.repeat([self.categories[t] for t in self.tasks], per_task),
                "layer": np.tile(np.repeat(np.arange(n_layers), n_heads), n_tasks),
                "head": np.tile(np.arange(n_heads), n_tasks * n_layers),
                "importance": self.values.ravel(),
            }
        )

    # -- how sure is each map (headwidget.scores.uncertainty) ----------------------------------

    @property
    def sem(self) -> np.ndarray:
        """Float64 ``[n_tasks, n_layers, n_heads]``: the standard error of each cell's mean over
        its examples (sample standard deviation, ``ddof=1``, over ``sqrt(n_examples)``), in the
        per-example effects' raw metric units (the units of ``values`` before any
        normalization). NaN for tasks without per-example effects or with fewer than 2
        examples, and for cells not finite in every example. For approximate cells of an
        attribution map it is the spread of the per-example estimates (:attr:`sem_source`).

        >>> scores.sem[0, 3, 1]  # values[0, 3, 1] +- 2 * this: a ~95% interval  # doctest: +SKIP
        """
        sem = np.full(self.shape, np.nan)
        for t, task in enumerate(self.tasks):
            if task in self.effects:
                sem[t] = uncertainty.standard_error(self.effects[task])
        return sem

    @property
    def sem_source(self) -> np.ndarray:
        """Str ``[n_tasks, n_layers, n_heads]``: where each cell's :attr:`sem`,
        :meth:`p_values` and :meth:`significant` come from: ``"exact"`` (each example's exact
        drop), ``"estimate"`` (each example's first-order estimate: the approximate cells of an
        attribution map, where :attr:`exact` is False; they describe the estimates' spread, not
        the exact drops') or ``"none"`` (no per-example effects, or not finite in every
        example).

        >>> (scores.sem_source == "estimate").sum()  # not refined  # doctest: +SKIP
        """
        source = np.full(self.shape, "none", dtype="<U8")
        for t, task in enumerate(self.tasks):
            if task in self.effects:
                scored = uncertainty.scored_cells(self.effects[task])
                exact = np.ones(scored.shape, bool) if self.exact is None else self.exact[t]
                source[t][scored & exact] = "exact"
                source[t][scored & ~exact] = "estimate"
        return source

    def reliability(self, seed: int = 0) -> dict[str, float]:
        """Each task's split-half reliability (NaN for tasks without per-example effects or
        with fewer than 4 examples): the Pearson correlation between the maps of two random
        halves of its examples, over the cells finite in every example, averaged over random
        splits until stable to ±0.02 and Spearman-Brown corrected to all its examples; 1: the
        map would come out the same from other examples, 0: it is noise. The splits are seeded
        by ``seed`` and the task's name. See :func:`headwidget.scores.uncertainty.split_half`.

        >>> scores.reliability()  # doctest: +SKIP
        {'copying': 0.93, 'counting': 0.41}
        """
        return {task: self._split_half(task, seed).reliability for task in self.tasks}

    def _split_half(self, task: str, seed: int) -> uncertainty.SplitHalf:
        if task not in self.effects:
            return uncertainty.SplitHalf(math.nan, math.nan, 0, 0, 0, math.nan)
        return uncertainty.split_half(self.effects[task], uncertainty.task_seed(seed, task))

    def examples_needed(self, target: float = 0.9, seed: int = 0) -> dict[str, int | None]:
        """How many examples each task needs for a map of reliability ``target``, projected
        with Spearman-Brown from its measured :meth:`reliability` (``seed``): ``ceil(n *
        target (1 - r) / (r (1 - target)))``; fewer than it has when it is more reliable
        already; None where the reliability is NaN or <= 0.

        >>> scores.examples_needed(0.9)  # doctest: +SKIP
        {'copying': 68, 'counting': 1296}
        """
        needed = {}
        for task in self.tasks:
            split = self._split_half(task, seed)
            needed[task] = uncertainty.examples_needed(split.reliability, split.n_examples, target)
        return needed

    def p_values(self) -> np.ndarray:
        """Float64 ``[n_tasks, n_layers, n_heads]``: each cell's two-sided p-value that its
        effect is 0, from the Wilcoxon signed-rank test over its examples (robust to the
        heavy-tailed drops; see :func:`headwidget.scores.uncertainty.signed_rank_p`); NaN
        where there are no per-example effects or the cell is not finite in every example.
        Not corrected for the many cells: :meth:`significant` is.
        """
        p = np.full(self.shape, np.nan)
        for t, task in enumerate(self.tasks):
            if task in self.effects:
                p[t] = uncertainty.signed_rank_p(self.effects[task])
        return p

    def significant(self, alpha: float = 0.05, fdr: Literal["bh", "by"] = "bh") -> np.ndarray:
        """Bool ``[n_tasks, n_layers, n_heads]``: the cells whose effect differs from 0, by
        the Wilcoxon signed-rank test over examples (:meth:`p_values`) with the false discovery
        rate controlled at ``alpha`` within each task, over its scored cells: ``"bh"``
        Benjamini-Hochberg (valid when the tests are independent or positively dependent, as
        heads measured on the same examples tend to be), ``"by"`` Benjamini-Yekutieli (any
        dependence, ~9x stricter at 5,000 cells). False where there are no per-example effects
        or a cell is not finite in every example. :attr:`sem_source` tells which cells' tests
        ran on exact drops and which on attribution's per-example estimates.

        >>> scores.significant().sum(axis=(1, 2))  # heads that matter, per task  # doctest: +SKIP
        """
        p = self.p_values()
        significant = np.zeros(self.shape, bool)
        for t in range(len(self.tasks)):
            significant[t] = uncertainty.fdr_reject(p[t], alpha, fdr)
        return significant

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the scores to ``path`` (``.npz`` is appended if missing, in any letter case).
        The file is written whole next to ``path`` and then renamed over it, so a failed save
        leaves an existing file as it was. The format (an ``.npz`` of plain arrays and a JSON
        header, version 4; older versions still load) is described in
        :mod:`headwidget.scores.format`. ``meta`` is stored as JSON, so it comes back as JSON
        values: tuples and other sequences become lists, dict keys become strings, NumPy
        scalars become Python numbers and any other object becomes its ``str()``.

        >>> path = scores.save("scores.npz")                 # doctest: +SKIP
        >>> HeadScores.load(path).tasks == scores.tasks      # doctest: +SKIP
        True
        """
        return write_scores(self, path)

    @classmethod
    def load(cls, path: str | Path) -> HeadScores:
        """Read scores written by :meth:`save`. Never unpickles.

        The file is treated as untrusted: sizes are checked before anything is read (see
        :mod:`headwidget.scores.file` for the limits), and anything but a valid file raises
        :class:`~headwidget.scores.file.ScoresFileError` naming the file and the problem.
        """
        path, fields = read_scores(path)
        try:
            return cls(**fields)
        except (TypeError, ValueError) as err:
            raise ScoresFileError(path, str(err)) from None

    def validate(self, model: Any, tokenizer: Any, tasks: Any, **kwargs: Any) -> Any:
        """Ablate each task's top-k heads together vs. k random heads and measure the task.

        Returns a :class:`~headwidget.methods.validation.ValidationResult`; keyword arguments
        (``k``, ``n_random``, ``seed``, ``metric``, ``ablation``, ...) go to
        :func:`headwidget.methods.validation.validate_scores`.

        >>> check = scores.validate(model, tokenizer, tasks, k=(5, 10, 20))  # doctest: +SKIP
        >>> print(check.to_markdown())                                       # doctest: +SKIP
        """
        return _above("headwidget.methods.validation", "validate_scores")(
            self, model, tokenizer, tasks, **kwargs
        )

    def plot(self, **kwargs: Any) -> Figure:
        """A static matplotlib figure in the published style.

        Keyword arguments go to :func:`headwidget.views.plotting.plot_scores`.

        >>> scores.plot(kind="categories").savefig("categories.png")  # doctest: +SKIP
        """
        return _above("headwidget.views.plotting", "plot_scores")(self, **kwargs)


def _above(module: str, name: str) -> Callable[..., Any]:
    """``name`` from ``module``, a layer above the data (methods, views), found when a
    convenience is called: the data layer names no upper module in an import, so reading scores
    needs neither torch nor matplotlib, and the layers have no import cycle."""
    return getattr(import_module(module), name)
