"""Score a list of units with :func:`headwidget.score_heads`, saving each as it finishes.

Units of one task are scored by one ``score_heads`` call (so the task's clean pass runs once):
for ablation with ``heads={layer: every head}`` for the layers still to do, each (task, layer)
block saved, with its per-example effects (``on_block_examples``) where kept, the moment
``on_block`` delivers it; for the whole-task methods the task's scores and effects are saved
when its call returns. Units already in the store are skipped (``--resume``).

On an out-of-memory error (``torch.OutOfMemoryError``, or a RuntimeError saying "out of
memory") the batch size is halved and the task's unfinished units retried; the smaller batch is
kept for the tasks after it. An automatic batch size (None) first becomes half of one full
block (examples x heads for ablation, examples otherwise). At batch size 1 the error is raised
as :class:`OutOfMemoryAtBatchOne`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..methods.options import ScoringOptions
from ..scoring import BlockReport, score_heads
from ..tasks import Task
from .checkpoint import UNITS_FORMAT, TaskInfo, UnitRecord, UnitStore
from .units import Unit

__all__ = [
    "OutOfMemoryAtBatchOne",
    "UnitRunner",
    "fingerprint",
    "is_out_of_memory",
    "stderr_log",
]

Log = Callable[[str], None]


class OutOfMemoryAtBatchOne(RuntimeError):
    """Out of memory even with one sequence per forward."""


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an accelerator out-of-memory error."""
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def stderr_log(line: str) -> None:
    """Print a progress line on stderr."""
    print(line, file=sys.stderr, flush=True)


def _config_digest(model: Any) -> str:
    config = getattr(model, "config", None)
    if config is None:
        return type(model).__name__
    raw = config.to_dict()
    kept = {
        k: v
        for k, v in raw.items()
        if not k.startswith("_") and k not in ("transformers_version", "dtype", "torch_dtype")
    }
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _tasks_digest(tasks: Sequence[Task]) -> str:
    rows = [
        [t.name, t.category, t.description]
        + [[e.prompt, e.answer, e.distractor, e.source] for e in t.examples]
        for t in tasks
    ]
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()[:16]


