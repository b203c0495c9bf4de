"""The score file's contents: what :meth:`HeadScores.save` writes and :meth:`HeadScores.load`
reads, on top of :mod:`headwidget.scores.file` (the ``.npz`` archive read as untrusted data).

Format (version 4): an uncompressed NumPy ``.npz`` archive with no pickled objects:
``values`` (float32, ``[n_tasks, n_layers, n_heads]``), ``header`` (uint8, the UTF-8
bytes of a JSON object ``{"format": "headwidget.scores", "version": 4, "tasks": [...],
"categories": {...}, "baseline": {...}, "accuracy": {...}, "method": "...",
"descriptions": {...}, "meta": {...}, "meta_nonfinite": [...]}``) and, only when some
cells are approximate, ``exact`` (bool, the shape of ``values``). Version 3 adds, per
task ``t`` (its index in ``tasks``) that has them, ``effects_<t>`` (float32
``[n_layers, n_heads, n_examples]``) and ``clean_<t>`` (float64 ``[n_examples]``), and
``"examples": {task: [[prompt, answer], ...]}`` in the header. Version 4 adds, when
some task has per-example effects, ``meta["uncertainty"]``: the procedures and defaults
of ``HeadScores.sem``, ``reliability``, ``significant`` and ``examples_needed``
(:data:`headwidget.scores.uncertainty.SETTINGS`: seed, splits, test, alpha), which
reproduce them from the file. Version 1 files (no ``accuracy``, ``method`` or
``exact``) load as exact ablation scores; version 1 and 2 files load with no
per-example effects; version 1 to 3 files load exactly as before. Non-finite floats in
the header are written as strings (``"nan"``, ``"inf"``, ``"-inf"``);
``meta_nonfinite`` lists where they are in ``meta`` (each as a path of keys and list
indices), so that :meth:`HeadScores.load` reads them back as floats and leaves strings such as
``"nan"`` alone.

``meta`` is stored as JSON, so it comes back as JSON values: tuples and other sequences
become lists, dict keys become strings, NumPy scalars become Python numbers and any
other object becomes its ``str()``.

>>> FORMAT_NAME, FORMAT_VERSION
('headwidget.scores', 4)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import uncertainty
from .file import ScoresFileError, header_field, read_archive, write_archive

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "jsonable_meta",
    "read_scores",
    "restore_nonfinite",
    "write_scores",
]

FORMAT_NAME = "headwidget.scores"
FORMAT_VERSION = 4


def write_scores(scores: Any, path: str | Path) -> Path:
    """Write ``scores`` (a :class:`~headwidget.HeadScores`) to ``path`` as the module doc says
    (``.npz`` appended if missing, in any letter case), atomically; return the path."""

    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
    nonfinite: list[list[str | int]] = []
    meta = dict(scores.meta)
    if scores.effects:  # also when effects were added after construction
        meta["uncertainty"] = uncertainty.SETTINGS
    meta = _jsonable(meta, [], nonfinite)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "tasks": scores.tasks,
        "categories": scores.categories,
        "baseline": {k: _json_float(v) for k, v in scores.baseline.items()},
        "accuracy": {k: _json_float(v) for k, v in scores.accuracy.items()},
        "method": scores.method,
        "descriptions": scores.descriptions,
        "meta": meta,
        "meta_nonfinite": nonfinite,
    }
    arrays = {"values": scores.values}
    if scores.exact is not None:
        arrays["exact"] = scores.exact
    for t, task in enumerate(scores.tasks):
        if task in scores.effects:
            arrays[f"effects_{t}"] = scores.effects[task]
        if task in scores.clean:
            arrays[f"clean_{t}"] = scores.clean[task]
    if scores.examples:
        header["examples"] = {k: [list(pair) for pair in v] for k, v in scores.examples.items()}
    return write_archive(path, arrays, header)


def read_scores(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The path read (``.npz`` appended when only that exists) and the keyword arguments of
    :class:`~headwidget.HeadScores` read from it. Never unpickles; anything but a valid file
    raises :class:`~headwidget.scores.file.ScoresFileError` naming the file and the problem."""

    path = Path(path)
    if (
        not path.exists()
        and path.suffix.lower() != ".npz"
        and path.with_name(path.name + ".npz").exists()
    ):
        path = path.with_name(path.name + ".npz")
    arrays, header = read_archive(path)
    if header.get("format") != FORMAT_NAME:
        shown = str(header.get("format"))[:60]
        raise ScoresFileError(path, f"its header names format {shown!r}, not {FORMAT_NAME!r}")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ScoresFileError(
            path, f"the header's 'version' must be a positive integer, got {version!r}"[:200]
        )
    if version > FORMAT_VERSION:
        raise ScoresFileError(
            path,
            f"it was written by a newer headwidget (format version {version}, this one reads"
            f" up to {FORMAT_VERSION}); upgrade headwidget",
        )
    fields = {
        key: header_field(header, key, kind, path, default)
        for key, kind, default in (
            ("tasks", "str list", None),
            ("categories", "category map", {}),
            ("baseline", "float map", {}),
            ("accuracy", "float map", {}),
            ("method", "str", "ablation"),
            ("descriptions", "str map", {}),
            ("meta", "object", {}),
            ("meta_nonfinite", "path list", []),
        )
    }
    examples = header.get("examples", {})
    if not isinstance(examples, dict) or not all(
        isinstance(pairs, list)
        and all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            for pair in pairs
        )
        for pairs in examples.values()
    ):
        raise ScoresFileError(
            path, "the header's 'examples' must map tasks to lists of [prompt, answer]"
        )
    tasks = fields["tasks"]
    per_task: dict[str, dict[str, np.ndarray]] = {"effects": {}, "clean": {}}
    for key, array in arrays.items():
        kind, _, index = key.partition("_")
        if kind in per_task and int(index) < len(tasks):
            per_task[kind][tasks[int(index)]] = array
    meta = fields["meta"]
    try:
        _restore_nonfinite(meta, fields["meta_nonfinite"])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ScoresFileError(path, f"bad 'meta_nonfinite' ({err!r})"[:300]) from None
    return path, {
        "values": arrays["values"],
        "tasks": fields["tasks"],
        "categories": fields["categories"],
        "baseline": fields["baseline"],
        "meta": meta,
        "descriptions": fields["descriptions"],
        "accuracy": fields["accuracy"],
        "method": fields["method"],
        "exact": arrays.get("exact"),
        "effects": per_task["effects"],
        "clean": per_task["clean"],
        "examples": examples,
    }


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _jsonable(value: Any, path: list[str | int], nonfinite: list[list[str | int]]) -> Any:
    """``value`` as JSON values; appends the path (keys and indices) of each non-finite float,
    which is written as a string, to ``nonfinite``."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, [*path, str(k)], nonfinite) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            nonfinite.append(path)
        return _json_float(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, Sequence):
        return [_jsonable(v, [*path, i], nonfinite) for i, v in enumerate(value)]
    return str(value)


def _restore_nonfinite(meta: Any, paths: Sequence[Sequence[str | int]]) -> None:
    """Turn the strings at ``paths`` (from ``_jsonable``) back into floats, in place."""
    for path in paths:
        if not path:
            raise ValueError("empty path")
        parent = meta
        for key in path[:-1]:
            parent = parent[key]
        if not isinstance(parent[path[-1]], str):
            raise TypeError(f"expected a string at {list(path)}")
        parent[path[-1]] = float(parent[path[-1]])


def jsonable_meta(meta: Mapping[str, Any]) -> tuple[Any, list[list[str | int]]]:
    """``meta`` as JSON values (as :func:`write_scores` stores it) and the paths of its
    non-finite floats, which are written as strings; :func:`restore_nonfinite` undoes it.

    >>> jsonable_meta({"r": float("nan"), "k": (1, 2)})
    ({'r': 'nan', 'k': [1, 2]}, [['r']])
    """
    nonfinite: list[list[str | int]] = []
    return _jsonable(meta, [], nonfinite), nonfinite


def restore_nonfinite(meta: Any, paths: Sequence[Sequence[str | int]]) -> None:
    """Turn the strings at ``paths`` (from :func:`jsonable_meta`) back into floats, in place;
    a ``KeyError``, ``IndexError``, ``TypeError`` or ``ValueError`` for a bad path."""
    _restore_nonfinite(meta, paths)
