"""The buffers of one scoring run: what a method emits, collected into :class:`HeadScores`.

A :class:`Collector` takes a method's events (:class:`~headwidget.methods.base.Clean`,
:class:`~headwidget.methods.base.Block`), keeps the values, exact mask, clean metric and
per-example effects, applies the NaN policy (a non-finite metric raises
:class:`NonFiniteMetricError` carrying every finished score), tells its listeners about every
block, and builds the result — whole, or partial at any moment (:meth:`Collector.result`).
``score_heads`` drives one; the sweep runner and the widget listen to it.

>>> collector = Collector(["copying"], (2, 3), method="ablation", metric="logprob",
...                       sizes=[4], keep_examples=True, meta={})
>>> collector.result(partial=True).values.shape
(1, 2, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..methods.base import Block, Clean
from ..scores import HeadScores

__all__ = ["BlockReport", "Collector", "Listener", "NonFiniteMetricError"]


class NonFiniteMetricError(ValueError):
    """The metric came out NaN or infinite.

    Nothing computed is lost: ``partial`` is a :class:`HeadScores` holding every score finished
    before the error (scores not computed are NaN). ``task``, ``layer`` and ``heads`` say where it
    happened (``layer`` is None when the clean, un-ablated metric was already not finite).
    """

    def __init__(
        self,
        message: str,
        partial: HeadScores,
        task: str,
        layer: int | None = None,
        heads: Sequence[int] = (),
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.task = task
        self.layer = layer
        self.heads = list(heads)


@dataclass(frozen=True)
class BlockReport:
    """One block as the collector stored it, for listeners: ``values`` (float32, non-finite as
    NaN) of ``heads`` of ``layer`` of task number ``task`` (named ``name``), ``exact`` or not,
    each example's drop ``effects`` (float32 ``[len(heads), n_examples]``) where kept, and,
    when this block completed the layer for the first time, the layer's full row of values
    (``layer_row``, float32 ``[n_heads]``; else None)."""

    task: int
    name: str
    layer: int
    heads: np.ndarray
    values: np.ndarray
    exact: bool
    effects: np.ndarray | None
    layer_row: np.ndarray | None


Listener = Callable[[BlockReport], None]
"""Called with every stored block, before the NaN policy may raise for it."""


class Collector:
    """Buffers of one scoring run over ``names`` × ``shape`` (layers, heads); see the module.

    ``sizes``: examples per task; ``keep_examples``: store per-example effects and clean
    metrics; ``meta``: the run's provenance (the method's is added by :meth:`result`'s caller
    through ``extra_meta``); ``tasks_info``: categories, descriptions and example texts.
    """

    def __init__(
        self,
        names: Sequence[str],
        shape: tuple[int, int],
        *,
        method: str,
        metric: str,
        sizes: Sequence[int],
        keep_examples: bool,
        meta: Mapping[str, Any],
        categories: Mapping[str, str | None] | None = None,
        descriptions: Mapping[str, str] | None = None,
        texts: Mapping[str, list[tuple[str, str]]] | None = None,
        listeners: Sequence[Listener] = (),
    ) -> None:
        n_layers, n_heads = shape
        full = (len(names), n_layers, n_heads)
        self.names, self.method, self.metric = list(names), method, metric
        self.sizes, self.keep_examples = list(sizes), keep_examples
        self.meta = dict(meta)
        self.categories = dict(categories or {})
        self.descriptions = dict(descriptions or {})
        self.texts = dict(texts or {})
        self.listeners = list(listeners)
        self.values = np.full(full, np.nan, np.float32)
        self.exact = np.ones(full, bool)
        self.filled = np.zeros(full, bool)
        self.baseline: dict[str, float] = {}
        self.accuracy: dict[str, float] = {}
        self.effects: dict[str, np.ndarray] = {}  # task -> float32 [n_layers, n_heads, n_examples]
        self.clean_each: dict[str, np.ndarray] = {}
        self.extra_meta: Callable[[], Mapping[str, Any]] = dict  # the method's provenance

    def result(self, partial: bool = False) -> HeadScores:
        """The scores so far as :class:`HeadScores` (``partial``: copies, and
        ``meta["partial"]``; otherwise the buffers themselves, for the end of a run)."""
        meta = {**self.meta, **self.extra_meta(), **({"partial": True} if partial else {})}
        return HeadScores(
            self.values.copy() if partial else self.values,
            self.names,
            {name: self.categories.get(name) for name in self.names},
            dict(self.baseline),
            meta,
            {name: self.descriptions.get(name, "") for name in self.names},
            accuracy=dict(self.accuracy),
            method=self.method,
            exact=self.exact.copy(),
            effects={k: v.copy() for k, v in self.effects.items()} if partial else self.effects,
            clean=dict(self.clean_each),
            examples={k: v for k, v in self.texts.items() if k in self.effects},
        )

    def take(self, event: Clean | Block) -> None:
        """Store one event of a method (see the module doc)."""
        if isinstance(event, Clean):
            self._clean(event)
        else:
            self._block(event)

    def _clean(self, event: Clean) -> None:
        name = self.names[event.task]
        finite = np.isfinite(event.per_example)
        if not finite.all():
            bad = np.nonzero(~finite)[0].tolist()
            raise NonFiniteMetricError(
                f"task {name!r}: the clean (un-ablated) metric {self.metric!r} is not finite"
                f" for example(s) {bad[:10]}; check the model's dtype (float16 overflow?)"
                " and weights. Scores finished before this task are in error.partial",
                self.result(True),
                name,
            )
        self.baseline[name] = float(event.per_example.mean())
        if self.keep_examples:
            self.clean_each[name] = np.asarray(event.per_example, np.float64).copy()

    def _block(self, event: Block) -> None:
        t, layer, heads = event.task, event.layer, event.heads
        name = self.names[t]
        row = np.asarray(event.values, dtype=np.float32)
        bad_heads = [int(h) for h, v in zip(heads, row, strict=True) if not np.isfinite(v)]
        row = np.where(np.isfinite(row), row, np.nan).astype(np.float32)
        first_full = not self.filled[t, layer].all()
        self.values[t, layer, heads] = row
        self.exact[t, layer, heads] = event.exact
        each = None
        if self.keep_examples and event.per_example is not None and len(heads):
            store = self.effects.get(name)
            if store is None:
                n_layers, n_heads = self.values.shape[1:]
                size = self.sizes[t]
                store = self.effects[name] = np.full((n_layers, n_heads, size), np.nan, np.float32)
            each = np.asarray(event.per_example, np.float32)
            store[layer, heads] = each
        self.filled[t, layer, heads] = True
        complete = first_full and self.filled[t, layer].all()
        if len(heads):
            report = BlockReport(
                t, name, layer, heads.copy(), row.copy(), event.exact,
                None if each is None else each.copy(),
                self.values[t, layer].copy() if complete else None,
            )  # fmt: skip
            for listener in self.listeners:
                listener(report)
        if bad_heads:
            raise NonFiniteMetricError(
                f"task {name!r}, layer {layer}, head(s) {bad_heads}: the metric"
                f" {self.metric!r} is not finite with the head ablated (stored as NaN). Scores"
                " finished so far, including the rest of this layer, are in error.partial",
                self.result(True),
                name,
                layer,
                bad_heads,
            )
