"""Work units of a sweep, their cost, and how they are shared out among ranks and shards.

A unit is the smallest piece of a sweep that is scored, saved and resumed on its own:

- a method whose unit is a layer (``METHODS[name].unit == "layer"``: exact ablation): one
  (task, layer) block, every head of that layer. Its cost is about
  ``n_examples * (n_layers - layer)`` layer replays (layer ``l`` replays layers ``l .. L-1``),
  so later layers are cheaper.
- the others (attribution, projection): one whole task (``layer == -1``). Attribution scores
  every head of a task at once from one backward pass (cost ~ ``n_examples * n_layers``);
  projection reads the weights only (cost ~ ``n_layers``).

:func:`assign` shares units among ``n`` workers by cost, as consecutive runs of units (a task's
layers stay together, so its clean pass is not repeated on every worker), deterministically:
every rank and every shard computes the same split without talking to the others.

>>> units = make_units("layer", n_tasks=1, n_layers=4)
>>> [u.layer for u in units]
[0, 1, 2, 3]
>>> [[u.layer for u in share] for share in assign(units, [4, 3, 2, 1], 2)]
[[0], [1, 2, 3]]
>>> parse_shard("1/4")
(1, 4)
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ALL_LAYERS",
    "ShardCountError",
    "Unit",
    "assign",
    "check_shard",
    "make_units",
    "parse_shard",
    "shard_from_env",
    "unit_costs",
]

ALL_LAYERS = -1
"""``Unit.layer`` of a unit that is a whole task (methods that score all heads at once)."""


@dataclass(frozen=True, order=True)
class Unit:
    """Task number ``task`` (its index in the task list), layer ``layer`` (or every layer)."""

    task: int
    layer: int

    @property
    def whole_task(self) -> bool:
        return self.layer == ALL_LAYERS

    def key(self) -> str:
        """A file-name-safe name: ``t0003-l012`` or ``t0003-all``."""
        return f"t{self.task:04d}-" + ("all" if self.whole_task else f"l{self.layer:03d}")

    def describe(self, names: Sequence[str]) -> str:
        where = "all layers" if self.whole_task else f"layer {self.layer}"
        return f"{names[self.task]!r} {where}"


def make_units(unit: Literal["layer", "task"], n_tasks: int, n_layers: int) -> list[Unit]:
    """Every unit of a sweep, in task then layer order: one per (task, layer) for a method
    whose unit is a layer (its registry entry's ``unit``), one per task otherwise."""
    if unit == "layer":
        return [Unit(t, layer) for t in range(n_tasks) for layer in range(n_layers)]
    return [Unit(t, ALL_LAYERS) for t in range(n_tasks)]


def unit_costs(
    units: Sequence[Unit], n_layers: int, n_examples: Sequence[int] | Mapping[int, int]
) -> list[float]:
    """Estimated cost of each unit, in layer passes over one example (see the module doc)."""
    out = []
    for unit in units:
        examples = max(1, int(n_examples[unit.task]))
        layers = n_layers if unit.whole_task else n_layers - unit.layer
        out.append(float(examples * layers))
    return out


def assign(units: Sequence[Unit], costs: Sequence[float], n: int) -> list[list[Unit]]:
    """Share ``units`` among ``n`` workers, balanced by ``costs``: the units in (task, layer)
    order cut into ``n`` consecutive runs, each cut at the prefix of cost nearest to its share
    of the total. Consecutive runs keep a task's layers together, so a task's clean passes run
    on one worker (two where a cut falls inside it). Deterministic; no share is empty while
    there are at least ``n`` units."""
    if n < 1:
        raise ValueError(f"cannot share units among {n} workers")
    pairs = sorted(zip(units, costs, strict=True))
    prefix = [0.0]
    for _, cost in pairs:
        prefix.append(prefix[-1] + float(cost))
    total, m = prefix[-1], len(pairs)
    cuts = [0]
    for j in range(1, n):
        target = total * j / n
        k = bisect.bisect_left(prefix, target)
        if k > 0 and (k > m or target - prefix[k - 1] <= prefix[k] - target):
            k -= 1  # the nearer of the two prefixes around the target (ties: the earlier)
        if m >= n:  # leave at least one unit for this share and each one after it
            k = min(max(k, cuts[-1] + 1), m - (n - j))
        cuts.append(max(k, cuts[-1]))
    cuts.append(m)
    return [[unit for unit, _ in pairs[cuts[j] : cuts[j + 1]]] for j in range(n)]


class ShardCountError(ValueError):
    """A shard count beyond the number of units of the sweep."""


def check_shard(shard: tuple[int, int], n_units: int) -> None:
    """Refuse shard ``(I, N)`` of a sweep of ``n_units`` units unless ``0 <= I < N <= n_units``
    (every shard then gets at least one unit).

    >>> check_shard((3, 12), 12)  # fine; (0, 100) raises "... at most 12 shards ..."
    """
    index, count = shard
    if not 0 <= index < count:
        raise ShardCountError(f"--shard {index}/{count}: need 0 <= I < N")
    if count > n_units:
        raise ShardCountError(
            f"--shard {index}/{count}: this sweep has {n_units} units, so at most"
            f" {n_units} shards; use N <= {n_units}"
        )


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0-based I) as ``(I, N)``; ValueError when it is not one."""
    parts = str(text).split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"--shard must be I/N with whole numbers, e.g. 0/4, got {text!r}"
        ) from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= I < N, e.g. 0/4 ... 3/4")
    return index, count


def _env_int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    """The whole number in ``env[name]`` (or ``default`` where it is unset); ValueError naming
    the variable otherwise."""
    if name not in env:
        if default is None:
            raise ValueError(f"{name} is not set")
        return default
    text = env[name]
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{name}={text[:40]!r} is not a whole number") from None


def shard_from_env(environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The shard of a SLURM array task, None outside an array. N is the number of array tasks
    (``SLURM_ARRAY_TASK_COUNT``), I the position of this task's id among the ids
    ``SLURM_ARRAY_TASK_MIN``, ``MIN + STEP``, ... (``--array=0-12:4``: ids 0, 4, 8, 12 are
    shards 0..3 of 4; a list of evenly spaced ids, ``--array=3,6,9``, works alike). ValueError,
    naming the variable, for one that is malformed or missing, or ids that are not evenly
    spaced (then give ``--shard I/N``).

    >>> shard_from_env({"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "0",
    ...                 "SLURM_ARRAY_TASK_STEP": "4", "SLURM_ARRAY_TASK_COUNT": "4"})
    (2, 4)
    """
    env = os.environ if environ is None else environ
    prefix = "SLURM_ARRAY_TASK_"
    if prefix + "ID" not in env and prefix + "COUNT" not in env:
        return None
    try:
        return _array_shard(env, prefix)
    except ValueError as err:
        raise ValueError(
            f"in a SLURM array, {err}; pass --shard I/N to choose the share yourself"
        ) from None


