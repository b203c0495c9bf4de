"""HeadPaths: how much each important head's output reaches another head's query, key or value,
or the logits, directly: the result of :func:`headwidget.trace_paths`.

One row per *edge* ``sender -> receiver via channel``: ``effect`` is the mean over the task's
examples of ``metric(clean) - metric(patched)``, where only the receiver's ``via`` input (its
query, key or value, or the final norm's input for ``"logits"``) is computed from the residual
stream without the sender's own output. The arrays are plain numbers and the names plain
strings, so a front end can take them as they are.

>>> import numpy as np
>>> paths = HeadPaths(
...     tasks=["copying"], n_layers=2, n_heads=2, heads={"copying": np.array([[0, 1], [1, 0]])},
...     edges=np.array([[0, 0, 1, 1, 0, 1], [0, 0, 1, -1, -1, 3]]),
...     effect=np.array([0.5, -0.1]))
>>> [str(edge) for edge in paths.top_edges("copying", 2)]
['L0H1 -> L1H0 via k: +0.5', 'L0H1 -> logits: -0.1']
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .paths_format import PathsFileError, read_paths, write_paths
from .uncertainty import standard_error

if TYPE_CHECKING:
    import pandas

__all__ = ["EDGE_COLUMNS", "VIA", "HeadPaths", "PathEdge"]

VIA: tuple[str, ...] = ("q", "k", "v", "logits")
"""The channels an edge goes through: the receiver's query, key or value, or the logits."""

EDGE_COLUMNS: tuple[str, ...] = (
    "task", "sender_layer", "sender_head", "receiver_layer", "receiver_head", "via",
)  # fmt: skip
"""The columns of :attr:`HeadPaths.edges`."""


class PathEdge(NamedTuple):
    """One edge of :meth:`HeadPaths.top_edges`: ``receiver`` None means the logits."""

    task: str
    sender: tuple[int, int]
    receiver: tuple[int, int] | None
    via: str
    effect: float
    sem: float
    exact: bool

    def __str__(self) -> str:
        sender = "L{}H{}".format(*self.sender)
        target = (
            "logits" if self.receiver is None else "L{}H{} via {}".format(*self.receiver, self.via)
        )
        spread = "" if math.isnan(self.sem) else f" ± {self.sem:.2g}"
        return f"{sender} -> {target}: {self.effect:+.4g}{spread}"


