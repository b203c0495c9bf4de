"""One unit's file and one task's clean file in a units folder, read as untrusted input.

A unit file (``t0003-l012.npz``, or ``t0003-all.npz`` for a whole task) is an uncompressed
NumPy archive of exactly these arrays (units format :data:`UNITS_FORMAT`):

- ``values`` float32 and ``exact`` bool, both [rows, n_heads] (rows: 1 for a (task, layer)
  unit, n_layers for a whole task);
- ``unit`` int64 [2]: its task and layer (-1: every layer);
- ``sweep`` uint8 [64]: the hex digest of the sweep's fingerprint (:func:`sweep_id`), so that a
  unit of another sweep is never taken for one of this sweep, even with ``fingerprint.json``
  gone;
- ``effects`` float32 [rows, n_heads, n_examples], exactly when the sweep keeps per-example
  effects.

Reading checks the file's size, the member names, each ``.npy`` header's dtype and shape
against what this sweep expects (:class:`Expected`) before any data is read, and every CRC.
Anything else raises :class:`UnitFileError`, whose ``problem`` says in a few words what is
wrong. A task's clean file (``t0003-clean.json``) is checked likewise: its size, JSON depth,
field types and sweep digest.

>>> expected = Expected(sweep_id({"model": "m"}), n_layers=2, n_heads=4, keep_examples=False)
>>> write_unit(Path(tmp) / "t0000-l000.npz", record, expected.sweep)  # doctest: +SKIP
>>> read_unit(Path(tmp) / "t0000-l000.npz", Unit(0, 0), expected).values.shape  # doctest: +SKIP
(1, 4)
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..scores.file import json_depth, write_atomic
from .units import Unit

__all__ = [
    "MAX_JSON_DEPTH",
    "UNITS_FORMAT",
    "Expected",
    "TaskInfo",
    "UnitFileError",
    "UnitRecord",
    "UnitsFolderError",
    "read_info",
    "read_json",
    "read_unit",
    "sweep_id",
    "write_info",
    "write_unit",
]

UNITS_FORMAT = 3
"""The units folder's format, ``fingerprint["format"]``: 3 stamps every unit and clean file
with its sweep; 2 did not; 1 kept no per-example effects. Folders of another format are
refused."""
MAX_JSON_DEPTH = 100
"""Deepest nesting of lists and objects accepted in a JSON file of the units folder."""

_NPY_HEADER_LIMIT = 10_000  # numpy's own default limit on a .npy header's text
_ZIP_SLACK = 4096  # bytes of zip and .npy headers per member, beyond the data
_DAMAGE = (
    zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error,
    NotImplementedError, zlib.error, SyntaxError, TypeError, tokenize.TokenError, OverflowError,
)  # fmt: skip
"""What reading damaged zip or .npy data raises (numpy parses .npy headers with ast)."""


class UnitsFolderError(ValueError):
    """A units folder that cannot be used as it is; the message says what is wrong and what
    to do, in one line."""


class UnitFileError(ValueError):
    """A unit or clean file that cannot be read or does not belong to the sweep.

    >>> str(UnitFileError("u/t0000-l000.npz", "empty"))
    'u/t0000-l000.npz: empty'
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


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


def sweep_id(fingerprint: Mapping[str, Any]) -> str:
    """The sweep's id stamped in each of its files: the SHA-256 of its canonical JSON."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Expected:
    """What the files of one sweep hold: its id, sizes, whether units keep per-example effects
    and (where known) each task's number of examples."""

    sweep: str
    n_layers: int
    n_heads: int
    keep_examples: bool
    examples: tuple[int, ...] | None = None

    @classmethod
    def of(cls, fingerprint: Mapping[str, Any], examples: Sequence[int] | None = None) -> Expected:
        """From a sweep's fingerprint (``shape``, ``keep_examples``) and task sizes."""
        n_layers, n_heads = (int(n) for n in fingerprint["shape"])
        sizes = None if examples is None else tuple(int(n) for n in examples)
        return cls(
            sweep_id(fingerprint), n_layers, n_heads, bool(fingerprint["keep_examples"]), sizes
        )

    def n_examples(self, task: int) -> int | None:
        if self.examples is None or not 0 <= task < len(self.examples):
            return None
        return self.examples[task]


def write_unit(path: Path, record: UnitRecord, sweep: str) -> None:
    """Write ``record`` to ``path`` atomically, stamped with the sweep id ``sweep``."""
    arrays = {
        "sweep": np.frombuffer(sweep.encode("ascii"), np.uint8),
        "unit": np.array([record.unit.task, record.unit.layer], np.int64),
        "values": np.asarray(record.values, np.float32),
        "exact": np.asarray(record.exact, bool),
    }
    if record.effects is not None:
        arrays["effects"] = np.asarray(record.effects, np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, lambda fh: fh.write(buffer.getvalue()))


