"""Attribution's output correction: the exact log-softmax over linearly estimated logits.

First-order attribution differentiates the metric at the clean run. Where the model is sure of
the answer the log-softmax is flat (``d log p / d logit = 1 - p``, near 0), so a head whose
ablation lowers the answer's logit by several units looks harmless: on SmolLM2-135M that is
most of first order's misses (copying, name copying, comparative). This module estimates, per
example and head, how ablating the head moves the answer token's logit and the logits of its
``competitors`` strongest rivals (first order, one backward pass per logit and answer
position), passes the moved logits through the exact log-softmax (every other logit held at
its clean value), and returns that minus its own first-order expansion. Added to the
attribution, it keeps first order's use of the whole vocabulary and adds the curvature of the
top logits, where confident predictions saturate.

>>> rows = torch.tensor([0, 0, 1])   # example of each scored position
>>> answer_index(rows).tolist()      # which answer token of its example each one predicts
[0, 1, 0]
"""

from __future__ import annotations

import torch

from ..modeling.inputs import Batch

__all__ = ["CORRECTED_METRICS", "answer_index", "softmax_correction"]

CORRECTED_METRICS = ("logprob", "prob")  # the metrics built on the log-softmax


def answer_index(rows: torch.Tensor) -> torch.Tensor:
    """``[P]``: the index of each scored position among its example's (rows sorted)."""
    _, inverse, counts = torch.unique_consecutive(rows, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts
    return torch.arange(rows.numel(), device=rows.device) - first[inverse]


def softmax_correction(
    logits: torch.Tensor,
    batch: Batch,
    probes: list[torch.Tensor],
    deltas: list[torch.Tensor],
    metric: str,
    competitors: int,
) -> torch.Tensor:
    """The correction of each of the batch's examples: float64 ``[B, n_layers, n_heads]``.

    Args:
        logits: ``[P, vocab]`` at the scored positions, still attached to the graph.
        batch: the batch (its ``rows`` and ``targets``).
        probes: per layer the zero probe added at the out_proj input (``[B, T, n_heads * d]``).
        deltas: per layer ``clean - ablated`` activation, float32 ``[B, T, n_heads, d]``.
        metric: ``"logprob"`` or ``"prob"``.
        competitors: rival logits estimated besides the answer's (at least 1).
    """
    n_layers, (size, _, n_heads, _) = len(deltas), deltas[0].shape
    clean = logits.detach().double()  # [P, V]
    P, vocab = clean.shape
    rows, targets = batch.rows.to(clean.device), batch.targets.to(clean.device)
    m = min(competitors, vocab - 1)
    others = clean.scatter(-1, targets[:, None], -torch.inf)
    chosen = torch.cat([targets[:, None], others.topk(m, dim=-1).indices], 1)  # [P, m+1]
    picked = logits.gather(-1, chosen)  # [P, m+1], attached
    # dz[p, j, l, h]: first-order drop of logit j at position p when head (l, h) is ablated
    dz = torch.zeros(P, m + 1, n_layers, n_heads, dtype=torch.float64)
    index = answer_index(rows)
    for k in torch.unique(index).tolist():  # positions of one answer index: one pass per logit
        sel = index == k
        for j in range(m + 1):
            grads = torch.autograd.grad(picked[sel, j].sum(), probes, retain_graph=True)
            per_layer = [  # on the CPU: with device_map the layers sit on several devices
                (d * g.reshape(d.shape).float()).sum(dim=(1, 3)).double().cpu()  # [B, n_heads]
                for d, g in zip(deltas, grads, strict=True)
            ]
            dz[sel.cpu(), j] = torch.stack(per_layer, 1)[rows[sel].cpu()]
    z = clean.gather(-1, chosen).cpu()  # [P, m+1]
    rest = torch.logsumexp(clean.scatter(-1, chosen, -torch.inf), -1).cpu()  # [P]
    clean_lp = z[:, 0] - torch.logsumexp(torch.cat([z, rest[:, None]], 1), -1)  # [P]
    moved = z[:, :, None, None] - dz  # [P, m+1, L, H]
    with_rest = torch.cat([moved, rest[:, None, None, None].expand(P, 1, n_layers, n_heads)], 1)
    ablated_lp = moved[:, 0] - torch.logsumexp(with_rest, 1)  # [P, L, H]
    share = torch.softmax(torch.cat([z, rest[:, None]], 1), -1)[:, : m + 1]  # [P, m+1]
    linear_lp = dz[:, 0] - (share[:, :, None, None] * dz).sum(1)  # first order of the same
    drop = torch.zeros(size, n_layers, n_heads, dtype=torch.float64)  # per example
    linear = torch.zeros_like(drop)
    example = rows.cpu()
    drop.index_add_(0, example, clean_lp[:, None, None] - ablated_lp)
    linear.index_add_(0, example, linear_lp)
    if metric == "prob":  # prob = exp(sum of log-probabilities): its own curvature too
        total = torch.zeros(size, dtype=torch.float64).index_add_(0, example, clean_lp)
        p = total.exp()[:, None, None]
        drop, linear = p * -torch.expm1(-drop), p * linear
    return drop - linear
