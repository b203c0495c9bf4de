"""How sure is each map: standard errors, split-half reliability, per-cell significance and the
number of examples a task needs, all from the per-example effects a map was averaged from
(``HeadScores.effects[task]``, float ``[n_layers, n_heads, n_examples]``). numpy only; the
:class:`~headwidget.scores.HeadScores` members ``sem``, ``sem_source``, ``reliability``,
``p_values``, ``significant`` and ``examples_needed`` call these functions task by task.

Which cells count: a cell is used only where it is finite in every example (``effects`` holds
NaN for cells never scored); others get NaN standard errors and p-values, are left out of the
reliability and are never significant.

>>> rng = np.random.default_rng(0)
>>> true = rng.normal(size=(6, 8, 1))                  # a map the examples share
>>> effects = true + rng.normal(size=(6, 8, 30))       # 30 noisy examples of it
>>> split_half(effects).reliability > 0.9
True
>>> examples_needed(0.5, 30, target=0.9)               # Spearman-Brown: 30 * 9 = 270
270
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "EXACT_MAX_EXAMPLES",
    "EXACT_TIED_MAX_EXAMPLES",
    "SETTINGS",
    "SplitHalf",
    "examples_needed",
    "fdr_reject",
    "scored_cells",
    "signed_rank_p",
    "spearman_brown",
    "split_half",
    "standard_error",
    "task_seed",
]

SPLIT_BATCH = 200
"""Random splits drawn at a time by :func:`split_half`."""
SPLIT_STOP_SE = 0.004
""":func:`split_half` stops once the Monte Carlo standard error of the reliability (over the
random splits drawn so far) is at most this: two seeds then differ by more than 0.02 with
probability below 0.05% (0.02 is 3.5 standard deviations of a difference)."""
SPLIT_MAX = 5000
"""Most random splits :func:`split_half` draws for one task; a task with at most this many
distinct splits (``n <= 14`` examples, odd ``n <= 11``) gets every split instead."""
EXACT_MAX_EXAMPLES = 400
""":func:`signed_rank_p` gives exact p-values for cells without ties among up to this many
non-zero examples; beyond, the normal approximation (conservative in the far tail)."""
EXACT_TIED_MAX_EXAMPLES = 30
""":func:`signed_rank_p` gives exact p-values for cells with ties among up to this many
non-zero examples (each such cell costs ``O(n^3)``); beyond, the normal approximation."""

SETTINGS: dict[str, Any] = {
    "procedure": 1,
    "cells": "finite in every example",
    "sem": "sample standard deviation (ddof=1) over examples / sqrt(n_examples), raw metric units",
    "reliability": {
        "correlation": "pearson over the cells of the two half-maps (means over each half)",
        "halves": "n_examples // 2 examples each (one left out when odd): every split when"
        f" there are at most {SPLIT_MAX}, else random ones",
        "correction": "spearman-brown from n_examples // 2 to n_examples, on the mean"
        " half-correlation",
        "seed": 0,
        "generator": "numpy default_rng([seed, crc32(task name)])",
        "splits": {"batch": SPLIT_BATCH, "stop_se": SPLIT_STOP_SE, "max": SPLIT_MAX},
        "constant_half": "counts as correlation 0",
    },
    "test": {
        "name": "wilcoxon signed-rank, two-sided, zeros dropped, midranks for ties",
        "p_value": f"exact up to {EXACT_MAX_EXAMPLES} non-zero examples without ties and"
        f" {EXACT_TIED_MAX_EXAMPLES} with ties, else the normal approximation with the"
        " tie-corrected variance and a continuity correction",
        "fdr": "benjamini-hochberg per task over its scored cells (benjamini-yekutieli on request)",
        "alpha": 0.05,
    },
    "examples_needed": {"target": 0.9, "projection": "spearman-brown", "round": "up"},
    "source": "cells where HeadScores.exact is False (attribution) use per-example estimates",
}
"""What :meth:`HeadScores.save` writes to ``meta["uncertainty"]`` of a file with per-example
effects: the procedures and defaults that reproduce ``sem``, ``reliability()``,
``significant()`` and ``examples_needed()`` from that file."""


def _cells(effects: np.ndarray) -> np.ndarray:
    """``effects`` as a ``[cells, n_examples]`` array (cells in layer-major order)."""
    effects = np.asarray(effects)
    if effects.ndim != 3:
        raise ValueError(
            f"effects must have shape [n_layers, n_heads, n_examples], got {effects.shape}"
        )
    return effects.reshape(-1, effects.shape[2])


def scored_cells(effects: np.ndarray) -> np.ndarray:
    """Bool ``[n_layers, n_heads]``: the cells finite in every example, the only ones the
    uncertainty measures use.

    >>> e = np.ones((1, 2, 3)); e[0, 1, 2] = np.nan
    >>> scored_cells(e).tolist()
    [[True, False]]
    """
    effects = np.asarray(effects)
    _cells(effects)
    return np.isfinite(effects).all(axis=2)


def standard_error(effects: np.ndarray) -> np.ndarray:
    """Float64 ``[n_layers, n_heads]``: the standard error of each cell's mean over examples,
    the sample standard deviation (``ddof=1``) over ``sqrt(n_examples)``, in the effects' units.
    NaN with fewer than 2 examples and in cells not finite in every example.

    >>> standard_error(np.array([[[1.0, 2.0, 3.0]]])).round(4).tolist()
    [[0.5774]]
    """
    x = _cells(effects)
    n = x.shape[1]
    shape = np.asarray(effects).shape[:2]
    if n < 2:
        return np.full(shape, np.nan)
    values = x.astype(np.float64)
    sem = values.std(axis=1, ddof=1) / math.sqrt(n)
    sem[~np.isfinite(values).all(axis=1)] = np.nan
    return sem.reshape(shape)


def spearman_brown(r: float, factor: float) -> float:
    """The reliability of a map averaged over ``factor`` times as many examples as one of
    reliability ``r``: ``factor * r / (1 + (factor - 1) * r)``, clipped to [-1, 1].

    >>> spearman_brown(0.5, 2.0)
    0.6666666666666666
    """
    if not math.isfinite(r):
        return float("nan")
    denominator = 1.0 + (factor - 1.0) * r
    if denominator <= 0:
        return -1.0
    return float(min(1.0, max(-1.0, factor * r / denominator)))


@dataclass(frozen=True)
class SplitHalf:
    """One task's split-half reliability: ``reliability`` (Spearman-Brown corrected to all
    ``n_examples``), its Monte Carlo standard error ``se`` over the ``n_splits`` random splits,
    the mean half-correlation ``half_r`` and the ``n_cells`` used."""

    reliability: float
    se: float
    n_splits: int
    n_examples: int
    n_cells: int
    half_r: float


def task_seed(seed: int, task: str) -> list[int]:
    """The entropy of a task's generator: ``seed`` and the task's name, not its place among the
    tasks (a subset or a merge of shards draws the same splits).

    >>> task_seed(0, "copying") == task_seed(0, "copying")
    True
    """
    return [int(seed), zlib.crc32(task.encode("utf-8"))]


def split_half(
    effects: np.ndarray, seed: int | Sequence[int] | np.random.Generator | None = 0
) -> SplitHalf:
    """Split-half reliability of the map ``effects.mean(-1)``.

    Each split takes two disjoint halves of ``m = n // 2`` examples (one example left out when
    ``n`` is odd), averages each half into a map and takes the Pearson correlation of the two
    maps over the cells finite in every example. The mean correlation over splits is corrected
    to all ``n`` examples with Spearman-Brown (``factor = n / m``). Where there are at most
    :data:`SPLIT_MAX` distinct splits (``n <= 14``; odd ``n <= 11``) all are taken (``se`` 0,
    the same for every seed); else random splits are drawn in batches of :data:`SPLIT_BATCH`
    until the Monte Carlo standard error of the reliability is at most :data:`SPLIT_STOP_SE`
    (two seeds then agree to ±0.02), at most :data:`SPLIT_MAX`.

    Why Pearson: the map is the mean over examples and is shown on a linear scale, and for
    means of independent examples the Pearson correlation of two half-maps estimates
    ``var(true map) / (var(true map) + mean noise variance / m)`` (variances over the cells),
    which is exactly the form Spearman-Brown assumes, so it (and :func:`examples_needed`)
    projects the reliability correctly to other numbers of examples. A rank
    (Spearman) correlation weighs the hundreds of near-zero heads as much as the few that
    matter: their ranks stay noise however many examples there are, so it levels off below 1
    and does not follow Spearman-Brown (on a 30 x 9 map with 10% of the heads carrying an effect,
    under Student-t noise, Spearman's split-half stayed at 0.32-0.41 from 4 to 128 examples
    while Pearson's rose from 0.55 to 0.98 along the projection). The price: Pearson is
    dominated by the strongest heads and moved by single heavy-tailed examples; averaging many
    splits evens that out, though with 2 examples a half it reads low (the projection from 4
    examples fell up to 0.16 short of the measured curve, from 8 within 0.02).
    :func:`signed_rank_p` is the robust per-cell check.

    The correlations are computed from the ``n x n`` Gram matrix of the cell-centred effects,
    so a split costs ``O(n^2)``, not ``O(cells * n)``. NaN with fewer than 4 examples, fewer
    than 3 scored cells or every example's map constant; a split with one constant half-map
    (say, all the effect in one example) counts as correlation 0.

    >>> rng = np.random.default_rng(1)
    >>> noise = rng.normal(size=(20, 20, 16))
    >>> abs(split_half(noise).reliability) < 0.2
    True
    """
    x = _cells(effects)
    n = x.shape[1]
    x = x[np.isfinite(x).all(axis=1)].astype(np.float64)
    unmeasured = SplitHalf(math.nan, math.nan, 0, n, x.shape[0], math.nan)
    if n < 4 or x.shape[0] < 3:
        return unmeasured
    x -= x.mean(axis=0)
    gram = _product(x.T, x)
    if not np.trace(gram) > 0:  # every example's map is constant
        return unmeasured
    m = n // 2
    factor = n / m

    row_sums = gram.sum(axis=1)
    total = float(row_sums.sum())

    def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pearson r of the half-maps of each row's halves (index arrays ``[splits, m]``),
        from the quadratic forms of ``s`` (+1 in half a, -1 in half b) and ``t`` (1 in
        either): ``a = (t + s) / 2``, ``b = (t - s) / 2``; only ``s G s`` needs a product."""
        rows = np.arange(a.shape[0])[:, None]
        signs = np.zeros((a.shape[0], n))
        signs[rows, a] = 1.0
        signs[rows, b] = -1.0
        sgs = np.einsum("sn,sn->s", _product(signs, gram), signs)
        tgs = signs @ row_sums
        tgt = np.full(a.shape[0], total)
        if n > 2 * m:  # t is 1 but at the left-out example d
            d = n * (n - 1) // 2 - a.sum(axis=1) - b.sum(axis=1)
            tgt = total - 2.0 * row_sums[d] + gram[d, d]
            tgs = tgs - np.einsum("sn,sn->s", signs, gram[d])
        cov = (tgt - sgs) / 4.0
        var_a = (tgt + 2.0 * tgs + sgs) / 4.0
        var_b = (tgt - 2.0 * tgs + sgs) / 4.0
        with np.errstate(divide="ignore", invalid="ignore"):
            r = cov / np.sqrt(np.maximum(var_a, 0.0) * np.maximum(var_b, 0.0))
        return np.clip(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)

    every = _every_split(n, m)
    if every is not None:  # few enough to take them all: no Monte Carlo error
        r = correlations(*every)
        mean = float(r.mean())
        return SplitHalf(spearman_brown(mean, factor), 0.0, r.size, n, x.shape[0], mean)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    draws: list[np.ndarray] = []
    count = 0
    mean = se = math.nan
    while count < SPLIT_MAX:
        order = rng.random((SPLIT_BATCH, n)).argsort(axis=1)
        draws.append(correlations(order[:, :m], order[:, m : 2 * m]))
        count += SPLIT_BATCH
        every_r = np.concatenate(draws)
        mean = float(every_r.mean())
        denominator = 1.0 + (factor - 1.0) * mean
        slope = factor / denominator**2 if denominator > 0 else math.inf
        se = float(every_r.std(ddof=1) / math.sqrt(count) * slope)
        if se <= SPLIT_STOP_SE:
            break
    return SplitHalf(spearman_brown(mean, factor), se, count, n, x.shape[0], mean)


_ONE_THREAD = 2**18
"""OpenBLAS multiplies on one thread while ``m * n * k`` is at most 65536 * 4; on a machine
whose cores are busy its threads make these small products 10-100 times slower."""


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``, in blocks of ``a``'s rows (or of the shared axis, for a Gram matrix ``x.T @
    x``) small enough that the BLAS runs each on one thread, where that takes at least 16 rows
    a block; else at once."""
    m, k = a.shape
    n = b.shape[1]
    rows = _ONE_THREAD // max(k * n, 1)
    if m > rows >= 16:
        return np.concatenate([a[i : i + rows] @ b for i in range(0, m, rows)])
    depth = _ONE_THREAD // max(m * n, 1)
    if k > depth >= 16:
        out = np.zeros((m, n))
        for i in range(0, k, depth):
            out += a[:, i : i + depth] @ b[i : i + depth]
        return out
    return a @ b


def _every_split(n: int, m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Every way to split ``n`` examples into two halves of ``m`` (each unordered pair once,
    each left-out example when ``n`` is odd) as index arrays ``[splits, m]``, or None when
    there are more than :data:`SPLIT_MAX`."""
    rest = 2 * m
    count = math.comb(rest, m) // 2 * (n if n > rest else 1)
    if count > SPLIT_MAX:
        return None
    halves_a, halves_b = [], []
    for left_out in range(n) if n > rest else [None]:
        kept = [i for i in range(n) if i != left_out]
        for chosen in itertools.combinations(kept[1:], m - 1):  # kept[0] in half a: unordered
            a = (kept[0], *chosen)
            halves_a.append(a)
            halves_b.append(tuple(i for i in kept if i not in a))
    return np.array(halves_a), np.array(halves_b)


