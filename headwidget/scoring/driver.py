"""``score_heads``: the driver that runs a scoring method over tasks and builds HeadScores.

It checks the options, resolves the model's layout and device, tokenises the tasks, runs the
method (:mod:`headwidget.methods`) task by task, stores the blocks the method emits, checks that
they are finite, streams them to ``on_layer`` / ``on_block``, shows progress, and records
provenance in ``HeadScores.meta``.

>>> from headwidget import Task, score_heads                            # doctest: +SKIP
>>> task = Task("capitals", [("The capital of France is", " Paris")])  # doctest: +SKIP
>>> scores = score_heads(model, tokenizer, task, ablation="mean")       # doctest: +SKIP
>>> scores.values.shape   # [n_tasks, n_layers, n_heads]                # doctest: +SKIP
(1, 32, 32)
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..methods import load_method
from ..methods.base import Block, Clean, ScoringContext
from ..methods.options import check_options
from ..modeling.adapters import HeadLayout, UnsupportedModelError, resolve_layout
from ..modeling.evaluate import clean_metrics
from ..modeling.inputs import (
    check_token_ids,
    context_limit,
    encode_task,
    model_device,
    model_dtype,
    pad_id,
    same_device,
)
from ..modeling.session import model_session
from ..scores import HeadScores
from ..tasks import Task, as_task_list

__all__ = [
    "HeadLayout",
    "NonFiniteMetricError",
    "UnsupportedModelError",
    "examples_bytes",
    "resolve_device",
    "score_heads",
]

KEEP_EXAMPLES_BYTES = 256 * 2**20
"""``score_heads`` keeps per-example effects by default up to this many bytes (all tasks)."""

OnLayer = Callable[[str, int, np.ndarray], None]
OnBlock = Callable[[str, int, np.ndarray, np.ndarray, bool], None]
OnBlockExamples = Callable[[str, int, np.ndarray, np.ndarray], None]


def examples_bytes(
    n_layers: int,
    n_heads: int,
    head_dim: int,
    sizes: Sequence[int],
    *,
    method: str = "ablation",
    ablation: str = "mean",
) -> int:
    """Bytes that keeping per-example effects takes for tasks of ``sizes`` examples (what
    ``keep_examples=None`` compares with :data:`KEEP_EXAMPLES_BYTES`): 4 per layer, head and
    example, plus for attribution with mean ablation the float32 gradient sum per example, head
    and dimension it holds while it scores the largest task.

    >>> examples_bytes(2, 4, 8, [10, 5])
    480
    """
    needed = 4 * n_layers * n_heads * sum(int(n) for n in sizes)
    if method == "attribution" and ablation == "mean" and len(sizes):
        needed += 4 * n_layers * n_heads * head_dim * max(int(n) for n in sizes)
    return needed


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


def _versions() -> dict[str, str]:
    import transformers

    from ..version import __version__

    return {
        "headwidget": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


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
    on_block_examples: OnBlockExamples | None = None,
    **method_options: Any,
) -> HeadScores:
    """Importance of every attention head for every task.

    ``importance[task, layer, head]`` = mean over the task's examples of
    ``metric(clean) - metric(head ablated)``, so a head that helps scores > 0. ``method`` says
    how it is computed: ``"ablation"`` (default) runs it exactly. ``method="projection"``
    scores something else, from the weights alone: the fraction of each task's (source, target)
    pairs whose target is among the top ``k`` tokens of the head's OV circuit applied to the
    source (MAPS; see :mod:`headwidget.methods.projection`).

    Args:
        model: a Hugging Face causal LM (``AutoModelForCausalLM``) of a supported architecture
            (see :data:`headwidget.modeling.adapters.SUPPORTED_ARCHITECTURES`), or any model
            described by ``head_layout``. It runs in its own dtype; it is put in eval mode for
            the call and its training flag is restored afterwards. It is never moved or modified.
        tokenizer: its tokenizer. Used read-only; one without a pad token works (padding is
            masked, so any id will do).
        tasks: a :class:`~headwidget.tasks.Task` or a list of them (unique names).
        method: ``"ablation"``: exact, about half a forward pass per head (its option
            ``heads={layer: [head, ...]}`` scores only those heads; the rest stay NaN).
            ``"attribution"``: gradient x activation for every head at once, approximate, with
            exact fixes for first order's blind spots; its options ``steps``
            (integrated-gradient points, default 1), ``competitors`` (rival logits passed with
            the answer's through the exact log-softmax, default 1; 0: plain first order),
            ``exact_layers`` (the first layers scored exactly, default 1), ``screen`` (heads an
            exact first-position screen finds, scored exactly, default 0), ``refine`` (K heads
            scored exactly, default 0: those attribution ranks highest, and
            ``refine_sensitive`` of them, default K // 10, by the first-order bound instead),
            ``refine_random`` (a seeded random sample of the rest scored exactly too, default
            K // 2) and ``seed``.
            See :mod:`headwidget.methods.attribution`.
            ``"projection"``: no forward pass, weights only; needs ``Example.source`` on every
            example; its options ``k``, ``suppression``, ``first_mlp``, ``min_pairs`` and
            ``chunk_size``. See :mod:`headwidget.methods.projection`.
        ablation: ``"mean"`` replaces a head's output (its slice of the attention output
            projection's input) with its mean over the task's examples and all non-pad positions
            the model reads (prompt and answer tokens but the last); ``"zero"`` with zeros.
        metric: ``"logprob"`` (sum of the teacher-forced log-probabilities of all answer tokens),
            ``"prob"`` (exp of that), ``"accuracy"`` (1 if every answer token is the argmax) or
            ``"logit_diff"`` (answer token's logit minus the distractor token's, at the first
            token where the two continuations differ, the shared tokens before it teacher-forced;
            every example needs a distractor).
        batch_size: sequences per forward (for ablation, each is one example with one head
            ablated). Default: chosen from free GPU memory on CUDA, or a conservative budget on
            CPU.
        device: where inputs go. Default: the device of the model's input embeddings. The model
            is not moved: if it is elsewhere, a ValueError says so (call ``model.to(device)``).
        progress: show a tqdm progress bar over blocks (a block: one layer of one task).
        on_layer: called as ``on_layer(task_name, layer, row)`` when a layer of a task first has
            a score for every head; ``row`` is that layer's float32 importance over heads.
        on_block: called as ``on_block(task_name, layer, heads, values, exact)`` for every block
            of scores the method emits: ``heads`` (int array) of ``layer`` got ``values``
            (float32), exact or approximate. Exact blocks may later replace approximate values.
        on_block_examples: called as ``on_block_examples(task_name, layer, heads, effects)``
            for every block that carries per-example effects, when they are kept (see
            ``keep_examples``), just before ``on_block`` gets the same block: ``effects``
            (float32 ``[len(heads), n_examples]``) is each example's drop, what
            ``HeadScores.effects[task][layer, heads]`` then holds (an exact block's replace an
            approximate block's, as its values do).
        head_layout: describe the model by hand (:class:`~headwidget.HeadLayout`) when its
            architecture is not built in.
        keep_examples: keep each example's drop (``HeadScores.effects``), clean metric
            (``clean``) and text (``examples``) for the widget's drill-down. They take
            ``n_layers * n_heads * n_examples * 4`` bytes per task (80 x 64 heads x 100
            examples: 2 MB). Default (None): kept unless all tasks together would take over
            :data:`KEEP_EXAMPLES_BYTES` (256 MiB), counting for attribution with mean ablation
            the ``n_layers * n_heads * head_dim * n_examples * 4`` bytes it holds while it
            scores a task. Weights-only methods (projection) have none.
        **method_options: the method's own options (see :data:`headwidget.methods.METHODS`).

    Returns:
        :class:`~headwidget.scores.HeadScores` with ``values[task, layer, head]``, the clean
        metric per task in ``baseline``, the clean accuracy per task in ``accuracy`` (one more
        forward per example, unless the metric is accuracy; none for a weights-only method such
        as ``"projection"``, whose ``baseline`` and ``accuracy`` stay empty), ``method``, the
        ``exact`` mask and provenance in ``meta``.

    Raises:
        NonFiniteMetricError: the metric was NaN/inf; ``err.partial`` holds the finished scores.
        UnsupportedModelError: unknown architecture and no ``head_layout``.
        ValueError: bad tasks, examples, metric, method or ablation names (the message says
            which); TypeError for an option the method does not take.

    >>> scores = score_heads(model, tokenizer, [task_a, task_b], metric="logprob")  # doctest: +SKIP
    >>> scores.top_heads("task_a", k=3)                                             # doctest: +SKIP
    >>> quick = score_heads(model, tokenizer, tasks, method="attribution")  # doctest: +SKIP
    >>> quick.exact.sum(), quick.meta["agreement"]["task_a"]["spearman"]            # doctest: +SKIP
    """
    started = time.perf_counter()
    options = check_options(
        method=method, ablation=ablation, metric=metric, batch_size=batch_size, **method_options
    )
    own = {
        k: v for k, v in options.items() if k not in ("method", "ablation", "metric", "batch_size")
    }
    task_list = as_task_list(tasks)
    layout = resolve_layout(model, head_layout)
    target = resolve_device(model, device)
    limit = context_limit(model)
    encoded = [encode_task(task, tokenizer, metric, limit) for task in task_list]
    for task, items in zip(task_list, encoded, strict=True):
        check_token_ids(items, task, tokenizer, model)
    names = [t.name for t in task_list]
    n_tasks, n_layers, n_heads = len(task_list), layout.n_layers, layout.n_heads
    if keep_examples is None:
        sizes = [len(t) for t in task_list]
        needed = examples_bytes(
            n_layers, n_heads, layout.head_dim, sizes, method=method, ablation=ablation
        )
        keep_examples = needed <= KEEP_EXAMPLES_BYTES
    elif not isinstance(keep_examples, bool):
        raise TypeError(f"keep_examples must be True, False or None, got {keep_examples!r}")
    context = ScoringContext(
        model, layout, metric, ablation, target, batch_size, pad_id(tokenizer, model), names,
        tokenizer=tokenizer, task_list=task_list, per_example=keep_examples,
    )  # fmt: skip
    scorer = load_method(method)(context, **own)

    values = np.full((n_tasks, n_layers, n_heads), np.nan, dtype=np.float32)
    exact = np.ones((n_tasks, n_layers, n_heads), dtype=bool)
    filled = np.zeros((n_tasks, n_layers, n_heads), dtype=bool)
    baseline: dict[str, float] = {}
    accuracy: dict[str, float] = {}
    effects: dict[str, np.ndarray] = {}  # task -> float32 [n_layers, n_heads, n_examples]
    clean_each: dict[str, np.ndarray] = {}
    config = getattr(model, "config", None)
    meta: dict[str, Any] = {
        "model": getattr(config, "name_or_path", "") or type(model).__name__,
        "architecture": type(model).__name__,
        "model_type": getattr(config, "model_type", layout.name),
        "ablation": ablation,
        "metric": metric,
        "examples": {t.name: len(t) for t in task_list},
        "versions": _versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(target),
        "dtype": str(model_dtype(model)).replace("torch.", ""),
    }

    def result(partial: bool) -> HeadScores:
        extra = {"seconds": time.perf_counter() - started, **({"partial": True} if partial else {})}
        return HeadScores(
            values.copy() if partial else values,
            names,
            {t.name: t.category for t in task_list},
            dict(baseline),
            {**meta, **scorer.meta(), **extra},
            {t.name: t.description for t in task_list},
            accuracy=dict(accuracy),
            method=method,
            exact=exact.copy(),
            effects={k: v.copy() for k, v in effects.items()} if partial else effects,
            clean=dict(clean_each),
            examples={
                t.name: [(e.prompt, e.answer) for e in t.examples]
                for t in task_list
                if t.name in effects
            },
        )

    def clean(event: Clean) -> None:
        task = task_list[event.task]
        finite = np.isfinite(event.per_example)
        if not finite.all():
            bad = np.nonzero(~finite)[0].tolist()
            raise NonFiniteMetricError(
                f"task {task.name!r}: the clean (un-ablated) metric {metric!r} is not finite"
                f" for example(s) {bad[:10]}; check the model's dtype (float16 overflow?)"
                " and weights. Scores finished before this task are in error.partial",
                result(True),
                task.name,
            )
        baseline[task.name] = float(event.per_example.mean())
        if keep_examples:
            clean_each[task.name] = np.asarray(event.per_example, np.float64).copy()

    def block(event: Block) -> None:
        t, layer, heads = event.task, event.layer, event.heads
        row = np.asarray(event.values, dtype=np.float32)
        bad_heads = [int(h) for h, v in zip(heads, row, strict=True) if not np.isfinite(v)]
        row = np.where(np.isfinite(row), row, np.nan).astype(np.float32)
        first_full = not filled[t, layer].all()
        values[t, layer, heads] = row
        exact[t, layer, heads] = event.exact
        each = None
        if keep_examples and event.per_example is not None and len(heads):
            store = effects.get(names[t])
            if store is None:
                size = len(task_list[t])
                store = effects[names[t]] = np.full((n_layers, n_heads, size), np.nan, np.float32)
            each = np.asarray(event.per_example, np.float32)
            store[layer, heads] = each
        filled[t, layer, heads] = True
        name = names[t]
        if on_block_examples is not None and each is not None:
            on_block_examples(name, layer, heads.copy(), each.copy())
        if on_block is not None and len(heads):
            on_block(name, layer, heads.copy(), row.copy(), event.exact)
        if on_layer is not None and first_full and filled[t, layer].all():
            on_layer(name, layer, values[t, layer].copy())
        if bad_heads:
            raise NonFiniteMetricError(
                f"task {name!r}, layer {layer}, head(s) {bad_heads}: the metric"
                f" {metric!r} is not finite with the head ablated (stored as NaN). Scores"
                " finished so far, including the rest of this layer, are in error.partial",
                result(True),
                name,
                layer,
                bad_heads,
            )

    from tqdm.auto import tqdm

    with model_session(model, "score_heads"):
        bar = tqdm(
            total=n_tasks * scorer.blocks_per_task(),
            disable=not progress,
            desc="headwidget",
            unit="block",
        )
        try:
            scorer.open()
            for t, (task, items) in enumerate(zip(task_list, encoded, strict=True)):
                bar.set_postfix_str(task.name, refresh=False)
                for event in scorer.score_task(t, items):
                    if isinstance(event, Clean):
                        clean(event)
                    else:
                        block(event)
                        bar.update(1)
        finally:
            scorer.close()
            bar.close()
        if getattr(scorer, "weights_only", False):
            pass  # no forward pass at all (projection): accuracy stays unmeasured
        elif metric == "accuracy":
            accuracy.update(baseline)
        else:
            # a map of a task the model fails is noise, not a circuit: say which
            accuracy.update(
                clean_metrics(model, layout, tokenizer, task_list, "accuracy", 16, target)
            )
    return result(partial=False)
