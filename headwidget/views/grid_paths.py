"""The grid's paths between heads: ``HeadImportanceGrid(scores, paths=...)``, ``set_paths``
and ``trace_paths`` (:func:`headwidget.trace_paths`' :class:`~headwidget.HeadPaths` drawn as
arrows on each task's panel).

>>> grid = HeadImportanceGrid(scores, paths="paths.npz", path_edges=5)   # doctest: +SKIP
>>> grid.trace_paths(top=8)             # on a grid that scored its model  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import traitlets as t

from ..scores import HeadPaths
from .path_marks import PathMarks

__all__ = ["PATH_OPTIONS", "GridPaths", "as_paths", "encode_paths"]

#: The path traits that may be given to the constructor.
PATH_OPTIONS = ("path_edges",)

#: Edges drawn per task unless ``path_edges`` says otherwise.
PATH_EDGES = 10


def as_paths(
    paths: HeadPaths | str | Path, tasks: list[str], n_layers: int, n_heads: int
) -> HeadPaths:
    """``paths`` (or the file it names) checked against the grid: same layers x heads, and
    every task one of the grid's."""
    if isinstance(paths, (str, Path)):
        paths = HeadPaths.load(paths)
    if not isinstance(paths, HeadPaths):
        raise TypeError(
            f"paths= takes a HeadPaths (headwidget.trace_paths) or the path of one, not a"
            f" {type(paths).__name__}"
        )
    if (paths.n_layers, paths.n_heads) != (n_layers, n_heads):
        raise ValueError(
            f"the paths are of a model of {paths.n_layers} layers x {paths.n_heads} heads but the"
            f" grid shows {n_layers} x {n_heads}"
        )
    unknown = [task for task in paths.tasks if task not in tasks]
    if unknown:
        raise ValueError(f"the paths' task(s) {unknown} are not among the grid's tasks {tasks}")
    return paths


def encode_paths(paths: HeadPaths | None, tasks: list[str]) -> tuple[bytes, bytes, bytes]:
    """The three binary traits: int32 edges [E, 6] (column 0 the grid's task index), float32
    effects and float32 standard errors (NaN unknown), little-endian; empty without paths."""
    if paths is None or not len(paths.edges):
        return b"", b"", b""
    edges = paths.edges.astype("<i4", copy=True)
    index = np.array([tasks.index(task) for task in paths.tasks], np.int32)
    edges[:, 0] = index[edges[:, 0]]
    effect = paths.effect.astype("<f4")
    sem = paths.sem.astype("<f4")
    return edges.tobytes(), effect.tobytes(), sem.tobytes()


class GridPaths(t.HasTraits):
    """The paths half of the grid (mixed into :class:`~headwidget.HeadImportanceGrid`)."""

    path_data = t.Bytes(
        b"",
        help="int32 little-endian [n_edges, 6]: grid task index, sender layer / head,"
        " receiver layer / head (-1 -1 the logits), channel index into q k v logits",
    ).tag(sync=True)
    path_effect = t.Bytes(b"", help="float32 little-endian [n_edges]: each edge's effect").tag(
        sync=True
    )
    path_sem = t.Bytes(
        b"", help="float32 little-endian [n_edges]: its standard error, NaN unknown"
    ).tag(sync=True)
    path_edges = t.Int(PATH_EDGES, help="edges drawn per task, strongest |effect| first").tag(
        sync=True
    )

    def _init_paths(self, options: Mapping[str, Any]) -> None:
        self._paths: HeadPaths | None = None

    @t.validate("path_edges")
    def _check_path_edges(self, proposal: t.Bunch) -> int:
        value = proposal["value"]
        if value < 0:
            raise t.TraitError(f"path_edges must be an int >= 0 (0: no arrows), got {value}")
        return value

    @t.validate("path_data")
    def _check_path_data(self, proposal: t.Bunch) -> bytes:
        data = proposal["value"]
        if len(data) % 24:
            raise t.TraitError(f"path_data has {len(data)} bytes, not rows of 6 int32; use"
                               " grid.set_paths(...)")  # fmt: skip
        return data

    @property
    def paths(self) -> HeadPaths | None:
        """The paths drawn (a :class:`~headwidget.HeadPaths`), or None."""
        return self._paths

    def set_paths(self, paths: HeadPaths | str | Path | None) -> None:
        """Draw ``paths`` (:func:`headwidget.trace_paths`' HeadPaths or a saved path; same
        layers x heads, tasks among the grid's) as arrows on each task's panel, or none."""
        tasks = [task["name"] for task in self.tasks]  # type: ignore[attr-defined]
        _, n_layers, n_heads = self.shape  # type: ignore[attr-defined]
        if paths is not None:
            paths = as_paths(paths, tasks, n_layers, n_heads)
        self._paths = paths
        edges, effect, sem = encode_paths(paths, tasks)
        with self.hold_sync():  # type: ignore[attr-defined]
            self.path_data, self.path_effect, self.path_sem = edges, effect, sem

    def _paths_follow(self, scores: Any) -> None:
        """After the grid shows other scores: paths that no longer fit are dropped."""
        if self._paths is None:
            return
        try:
            self.set_paths(self._paths)
        except ValueError:
            self.set_paths(None)

    def trace_paths(self, model: Any = None, tokenizer: Any = None, tasks: Any = None,
                    **options: Any) -> HeadPaths:  # fmt: skip
        """Trace the paths between each task's important heads with
        :func:`headwidget.trace_paths` and draw them. A grid that scored its model needs no
        model, tokenizer or tasks (it holds a weak reference to the model); by default the
        grid's scores choose the heads (``scores=``); other ``options`` go to ``trace_paths``.

        >>> paths = grid.trace_paths(top=8)      # doctest: +SKIP
        """
        from ..scoring.paths import trace_paths

        held = self._held_model()  # type: ignore[attr-defined]
        known = self._held  # type: ignore[attr-defined]
        model = model if model is not None else (held[0] if held else None)
        tokenizer = tokenizer if tokenizer is not None else (held[1] if held else None)
        tasks = tasks if tasks is not None else (known[2] if known else None)
        if model is None or tokenizer is None or not tasks:
            raise ValueError(
                "this grid holds no model (it was given scores, or the model was deleted):"
                " grid.trace_paths(model, tokenizer, tasks)"
            )
        if held is not None and model is held[0] and held[2] is not None:
            options.setdefault("head_layout", held[2])
        if self._scores is not None and options.get("heads") is None:  # type: ignore[attr-defined]
            options.setdefault("scores", self._scores)  # type: ignore[attr-defined]
        options.setdefault("progress", False)
        paths = trace_paths(model, tokenizer, tasks, **options)
        self.set_paths(paths)
        return paths

    def path_marks(self) -> PathMarks | None:
        """The arrows a figure of the view draws (:class:`.path_marks.PathMarks`)."""
        if self._paths is None or self.path_edges <= 0:
            return None
        return PathMarks(self._paths, self.path_edges)

    def path_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The binary traits decoded: edges int32 [E, 6], effect and sem float32 [E]."""
        if not self.path_data:
            return None
        edges = np.frombuffer(self.path_data, "<i4").reshape(-1, 6).copy()
        effect = np.frombuffer(self.path_effect, "<f4").copy()
        sem = np.frombuffer(self.path_sem, "<f4").copy()
        return edges, effect, sem