def examples_needed(reliability: float, n_examples: int, target: float = 0.9) -> int | None:
    """How many examples a map of ``reliability`` measured at ``n_examples`` needs to reach
    ``target``, projected with Spearman-Brown: ``ceil(n * target (1 - r) / (r (1 - target)))``
    (at least 1). Fewer than ``n_examples`` when the map is already more reliable than
    ``target``; None when ``r <= 0`` or NaN (no projection reaches it).

    >>> examples_needed(0.6, 20, target=0.9)
    120
    >>> examples_needed(-0.1, 20) is None
    True
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be between 0 and 1 (exclusive), got {target!r}")
    if not math.isfinite(reliability) or reliability <= 0:
        return None
    if reliability >= 1.0:
        return 1
    needed = n_examples * target * (1.0 - reliability) / (reliability * (1.0 - target))
    return max(1, math.ceil(needed - 1e-9))


# -- per-cell test -------------------------------------------------------------------------


def _signed_rank_cdf(sizes: set[int]) -> dict[int, np.ndarray]:
    """The exact null distribution function of the Wilcoxon statistic ``W+`` (sum of the ranks
    1..u with random signs) for each ``u`` in ``sizes``: ``cdf[w] = P(W+ <= w)``."""
    tables: dict[int, np.ndarray] = {}
    if not sizes:
        return tables
    probability = np.ones(1)
    for u in range(1, max(sizes) + 1):
        grown = np.zeros(probability.size + u)
        grown[: probability.size] += probability
        grown[u:] += probability
        probability = grown * 0.5
        if u in sizes:
            tables[u] = np.cumsum(probability)
    tables[0] = np.ones(1)
    return tables


def _doubled_midranks(magnitude: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """Int64 ``[cells, n]``: twice the midrank of each sorted non-zero magnitude among the
    cell's non-zero magnitudes (tied values share the mean of their places), 0 for zeros."""
    n = magnitude.shape[1]
    index = np.arange(n)
    starts = np.ones(magnitude.shape, bool)
    starts[:, 1:] = magnitude[:, 1:] != magnitude[:, :-1]
    ends = np.ones(magnitude.shape, bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, index, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, index, n - 1)[:, ::-1], axis=1)[:, ::-1]
    return np.where(magnitude > 0, first + last + 2 - 2 * zeros[:, None], 0).astype(np.int64)


