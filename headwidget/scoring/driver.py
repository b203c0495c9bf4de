"""``score_heads``: the driver that runs a scoring method over tasks into HeadScores.

A :class:`ScoringRun` resolves the model's layout and device, tokenises the tasks, runs the
method (:mod:`headwidget.methods`) task by task into a
:class:`~headwidget.scoring.collector.Collector` (which keeps the buffers, the NaN policy and
the listeners), shows progress, measures clean accuracy and records provenance.
:func:`score_heads` is one run; the widget and the sweep runner listen to one.

>>> from headwidget import Task, score_heads                            # doctest: +SKIP
>>> task = Task("capitals", [("The capital of France is", " Paris")])  # doctest: +SKIP
>>> scores = score_heads(model, tokenizer, task, ablation="mean")       # doctest: +SKIP
>>> scores.values.shape   # [n_tasks, n_layers, n_heads]                # doctest: +SKIP
(1, 32, 32)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..methods import load_method
from ..methods.base import Clean, ScoringContext
from ..methods.options import ScoringOptions
from ..modeling.adapters import HeadLayout, resolve_layout
from ..modeling.evaluate import clean_metrics
from ..modeling.inputs import (
    check_token_ids,
    context_limit,
    encode_task,
    model_device,
    pad_id,
    same_device,
)
from ..modeling.provenance import model_provenance
from ..modeling.session import model_session
from ..scores import HeadScores
from ..tasks import Task, as_task_list
from .collector import BlockReport, Collector, Listener

__all__ = ["OnBlock", "OnBlockExamples", "OnLayer", "ScoringRun", "resolve_device", "score_heads"]

OnLayer = Callable[[str, int, np.ndarray], None]
OnBlock = Callable[[str, int, np.ndarray, np.ndarray, bool], None]
OnBlockExamples = Callable[[str, int, np.ndarray, np.ndarray], None]


def resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """Where inputs go: ``device`` if the model is there (it is never moved), else an error;
    None: the device of the model's input embeddings."""
    here = model_device(model)
    if device is None:
        return here
    target = torch.device(device)
    if not getattr(model, "hf_device_map", None) and not same_device(target, here):
        raise ValueError(
            f"device={str(device)!r} but the model is on {here}; score_heads does not"
            f" move your model: call model.to({str(device)!r}) first, or leave device=None"
        )
    return target


def _provenance(model: nn.Module, layout: Any, options: ScoringOptions, tasks: list[Task],
                device: torch.device) -> dict[str, Any]:  # fmt: skip
    return {
        **model_provenance(model, layout, device),
        "ablation": options.ablation,
        "metric": options.metric,
        **({} if options.add_bos is None else {"add_bos": options.add_bos}),
        "examples": {t.name: len(t) for t in tasks},
    }


def callbacks(
    on_layer: OnLayer | None, on_block: OnBlock | None, on_block_examples: OnBlockExamples | None
) -> Listener:
    """One listener calling ``score_heads``' three callbacks, in their documented order."""

    def listen(report: BlockReport) -> None:
        if on_block_examples is not None and report.effects is not None:
            on_block_examples(report.name, report.layer, report.heads.copy(), report.effects)
        if on_block is not None:
            on_block(report.name, report.layer, report.heads.copy(), report.values, report.exact)
        if on_layer is not None and report.layer_row is not None:
            on_layer(report.name, report.layer, report.layer_row)

    return listen


_DEFAULTS = dict(
    method="ablation", ablation="mean", metric="logprob", batch_size=None, device=None,
    head_layout=None, keep_examples=None, add_bos=None,
)  # fmt: skip
"""``score_heads``' scoring keywords at their defaults (which ``options=`` excludes)."""


