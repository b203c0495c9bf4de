"""Attribution's sink screen: which heads derail the first-token attention sink when ablated.

The first position of a sequence sees only itself, so ablating a head there can be measured
exactly for every head at once: one forward of one-token sequences, a copy per head. Heads that
build the attention sink that later heads attend to change the first position's last hidden
state the most; their ablation is badly nonlinear (the softmax attending to the sink is
saturated), so attribution's ``screen=S`` scores the ``S`` most disruptive heads exactly.

>>> change = first_position_screen(context, batches, means)    # doctest: +SKIP
>>> change.shape   # [n_layers, n_heads], relative change of the last hidden state
(30, 9)
"""

from __future__ import annotations

import numpy as np
import torch

from ..modeling.hooks import Ablate, hooks, run_to_last_layer
from ..modeling.inputs import Batch
from .base import ScoringContext

__all__ = ["first_position_screen"]


def first_position_screen(
    ctx: ScoringContext, batches: list[Batch], means: list[torch.Tensor] | None
) -> np.ndarray:
    """``[n_layers, n_heads]``: how much ablating each head at the first position alone
    changes that position's last hidden state (relative norm).

    The first position sees only itself, so one forward of one-token sequences (the task's
    most common first token), one copy per head, measures it exactly: about
    ``n_layers * n_heads`` tokens, a couple of forward passes' worth. It finds the heads
    that build the first-token attention sink, whose ablation first-order attribution gets
    badly wrong (the softmax that attends to the sink is saturated).
    """
    lay = ctx.layout
    n_layers, n_heads = lay.n_layers, lay.n_heads
    firsts = torch.cat([b.input_ids[:, 0] for b in batches]).cpu()
    values, counts = torch.unique(firsts, return_counts=True)
    token = int(values[int(torch.argmax(counts))])  # most common; ties: the smallest id
    n = 1 + n_layers * n_heads  # copy 0 clean, copy 1 + layer * n_heads + head ablated
    ids = torch.full((n, 1), token, dtype=torch.long, device=ctx.device)
    empty = torch.zeros(0, dtype=torch.long, device=ctx.device)
    batch = Batch(ids, torch.ones_like(ids), empty, empty, empty, None, n)
    heads = torch.arange(n_heads)
    plan = {  # layer: copy 1 + layer * n_heads + h gets head h ablated, h = 0..n_heads-1
        layer: (heads + 1 + layer * n_heads, heads, 0.0 if means is None else means[layer][:, None])
        for layer in range(n_layers)
    }
    with hooks(lay, heads=Ablate(lay, plan, n_copies=n)), torch.inference_mode():
        last = run_to_last_layer(ctx.model, lay, batch)
    if last is None:
        raise RuntimeError("the model's forward pass did not call its last decoder layer")
    hidden = last[:, 0].float()
    change = (hidden[1:] - hidden[:1]).norm(dim=-1) / hidden[0].norm().clamp_min(1e-12)
    return change.view(n_layers, n_heads).cpu().numpy().astype(np.float64)
