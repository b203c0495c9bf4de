"""Finished units on disk, so that a killed sweep loses at most the unit in flight.

A sweep writing ``OUT.npz`` keeps its finished units in the folder ``OUT.npz.units/``:

- ``fingerprint.json``: what the sweep computes (model, method, options, tasks, whether it
  keeps per-example effects) and the folder's format (:data:`UNITS_FORMAT`); a folder with
  another fingerprint, or of another format, is refused, so ``--resume`` never mixes two runs;
- one ``<unit>.npz`` per finished unit (its scores and, where kept, each example's drop, see
  :class:`UnitRecord`): ``n_heads * n_examples * 4`` bytes of effects for an ablation unit,
  ``n_layers`` times that for a whole-task unit;
- one ``t<task>-clean.json`` per task: its clean metric (and, where kept, each example's),
  clean accuracy and the provenance ``score_heads`` recorded for it.

Every file is written to a temporary name in the folder and renamed (``os.replace``), so a
file is either complete or absent. Files of several ranks or shards of one sweep can share the
folder: each unit has its own file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..scores.file import write_atomic
from .units import Unit

__all__ = [
    "UNITS_FORMAT",
    "CheckpointMismatchError",
    "TaskInfo",
    "UnitRecord",
    "UnitStore",
    "describe_mismatch",
]

_FINGERPRINT = "fingerprint.json"

UNITS_FORMAT = 2
"""The units folder's format, ``fingerprint["format"]``: 2 keeps per-example effects; a folder
without the field is format 1 (scores only) and is refused."""


class CheckpointMismatchError(ValueError):
    """A units folder (or a part file) belongs to a different sweep."""


@dataclass
class UnitRecord:
    """The scores of one unit: ``values`` / ``exact`` of shape [n_layers_in_unit, n_heads];
    ``effects`` (float32 [n_layers_in_unit, n_heads, n_examples]) each example's drop, or None
    where not kept."""

    unit: Unit
    values: np.ndarray
    exact: np.ndarray
    effects: np.ndarray | None = None


@dataclass
class TaskInfo:
    """What one task's ``score_heads`` call recorded besides scores; ``clean`` (float64
    [n_examples]) the clean metric of each example, or None where not kept."""

    task: int
    baseline: float | None
    accuracy: float | None
    meta: dict[str, Any] = field(default_factory=dict)
    clean: np.ndarray | None = None


def describe_mismatch(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    """Which fingerprint fields differ, e.g. ``"method: 'ablation' vs 'attribution'"``."""
    keys = [k for k in dict.fromkeys([*ours, *theirs]) if ours.get(k) != theirs.get(k)]
    return "; ".join(f"{k}: {_short(ours.get(k))} vs {_short(theirs.get(k))}" for k in keys)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _write_bytes(path: Path, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))


class UnitStore:
    """The units folder of one sweep (see the module doc)."""

    def __init__(self, folder: str | os.PathLike[str], fingerprint: Mapping[str, Any]) -> None:
        self.folder = Path(folder)
        self.fingerprint = dict(fingerprint)

    def open(self) -> None:
        """Create the folder, or check that an existing one is of this sweep."""
        path = self.folder / _FINGERPRINT
        if path.is_file():
            try:
                theirs = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as err:
                raise CheckpointMismatchError(f"{path} is unreadable ({err})") from None
            found = theirs.get("format", 1) if isinstance(theirs, dict) else None
            ours = self.fingerprint.get("format", UNITS_FORMAT)
            if found != ours:
                raise CheckpointMismatchError(
                    f"{self.folder} holds units of format {found} (an older headwidget, no"
                    f" per-example effects); this one writes format {ours}: delete the folder"
                    " and score again"
                )
            if theirs != json.loads(json.dumps(self.fingerprint)):
                raise CheckpointMismatchError(
                    f"{self.folder} holds units of a different sweep"
                    f" ({describe_mismatch(self.fingerprint, theirs)}); delete it or write to"
                    " another output"
                )
            return
        if self.folder.exists() and not self.folder.is_dir():
            raise CheckpointMismatchError(f"{self.folder} exists and is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.fingerprint, indent=1, sort_keys=True)
        _write_bytes(path, text.encode("utf-8"))

    # units ---------------------------------------------------------------------------------

    def unit_path(self, unit: Unit) -> Path:
        """The file of ``unit`` (present once it is finished)."""
        return self.folder / f"{unit.key()}.npz"

    def has(self, unit: Unit) -> bool:
        return self.unit_path(unit).is_file()

    def done(self, units: Iterable[Unit]) -> list[Unit]:
        return [u for u in units if self.has(u)]

    def save_unit(self, record: UnitRecord) -> None:
        import io

        arrays = {
            "values": np.asarray(record.values, np.float32),
            "exact": np.asarray(record.exact, bool),
            "unit": np.array([record.unit.task, record.unit.layer], np.int64),
        }
        if record.effects is not None:
            arrays["effects"] = np.asarray(record.effects, np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _write_bytes(self.unit_path(record.unit), buffer.getvalue())

    def load_unit(self, unit: Unit) -> UnitRecord:
        path = self.unit_path(unit)
        with np.load(path, allow_pickle=False) as data:
            stored = tuple(int(x) for x in data["unit"])
            if stored != (unit.task, unit.layer):
                raise CheckpointMismatchError(f"{path} holds unit {stored}, not {unit}")
            effects = data["effects"].copy() if "effects" in data.files else None
            return UnitRecord(unit, data["values"].copy(), data["exact"].copy(), effects)

    # tasks ---------------------------------------------------------------------------------

    def _info_path(self, task: int) -> Path:
        return self.folder / f"t{task:04d}-clean.json"

    def has_info(self, task: int) -> bool:
        return self._info_path(task).is_file()

    def save_info(self, info: TaskInfo) -> None:
        payload = {
            "task": info.task,
            "baseline": info.baseline,
            "accuracy": info.accuracy,
            "meta": info.meta,
            "clean": None if info.clean is None else np.asarray(info.clean, np.float64).tolist(),
        }
        _write_bytes(self._info_path(info.task), json.dumps(payload).encode("utf-8"))

    def load_info(self, task: int) -> TaskInfo:
        payload = json.loads(self._info_path(task).read_text("utf-8"))
        clean = payload.get("clean")
        clean = None if clean is None else np.asarray(clean, np.float64)
        return TaskInfo(task, payload["baseline"], payload["accuracy"], payload["meta"], clean)
