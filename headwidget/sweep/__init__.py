"""Sweeps beyond one call: work units, checkpoints, torchrun ranks, shards and their merge.

Read in this order: :mod:`.units` (what a unit is, how units are shared out),
:mod:`.checkpoint` (finished units on disk, read as untrusted input: one unit's file in
:mod:`.unit_file`, the folder's lock in :mod:`.folder_lock`), :mod:`.runner` (scoring units with
:func:`headwidget.score_heads`, out-of-memory retry), :mod:`.distributed` (torchrun ranks),
:mod:`.assemble` (units to HeadScores), :mod:`.driver` (:func:`run_sweep`) and :mod:`.merge`
(:func:`merge_parts`). The ``headwidget`` command (:mod:`headwidget.cli`) drives them.
"""

from __future__ import annotations

from .checkpoint import CheckpointMismatchError
from .distributed import RanksJoinError
from .driver import OutputPathError, SweepReport, part_path, run_sweep, units_folder
from .folder_lock import UnitsFolderBusy
from .merge import MergeError, merge_parts
from .runner import OutOfMemoryAtBatchOne
from .unit_file import UnitFileError, UnitsFolderError
from .units import ShardCountError

__all__ = [
    "CheckpointMismatchError",
    "MergeError",
    "OutOfMemoryAtBatchOne",
    "OutputPathError",
    "RanksJoinError",
    "ShardCountError",
    "SweepReport",
    "UnitFileError",
    "UnitsFolderBusy",
    "UnitsFolderError",
    "merge_parts",
    "part_path",
    "run_sweep",
    "units_folder",
]