def fingerprint(
    model: Any,
    model_id: str,
    tasks: Sequence[Task],
    options: ScoringOptions | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """What a sweep computes: equal fingerprints, interchangeable units. ``options`` (or its
    fields as keywords) as :meth:`ScoringOptions.fingerprint` records them: the method's
    options with their defaults filled in, so a folder written under other defaults is not
    resumed; ``keep_examples`` resolved (whether units hold per-example effects); a
    hand-written ``head_layout`` by its name and sizes.

    >>> fingerprint(model, "demo", tasks, method="attribution")["options"]  # doctest: +SKIP
    {}
    """
    from ..modeling.adapters import resolve_layout
    from ..modeling.inputs import model_dtype

    options = ScoringOptions(**fields) if options is None else options
    layout = resolve_layout(model, options.head_layout)
    sizes = [len(t) for t in tasks]
    stamp = {
        "model": model_id,
        "config": _config_digest(model),
        "dtype": str(model_dtype(model)).replace("torch.", ""),
        "shape": [layout.n_layers, layout.n_heads],
        **options.fingerprint(),
        "tasks": [t.name for t in tasks],
        "task_data": _tasks_digest(tasks),
        "keep_examples": options.keeps_examples(
            layout.n_layers, layout.n_heads, layout.head_dim, sizes
        ),
        "format": UNITS_FORMAT,
    }
    if stamp["dtype"] in ("bfloat16", "float16") and options.method_options.get("replay") == (
        "float32"
    ):  # a 16-bit model's exact cells replayed in float32: not those of earlier versions
        stamp["replay"] = "float32"
    if options.head_layout is not None:
        stamp["head_layout"] = [layout.name, layout.n_heads, layout.head_dim]
    return stamp


class UnitRunner:
    """Scores units of one sweep into a :class:`UnitStore`, as ``options`` say (their
    ``keep_examples`` decided already, as the sweep's fingerprint records it)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        tasks: Sequence[Task],
        store: UnitStore,
        options: ScoringOptions,
        *,
        log: Log = stderr_log,
    ) -> None:
        from ..modeling.adapters import resolve_layout

        self.model, self.tokenizer, self.tasks, self.store = model, tokenizer, list(tasks), store
        self.options = options
        self.log = log
        layout = resolve_layout(model, options.head_layout)
        self.n_layers, self.n_heads = layout.n_layers, layout.n_heads
        self.scored = 0  # units computed by this runner (not found in the store)

    def run(self, units: Sequence[Unit]) -> int:
        """Score the units not yet in the store; return how many were scored."""
        by_task: dict[int, list[Unit]] = {}
        for unit in units:
            by_task.setdefault(unit.task, []).append(unit)
        total = len(units)
        done = len(self.store.done(units))
        for t, task_units in sorted(by_task.items()):
            while True:
                pending = [u for u in task_units if not self.store.has(u)]
                if not pending and self.store.has_info(t):
                    break
                try:
                    done = self._score_task(t, pending, done, total)
                    break
                except Exception as err:
                    if not is_out_of_memory(err):
                        raise
                    failure = f"{type(err).__name__}: {err}"
                # out of the except block: the traceback, and the failed call's tensors with
                # it, are released before the memory is handed back and the task retried
                self._smaller_batch(t, failure)
                done = len(self.store.done(units))  # units the failed call had finished count
        return self.scored

    def _smaller_batch(self, t: int, failure: str) -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        batch_size = self.options.batch_size
        if batch_size == 1:
            raise OutOfMemoryAtBatchOne(
                f"out of memory scoring task {self.tasks[t].name!r} even at batch size 1"
                f" ({failure}); use a smaller --dtype, more devices (--device-map auto) or"
                " shorter prompts"
            )
        if batch_size is None:  # a layer unit's batch holds one sequence per example and head
            per_layer = self.options.entry.unit == "layer"
            new = max(1, len(self.tasks[t]) * (self.n_heads if per_layer else 1) // 2)
        else:
            new = max(1, batch_size // 2)
        self.log(
            f"out of memory on task {self.tasks[t].name!r} at batch size"
            f" {batch_size or 'auto'}; retrying its unfinished units at batch size {new}"
        )
        self.options = self.options.replace(batch_size=new)

    def _score_task(self, t: int, pending: list[Unit], done: int, total: int) -> int:
        task, options = self.tasks[t], self.options
        layers = [u.layer for u in pending if not u.whole_task]
        if options.entry.unit == "layer":  # the layers still to do, every head of each
            heads = {layer: list(range(self.n_heads)) for layer in layers}
            options = options.replace(method_options={**options.method_options, "heads": heads})
        started = time.perf_counter()
        counter = [done]

        def save(unit: Unit, values: np.ndarray, exact: np.ndarray, effects: Any) -> None:
            self.store.save_unit(UnitRecord(unit, values, exact, effects))
            self.scored += 1
            counter[0] += 1
            seconds = time.perf_counter() - started
            when = f"{seconds:.1f} s" if unit.whole_task else f"{seconds:.1f} s into the task"
            what = unit.describe([t.name for t in self.tasks])
            self.log(f"unit {counter[0]}/{total} done: {what} ({when})")

        def on_report(report: BlockReport) -> None:  # a layer unit, saved the moment it is done
            if options.entry.unit != "layer" or report.layer not in layers:
                return
            row = np.full((1, self.n_heads), np.nan, dtype=np.float32)
            row[0, report.heads] = report.values
            effects = None
            if report.effects is not None:
                effects = np.full((1, self.n_heads, report.effects.shape[-1]), np.nan, np.float32)
                effects[0, report.heads] = report.effects
            save(Unit(t, report.layer), row, np.full((1, self.n_heads), report.exact), effects)

        result = score_heads(
            self.model, self.tokenizer, [task], options=options, progress=False,
            listeners=[on_report],
        )  # fmt: skip
        name = task.name
        meta = {k: v for k, v in result.meta.items() if k not in ("heads",)}
        info = TaskInfo(
            t, result.baseline.get(name), result.accuracy.get(name), meta, result.clean.get(name)
        )
        self.store.save_info(info)
        for unit in pending:
            if unit.whole_task:
                exact = result.exact if result.exact is not None else np.ones(result.shape, bool)
                save(unit, result.values[0], exact[0], result.effects.get(name))
        return counter[0]
