"""Two score sets in one grid: side by side, or their difference, on one colour scale.

For two models, two methods, or one model before and after fine-tuning. Tasks are matched by
name (those of the first set that the second also has, in the first set's order); both sets
need the same number of layers and heads.

>>> import numpy as np
>>> from headwidget import HeadScores
>>> a = HeadScores(np.ones((1, 2, 2)), ["copying"], meta={"model": "base"})
>>> b = HeadScores(np.zeros((1, 2, 2)), ["copying"], meta={"model": "tuned"})
>>> compare_scores(a, b).tasks
['copying · base', 'copying · tuned']
>>> compare_scores(a, b, "difference").tasks
['copying: base − tuned']
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..scores import HeadScores

__all__ = ["COMPARE_MODES", "compare_scores", "score_label"]

COMPARE_MODES = ("side_by_side", "difference")


def score_label(scores: HeadScores, other: HeadScores, fallback: str) -> str:
    """What tells ``scores`` apart from ``other``: the model's name, else the method, else
    ``fallback``."""
    model, other_model = scores.meta.get("model"), other.meta.get("model")
    if model and model != other_model:
        return str(model)
    if scores.method != other.method:
        return scores.method
    return fallback


def compare_scores(
    a: HeadScores, b: HeadScores, mode: Literal["side_by_side", "difference"] = "side_by_side"
) -> HeadScores:
    """``a`` and ``b`` as one :class:`HeadScores`: each shared task twice ("task · A", "task · B")
    or once as the difference of the raw values ("task: A − B"; approximate where either is).
    """
    if not isinstance(a, HeadScores) or not isinstance(b, HeadScores):
        raise TypeError(
            f"compare takes two HeadScores, got {type(a).__name__} and {type(b).__name__}"
        )
    if mode not in COMPARE_MODES:
        raise ValueError(f"compare mode must be one of {COMPARE_MODES}, got {mode!r}")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"the score sets have different grids: {a.shape[1]} layers × {a.shape[2]} heads"
            f" and {b.shape[1]} × {b.shape[2]}; compare scores of models of one architecture"
        )
    shared = [name for name in a.tasks if name in b.tasks]
    if not shared:
        raise ValueError(
            f"the score sets share no task: {a.tasks} and {b.tasks}; compare scores of the same"
            " tasks (matched by name)"
        )
    label_a, label_b = score_label(a, b, "A"), score_label(b, a, "B")
    exact_a = np.ones(a.shape, bool) if a.exact is None else a.exact
    exact_b = np.ones(b.shape, bool) if b.exact is None else b.exact
    rows_a = [a.tasks.index(name) for name in shared]
    rows_b = [b.tasks.index(name) for name in shared]
    meta = {"model": f"{label_a} vs {label_b}", "compare": mode}
    for key in ("metric", "ablation"):
        if a.meta.get(key) == b.meta.get(key) and a.meta.get(key):
            meta[key] = a.meta[key]
    method = a.method if a.method == b.method else f"{a.method} vs {b.method}"
    if mode == "difference":
        names = [f"{name}: {label_a} − {label_b}" for name in shared]
        return HeadScores(
            a.values[rows_a] - b.values[rows_b],
            names,
            {new: a.categories.get(old) for new, old in zip(names, shared, strict=True)},
            meta={**meta, "model": f"{label_a} − {label_b}"},
            method=method,
            exact=exact_a[rows_a] & exact_b[rows_b],
        )
    names, values, exact, categories, accuracy = [], [], [], {}, {}
    # per-example effects (the drill-down) stay with each side's copy of the task
    effects: dict[str, np.ndarray] = {}
    clean: dict[str, np.ndarray] = {}
    examples: dict[str, list[tuple[str, str]]] = {}
    for name, i, j in zip(shared, rows_a, rows_b, strict=True):
        for scores, row, mask, label in ((a, i, exact_a, label_a), (b, j, exact_b, label_b)):
            new = f"{name} · {label}"
            names.append(new)
            values.append(scores.values[row])
            exact.append(mask[row])
            categories[new] = scores.categories.get(name)
            if name in scores.accuracy:
                accuracy[new] = scores.accuracy[name]
            for kept, given in ((effects, scores.effects), (clean, scores.clean)):
                if name in given:
                    kept[new] = given[name]
            if name in scores.examples:
                examples[new] = scores.examples[name]
    return HeadScores(
        np.stack(values),
        names,
        categories,
        meta=meta,
        accuracy=accuracy,
        method=method,
        exact=np.stack(exact),
        effects=effects,
        clean=clean,
        examples=examples,
    )
