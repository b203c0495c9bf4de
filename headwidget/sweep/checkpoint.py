"""Finished units on disk, so that a killed sweep loses at most the unit in flight.

A sweep writing ``OUT.npz`` keeps its finished units in the folder ``OUT.npz.units/``:

- ``fingerprint.json``: what the sweep computes (model, method, options, tasks, whether it
  keeps per-example effects) and the folder's format (:data:`UNITS_FORMAT`); a folder with
  another fingerprint, or of another format, is refused, so ``--resume`` never mixes two runs;
- one ``<unit>.npz`` per finished unit (its scores and, where kept, each example's drop, see
  :mod:`.unit_file`): ``n_heads * n_examples * 4`` bytes of effects for an ablation unit,
  ``n_layers`` times that for a whole-task unit;
- one ``t<task>-clean.json`` per task: its clean metric (and, where kept, each example's),
  clean accuracy and the provenance ``score_heads`` recorded for it;
- ``lock`` (or ``lock.part-I-of-N`` for a shard): the run that uses the folder
  (:mod:`.folder_lock`).

The folder is untrusted input. Opening it refuses a symbolic link, a folder without
``fingerprint.json`` that holds anything (it is never adopted, nor deleted), an unreadable
fingerprint and one of another sweep, each with one line saying what to do. Every unit and
clean file carries its sweep's id: :meth:`UnitStore.verify` reads each one fully before it is
reused, and one that cannot be read or does not belong is named in one log line, renamed
``<name>.rejected`` (never deleted) and scored again. :meth:`UnitStore.remove` deletes only the
files this sweep wrote, never through a link.

Every file is written to a temporary name in the folder and renamed (``os.replace``), so a
file is either complete or absent. Shards and torchrun ranks of one sweep share the folder:
each unit has its own file.

>>> store = UnitStore("out.npz.units", fingerprint, examples=[50, 50])  # doctest: +SKIP
>>> store.open(lock_name(None), "out.npz", log=print)  # doctest: +SKIP
>>> done = store.verify(units, log=print)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .folder_lock import FolderLock, acquire, create_exclusive, is_lock_name
from .unit_file import (
    UNITS_FORMAT,
    Expected,
    TaskInfo,
    UnitFileError,
    UnitRecord,
    UnitsFolderError,
    read_info,
    read_json,
    read_unit,
    write_info,
    write_unit,
)
from .units import Unit

__all__ = [
    "UNITS_FORMAT",
    "CheckpointMismatchError",
    "TaskInfo",
    "UnitRecord",
    "UnitStore",
    "UnitsFolderError",
    "check_folder",
    "describe_mismatch",
]

_FINGERPRINT = "fingerprint.json"
_FINGERPRINT_LIMIT = 16 * 2**20
_FORMATS = {1: "no per-example effects", 2: "units not stamped with their sweep"}
# a temporary file of write_atomic or of the lock: ".<name>.<12 hex>.tmp", ".<lock>.stale-<hex>"
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?:[0-9a-f]{12}\.tmp|stale-[0-9a-f]{12})")


class CheckpointMismatchError(UnitsFolderError):
    """A units folder (or a part file) belongs to a different sweep."""


def describe_mismatch(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    """Which fingerprint fields differ, e.g. ``"method: 'ablation' vs 'attribution'"``."""
    keys = [k for k in dict.fromkeys([*ours, *theirs]) if ours.get(k) != theirs.get(k)]
    return "; ".join(f"{k}: {_short(ours.get(k))} vs {_short(theirs.get(k))}" for k in keys[:8])


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n[:60]) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_folder(folder: Path) -> None:
    """Refuse a units folder that is a symbolic link or not a folder (absent is fine)."""
    if folder.is_symlink():
        raise UnitsFolderError(
            f"{folder} is a symbolic link; headwidget writes and deletes units only in a real"
            " folder: remove the link, or write the output where it points"
        )
    if os.path.lexists(folder) and not folder.is_dir():
        raise UnitsFolderError(
            f"{folder} exists and is not a folder; move it away or write to another output"
        )


class UnitStore:
    """The units folder of one sweep (see the module doc). ``examples``: each task's number
    of examples, against which per-example effects are checked."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        fingerprint: Mapping[str, Any],
        examples: Sequence[int] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.fingerprint = dict(fingerprint)
        self.expected = Expected.of(self.fingerprint, examples)
        self._lock: FolderLock | None = None

    # the folder ----------------------------------------------------------------------------

    def open(self, lock: str = "lock", what: str = "", log: Callable[[str], None] = print) -> None:
        """Take the folder for this run: create it, or check that an existing one is of this
        sweep, holding the lock ``lock`` until :meth:`close` (see the module doc)."""
        self._check_folder()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UnitsFolderError(f"cannot create {self.folder} ({err.strerror or err})") from None
        self._check_folder()
        self._lock = acquire(self.folder, lock, what or str(self.folder), log)
        try:
            self._claim()
        except BaseException:
            self.close()
            raise

    def join(self) -> None:
        """Check the folder another process of this run opened (a torchrun rank but 0)."""
        self._check_folder()
        self._check_fingerprint()

    def close(self) -> None:
        """Give the folder back (remove this run's lock)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _check_folder(self) -> None:
        check_folder(self.folder)

    def _claim(self) -> None:
        path = self.folder / _FINGERPRINT
        if not os.path.lexists(path):
            others = [n for n in sorted(os.listdir(self.folder)) if not _unclaimed_ours(n)]
            if others:
                raise UnitsFolderError(
                    f"{self.folder} has no {_FINGERPRINT} but holds {len(others)} file(s)"
                    f" ({_names(others)}): not a units folder of headwidget's, or its fingerprint"
                    " was deleted; headwidget neither adopts nor deletes it: move it away or"
                    " write to another output"
                )
            if create_exclusive(path, json.dumps(self.fingerprint, indent=1, sort_keys=True)):
                return
        self._check_fingerprint()

    def _check_fingerprint(self) -> None:
        path = self.folder / _FINGERPRINT
        try:
            theirs = read_json(path, _FINGERPRINT_LIMIT)
            if not isinstance(theirs, dict):
                raise UnitFileError(path, f"a JSON {type(theirs).__name__}, not an object")
        except UnitFileError as err:
            raise UnitsFolderError(
                f"{path}: {err.problem}; it says which sweep the units are of: move the folder"
                " away (or delete it) and score again"
            ) from None
        found = theirs.get("format", 1)
        ours = self.fingerprint.get("format", UNITS_FORMAT)
        if found != ours:
            why = _FORMATS.get(found, "?") if isinstance(found, int) else "?"
            raise CheckpointMismatchError(
                f"{self.folder} holds units of format {_short(found)} (an older headwidget:"
                f" {why}); this one writes format {ours}: delete the folder and score again"
            )
        if theirs != json.loads(json.dumps(self.fingerprint)):
            raise CheckpointMismatchError(
                f"{self.folder} holds units of a different sweep"
                f" ({describe_mismatch(self.fingerprint, theirs)}); delete it or write to"
                " another output"
            )

    # units ---------------------------------------------------------------------------------

    def unit_path(self, unit: Unit) -> Path:
        """The file of ``unit`` (present once it is finished)."""
        return self.folder / f"{unit.key()}.npz"

    def has(self, unit: Unit) -> bool:
        return os.path.lexists(self.unit_path(unit))

    def done(self, units: Iterable[Unit]) -> list[Unit]:
        return [u for u in units if self.has(u)]

    def verify(self, units: Iterable[Unit], log: Callable[[str], None]) -> list[Unit]:
        """The finished ``units`` whose files are sound and of this sweep, and the clean files
        of their tasks checked; each file that is not is set aside (one ``log`` line)."""
        units = list(units)
        good = []
        for unit in units:
            path = self.unit_path(unit)
            if not os.path.lexists(path):
                continue
            try:
                read_unit(path, unit, self.expected)
            except UnitFileError as err:
                self._set_aside(path, f"unit {unit.key()}: {err.problem}", "scoring it again", log)
                continue
            good.append(unit)
        for task in sorted({u.task for u in units}):
            path = self._info_path(task)
            if os.path.lexists(path):
                try:
                    read_info(path, task, self.expected)
                except UnitFileError as err:
                    what = f"{path.name} (task {task}'s clean metric): {err.problem}"
                    self._set_aside(path, what, "measuring it again", log)
        return good

    def _set_aside(self, path: Path, what: str, then: str, log: Callable[[str], None]) -> None:
        target, n = path.with_name(path.name + ".rejected"), 1
        while os.path.lexists(target):
            target, n = path.with_name(f"{path.name}.rejected.{n}"), n + 1
        os.rename(path, target)  # a link is renamed itself, never followed
        log(f"{what}; set aside as {target.name}, {then}")

    def save_unit(self, record: UnitRecord) -> None:
        write_unit(self.unit_path(record.unit), record, self.expected.sweep)

    def load_unit(self, unit: Unit) -> UnitRecord:
        """The record of a finished unit; :class:`UnitFileError` if its file is not sound."""
        return read_unit(self.unit_path(unit), unit, self.expected)

    # tasks ---------------------------------------------------------------------------------

    def _info_path(self, task: int) -> Path:
        return self.folder / f"t{task:04d}-clean.json"

    def has_info(self, task: int) -> bool:
        return os.path.lexists(self._info_path(task))

    def save_info(self, info: TaskInfo) -> None:
        write_info(self._info_path(info.task), info, self.expected.sweep)

    def load_info(self, task: int) -> TaskInfo:
        return read_info(self._info_path(task), task, self.expected)

    # cleaning up ---------------------------------------------------------------------------

    def remove(self, units: Iterable[Unit], log: Callable[[str], None]) -> None:
        """Delete the files this sweep wrote for ``units`` (regular files only, never through a
        link), give the folder back and remove it; a folder still holding anything is kept,
        saying what is in it."""
        units = list(units)
        names = {self.unit_path(u).name for u in units} | {_FINGERPRINT}
        names |= {self._info_path(t).name for t in {u.task for u in units}}
        try:
            if not self.folder.is_symlink() and self.folder.is_dir():
                for entry in os.scandir(self.folder):
                    temporary = _TEMPORARY.fullmatch(entry.name)
                    base = temporary["name"] if temporary else entry.name
                    ours = base in names or (temporary is not None and is_lock_name(base))
                    if ours and stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
                        os.unlink(entry.path)
        finally:
            self.close()
        try:
            self.folder.rmdir()
        except OSError:
            left = sorted(os.listdir(self.folder)) if self.folder.is_dir() else []
            log(
                f"kept {self.folder}: it holds {len(left)} file(s) headwidget did not write or"
                f" set aside ({_names(left)})"
            )


def _unclaimed_ours(name: str) -> bool:
    """Whether ``name`` may be in a folder before its fingerprint is: a lock, a temporary file."""
    return is_lock_name(name) or _TEMPORARY.fullmatch(name) is not None