class ScoringRun:
    """One scoring call: ``tasks`` of ``model`` scored as ``options`` say, into a collector
    that ``listeners`` hear. :meth:`run` scores and returns the :class:`HeadScores`;
    :attr:`collector` holds what is finished at any moment (``run.collector.result(True)``
    after an interrupt). Checks everything it can before any forward pass.

    >>> options = ScoringOptions(method="attribution")                    # doctest: +SKIP
    >>> scores = ScoringRun(model, tokenizer, tasks, options).run()       # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        tasks: Task | Sequence[Task],
        options: ScoringOptions,
        *,
        listeners: Sequence[Listener] = (),
        progress: bool = True,
    ) -> None:
        self.model, self.tokenizer, self.options = model, tokenizer, options
        self.progress = progress
        self.tasks = as_task_list(tasks)
        self.layout = resolve_layout(model, options.head_layout)
        self.device = resolve_device(model, options.device)
        limit = context_limit(model)
        self.encoded = [
            encode_task(t, tokenizer, options.metric, limit, add_bos=options.add_bos, model=model)
            for t in self.tasks
        ]
        for task, items in zip(self.tasks, self.encoded, strict=True):
            check_token_ids(items, task, tokenizer, model)
        lay, sizes = self.layout, [len(t) for t in self.tasks]
        keep = options.keeps_examples(lay.n_layers, lay.n_heads, lay.head_dim, sizes)
        names = [t.name for t in self.tasks]
        self.context = ScoringContext(
            model, lay, options.metric, options.ablation, self.device, options.batch_size,
            pad_id(tokenizer, model), names, tokenizer=tokenizer, task_list=self.tasks,
            per_example=keep,
        )  # fmt: skip
        self.scorer = load_method(options.method)(self.context, **options.method_options)
        self.collector = Collector(
            names, (lay.n_layers, lay.n_heads), method=options.method, metric=options.metric,
            sizes=sizes, keep_examples=keep,
            meta=_provenance(model, lay, options, self.tasks, self.device),
            categories={t.name: t.category for t in self.tasks},
            descriptions={t.name: t.description for t in self.tasks},
            texts={t.name: [(e.prompt, e.answer) for e in t.examples] for t in self.tasks},
            listeners=listeners,
        )  # fmt: skip
        started = time.perf_counter()
        self.collector.extra_meta = lambda: {
            **self.scorer.meta(), "seconds": time.perf_counter() - started
        }  # fmt: skip

    def run(self) -> HeadScores:
        """Score every task (the model in eval mode, one scoring call at a time per model),
        then measure each task's clean accuracy (unless the metric is accuracy, or the method
        runs no forward pass); return the scores. Nothing computed is lost: any error or
        interrupt raised meanwhile carries ``err.partial``, the :class:`HeadScores` finished
        so far (``meta["partial"]``; the cells not scored are NaN)."""
        try:
            return self._run()
        except BaseException as err:
            if not isinstance(getattr(err, "partial", None), HeadScores):
                err.partial = self.collector.result(partial=True)  # type: ignore[attr-defined]
            raise

    def _run(self) -> HeadScores:
        from tqdm.auto import tqdm

        scorer, collector, options = self.scorer, self.collector, self.options
        with model_session(self.model, "score_heads"):
            total = len(self.tasks) * scorer.blocks_per_task()
            bar = tqdm(total=total, disable=not self.progress, desc="headwidget", unit="block")
            try:
                scorer.open()
                for t, (task, items) in enumerate(zip(self.tasks, self.encoded, strict=True)):
                    bar.set_postfix_str(task.name, refresh=False)
                    for event in scorer.score_task(t, items):
                        collector.take(event)
                        bar.update(0 if isinstance(event, Clean) else 1)
            finally:
                scorer.close()
                bar.close()
            if options.entry.weights_only:
                pass  # no forward pass at all (projection): accuracy stays unmeasured
            elif options.metric == "accuracy":
                collector.accuracy.update(collector.baseline)
            else:  # a map of a task the model fails is noise, not a circuit: say which
                collector.accuracy.update(
                    clean_metrics(
                        self.model,
                        self.layout,
                        self.tokenizer,
                        self.tasks,
                        "accuracy",
                        16,
                        self.device,
                        add_bos=options.add_bos,
                    )  # fmt: skip
                )
        return collector.result(partial=False)


def score_heads(
    model: nn.Module,
    tokenizer: Any,
    tasks: Task | Sequence[Task],
    *,
    method: str = "ablation",
    ablation: str = "mean",
    metric: str = "logprob",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_layer: OnLayer | None = None,
    on_block: OnBlock | None = None,
    head_layout: HeadLayout | None = None,
    keep_examples: bool | None = None,
    add_bos: bool | None = None,
    on_block_examples: OnBlockExamples | None = None,
    options: ScoringOptions | None = None,
    listeners: Sequence[Listener] = (),
    **method_options: Any,
) -> HeadScores:
    """Importance of every attention head for every task.

    ``importance[task, layer, head]`` = mean over the task's examples of
    ``metric(clean) - metric(head ablated)``, so a head that helps scores > 0. ``method`` says
    how it is computed: ``"ablation"`` (default) exactly, ``"attribution"`` from gradients for
    all heads at once (optionally refined exactly), ``"projection"`` something else, from the
    weights alone (MAPS). The model runs in its own dtype, in eval mode for the call (its
    training flag restored), and is never moved or modified; the tokenizer is used read-only.

    Args:
        model, tokenizer: a Hugging Face causal LM of a supported architecture (or one
            described by ``head_layout``) and its tokenizer.
        tasks: a :class:`~headwidget.Task` or a list of them (unique names).
        method, ablation, metric, batch_size, device, head_layout, keep_examples, add_bos,
            **method_options: how to score, checked into one
            :class:`~headwidget.methods.options.ScoringOptions` (its docstring says what each
            means and its default); the method's own options are listed in
            :data:`headwidget.methods.METHODS` and documented in each method's module.
        options: that record itself, built already (then pass none of the keywords above).
        progress: show a tqdm progress bar over blocks (a block: one layer of one task).
        on_layer: called as ``on_layer(task_name, layer, row)`` when a layer of a task first has
            a score for every head; ``row`` is that layer's float32 importance over heads.
        on_block: called as ``on_block(task_name, layer, heads, values, exact)`` for every block
            of scores the method emits: ``heads`` (int array) of ``layer`` got ``values``
            (float32), exact or approximate. Exact blocks may later replace approximate values.
        on_block_examples: called as ``on_block_examples(task_name, layer, heads, effects)``
            for every block that carries per-example effects, when they are kept, just before
            ``on_block`` gets the same block: ``effects`` (float32 ``[len(heads), n_examples]``)
            is what ``HeadScores.effects[task][layer, heads]`` then holds.
        listeners: functions called with a
            :class:`~headwidget.scoring.collector.BlockReport` for every block (all of the
            above in one record).

    Returns:
        :class:`~headwidget.HeadScores`: ``values[task, layer, head]``, the clean metric per
        task in ``baseline``, the clean accuracy per task in ``accuracy`` (one more forward per
        example unless the metric is accuracy; none for a weights-only method), ``method``, the
        ``exact`` mask, per-example ``effects`` / ``clean`` / ``examples`` where kept, and
        provenance in ``meta``.

    Raises:
        NonFiniteMetricError: the metric was NaN/inf; ``err.partial`` holds the finished scores.
        UnsupportedModelError: unknown architecture and no ``head_layout``.
        ValueError: bad tasks, examples, metric, method or ablation names (the message says
            which); TypeError for an option the method does not take.

    >>> scores = score_heads(model, tokenizer, [task_a, task_b], metric="logprob")  # doctest: +SKIP
    >>> scores.top_heads("task_a", k=3)                                             # doctest: +SKIP
    >>> quick = score_heads(model, tokenizer, tasks, method="attribution")          # doctest: +SKIP
    >>> quick.exact.sum()                                                           # doctest: +SKIP
    """
    given = dict(
        method=method, ablation=ablation, metric=metric, batch_size=batch_size, device=device,
        head_layout=head_layout, keep_examples=keep_examples, add_bos=add_bos,
    )  # fmt: skip
    if options is None:
        options = ScoringOptions.from_keywords(**given, **method_options)
    elif method_options or given != _DEFAULTS:
        raise TypeError("pass either options=ScoringOptions(...) or scoring keywords, not both")
    listen = [callbacks(on_layer, on_block, on_block_examples), *listeners]
    return ScoringRun(model, tokenizer, tasks, options, listeners=listen, progress=progress).run()