@dataclass
class HeadPaths:
    """Direct paths between a task's important heads, and from each to the logits.

    Attributes:
        tasks: the task names.
        n_layers, n_heads: the model's layers and query heads per layer.
        heads: per task, int ``[k, 2]``: the heads whose paths were traced (layer, head).
        edges: int32 ``[n_edges, 6]``, columns :data:`EDGE_COLUMNS`: task index, sender layer
            and head, receiver layer and head (``-1, -1`` for the logits), index into
            :attr:`via`. A task's edges are in order of sender, receiver, channel.
        effect: float32 ``[n_edges]``, in the metric's units; positive: the path helps.
        exact: bool ``[n_edges]``, which effects are exact (None: all of them); attribution's
            are first-order estimates except where refined.
        effects: per task, float32 ``[its edges, n_examples]``: each example's effect, rows in
            the order of the task's rows of ``edges`` (their mean is ``effect``).
        clean: per task, float64 ``[n_examples]``: the clean metric of each example.
        baseline: per task, the mean clean metric.
        method: ``"exact"`` or ``"attribution"``.
        meta: provenance (model, metric, ablation, via, the heads' source, agreement, ...).
        via: the channel names the last column of ``edges`` indexes (:data:`VIA`).
    """

    tasks: list[str]
    n_layers: int
    n_heads: int
    heads: dict[str, np.ndarray]
    edges: np.ndarray
    effect: np.ndarray
    exact: np.ndarray | None = None
    effects: dict[str, np.ndarray] = field(default_factory=dict)
    clean: dict[str, np.ndarray] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    method: str = "exact"
    meta: dict[str, Any] = field(default_factory=dict)
    via: list[str] = field(default_factory=lambda: list(VIA))

    def __post_init__(self) -> None:
        self.tasks = [str(t) for t in self.tasks]
        repeated = sorted(t for t, n in Counter(self.tasks).items() if n > 1)
        if repeated:
            raise ValueError(f"HeadPaths task names must be unique; repeated: {repeated}")
        if list(self.via) != list(VIA):
            raise ValueError(f"HeadPaths.via must be {list(VIA)}, got {list(self.via)[:8]}")
        self.via = list(VIA)
        for name in ("n_layers", "n_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"HeadPaths.{name} must be a positive int, got {value!r}")
            setattr(self, name, int(value))
        self.edges = self._int_array(self.edges, "edges", 6)
        n_edges = len(self.edges)
        self.effect = self._float_array(self.effect, "effect", (n_edges,), np.float32)
        if self.exact is not None:
            exact = np.asarray(self.exact)
            if exact.dtype != np.bool_ or exact.shape != (n_edges,):
                raise ValueError(f"HeadPaths.exact must be bool [{n_edges}], got {exact.shape}")
            self.exact = None if exact.all() else np.ascontiguousarray(exact)
        self._check_edges()
        unknown = set(self.heads) - set(self.tasks)
        if unknown:
            raise ValueError(f"heads given for unknown task(s) {sorted(unknown)}")
        self.heads = {t: self._int_array(self.heads.get(t, np.zeros((0, 2))), f"heads[{t!r}]", 2)
                      for t in self.tasks}  # fmt: skip
        for task, chosen in self.heads.items():
            if ((chosen < 0) | (chosen >= [self.n_layers, self.n_heads])).any():
                raise ValueError(f"heads[{task!r}] holds a head outside the model")
        for name in ("effects", "clean", "baseline"):
            unknown = set(getattr(self, name)) - set(self.tasks)
            if unknown:
                raise ValueError(f"{name} given for unknown task(s) {sorted(unknown)}")
        counts = np.bincount(self.edges[:, 0], minlength=len(self.tasks))
        for t, task in enumerate(self.tasks):
            if task in self.effects:
                shape = (int(counts[t]), -1)
                self.effects[task] = self._float_array(
                    self.effects[task], f"effects[{task!r}]", shape, np.float32
                )
            if task in self.clean:
                self.clean[task] = self._float_array(
                    self.clean[task], f"clean[{task!r}]", (-1,), np.float64
                )
            sizes = {len(self.clean[task])} if task in self.clean else set()
            if task in self.effects:
                sizes.add(self.effects[task].shape[1])
            if len(sizes) > 1:
                raise ValueError(f"task {task!r} has different numbers of examples: {sizes}")
        self.baseline = {k: float(v) for k, v in self.baseline.items()}
        self.method, self.meta = str(self.method), dict(self.meta)

    @staticmethod
    def _int_array(values: Any, name: str, width: int) -> np.ndarray:
        array = np.asarray(values)
        if array.size == 0:
            array = np.zeros((0, width), np.int32)
        if array.ndim != 2 or array.shape[1] != width or array.dtype.kind not in "iu":
            raise ValueError(
                f"HeadPaths.{name} must be an int array [n, {width}], got {array.shape}"
            )
        if array.size and (array.min() < -1 or array.max() >= 2**31):
            raise ValueError(f"HeadPaths.{name} holds numbers out of range")
        return np.ascontiguousarray(array, dtype=np.int32)

    @staticmethod
    def _float_array(values: Any, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        array = np.asarray(values)
        fits = array.ndim == len(shape) and all(
            want in (-1, got) for want, got in zip(shape, array.shape, strict=True)
        )
        if not fits or not np.issubdtype(array.dtype, np.number) or array.dtype.kind == "c":
            raise ValueError(f"HeadPaths.{name} must be a float array of shape {shape}, got"
                             f" {array.dtype} {array.shape}")  # fmt: skip
        return np.ascontiguousarray(array, dtype=dtype)

    def _check_edges(self) -> None:
        task, s_layer, s_head, r_layer, r_head, via = self.edges.T
        logits = via == VIA.index("logits")
        problems = [
            ((task < 0) | (task >= len(self.tasks))).any() and "a task index is out of range",
            ((via < 0) | (via >= len(VIA))).any() and "a channel index is out of range",
            ((s_layer < 0) | (s_layer >= self.n_layers) | (s_head < 0)
             | (s_head >= self.n_heads)).any() and "a sender is outside the model",
            ((r_layer[logits] != -1) | (r_head[logits] != -1)).any()
            and "an edge to the logits names a receiver head",
            ((r_layer[~logits] <= s_layer[~logits]) | (r_layer[~logits] >= self.n_layers)
             | (r_head[~logits] < 0) | (r_head[~logits] >= self.n_heads)).any()
            and "a receiver is outside the model or not in a later layer than its sender",
        ]  # fmt: skip
        if len(task) > 1 and (np.diff(task) < 0).any():
            problems.append("the edges are not grouped by task in task order")
        found = [p for p in problems if p]
        if found:
            raise ValueError(f"HeadPaths.edges: {found[0]}")

    # -- reading -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        model = self.meta.get("model")
        about = f", model={model!r}" if model else ""
        return (f"HeadPaths({len(self.tasks)} tasks, {len(self.edges)} edges, {self.method}"
                f"{about})")  # fmt: skip

    def task_rows(self, task: str) -> np.ndarray:
        """The indices of ``task``'s rows of :attr:`edges` (in order)."""
        if task not in self.tasks:
            raise KeyError(f"no task {task!r}; the tasks are {self.tasks}")
        return np.flatnonzero(self.edges[:, 0] == self.tasks.index(task))

    @property
    def sem(self) -> np.ndarray:
        """Float64 ``[n_edges]``: each effect's standard error over its examples (``ddof=1``);
        NaN where per-example effects were not kept or there are fewer than 2."""
        sem = np.full(len(self.edges), np.nan)
        for task, effects in self.effects.items():
            sem[self.task_rows(task)] = standard_error(effects[:, None, :])[:, 0]
        return sem

    def top_edges(self, task: str, k: int = 10, *, signed: bool = False) -> list[PathEdge]:
        """The ``k`` strongest edges of ``task``: by ``|effect|`` (``signed``: by effect, most
        helpful first); NaN effects are never ranked.

        >>> paths.top_edges("next year", 3)  # doctest: +SKIP
        [PathEdge(task='next year', sender=(16, 0), receiver=(18, 6), via='k', ...), ...]
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"top_edges() takes k >= 0 (an int), got {k!r}")
        rows = self.task_rows(task)
        values = self.effect[rows].astype(np.float64)
        keep = ~np.isnan(values)
        rows, values = rows[keep], values[keep]
        order = np.argsort(-(values if signed else np.abs(values)), kind="stable")[:k]
        sem = self.sem
        return [self._edge(int(rows[i]), float(sem[rows[i]])) for i in order]

    def _edge(self, row: int, sem: float) -> PathEdge:
        t, sl, sh, rl, rh, via = (int(x) for x in self.edges[row])
        return PathEdge(
            self.tasks[t], (sl, sh), None if rl < 0 else (rl, rh), VIA[via],
            float(self.effect[row]), sem, True if self.exact is None else bool(self.exact[row]),
        )  # fmt: skip

    def to_pandas(self) -> pandas.DataFrame:
        """One row per edge: ``task, sender_layer, sender_head, receiver_layer, receiver_head``
        (``<NA>`` for the logits), ``via, effect``, and ``sem`` where per-example effects were
        kept, ``exact`` where some effects are estimates."""
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("HeadPaths.to_pandas() needs pandas: pip install pandas") from err
        task, s_layer, s_head, r_layer, r_head, via = self.edges.T
        logits = r_layer < 0
        table = {
            "task": pd.Series([self.tasks[i] for i in task], dtype=object),
            "sender_layer": s_layer.astype(np.int64),
            "sender_head": s_head.astype(np.int64),
            "receiver_layer": pd.array(np.where(logits, 0, r_layer), dtype="Int64"),
            "receiver_head": pd.array(np.where(logits, 0, r_head), dtype="Int64"),
            "via": pd.Series([VIA[i] for i in via], dtype=object),
            "effect": self.effect,
        }
        frame = pd.DataFrame(table)
        frame.loc[logits, ["receiver_layer", "receiver_head"]] = pd.NA
        if self.effects:
            frame["sem"] = self.sem
        if self.exact is not None:
            frame["exact"] = self.exact
        return frame

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (``.npz`` appended if missing), whole or not at all (see
        :mod:`headwidget.scores.paths_format`); :meth:`load` reads it back.

        >>> HeadPaths.load(paths.save("paths.npz")).tasks == paths.tasks  # doctest: +SKIP
        True
        """
        return write_paths(self, path)

    @classmethod
    def load(cls, path: str | Path) -> HeadPaths:
        """Read a file :meth:`save` wrote, as untrusted data (sizes checked before reading,
        never unpickled); anything else raises
        :class:`~headwidget.scores.paths_format.PathsFileError`."""
        path, fields = read_paths(path)
        try:
            return cls(**fields)
        except (TypeError, ValueError) as err:
            raise PathsFileError(path, str(err)) from None

    @classmethod
    def merge(cls, parts: Sequence[HeadPaths]) -> HeadPaths:
        """One HeadPaths from parts of the same model and method over different tasks (the
        shards of ``headwidget paths --shard``), tasks in the parts' order."""
        if not parts:
            raise ValueError("merge() needs at least one part")
        first = parts[0]
        for part in parts[1:]:
            same = (part.n_layers, part.n_heads, part.method) == (
                first.n_layers, first.n_heads, first.method
            ) and part.meta.get("model") == first.meta.get("model")  # fmt: skip
            if not same:
                raise ValueError("merge() takes parts of one model and method")
        tasks = [t for part in parts for t in part.tasks]
        edges, offset = [], 0
        for part in parts:
            shifted = part.edges.copy()
            shifted[:, 0] += offset
            edges.append(shifted)
            offset += len(part.tasks)
        exact = [np.ones(len(p.edges), bool) if p.exact is None else p.exact for p in parts]
        meta = dict(first.meta)
        for key in ("examples", "agreement"):  # per task
            meta[key] = {k: v for p in parts for k, v in p.meta.get(key, {}).items()}
        return cls(
            tasks, first.n_layers, first.n_heads,
            heads={k: v for p in parts for k, v in p.heads.items()},
            edges=np.concatenate(edges), effect=np.concatenate([p.effect for p in parts]),
            exact=np.concatenate(exact),
            effects={k: v for p in parts for k, v in p.effects.items()},
            clean={k: v for p in parts for k, v in p.clean.items()},
            baseline={k: v for p in parts for k, v in p.baseline.items()},
            method=first.method, meta=meta,
        )  # fmt: skip