def _array_shard(env: Mapping[str, str], prefix: str) -> tuple[int, int]:
    task_id = _env_int(env, prefix + "ID")
    count = _env_int(env, prefix + "COUNT")
    first = _env_int(env, prefix + "MIN", 0)
    if count < 1:
        raise ValueError(f"{prefix}COUNT={count} must be at least 1")
    last = _env_int(env, prefix + "MAX", -1)
    step = _env_int(env, prefix + "STEP", 1)
    if step < 1:
        raise ValueError(f"{prefix}STEP={step} must be at least 1")
    if count > 1 and last >= first and first + step * (count - 1) != last:
        # a list of ids (--array=3,6,9): SLURM may report step 1; evenly spaced ids still work
        if (last - first) % (count - 1):
            raise ValueError(
                f"the {count} ids from {prefix}MIN={first} to {prefix}MAX={last} are not evenly"
                f" spaced, so {prefix}ID={task_id}'s share is unknown (use --array=0-{count - 1})"
            )
        step = (last - first) // (count - 1)
    offset = task_id - first
    if offset < 0 or offset % step or offset // step >= count:
        raise ValueError(
            f"{prefix}ID={task_id} is not one of the {count} ids {first}, {first + step}, ..."
            f" ({prefix}MIN={first}, step {step}, {prefix}COUNT={count})"
        )
    return offset // step, count
