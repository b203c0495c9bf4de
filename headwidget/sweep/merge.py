"""``merge_parts``: join the part files of a sharded sweep into the file one run writes.

Parts must belong together: the same fingerprint (model, its config and dtype, method,
ablation, metric, method options, tasks and their data), and between them every unit exactly
once. A part file is untrusted input: its ``meta["shard"]`` (``index``, ``count``, ``units``,
``fingerprint``) is checked field by field, the count against the sweep's number of units
(before anything of that size is built), and each part's units against the share that shard
of the sweep is. Otherwise :class:`MergeError` says which part and which field, which unit two
parts both hold, or which units (and shards) no part holds, the lists shortened. The merged
provenance is one run's (see :mod:`.assemble`): ``seconds`` is the sum over the parts (compute
time, not wall time), ``created`` the earliest part's, ``device`` the first part's.
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
from .units import Unit, assign, make_units, unit_costs

__all__ = ["MergeError", "merge_parts"]


class MergeError(ValueError):
    """Part files that do not make one sweep."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field(path: Path, key: str, problem: str) -> MergeError:
    return MergeError(f"{path}: meta['shard'][{key!r}] {problem}")


def _shard(scores: HeadScores, path: Path) -> dict:
    """The part's ``meta["shard"]``, each field of the right type."""
    shard = scores.meta.get("shard")
    if not isinstance(shard, dict):
        raise MergeError(
            f"{path} is not a part file (no meta['shard']): only the files written with"
            " --shard I/N (or in a SLURM array) can be merged"
        )
    for key in ("index", "count", "units", "fingerprint"):
        if key not in shard:
            raise _field(path, key, "is missing")
    for key in ("index", "count"):
        if not isinstance(shard[key], int) or isinstance(shard[key], bool):
            raise _field(path, key, f"must be a whole number, got {_short(shard[key])}")
    if not isinstance(shard["fingerprint"], dict):
        raise _field(path, "fingerprint", f"must be an object, got {_short(shard['fingerprint'])}")
    if not isinstance(shard["units"], list):
        raise _field(
            path, "units", f"must be a list of [task, layer], got {_short(shard['units'])}"
        )
    for entry in shard["units"]:
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in entry)
        ):
            raise _field(path, "units", f"must be a list of [task, layer], found {_short(entry)}")
    return shard


def _units_of(path: Path, shard: dict, valid: set[Unit], names: Sequence[str]) -> list[Unit]:
    """The part's units, each a unit of the sweep, none twice."""
    units: list[Unit] = []
    seen: set[Unit] = set()
    for t, layer in shard["units"]:
        unit = Unit(t, layer)
        if unit not in valid:
            raise _field(
                path, "units", f"lists [{t}, {layer}], which is not a unit of this sweep"
                f" ({len(names)} tasks, {len(valid)} units)"
            )  # fmt: skip
        if unit in seen:
            raise _field(path, "units", f"lists unit [{t}, {layer}] twice")
        seen.add(unit)
        units.append(unit)
    return units


def _check_counts(files: Sequence[Path], shards: Sequence[dict], n_units: int) -> None:
    """Every part one shard of the same count (at most the sweep's units), no index twice."""
    index_of: dict[int, Path] = {}
    for path, shard in zip(files, shards, strict=True):
        count, index = shard["count"], shard["index"]
        if not 1 <= count <= n_units:
            raise _field(
                path, "count", f"is {count:,}, but this sweep has {n_units} units, so at most"
                f" {n_units} shards"
            )  # fmt: skip
        if not 0 <= index < count:
            raise _field(path, "index", f"is {index:,}, not in 0..{count - 1}")
        if count != shards[0]["count"]:
            raise MergeError(
                f"{path} is shard {index} of {count}, but {files[0]} is shard"
                f" {shards[0]['index']} of {shards[0]['count']}: parts of two different shardings"
            )
        if index in index_of:
            raise MergeError(
                f"{path} and {index_of[index]} both hold shard {index} of {count} (the same"
                " shard twice)"
            )
        index_of[index] = path


def _check_shares(
    files: Sequence[Path],
    shards: Sequence[dict],
    held: Sequence[list[Unit]],
    expected: list[Unit],
    sizes: Sequence[int] | None,
    n_layers: int,
) -> None:
    """Each part holds the units its shard of the sweep is (when the tasks' sizes are known:
    the share depends on them)."""
    if sizes is None:
        return
    count = shards[0]["count"]
    shares = assign(expected, unit_costs(expected, n_layers, sizes), count)
    for path, shard, units in zip(files, shards, held, strict=True):
        share = shares[shard["index"]]
        if sorted(units) != sorted(share):
            listed = [[u.task, u.layer] for u in units[:3]]
            raise _field(
                path, "units", f"lists {len(units)} unit(s) ({listed}...), but shard"
                f" {shard['index']} of {count} of this sweep is {len(share)} other unit(s):"
                " the part was edited, or is of another sharding"
            )  # fmt: skip


def _sizes(parts: Sequence[HeadScores], names: Sequence[str]) -> list[int] | None:
    """Each task's number of examples, as the parts' provenance records it (None: unknown)."""
    sizes: dict[str, int] = {}
    for part in parts:
        examples = part.meta.get("examples")
        if isinstance(examples, dict):
            for name, n in examples.items():
                if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                    sizes.setdefault(name, n)
    return [sizes[name] for name in names] if all(n in sizes for n in names) else None


def _missing(missing: Sequence[Unit], names: Sequence[str], shards: Sequence[dict]) -> str:
    """What no part holds: the first few units and absent shards (never a list of all)."""
    count = shards[0]["count"]
    present = {s["index"] for s in shards}
    absent: list[int] = []
    for index in range(count):  # stops after 5: at most len(shards) + 5 steps
        if index not in present:
            absent.append(index)
            if len(absent) == 5:
                break
    n_absent = count - len(present)
    more_shards = f" and {n_absent - 5} more" if n_absent > 5 else ""
    which = f"; shard(s) {absent}{more_shards} of {count} are not among the parts" if absent else ""
    listed = ", ".join(u.describe(names) for u in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return f"missing cells: no part holds {len(missing)} unit(s): {listed}{more}{which}"


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
    method = METHODS.get(first.get("method")) if isinstance(first.get("method"), str) else None
    if method is None:
        raise _field(files[0], "fingerprint", "names no known method")
    for path, part in zip(files, parts, strict=True):
        if first.get("tasks") != part.tasks or first.get("shape") != [part.n_layers, part.n_heads]:
            raise _field(path, "fingerprint", "does not describe the part's tasks and heads")
    names = parts[0].tasks
    n_layers, n_heads = parts[0].n_layers, parts[0].n_heads
    expected = make_units(method.unit, len(names), n_layers)
    _check_counts(files, shards, len(expected))
    held = [_units_of(p, s, set(expected), names) for p, s in zip(files, shards, strict=True)]
    _check_shares(files, shards, held, expected, _sizes(parts, names), n_layers)
    owner: dict[Unit, Path] = {}
    records: list[UnitRecord] = []
    has_task: dict[int, int] = {}
    for i, (path, scores, units) in enumerate(zip(files, parts, held, strict=True)):
        exact = scores.exact if scores.exact is not None else np.ones(scores.shape, bool)
        for unit in units:
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
    missing = [u for u in expected if u not in owner]
    if missing:
        raise MergeError(_missing(missing, names, shards))
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
