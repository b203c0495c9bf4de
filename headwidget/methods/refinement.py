"""Which heads attribution's refinement scores exactly, and how well attribution agreed.

``refine=K`` takes ``K`` heads per task from two of attribution's rankings, then a seeded random
sample of the rest:

- ``K - S`` by signed attribution, as :meth:`~headwidget.HeadScores.top_heads` ranks;
- ``S`` (``refine_sensitive``) by the first-order *bound*
  ``sum over positions of |a_clean - a_ablated| * |dmetric/da|`` averaged over examples: by
  Cauchy-Schwarz no position's first-order term is larger. A head whose terms cancel (across
  positions, or because its change is nearly orthogonal to the gradient) has a small net
  attribution though ablating it need not cancel at all; on SmolLM2-135M a previous-token head
  with exact effect 0.29 ranked 230th of 270 by signed attribution and 4th by the bound;
- a random sample of the others, to estimate what both rankings missed.

>>> approx = np.array([0.9, 0.1, 0.5, 0.0, 0.2, 0.3])
>>> bound = np.array([1.0, 0.2, 0.6, 3.0, 0.3, 0.4])
>>> pick_refined(approx, bound, already=np.array([0]), k=3, k_sensitive=1).tolist()
[2, 5, 3]
"""

from __future__ import annotations

import zlib

import numpy as np

from .agreement import spearman

__all__ = ["agreement", "pick_refined", "random_sample", "ranking"]


def ranking(values: np.ndarray) -> list[int]:
    """Flat indices of ``values`` from the highest down, NaN last, ties in index order.

    >>> ranking(np.array([[0.2, np.nan], [0.9, 0.2]]))
    [2, 0, 3, 1]
    """
    return np.argsort(
        -np.nan_to_num(np.ravel(values).astype(np.float64), nan=-np.inf), kind="mergesort"
    ).tolist()


def pick_refined(
    approx: np.ndarray, bound: np.ndarray | None, already: np.ndarray, k: int, k_sensitive: int
) -> np.ndarray:
    """Flat indices of the ``k`` heads to refine, none of ``already``: the ``k - k_sensitive``
    highest by signed ``approx`` (NaN last), then the ``k_sensitive`` highest by ``bound``
    among the others (``bound`` None: all ``k`` by ``approx``). ``approx`` and ``bound`` are
    ``[n_layers, n_heads]`` or flat; a flat index is ``layer * n_heads + head``."""
    taken = set(np.asarray(already).tolist())
    if bound is None:
        k_sensitive = 0
    chosen: list[int] = []
    rankings = [(approx, k - k_sensitive)]
    if k_sensitive:
        rankings.append((bound, k))
    for values, stop in rankings:
        for index in ranking(values):
            if len(chosen) >= stop:
                break
            if index not in taken:
                chosen.append(index)
                taken.add(index)
    return np.asarray(chosen, dtype=np.int64)


def random_sample(candidates: np.ndarray, n: int, seed: int, task: str) -> np.ndarray:
    """``n`` of ``candidates`` (fewer if there are fewer), drawn without replacement from a
    generator seeded by ``seed`` and the task's name, not its place in the call: a sweep (one
    call per task) and one call over every task draw the same sample.

    >>> random_sample(np.arange(10), 3, 0, "copying").tolist() == random_sample(
    ...     np.arange(10), 3, 0, "copying").tolist()
    True
    """
    rng = np.random.default_rng([seed, zlib.crc32(task.encode("utf-8"))])
    candidates = np.asarray(candidates, dtype=np.int64)
    return rng.choice(candidates, size=min(n, candidates.size), replace=False)


def agreement(
    approx: np.ndarray, exact: np.ndarray, scored: np.ndarray, top: np.ndarray, sample: np.ndarray
) -> dict[str, float]:
    """Spearman(attribution, exact) over every exactly ``scored`` cell (flat indices), and the
    fraction of the random ``sample`` whose |exact| beats the smallest |exact| among the
    refined heads ``top`` (an estimate of how many true top heads refinement missed).

    >>> agreement(np.array([3.0, 2.0, 1.0]), np.array([3.0, 1.0, 2.0]), np.arange(3),
    ...           top=np.array([0]), sample=np.array([1, 2]))
    {'spearman': 0.5, 'exact_cells': 3, 'random_beat_kth': 0.0}
    """
    record: dict[str, float] = {
        "spearman": spearman(approx[scored], exact[scored]),
        "exact_cells": int(scored.size),
    }
    if top.size and sample.size:
        kth = np.min(np.abs(exact[top]))
        record["random_beat_kth"] = float(np.mean(np.abs(exact[sample]) > kth))
    return record
