"""``run_sweep``: one sweep over units, in one process, under torchrun, or as one shard.

- One process: every unit, then the output file.
- torchrun (``WORLD_SIZE > 1``): each rank scores its share of the units (balanced by cost),
  rank 0 gathers every share and writes the one output file, the same file one process writes.
- ``shard=(I, N)`` (a SLURM array task, ``--shard I/N``): share I of N, written as the part
  file ``OUT.part-I-of-N.npz`` for :func:`headwidget.sweep.merge_parts`. Shards and ranks
  combine: a shard's units are shared again among its ranks.

Finished units go to ``OUT.npz.units/`` as they finish (:mod:`.checkpoint`), each with its
per-example effects where kept (``keep_examples``, chosen for the whole sweep as
:func:`headwidget.score_heads` chooses it for one call); ``resume=True`` reuses those already
there once each is read back whole and found to be of this sweep (others are set aside and
scored again). The run holds the folder's lock meanwhile, so a second run on the same output
fails at once. A run that is not a shard removes the files it wrote there once the output is
written (``keep_units=True`` keeps them); shards keep them (other shards may still be using
the folder). Before any of it, :func:`check_output` refuses an output that cannot be written
and a shard count beyond the number of units.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..methods.options import ScoringOptions
from ..scores import HeadScores
from ..tasks import Task, as_task_list
from .assemble import assemble
from .checkpoint import TaskInfo, UnitRecord, UnitsFolderError, UnitStore, check_folder
from .distributed import (
    Ranks,
    broadcast_from_zero,
    finish,
    gather_to_zero,
    ranks_from_env,
    start,
)
from .folder_lock import check_free, lock_name
from .runner import Log, UnitRunner, fingerprint, stderr_log
from .units import assign, check_shard, make_units, unit_costs

__all__ = [
    "OutputPathError",
    "SweepReport",
    "check_output",
    "part_path",
    "run_sweep",
    "units_folder",
]


class OutputPathError(ValueError):
    """An output that cannot be written (a folder, or in a folder that cannot be written)."""


@dataclass
class SweepReport:
    """What a sweep did: the file written (None on ranks other than 0), this rank's units,
    how many of them were found finished, and how many were scored."""

    path: Path | None
    units: int
    resumed: int
    scored: int


def units_folder(out: str | Path) -> Path:
    """Where a sweep writing ``out`` keeps its finished units."""
    out = Path(out)
    return out.with_name(out.name + ".units")


def part_path(out: str | Path, index: int, count: int) -> Path:
    """The part file of shard ``index`` of ``count``: ``OUT.part-I-of-N.npz``."""
    out = Path(out)
    suffix = out.suffix or ".npz"
    return out.with_name(f"{out.stem if out.suffix else out.name}.part-{index}-of-{count}{suffix}")


def check_output(out: str | Path, shard: tuple[int, int] | None = None) -> Path:
    """Check, before any work, that the file a sweep writing ``out`` (as shard ``shard``)
    writes can be written, and that no live run holds its units folder; return that file.
    :class:`OutputPathError` or :class:`~headwidget.sweep.checkpoint.UnitsFolderError`
    (one line each) otherwise.

    >>> check_output("runs/scores.npz", (1, 4))  # doctest: +SKIP
    PosixPath('runs/scores.part-1-of-4.npz')
    """
    out = Path(out)
    target = out if shard is None else part_path(out, *shard)
    for path in {out, target}:
        if path.is_dir():
            raise OutputPathError(
                f"the output {path} is a folder; name a file in it, e.g. {path / 'scores.npz'}"
            )
    folder = target.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent  # the nearest folder that exists: what will be created in
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {target}: {folder} is not a folder")
    probe = folder / f".{target.name}.{secrets.token_hex(6)}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as err:
        raise OutputPathError(
            f"cannot write in {folder} ({err.strerror or err}); choose an output in a folder"
            " you can write"
        ) from None
    check_folder(units_folder(out))
    check_free(units_folder(out), lock_name(shard))
    return target


def run_sweep(
    model: Any,
    tokenizer: Any,
    tasks: Task | Sequence[Task],
    out: str | Path,
    *,
    model_id: str,
    options: ScoringOptions | None = None,
    shard: tuple[int, int] | None = None,
    resume: bool = False,
    keep_units: bool = False,
    ranks: Ranks | None = None,
    log: Log = stderr_log,
    **scoring: Any,
) -> SweepReport:
    """Score ``tasks`` unit by unit into ``out`` (see the module doc). ``model_id`` names the
    model in the sweep's fingerprint (a hub id, a folder, ``demo``). How to score: ``options``
    (a :class:`~headwidget.methods.options.ScoringOptions`), or its fields as keywords
    (``method="attribution", method_options={"refine": 20}, keep_examples=None, ...``).
    ``keep_examples`` as in :func:`headwidget.score_heads`: the file gets ``effects``,
    ``clean`` and ``examples`` (default None: unless all tasks together need over
    ``KEEP_EXAMPLES_BYTES``); the units folder holds the effects meanwhile.

    >>> run_sweep(model, tokenizer, tasks, "out.npz", model_id="demo", method="attribution",
    ...           method_options={"refine": 20}, shard=(0, 4))  # doctest: +SKIP
    """
    started = time.perf_counter()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if options is None:
        options = ScoringOptions(**scoring)
    elif scoring:
        raise TypeError(f"pass either options= or its fields {sorted(scoring)}, not both")
    task_list = as_task_list(tasks)
    ranks = ranks_from_env() if ranks is None else ranks
    out = Path(out)
    fp = fingerprint(model, model_id, task_list, options)
    options = options.replace(keep_examples=fp["keep_examples"])  # decided once, for all units
    n_layers, n_heads = fp["shape"]
    units = make_units(options.entry.unit, len(task_list), n_layers)
    if shard is not None:
        check_shard(shard, len(units))
    target = check_output(out, shard)
    options = options.replace(device=start(ranks, options.device))
    examples = [len(t) for t in task_list]
    mine = units
    if shard is not None:
        mine = assign(mine, unit_costs(mine, n_layers, examples), shard[1])[shard[0]]
    share = mine
    if ranks.distributed:
        mine = assign(mine, unit_costs(mine, n_layers, examples), ranks.world)[ranks.rank]
    who = f"rank {ranks.rank}/{ranks.world}: " if ranks.distributed else ""

    store = UnitStore(units_folder(out), fp, examples)
    _open(store, ranks, lock_name(shard), str(target), log)
    try:
        finished = store.verify(mine, lambda s: log(who + s)) if resume else store.done(mine)
        if finished and not resume:
            raise FileExistsError(
                f"{store.folder} already holds {len(finished)} finished unit(s) of this sweep;"
                " pass --resume to reuse them, or delete the folder to start again"
            )
        if resume:
            log(f"{who}resumed: {len(finished)} of {len(mine)} units already done")
        else:
            log(f"{who}{len(mine)} units to score")
        runner = UnitRunner(model, tokenizer, task_list, store, options, log=lambda s: log(who + s))
        scored = runner.run(mine)
        log(f"{who}scored {scored} units ({len(finished)} reused)")
        records = [store.load_unit(u) for u in mine]
        infos = [store.load_info(t) for t in sorted({u.task for u in mine})]
        gathered = gather_to_zero((records, infos), ranks)
        path: Path | None = None
        if gathered is not None:
            meta: dict[str, Any] = {"created": created, "seconds": time.perf_counter() - started}
            if shard is not None:
                meta["shard"] = {
                    "index": shard[0],
                    "count": shard[1],
                    "units": [[u.task, u.layer] for u in share],
                    "fingerprint": fp,
                }
            scores = _assemble(task_list, options.method, (n_layers, n_heads), gathered, meta)
            path = scores.save(target)
            log(f"wrote {path}")
            if shard is None and not keep_units:
                store.remove(units, log)
        finish(ranks)
    finally:
        store.close()
    return SweepReport(path, len(mine), len(finished), scored)


def _open(store: UnitStore, ranks: Ranks, lock: str, what: str, log: Log) -> None:
    """Open the units folder: in one process, or on rank 0, which tells the others."""
    if not ranks.distributed:
        store.open(lock, what, log)
        return
    failure: UnitsFolderError | None = None
    if ranks.rank == 0:
        try:
            store.open(lock, what, log)
        except UnitsFolderError as err:
            failure = err
    said = broadcast_from_zero(None if failure is None else str(failure), ranks)
    if failure is not None:
        raise failure
    if said is not None:
        raise UnitsFolderError(said)
    if ranks.rank != 0:
        store.join()


def _assemble(
    tasks: Sequence[Task],
    method: str,
    shape: tuple[int, int],
    gathered: Sequence[tuple[list[UnitRecord], list[TaskInfo]]],
    meta: dict[str, Any],
) -> HeadScores:
    """The HeadScores of every rank's records and task infos."""
    records = [r for part in gathered for r in part[0]]
    seen: set[int] = set()
    infos = []
    for part in gathered:
        for info in part[1]:
            if info.task not in seen:
                seen.add(info.task)
                infos.append(info)
    return assemble(
        [t.name for t in tasks],
        {t.name: t.category for t in tasks},
        {t.name: t.description for t in tasks},
        method,
        shape,
        records,
        infos,
        meta=meta,
        examples={t.name: [(e.prompt, e.answer) for e in t.examples] for t in tasks},
    )