def read_unit(path: Path, unit: Unit, expected: Expected) -> UnitRecord:
    """The record of ``unit`` in ``path``, checked to be of this sweep, this unit, and of the
    shapes and dtypes the sweep writes; :class:`UnitFileError` otherwise."""
    rows = expected.n_layers if unit.whole_task else 1
    n_examples = expected.n_examples(unit.task)
    wanted: dict[str, tuple[str, tuple[int, ...]]] = {
        "sweep": ("u1", (64,)),
        "unit": ("i8", (2,)),
        "values": ("f4", (rows, expected.n_heads)),
        "exact": ("b1", (rows, expected.n_heads)),
    }
    if expected.keep_examples:
        wanted["effects"] = (
            "f4",
            (rows, expected.n_heads, -1 if n_examples is None else n_examples),
        )
    most = (n_examples if n_examples is not None else 2**20) * rows * expected.n_heads * 4
    size = _regular_size(path, most + 4 * rows * expected.n_heads + _ZIP_SLACK * len(wanted))
    if size == 0:
        raise UnitFileError(path, "empty")
    try:
        with open(path, "rb") as fh:
            arrays = _read_archive(fh, path, wanted, expected.sweep)
    except UnitFileError:
        raise
    except _DAMAGE as err:
        raise UnitFileError(path, f"truncated or damaged ({_said(err)})") from None
    stored = (int(arrays["unit"][0]), int(arrays["unit"][1]))
    if stored != (unit.task, unit.layer):
        raise UnitFileError(path, f"holds unit {Unit(*stored).key()}, not {unit.key()}")
    return UnitRecord(unit, arrays["values"], arrays["exact"], arrays.get("effects"))


def _said(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:120]}" if text else type(err).__name__


def _regular_size(path: Path, limit: int) -> int:
    """The size of the regular file ``path`` (not a link), at most ``limit`` bytes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise UnitFileError(path, "missing") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnitFileError(path, "a symbolic link, not a file headwidget wrote")
    if not stat.S_ISREG(info.st_mode):
        raise UnitFileError(path, "not a regular file")
    if info.st_size > limit:
        raise UnitFileError(
            path, f"{info.st_size:,} bytes, more than this sweep writes ({limit:,})"
        )
    return info.st_size


def _read_archive(
    fh: io.BufferedReader, path: Path, wanted: Mapping[str, tuple[str, tuple[int, ...]]], sweep: str
) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(fh):
        raise UnitFileError(path, "truncated or damaged (not a complete .npz archive)")
    fh.seek(0)
    with zipfile.ZipFile(fh) as archive:
        members = {}
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if name in members or not info.filename.endswith(".npy"):
                raise UnitFileError(path, f"unexpected member {info.filename[:40]!r}")
            members[name] = info
        if "sweep" not in members:
            raise UnitFileError(path, "not stamped with its sweep (an older headwidget's unit?)")
        out = {"sweep": _read_member(archive, members["sweep"], path, "sweep", *wanted["sweep"])}
        theirs = out["sweep"].tobytes().decode("ascii", "replace")
        if theirs != sweep:
            raise UnitFileError(
                path, f"belongs to another sweep (sweep {theirs[:12]}…, not {sweep[:12]}…)"
            )
        missing = [name for name in wanted if name not in members]
        if missing == ["effects"]:
            raise UnitFileError(path, "no per-example effects, which this sweep keeps")
        if missing or len(members) != len(wanted):
            extra = sorted(set(members) - set(wanted))
            raise UnitFileError(
                path,
                f"arrays {sorted(members)[:8]}, expected {sorted(wanted)}"
                + (f" ({extra[:3]} unexpected)" if extra else ""),
            )
        for name, info in members.items():
            if name != "sweep":
                out[name] = _read_member(archive, info, path, name, *wanted[name])
    return out


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str, kind: str,
    shape: tuple[int, ...],
) -> np.ndarray:  # fmt: skip
    """One array, after checking its declared dtype, shape and size against the sweep's."""
    if info.flag_bits & 0x1:
        raise UnitFileError(path, f"array {name!r} is encrypted")
    want = np.dtype(kind)
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise UnitFileError(path, f"array {name!r} has .npy format {version}")
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        got, fortran, dtype = read(member, max_header_size=_NPY_HEADER_LIMIT)
        fits = len(got) == len(shape) and all(w in (-1, g) for w, g in zip(shape, got, strict=True))
        if dtype.kind != want.kind or dtype.itemsize != want.itemsize or not fits:
            shown = tuple("n" if n == -1 else n for n in shape)
            raise UnitFileError(
                path, f"{name!r} is {dtype} of shape {got}, not {want} of shape {shown}"
            )
        n_bytes = math.prod(got) * dtype.itemsize
        if member.tell() + n_bytes != info.file_size:
            raise UnitFileError(
                path, f"truncated or damaged ({name!r} is not the size its header says)"
            )
        data = member.read(n_bytes)
        if len(data) != n_bytes:
            raise UnitFileError(path, f"truncated or damaged ({name!r} is short)")
        member.read(1)  # read to the member's end, so that zipfile checks its CRC
    array = np.frombuffer(data, dtype=dtype).reshape(got, order="F" if fortran else "C")
    if want.kind == "b":
        return array.view(np.uint8) != 0
    return array.astype(want.newbyteorder("="))


