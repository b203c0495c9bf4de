"""How well an approximate map agrees with exact scores: rank correlation.

>>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
0.5
"""

from __future__ import annotations

import numpy as np

__all__ = ["spearman"]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-d arrays (average ranks for ties; NaN if constant)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size < 2:
        return float("nan")

    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="mergesort")
        r = np.empty(x.size)
        r[order] = np.arange(x.size)
        for value in np.unique(x):  # ties: average rank
            tied = x == value
            if tied.sum() > 1:
                r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
