"""The clean model's metric on a task's examples: batches of a task, and the metric per example
of a batch, reading logits only where answer tokens are predicted. Used by ``score_heads`` (each
task's clean accuracy) and by :mod:`headwidget.methods.validation` (with heads ablated).

>>> batches = task_batches(model, layout, tokenizer, task, "accuracy", 16)   # doctest: +SKIP
>>> [batch_metric(model, layout, b, "accuracy") for b in batches]            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..tasks import Task
from .adapters import ResolvedLayout
from .hooks import run_to_last_layer, score_output
from .inputs import (
    Batch,
    check_token_ids,
    context_limit,
    encode_task,
    make_batches,
    model_device,
    pad_id,
)

__all__ = ["batch_metric", "clean_metrics", "task_batches"]


def task_batches(
    model: nn.Module,
    layout: ResolvedLayout,
    tokenizer: Any,
    task: Task,
    metric: str,
    batch_size: int,
    device: torch.device | None = None,
    *,
    add_bos: bool | None = None,
) -> list[Batch]:
    """``task``'s examples tokenised for ``metric`` (``add_bos`` as
    :func:`~headwidget.modeling.inputs.encode_task` takes it) and cut into batches of
    ``batch_size`` (sorted by length), on ``device`` (default: the model's input device)."""
    limit = context_limit(model)
    items = encode_task(task, tokenizer, metric, limit, add_bos=add_bos, model=model)
    check_token_ids(items, task, tokenizer, model)
    device = model_device(model) if device is None else device
    pad = pad_id(tokenizer, model)
    return make_batches(items, metric, pad, layout.n_heads, device, batch_size)[1]


def batch_metric(
    model: nn.Module, layout: ResolvedLayout, batch: Batch, metric: str
) -> torch.Tensor:
    """The metric per example of ``batch`` [B], as the model (with any hooks on it) computes."""
    last = run_to_last_layer(model, layout, batch)
    if last is None:
        raise RuntimeError(
            "the model's forward pass did not call its last decoder layer; the HeadLayout's"
            " layers must be the modules the model runs, in order"
        )
    return score_output(layout, metric, last, batch, n_copies=1)[0]


def clean_metrics(
    model: nn.Module,
    layout: ResolvedLayout,
    tokenizer: Any,
    tasks: Sequence[Task],
    metric: str,
    batch_size: int,
    device: torch.device | None = None,
    *,
    add_bos: bool | None = None,
) -> dict[str, float]:
    """Each task's mean ``metric`` with nothing ablated: one forward per example. The caller
    holds the model's session (:func:`~headwidget.modeling.session.model_session`)."""
    out = {}
    with torch.inference_mode():
        for task in tasks:
            batches = task_batches(
                model, layout, tokenizer, task, metric, batch_size, device, add_bos=add_bos
            )
            sums = [float(batch_metric(model, layout, b, metric).double().sum()) for b in batches]
            out[task.name] = sum(sums) / sum(b.size for b in batches)
    return out
