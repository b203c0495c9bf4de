"""What the widget sends to the browser, from HeadScores: binary buffers and small JSON records.

Scores travel as little-endian float32 bytes (``values``) and the exact mask as one uint8 per
cell (``exact``); tasks and provenance as lists and dicts of plain values.

>>> len(encode_values(np.zeros((1, 2, 3))))   # 6 cells x 4 bytes
24
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["encode_exact", "encode_values", "has_categories", "provenance_of", "task_dicts"]


def encode_values(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def encode_exact(exact: np.ndarray | None) -> bytes:
    """The ``exact`` trait: one uint8 per cell (1 exact, 0 approximate); b"" when all are exact."""
    if exact is None or bool(np.all(exact)):
        return b""
    return np.ascontiguousarray(exact, dtype=np.uint8).tobytes()


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
) -> list[dict[str, Any]]:
    accuracy = accuracy or {}
    return [
        {
            "name": name,
            "category": categories.get(name),
            "description": descriptions.get(name, ""),
            "baseline": _finite_or_none(baseline.get(name)),
            "accuracy": _finite_or_none(accuracy.get(name)),
        }
        for name in names
    ]


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
