"""Build one HeadScores from finished units, and combine the provenance of several pieces.

Pieces of one sweep (the units of several ranks, the part files of several shards) record the
same provenance, except for:

- per-task entries (``meta["examples"]``, attribution's ``agreement``, projection's ``k`` /
  ``pairs`` / ``dropped``): dicts keyed by task name, which are joined;
- :data:`VARYING` fields, which say when and where a piece ran: ``created`` (the earliest is
  kept), ``seconds`` (the caller sets it: wall time of the run, or the sum over parts for a
  merge) and ``device`` (the first piece's is kept: ``cuda:0`` and ``cuda:1`` score alike);
- ``heads``, the subset of heads a piece scored (it is dropped: the whole is every head).

Any other field that differs means the pieces are not of one sweep: ValueError naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..scores import HeadScores
from .checkpoint import TaskInfo, UnitRecord

__all__ = ["VARYING", "assemble", "combine_meta"]

VARYING: tuple[str, ...] = ("created", "seconds", "device")
"""Provenance fields that may differ between pieces of one sweep (when and where they ran)."""

_DROPPED = ("heads", "partial", "shard")


def _per_task(value: Any, names: set[str]) -> bool:
    return isinstance(value, Mapping) and set(value) <= names


def combine_meta(
    metas: Sequence[Mapping[str, Any]], names: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """One ``meta`` from the metas of several pieces (see the module doc); ``labels`` name
    the pieces in the error raised when a field differs."""
    known = set(names)
    labels = list(labels) if labels is not None else [f"piece {i}" for i in range(len(metas))]
    out: dict[str, Any] = {}
    first: dict[str, int] = {}
    for i, meta in enumerate(metas):
        for key, value in meta.items():
            if key in _DROPPED:
                continue
            if key not in out:
                out[key] = dict(value) if _per_task(value, known) else value
                first[key] = i
            elif key == "created":
                out[key] = min(str(out[key]), str(value))
            elif key in VARYING:
                continue
            elif _per_task(value, known) and _per_task(out[key], known):
                for task, entry in value.items():
                    if task in out[key] and out[key][task] != entry:
                        raise ValueError(
                            f"{labels[i]} and {labels[first[key]]} disagree on"
                            f" meta[{key!r}][{task!r}]: {entry!r} vs {out[key][task]!r}"
                        )
                    out[key][task] = entry
            elif out[key] != value and not _both_nan(out[key], value):
                raise ValueError(
                    f"{labels[i]} differs from {labels[first[key]]} in meta[{key!r}]:"
                    f" {value!r} vs {out[key]!r}"
                )
    for key, value in out.items():  # per-task entries in task order, as one run writes them
        if _per_task(value, known):
            out[key] = {name: value[name] for name in names if name in value}
    return out


def _both_nan(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and a != a and b != b


def assemble(
    names: Sequence[str],
    categories: Mapping[str, str | None],
    descriptions: Mapping[str, str],
    method: str,
    shape: tuple[int, int],
    records: Sequence[UnitRecord],
    infos: Sequence[TaskInfo],
    *,
    meta: Mapping[str, Any] | None = None,
    examples: Mapping[str, Sequence[tuple[str, str]]] | None = None,
) -> HeadScores:
    """HeadScores of ``names`` × ``shape`` (layers, heads) from unit ``records`` and task
    ``infos``; cells of no record stay NaN. ``meta`` is laid over the combined provenance.
    Per example, as :func:`headwidget.score_heads` returns them: ``effects`` of each task some
    record holds effects of (NaN where none does), ``clean`` of each info that has it, and
    the texts ``examples[task]`` of each task with effects."""
    n_layers, n_heads = shape
    values = np.full((len(names), n_layers, n_heads), np.nan, dtype=np.float32)
    exact = np.ones(values.shape, dtype=bool)
    effects: dict[str, np.ndarray] = {}
    for record in records:
        t, layer = record.unit.task, record.unit.layer
        rows = slice(None) if record.unit.whole_task else slice(layer, layer + 1)
        values[t, rows] = np.asarray(record.values, np.float32).reshape(values[t, rows].shape)
        exact[t, rows] = np.asarray(record.exact, bool).reshape(exact[t, rows].shape)
        if record.effects is not None:
            each = np.asarray(record.effects, np.float32)
            store = effects.get(names[t])
            if store is None:
                size = each.shape[-1]
                store = effects[names[t]] = np.full((n_layers, n_heads, size), np.nan, np.float32)
            store[rows] = each.reshape(store[rows].shape)
    ordered = sorted(infos, key=lambda info: info.task)
    clean = {names[i.task]: np.asarray(i.clean, np.float64) for i in ordered if i.clean is not None}
    texts = {
        name: [(str(p), str(a)) for p, a in (examples or {})[name]]
        for name in names
        if name in effects and name in (examples or {})
    }
    baseline = {names[i.task]: i.baseline for i in ordered if i.baseline is not None}
    accuracy = {names[i.task]: i.accuracy for i in ordered if i.accuracy is not None}
    combined = combine_meta(
        [i.meta for i in ordered], names, [f"task {names[i.task]!r}" for i in ordered]
    )
    combined.update(meta or {})
    return HeadScores(
        values,
        list(names),
        dict(categories),
        baseline,
        combined,
        dict(descriptions),
        accuracy=accuracy,
        method=method,
        exact=exact,
        effects=effects,
        clean=clean,
        examples=texts,
    )
