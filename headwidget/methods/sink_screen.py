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

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..modeling.hooks import run_to_last_layer
from ..modeling.inputs import Batch
from ..modeling.session import in_owner_thread, owner_thread
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
    n_layers, n_heads, head_dim = lay.n_layers, lay.n_heads, lay.head_dim
    firsts = torch.cat([b.input_ids[:, 0] for b in batches]).cpu()
    values, counts = torch.unique(firsts, return_counts=True)
    token = int(values[int(torch.argmax(counts))])  # most common; ties: the smallest id
    n = 1 + n_layers * n_heads  # copy 0 clean, copy 1 + layer * n_heads + head ablated
    ids = torch.full((n, 1), token, dtype=torch.long, device=ctx.device)
    empty = torch.zeros(0, dtype=torch.long, device=ctx.device)
    batch = Batch(ids, torch.ones_like(ids), empty, empty, empty, None, n)
    owner = owner_thread()

    def hook(layer: int) -> Callable:
        rows = torch.arange(n_heads) + 1 + layer * n_heads

        def ablate(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            if not in_owner_thread(owner):
                return None
            x = args[0]
            view = x.reshape(n, n_heads, head_dim).clone()
            index = rows.to(x.device), torch.arange(n_heads, device=x.device)
            if means is None:
                view[index] = 0.0
            else:
                view[index] = means[layer].to(device=x.device, dtype=x.dtype)
            return (view.reshape(x.shape), *args[1:])

        return ablate

    handles = [p.register_forward_pre_hook(hook(i)) for i, p in enumerate(lay.out_projs)]
    try:
        with torch.inference_mode():
            last = run_to_last_layer(ctx.model, lay, batch)
    finally:
        for handle in handles:
            handle.remove()
    if last is None:
        raise RuntimeError("the model's forward pass did not call its last decoder layer")
    hidden = last[:, 0].float()
    change = (hidden[1:] - hidden[:1]).norm(dim=-1) / hidden[0].norm().clamp_min(1e-12)
    return change.view(n_layers, n_heads).cpu().numpy().astype(np.float64)
