"""The HeadPaths file: what :meth:`HeadPaths.save` writes and :meth:`HeadPaths.load` reads, on
top of :mod:`headwidget.scores.file` (an ``.npz`` read as untrusted data, written atomically).

Format ``"headwidget.paths"``, version 1: an uncompressed NumPy ``.npz`` archive with no
pickled objects: ``edges`` (int32 ``[n_edges, 6]``: task index, sender layer, sender head,
receiver layer, receiver head, index of the channel in ``via``; the receiver ``-1, -1`` for the
logits), ``effect`` (float32 ``[n_edges]``), ``exact`` (bool ``[n_edges]``, only when some
effect is an estimate), per task ``t`` (its index in ``tasks``) ``heads_<t>`` (int32
``[k, 2]``: its chosen heads) and, where kept, ``effects_<t>`` (float32
``[its edges, n_examples]``, in the order of its rows of ``edges``) and ``clean_<t>`` (float64
``[n_examples]``), and ``header`` (uint8, the UTF-8 bytes of a JSON object ``{"format":
"headwidget.paths", "version": 1, "tasks": [...], "via": ["q", "k", "v", "logits"],
"n_layers": L, "n_heads": H, "method": "...", "baseline": {...}, "meta": {...},
"meta_nonfinite": [...]}``; non-finite floats as in the HeadScores file).

>>> PATHS_FORMAT, PATHS_VERSION
('headwidget.paths', 1)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .file import MAX_CELLS, ScoresFileError, header_field, read_arrays, write_archive
from .format import jsonable_meta, restore_nonfinite

__all__ = ["PATHS_FORMAT", "PATHS_VERSION", "PathsFileError", "read_paths", "write_paths"]

PATHS_FORMAT = "headwidget.paths"
PATHS_VERSION = 1


class PathsFileError(ScoresFileError):
    """A file that is not a valid HeadPaths file (``path`` and ``problem`` are attributes).

    >>> str(PathsFileError("x.npz", "the file is empty"))
    "'x.npz' is not a HeadPaths file: the file is empty"
    """

    def __init__(self, path: Any, problem: str) -> None:
        super().__init__(path, problem)
        self.args = (f"{self.path!r} is not a HeadPaths file: {problem}",)


def _npz(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix.lower() == ".npz" else path.with_name(path.name + ".npz")


def write_paths(paths: Any, path: str | Path) -> Path:
    """Write ``paths`` (a :class:`~headwidget.scores.paths.HeadPaths`) to ``path`` (``.npz``
    appended if missing), atomically; return the path."""
    meta, nonfinite = jsonable_meta(paths.meta)
    header = {
        "format": PATHS_FORMAT,
        "version": PATHS_VERSION,
        "tasks": paths.tasks,
        "via": list(paths.via),
        "n_layers": paths.n_layers,
        "n_heads": paths.n_heads,
        "method": paths.method,
        "baseline": {k: v if math.isfinite(v) else str(v) for k, v in paths.baseline.items()},
        "meta": meta,
        "meta_nonfinite": nonfinite,
    }
    arrays: dict[str, np.ndarray] = {"edges": paths.edges, "effect": paths.effect}
    if paths.exact is not None:
        arrays["exact"] = paths.exact
    for t, task in enumerate(paths.tasks):
        arrays[f"heads_{t}"] = paths.heads[task]
        if task in paths.effects:
            arrays[f"effects_{t}"] = paths.effects[task]
        if task in paths.clean:
            arrays[f"clean_{t}"] = paths.clean[task]
    return write_archive(_npz(path), arrays, header)


def _checker(path: Path) -> Any:
    """Which arrays a HeadPaths file may hold, checked from their ``.npy`` headers."""
    per_example = [0]

    def check(name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        kind, _, index = name.partition("_")
        rules = {
            "edges": ("i", 2), "effect": ("f", 1), "exact": ("b", 1), "heads": ("i", 2),
            "effects": ("f", 2), "clean": ("f", 1),
        }  # fmt: skip
        if kind not in rules or bool(index) != (kind in ("heads", "effects", "clean")):
            raise PathsFileError(path, f"unexpected array {name[:60]!r}")
        if index and not (index.isdigit() and index.isascii() and len(index) < 10):
            raise PathsFileError(path, f"unexpected array {name[:60]!r}")
        want, ndim = rules[kind]
        if dtype.kind != want or len(shape) != ndim:
            raise PathsFileError(
                path, f"{name!r} must be {ndim}-D of kind {want!r}, got {dtype} of shape {shape}"
            )
        if (kind == "edges" and shape[1] != 6) or (kind == "heads" and shape[1] != 2):
            raise PathsFileError(path, f"{name!r} has shape {shape}")
        if kind in ("effects", "clean"):
            per_example[0] += math.prod(shape)
            if per_example[0] > MAX_CELLS:
                raise PathsFileError(
                    path, f"the per-example arrays hold over {MAX_CELLS:,} cells together"
                )

    return check


def _header_check(path: Path) -> Any:
    def check(header: dict[str, Any]) -> None:
        if header.get("format") != PATHS_FORMAT:
            shown = str(header.get("format"))[:60]
            raise PathsFileError(path, f"its header names format {shown!r}, not {PATHS_FORMAT!r}")
        version = header.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise PathsFileError(
                path, f"the header's 'version' must be a positive integer, got {version!r}"[:200]
            )
        if version > PATHS_VERSION:
            raise PathsFileError(
                path,
                f"it was written by a newer headwidget (format version {version}, this one reads"
                f" up to {PATHS_VERSION}); upgrade headwidget",
            )

    return check


def read_paths(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The path read (``.npz`` appended when only that exists) and the keyword arguments of
    :class:`~headwidget.scores.paths.HeadPaths` read from it; never unpickles. Anything but
    a valid file raises :class:`PathsFileError` naming the file and the problem."""
    path = Path(path)
    if not path.exists() and _npz(path).exists():
        path = _npz(path)
    try:
        arrays, header = read_arrays(path, _checker(path), "HeadPaths", _header_check(path))
    except PathsFileError:
        raise
    except ScoresFileError as err:
        raise PathsFileError(path, err.problem) from None
    for key in ("edges", "effect"):
        if key not in arrays:
            raise PathsFileError(path, f"it has no {key!r} array")
    try:
        fields = {
            key: header_field(header, key, kind, path, default)
            for key, kind, default in (
                ("tasks", "str list", None), ("via", "str list", None),
                ("method", "str", "exact"), ("baseline", "float map", {}),
                ("meta", "object", {}), ("meta_nonfinite", "path list", []),
            )
        }  # fmt: skip
    except ScoresFileError as err:
        raise PathsFileError(path, err.problem) from None
    sizes = {key: header.get(key) for key in ("n_layers", "n_heads")}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes.values()):
        raise PathsFileError(path, f"the header's sizes must be positive integers, got {sizes}")
    meta = fields["meta"]
    try:
        restore_nonfinite(meta, fields["meta_nonfinite"])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise PathsFileError(path, f"bad 'meta_nonfinite' ({err!r})"[:300]) from None
    tasks = fields["tasks"]
    per_task: dict[str, dict[str, np.ndarray]] = {"heads": {}, "effects": {}, "clean": {}}
    for key, array in arrays.items():
        kind, _, index = key.partition("_")
        if kind in per_task:
            if int(index) >= len(tasks):
                raise PathsFileError(path, f"{key!r} is for task {index}; there are {len(tasks)}")
            per_task[kind][tasks[int(index)]] = array
    return path, {
        "tasks": tasks,
        "n_layers": sizes["n_layers"],
        "n_heads": sizes["n_heads"],
        "heads": per_task["heads"],
        "edges": arrays["edges"],
        "effect": arrays["effect"],
        "exact": arrays.get("exact"),
        "effects": per_task["effects"],
        "clean": per_task["clean"],
        "baseline": fields["baseline"],
        "method": fields["method"],
        "meta": meta,
        "via": fields["via"],
    }
