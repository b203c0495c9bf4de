"""What a grid shows, computed from its traits: the values decoded and normalized, the automatic
threshold and its conversion between scales, and the category assignment.

>>> grid.values_array().shape, grid.assignment().counts    # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from ..scores import HeadScores
from . import categories as cat
from . import uncertainty as unc

__all__ = ["GridState"]


class GridState:
    """The grid's derived state (mixed into :class:`~headwidget.HeadImportanceGrid`): it reads
    the grid's traits (values, shape, tasks, normalization, threshold, ...)."""

    def _normalized(self, values: np.ndarray, normalization: str | None = None) -> np.ndarray:
        if (normalization or self.normalization) == "raw":
            return values
        names = [f"t{i}" for i in range(values.shape[0])]
        return HeadScores(values, names).normalized("share").values

    def _update_default_threshold(self, values: np.ndarray | None = None) -> None:
        if values is None:
            values = self.values_array()
        if values.size == 0 or np.isnan(values).all():
            return
        self._set_threshold(self._default_threshold(values, self.normalization), auto=True)

    def _convert_threshold(
        self, values: np.ndarray, threshold: float, before: str, after: str
    ) -> float:
        """The threshold in ``after`` units that lets as many heads pass, over all tasks, as
        ``threshold`` does in ``before`` units (the front end's twin: js/src/units.ts)."""
        if before == after:
            return threshold
        old = self._normalized(values, before)
        new = self._normalized(values, after)
        with np.errstate(invalid="ignore"):
            passing = int(np.count_nonzero(old >= threshold))
        ranked = np.sort(new[~np.isnan(new)])[::-1]
        if ranked.size == 0:
            return threshold
        if passing == 0:  # none passed: none pass
            top = float(ranked[0])
            return top + max(abs(top) * 1e-3, 1e-12)
        return float(ranked[min(passing, ranked.size) - 1])

    def _default_threshold(self, values: np.ndarray, normalization: str) -> float:
        """The automatic threshold of ``values`` under ``normalization`` ("share" or "raw")."""
        return cat.default_threshold(self._normalized(values, normalization))

    def _set_threshold(self, value: float, *, auto: bool) -> None:
        self._auto_threshold_value = float(value) if auto else None
        self.threshold = value
        self._auto_threshold = auto

    def values_array(self) -> np.ndarray:
        """The ``values`` trait decoded: float32 ``[n_tasks, n_layers, n_heads]`` (a copy)."""
        return np.frombuffer(self.values, dtype="<f4").reshape(self.shape).astype(np.float32)

    def significance_array(self) -> np.ndarray | None:
        """The ``significant`` trait decoded: uint8 codes ``[n_tasks, n_layers, n_heads]``
        (1 significant, 0 not, 2 untested; :mod:`headwidget.views.uncertainty`), or None when
        the scores keep no per-example effects."""
        if not self.significant:
            return None
        return np.frombuffer(self.significant, np.uint8).reshape(self.shape).copy()

    def assignment(self) -> cat.CategoryAssignment:
        """What the Categories tab shows now (current normalization, threshold mode and value,
        ``categories_from``): each head's label, category membership and per-task pass counts.

        >>> grid.assignment().counts       # heads passing each task    # doctest: +SKIP
        """
        values = self._normalized(self.values_array())
        significant = None
        if self.threshold_mode == "significant":
            codes = self.significance_array()
            # without a test no head is significant: none passes
            significant = (
                np.zeros(values.shape, bool) if codes is None else codes == unc.SIGNIFICANT
            )
        mode = (
            {"top_percent": self.top_percent}
            if self.threshold_mode == "top_percent"
            else {"threshold": self.threshold}
        )
        counted = unc.counted_tasks(
            [task.get("reliability") for task in self.tasks],
            [task.get("accuracy") for task in self.tasks],
            categories_from=self.categories_from,
            min_reliability=self.min_reliability,
            min_accuracy=self.min_accuracy,
        )
        return cat.assign_categories(
            values,
            [task["category"] for task in self.tasks],
            significant=significant,
            counted=counted,
            **mode,
        )