# -- a task's clean file ---------------------------------------------------------------------


def write_info(path: Path, info: TaskInfo, sweep: str) -> None:
    """Write ``info`` as JSON to ``path`` atomically, stamped with the sweep id ``sweep``."""
    payload = {
        "format": UNITS_FORMAT,
        "sweep": sweep,
        "task": info.task,
        "baseline": info.baseline,
        "accuracy": info.accuracy,
        "meta": info.meta,
        "clean": None if info.clean is None else np.asarray(info.clean, np.float64).tolist(),
    }
    text = json.dumps(payload).encode("utf-8")
    write_atomic(path, lambda fh: fh.write(text))


def read_info(path: Path, task: int, expected: Expected) -> TaskInfo:
    """The clean file of ``task`` in ``path``, checked; :class:`UnitFileError` otherwise."""
    n_examples = expected.n_examples(task)
    payload = read_json(path, 16 * 2**20 + 32 * (n_examples or 2**20))
    if not isinstance(payload, dict):
        raise UnitFileError(path, f"a JSON {type(payload).__name__}, not an object")
    missing = [
        k for k in ("sweep", "task", "baseline", "accuracy", "meta", "clean") if k not in payload
    ]
    if missing:
        raise UnitFileError(path, f"no {missing[0]!r} (truncated or not headwidget's)")
    if payload.get("sweep") != expected.sweep:
        raise UnitFileError(path, "belongs to another sweep (or to an older headwidget)")
    if payload.get("task") != task or isinstance(payload.get("task"), bool):
        raise UnitFileError(path, f"is for task {str(payload.get('task'))[:20]}, not {task}")
    for key in ("baseline", "accuracy"):
        if not (payload.get(key) is None or _number(payload[key])):
            raise UnitFileError(path, f"its {key!r} is not a number")
    if not isinstance(payload.get("meta"), dict):
        raise UnitFileError(path, "its 'meta' is not an object")
    clean = payload.get("clean")
    if expected.keep_examples:
        if not isinstance(clean, list) or not all(_number(x) for x in clean):
            raise UnitFileError(path, "no per-example clean metric, which this sweep keeps")
        if n_examples is not None and len(clean) != n_examples:
            raise UnitFileError(path, f"{len(clean)} clean metrics for {n_examples} examples")
    elif clean is not None:
        raise UnitFileError(path, "per-example clean metrics, which this sweep does not keep")
    return TaskInfo(
        task,
        None if payload.get("baseline") is None else float(payload["baseline"]),
        None if payload.get("accuracy") is None else float(payload["accuracy"]),
        payload["meta"],
        None if clean is None else np.asarray(clean, np.float64),
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and _fits(value)


def _fits(value: int | float) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def read_json(path: Path, limit: int) -> Any:
    """The JSON value in the regular file ``path`` of at most ``limit`` bytes, nested at most
    :data:`MAX_JSON_DEPTH` deep; :class:`UnitFileError` for anything else."""
    size = _regular_size(path, limit)
    try:
        with open(path, "rb") as fh:
            data = fh.read(size + 1)  # not limit: read(n) sets n bytes aside first
    except OSError as err:
        raise UnitFileError(path, f"unreadable ({_said(err)})") from None
    if len(data) > size:
        raise UnitFileError(path, "grew while it was read (is another run writing it?)")
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UnitFileError(path, "not UTF-8 text") from None
    except RecursionError:
        raise UnitFileError(path, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as err:
        raise UnitFileError(path, f"not valid JSON ({_said(err)})") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise UnitFileError(path, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value