def _tied_exact_p(doubled: np.ndarray, w_doubled: np.ndarray) -> np.ndarray:
    """Exact two-sided p-values of ``W+`` for cells with tied midranks: the distribution of the
    sum of ``doubled`` (integer doubled midranks, 0 for dropped zeros; ``[cells, u]``) under
    random signs, built one example at a time for all cells together, after dividing each
    cell's ranks by their greatest common divisor (all-tied cells become a sign test)."""
    divisor = np.maximum(np.gcd.reduce(doubled, axis=1), 1)
    d = doubled // divisor[:, None]
    w = w_doubled // divisor
    total = d.sum(axis=1)
    p = np.empty(d.shape[0])
    for start in range(0, d.shape[0], 1024):
        rows = slice(start, start + 1024)
        size = int(total[rows].max()) + 1
        columns = np.arange(size)
        probability = np.zeros((d[rows].shape[0], size))
        probability[:, 0] = 1.0
        for shift in d[rows].T:
            source = columns - shift[:, None]
            moved = np.take_along_axis(probability, np.maximum(source, 0), axis=1)
            probability = 0.5 * (probability + np.where(source >= 0, moved, 0.0))
        cdf = np.cumsum(probability, axis=1)
        low = np.minimum(w[rows], total[rows] - w[rows])
        p[rows] = np.minimum(1.0, 2.0 * cdf[np.arange(cdf.shape[0]), low])
    return p


