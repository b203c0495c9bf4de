"""``merge_parts``: join the part files of a sharded sweep into the file one run writes.

Parts must belong together: the same fingerprint (model, its config and dtype, method,
ablation, metric, method options, tasks and their data), and between them every unit exactly
once. Otherwise :class:`MergeError` says which part and what differs, which unit two parts both
hold, or which units no part holds. The merged provenance is one run's (see
:mod:`.assemble`): ``seconds`` is the sum over the parts (compute time, not wall time),
``created`` the earliest part's, ``device`` the first part's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..methods import METHODS
from ..scores import HeadScores
from .assemble import assemble, combine_meta
from .checkpoint import TaskInfo, UnitRecord, describe_mismatch
from .units import Unit, make_units

__all__ = ["MergeError", "merge_parts"]


class MergeError(ValueError):
    """Part files that do not make one sweep."""


def _shard(scores: HeadScores, path: Path) -> dict:
    shard = scores.meta.get("shard")
    if not isinstance(shard, dict) or "fingerprint" not in shard or "units" not in shard:
        raise MergeError(
            f"{path} is not a part file (no meta['shard']): only the files written with"
            " --shard I/N (or in a SLURM array) can be merged"
        )
    return shard


def merge_parts(paths: Sequence[str | os.PathLike[str]]) -> HeadScores:
    """One HeadScores from the part files ``paths`` (see the module doc)."""
    if not paths:
        raise MergeError("no part files given")
    files = [Path(p) for p in paths]
    parts = [HeadScores.load(p) for p in files]
    shards = [_shard(s, p) for s, p in zip(parts, files, strict=True)]
    first = shards[0]["fingerprint"]
    for path, shard in zip(files[1:], shards[1:], strict=True):
        if shard["fingerprint"] != first:
            raise MergeError(
                f"{path} is not a part of the same sweep as {files[0]}: it differs in"
                f" {describe_mismatch(shard['fingerprint'], first)}"
            )
    method = METHODS.get(first.get("method")) if isinstance(first, dict) else None
    if method is None:
        raise MergeError(f"{files[0]}: its shard fingerprint names no known method")
    names = parts[0].tasks
    n_layers, n_heads = parts[0].n_layers, parts[0].n_heads
    owner: dict[Unit, Path] = {}
    records: list[UnitRecord] = []
    has_task: dict[int, int] = {}
    for i, (path, scores, shard) in enumerate(zip(files, parts, shards, strict=True)):
        exact = scores.exact if scores.exact is not None else np.ones(scores.shape, bool)
        for t, layer in shard["units"]:
            unit = Unit(int(t), int(layer))
            if unit in owner:
                raise MergeError(
                    f"{path} and {owner[unit]} both hold unit {unit.describe(names)}"
                    " (overlapping parts: the same shard twice, or parts of two different"
                    " shardings)"
                )
            owner[unit] = path
            rows = slice(None) if unit.whole_task else slice(unit.layer, unit.layer + 1)
            kept = scores.effects.get(names[unit.task])
            effects = None if kept is None else kept[rows]
            records.append(
                UnitRecord(unit, scores.values[unit.task, rows], exact[unit.task, rows], effects)
            )
            has_task.setdefault(unit.task, i)
    expected = make_units(method.unit, len(names), n_layers)
    missing = [u for u in expected if u not in owner]
    if missing:
        count = shards[0].get("count")
        present = sorted({int(s.get("index", -1)) for s in shards})
        absent = sorted(set(range(int(count))) - set(present)) if isinstance(count, int) else []
        which = f"; shard(s) {absent} of {count} are not among the parts" if absent else ""
        listed = ", ".join(u.describe(names) for u in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise MergeError(
            f"missing cells: no part holds {len(missing)} unit(s): {listed}{more}{which}"
        )
    infos = []
    for t, i in sorted(has_task.items()):
        name = names[t]
        part = parts[i]
        info = TaskInfo(
            t, part.baseline.get(name), part.accuracy.get(name), {}, part.clean.get(name)
        )
        infos.append(info)
    try:
        meta = combine_meta([s.meta for s in parts], names, [str(p) for p in files])
    except ValueError as err:
        raise MergeError(str(err)) from None
    meta["seconds"] = float(sum(float(s.meta.get("seconds", 0.0)) for s in parts))
    return assemble(
        names,
        parts[0].categories,
        parts[0].descriptions,
        parts[0].method,
        (n_layers, n_heads),
        records,
        infos,
        meta=meta,
        examples={name: pairs for part in parts for name, pairs in part.examples.items()},
    )
