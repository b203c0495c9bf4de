"""What the widget sends to the browser, from HeadScores: binary buffers and small JSON records.

Scores travel as little-endian float32 bytes (``values``) and the exact mask as one uint8 per
cell (``exact``); so do the standard errors (``sem``, float32, NaN where unknown) and the
significance codes (``significant``, one uint8 per cell, :mod:`headwidget.views.uncertainty`),
each empty when the scores keep no per-example effects; tasks (with each map's reliability)
and provenance as lists and dicts of plain values.

>>> len(encode_values(np.zeros((1, 2, 3))))   # 6 cells x 4 bytes
24
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "encode_exact",
    "encode_sem",
    "encode_significance",
    "encode_values",
    "has_categories",
    "provenance_of",
    "task_dicts",
]


def encode_values(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def encode_exact(exact: np.ndarray | None) -> bytes:
    """The ``exact`` trait: one uint8 per cell (1 exact, 0 approximate); b"" when all are exact."""
    if exact is None or bool(np.all(exact)):
        return b""
    return np.ascontiguousarray(exact, dtype=np.uint8).tobytes()


def encode_sem(sem: np.ndarray | None) -> bytes:
    """The ``sem`` trait: float32 per cell (raw metric units, NaN unknown); b"" when none is
    known."""
    if sem is None or not np.isfinite(sem).any():
        return b""
    return encode_values(sem)


def encode_significance(codes: np.ndarray | None) -> bytes:
    """The ``significant`` trait: one uint8 code per cell (0 not significant, 1 significant,
    2 untested); b"" when no cell was tested."""
    if codes is None:
        return b""
    return np.ascontiguousarray(codes, dtype=np.uint8).tobytes()


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def task_dicts(
    names: Sequence[str],
    categories: Mapping[str, str | None],
    descriptions: Mapping[str, str],
    baseline: Mapping[str, float],
    accuracy: Mapping[str, float] | None = None,
    reliability: Mapping[str, float] | None = None,
    examples_needed: Mapping[str, int | None] | None = None,
) -> list[dict[str, Any]]:
    """One record per task: name, category, description, baseline, clean accuracy, the map's
    split-half reliability and the examples a reliability of 0.9 needs (None where unknown)."""
    accuracy = accuracy or {}
    reliability = reliability or {}
    examples_needed = examples_needed or {}
    records = []
    for name in names:
        needed = examples_needed.get(name)
        records.append(
            {
                "name": name,
                "category": categories.get(name),
                "description": descriptions.get(name, ""),
                "baseline": _finite_or_none(baseline.get(name)),
                "accuracy": _finite_or_none(accuracy.get(name)),
                "reliability": _finite_or_none(reliability.get(name)),
                "examples_needed": None if needed is None else int(needed),
            }
        )
    return records


def provenance_of(meta: Mapping[str, Any], method: str) -> dict[str, Any]:
    """What produced the scores, for the provenance line: model, method, metric, ablation,
    examples per task and date (each only when known)."""
    out: dict[str, Any] = {"method": method}
    for key in ("model", "metric", "ablation"):
        if meta.get(key):
            out[key] = str(meta[key])
    examples = meta.get("examples")
    if isinstance(examples, Mapping) and examples:
        out["examples"] = {str(k): int(v) for k, v in examples.items()}
    if meta.get("created"):
        out["date"] = str(meta["created"])[:10]
    return out


def has_categories(tasks: Sequence[Mapping[str, Any]]) -> bool:
    return any(task.get("category") for task in tasks)