def _erfc(z: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erfc, otypes=[np.float64])(z) if z.size else z.astype(np.float64)


def signed_rank_p(effects: np.ndarray) -> np.ndarray:
    """Float64 ``[n_layers, n_heads]``: each cell's two-sided p-value that its effect is 0,
    from the Wilcoxon signed-rank test over its examples (NaN where a cell is not finite in
    every example, or there are no examples).

    Why this test: per-example drops are heavy-tailed (a few examples drop by 10, the rest by
    under 0.4), which inflates a t-test's variance and breaks its normal approximation. The
    signed-rank test is the sign-flip permutation test of the ranks of ``|effect|``: valid
    whenever a null head's drops are symmetric about 0, with each example's weight bounded by
    its rank. Unlike a Monte Carlo sign-flip test of the mean, its p-values are exact to any
    size (down to ``2 / 2**n``), so the Benjamini-Hochberg thresholds over thousands of heads
    (``k * alpha / n_cells``, ~1e-5) are reachable, and it costs one sort per cell. It tests
    symmetry about 0 (a median-type shift), not the mean itself.

    Zeros are dropped (Wilcoxon's convention); tied ``|effects|`` share their midrank. The
    p-values are exact (the statistic's whole sign-flip distribution) for cells without ties
    up to :data:`EXACT_MAX_EXAMPLES` non-zero examples and for cells with ties (discrete
    metrics such as accuracy) up to :data:`EXACT_TIED_MAX_EXAMPLES`; larger cells use the
    normal approximation with the exact permutation variance of the midranks
    (``sum(r^2) / 4``) and a continuity correction of half the statistic's lattice step.

    >>> drops = np.array([[[10.5, 11.0, 11.5, 0.3, 0.2, 0.1, 0.25, 0.15, 0.05, 0.33, 0.31, 0.22]]])
    >>> float(signed_rank_p(drops)[0, 0])  # all 12 positive: 2 / 2**12
    0.00048828125
    """
    x = _cells(effects)
    n_cells, n = x.shape
    shape = np.asarray(effects).shape[:2]
    p = np.full(n_cells, np.nan)
    finite = np.isfinite(x).all(axis=1)
    if n == 0 or not finite.any():
        return p.reshape(shape)
    x = x[finite]
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    # one sort of keys |x| (as its IEEE bits, which order like the non-negative floats) with
    # the sign in the lowest bit: the magnitudes' order and the signs in that order
    unsigned = np.uint32 if x.dtype == np.float32 else np.uint64
    keys = (np.abs(x).view(unsigned) << unsigned(1)) | (x > 0).astype(unsigned)
    keys.sort(axis=1)
    magnitude = keys >> unsigned(1)
    positive = (keys & unsigned(1)).astype(np.float64)
    zeros = (magnitude == 0).sum(axis=1)
    tied = ((magnitude[:, 1:] == magnitude[:, :-1]) & (magnitude[:, 1:] > 0)).any(axis=1)
    u = n - zeros
    # W+ doubled: without ties the rank of place j (from 0) is j + 1 - zeros (zeros sort first)
    places = np.arange(1, n + 1, dtype=np.float64)
    w_doubled = 2 * (np.einsum("cn,n->c", positive, places) - zeros * positive.sum(1))
    w_doubled = np.rint(w_doubled).astype(np.int64)
    midranked = tied | (u > EXACT_MAX_EXAMPLES)
    doubled = np.zeros((0, n), np.int64)
    if midranked.any():
        doubled = _doubled_midranks(magnitude[midranked], zeros[midranked])
        w_doubled[midranked] = (doubled * positive[midranked]).sum(axis=1).astype(np.int64)
    out = np.empty(x.shape[0])

    exact = ~tied & (u <= EXACT_MAX_EXAMPLES)
    if exact.any():
        tables = _signed_rank_cdf(set(np.unique(u[exact]).tolist()))
        w = w_doubled // 2
        low = np.minimum(w, u * (u + 1) // 2 - w)  # P(W+ >= w) = P(W+ <= total - w)
        for size, table in tables.items():
            chosen = exact & (u == size)
            out[chosen] = np.minimum(1.0, 2.0 * table[low[chosen]])
    small = tied & (u <= EXACT_TIED_MAX_EXAMPLES)
    if small.any():
        width = int(u[small].max())
        chosen = doubled[small[midranked]][:, n - width :]
        out[small] = _tied_exact_p(chosen, w_doubled[small])
    approx = ~exact & ~small
    if approx.any():
        d = doubled[approx[midranked]]
        mean = d.sum(axis=1) / 4.0
        variance = (d.astype(np.float64) ** 2).sum(axis=1) / 16.0
        step = np.gcd.reduce(d, axis=1) / 2.0  # W+ moves in multiples of the ranks' gcd
        deviation = np.maximum(np.abs(w_doubled[approx] / 2.0 - mean) - step / 2.0, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(variance > 0, deviation / np.sqrt(variance), 0.0)
        out[approx] = np.minimum(1.0, _erfc(z / math.sqrt(2.0)))
    p[finite] = out
    return p.reshape(shape)


def fdr_reject(
    p: np.ndarray, alpha: float = 0.05, method: Literal["bh", "by"] = "bh"
) -> np.ndarray:
    """Bool, the shape of ``p``: the p-values rejected with the false discovery rate controlled
    at ``alpha`` over all finite entries of ``p`` (NaN never rejected). ``"bh"``:
    Benjamini-Hochberg, valid for independent or positively dependent tests; ``"by"``:
    Benjamini-Yekutieli, valid under any dependence, its thresholds smaller by
    ``sum(1/i)`` (~9 for 5,000 cells).

    >>> fdr_reject(np.array([0.001, 0.02, 0.03, 0.5]), alpha=0.05).tolist()
    [True, True, True, False]
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}")
    if method not in ("bh", "by"):
        raise ValueError(f"method must be 'bh' or 'by', got {method!r}")
    p = np.asarray(p, dtype=np.float64)
    reject = np.zeros(p.shape, bool)
    finite = np.isfinite(p)
    q = p[finite]
    m = q.size
    if m == 0:
        return reject
    ranked = np.sort(q)
    scale = 1.0 if method == "bh" else float(np.sum(1.0 / np.arange(1, m + 1)))
    passed = np.flatnonzero(ranked <= alpha * np.arange(1, m + 1) / (m * scale))
    if passed.size:
        reject[finite] = q <= ranked[passed[-1]]
    return reject
