"""Edge attribution: every path among a task's heads estimated to first order from gradients.

``effect(s -> r via c) ~ sum over positions of delta_s . dmetric/dx_{r,c}``, where ``delta_s`` is
the sender's contribution (:mod:`.path_edges`) and ``x_{r,c}`` the residual stream as only
receiver ``r``'s channel ``c`` reads it (before the layer's attention norm); for the logits,
``delta_s . dmetric/dx_L`` at the answer positions. First order in the receiver's input only:
what follows it is the model's exact gradient.

How, per batch: one forward pass with gradients (none on the weights) records every layer's
call and the gradient at every head's output (the out_proj input, ``g_h``) and at the last
layer's output, from one backward pass. Then, per receiver layer, the layer's attention is
rerun on its recorded call, one copy per receiver ``r``, with a zero probe added to its query,
key and value (the ``qkv=`` site), and one more backward pass of ``sum_r o_r . g_r`` (copy
``r``'s output of head ``r`` only) gives each receiver's gradient at each channel, its own
alone even where a key/value group is shared (grouped-query attention); through the
projection's weights and the attention norm's vector-Jacobian product that is
``dmetric/dx_{r,c}``. The reruns cost one layer's attention per receiver (forward and backward)
in all, so every edge among 50 heads costs a few forward passes, whatever their number.

>>> clean, estimates = PathAttribution(context, channels).run(items, edges)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from ..modeling.batching import backward_sequences
from ..modeling.channels import CHANNELS, ResolvedChannels
from ..modeling.hooks import (
    CaptureCalls,
    Form,
    ProjectionCall,
    head_means,
    hooks,
    mean_head_outputs,
    run_to_last_layer,
    score_output,
)
from ..modeling.inputs import Batch, Encoded, make_batches
from ..modeling.session import frozen_parameters
from .base import ScoringContext
from .path_edges import AttentionRun, Edge, SenderOutputs, check_input, contributions

__all__ = ["PathAttribution"]


class _Probe:
    """ADD (a ``heads=`` or ``layer_out=`` strategy): a zero leaf added to the tensor, whose
    gradient is the metric's there."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self.leaves: dict[int, torch.Tensor] = {}

    def __call__(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        leaf = torch.zeros_like(x, requires_grad=True)
        self.leaves[layer] = leaf
        return x + leaf


class _ChannelProbes:
    """ADD (``qkv=``): a zero leaf on each channel; keeps each channel's projection."""

    form: ClassVar[Form] = "call"

    def __init__(self, channels: Sequence[str], check: object) -> None:
        self.channels = tuple(channels)
        self.check = check
        self.leaves: dict[str, torch.Tensor] = {}
        self.project: dict[str, object] = {}

    def __call__(self, layer: int, call: ProjectionCall) -> torch.Tensor:
        self.check(call, layer)  # type: ignore[operator]
        leaf = torch.zeros_like(call.output, requires_grad=True)
        self.leaves[call.channel], self.project[call.channel] = leaf, call.project
        return call.output + leaf


class PathAttribution:
    """First-order estimates of a list of edges (:class:`.path_edges.Edge`) on one task."""

    def __init__(self, context: ScoringContext, channels: ResolvedChannels) -> None:
        if context.metric == "accuracy":
            raise ValueError(
                "method='attribution' needs a differentiable metric; accuracy has no gradient"
                " (use metric='logprob', 'prob' or 'logit_diff', or method='exact')"
            )
        self.context, self.channels, self.layout = context, channels, context.layout

    def _per_batch(self, items: list[Encoded]) -> int:
        ctx = self.context
        if ctx.batch_size is not None:
            return ctx.batch_size
        return backward_sequences(
            ctx.model, self.layout, ctx.device, items, ctx.metric, extra_bytes=1
        )

    capacity = 1  # sequences in one gradient pass (set by run)

    def run(self, items: list[Encoded], edges: Sequence[Edge]) -> tuple[np.ndarray, np.ndarray]:
        """The clean metric ``[n_examples]`` and each edge's first-order estimate
        ``[n_edges, n_examples]`` (float64, ``items``' order)."""
        ctx, lay = self.context, self.layout
        edges = list(edges)
        self.capacity = self._per_batch(items)
        order, batches = make_batches(
            items, ctx.metric, ctx.pad_id, lay.n_heads, ctx.device, self.capacity
        )
        senders = sorted({e.sender for e in edges})
        fills: dict[tuple[int, int], torch.Tensor | float] | None = dict.fromkeys(senders, 0.0)
        if ctx.ablation == "mean":
            fills = self._means(batches, senders) if len(batches) > 1 else None
        estimates = np.zeros((len(edges), len(items)))
        clean_parts = []
        start = 0
        with frozen_parameters(ctx.model):
            for batch in batches:
                clean, part = self._batch(batch, edges, senders, fills)
                estimates[:, start : start + batch.size] = part
                clean_parts.append(clean)
                start += batch.size
        out_clean, out = np.empty(len(items)), np.empty_like(estimates)
        out_clean[order] = torch.cat(clean_parts).double().cpu().numpy()
        out[:, order] = estimates
        return out_clean, out

    def _means(
        self, batches: list[Batch], senders: list[tuple[int, int]]
    ) -> dict[tuple[int, int], torch.Tensor | float]:
        """The senders' mean outputs over every batch (one forward each)."""
        means = mean_head_outputs(self.context.model, self.layout, batches)
        return {s: means[s[0]][s[1]].clone() for s in senders}

    def _batch(
        self,
        batch: Batch,
        edges: list[Edge],
        senders: list[tuple[int, int]],
        fills: dict[tuple[int, int], torch.Tensor | float] | None,
    ) -> tuple[torch.Tensor, np.ndarray]:
        ctx, lay = self.context, self.layout
        receivers = sorted({e.receiver for e in edges if e.receiver is not None})
        layers = sorted({r[0] for r in receivers})
        grab = SenderOutputs({s[0] for s in senders}, lay.n_layers, fills is None, detach=True)
        grab.token_mask = batch.attention_mask.reshape(-1).bool()
        heads = _Probe("heads")
        last = _Probe("tensor")
        capture = CaptureCalls(lay.n_layers)
        with torch.enable_grad():
            with contextlib.ExitStack() as stack:
                stack.enter_context(hooks(lay, heads=grab, layer_in=capture))
                stack.enter_context(hooks(lay, heads=heads, layers=layers))
                stack.enter_context(hooks(lay, layer_out=last, layers=[-1]))
                out = run_to_last_layer(ctx.model, lay, batch)
            if out is None or len(heads.leaves) != len(layers):
                raise RuntimeError("the model's forward pass did not run every decoder layer")
            metric = score_output(lay, ctx.metric, out, batch, n_copies=1)[0]
            leaves = [heads.leaves[layer] for layer in layers] + [last.leaves[lay.n_layers - 1]]
            grads = torch.autograd.grad(metric.sum(), leaves, allow_unused=True)
        grads = [
            torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=True)
        ]
        g_heads = dict(zip(layers, grads[:-1], strict=True))
        if fills is None:  # mean ablation, one batch: the means from this pass
            means = head_means(grab.sums, grab.counts, lay.n_heads, lay.head_dim)  # type: ignore[arg-type]
            fills = {s: means[s[0]][s[1]] for s in senders}
        with torch.no_grad():
            deltas = contributions(lay, self.channels, grab.outputs, senders, fills)
        grab.outputs = {}
        index = {s: i for i, s in enumerate(senders)}
        # [B, S, T * hidden]: every sender's contribution, laid out for one product a layer
        stacked = torch.stack([deltas[s].float() for s in senders], dim=1).flatten(2)
        del deltas
        estimates = np.zeros((len(edges), batch.size))
        rerun = AttentionRun(lay, self.channels, capture.calls)  # type: ignore[arg-type]
        for layer in layers:
            wanted = [i for i, e in enumerate(edges) if e.receiver and e.receiver[0] == layer]
            via = [c for c in CHANNELS if any(edges[i].via == c for i in wanted)]
            gx = self._receiver_gradients(rerun, capture.calls, layer, batch, via,
                                          [r for r in receivers if r[0] == layer],
                                          g_heads[layer])  # fmt: skip
            keys = list(gx)
            # every sender against every (receiver, channel) of the layer, per example: [S, K, B]
            grad = torch.stack([gx[k] for k in keys], dim=-1).flatten(1, 2)  # [B, T * hidden, K]
            dots = torch.bmm(stacked, grad).permute(1, 2, 0)
            where = {k: j for j, k in enumerate(keys)}
            rows = torch.tensor([index[edges[i].sender] for i in wanted])
            cols = torch.tensor([where[edges[i].receiver, edges[i].via] for i in wanted])
            estimates[wanted] = dots[rows, cols].double().cpu().numpy()
        logits = [i for i, e in enumerate(edges) if e.receiver is None]
        if logits:
            dots = torch.bmm(stacked, grads[-1].float().flatten(1)[:, :, None])[..., 0].T
            rows = torch.tensor([index[edges[i].sender] for i in logits])
            estimates[logits] = dots[rows].double().cpu().numpy()
        return metric.detach(), estimates

    def _receiver_gradients(
        self,
        rerun: AttentionRun,
        calls: list,
        layer: int,
        batch: Batch,
        via: list[str],
        receivers: list[tuple[int, int]],
        g_heads: torch.Tensor,
    ) -> dict[tuple[tuple[int, int], str], torch.Tensor]:
        """``dmetric/dx_{r,c}`` ``[B, T, hidden]`` (float32) for each receiver of ``layer``
        and channel in ``via``: the layer's attention rerun with one copy per receiver."""
        size = batch.size
        x = calls[layer].hidden.detach()
        expected = self.channels.normed(layer, x).detach()
        checked: list[bool] = []

        def check(call: ProjectionCall, at: int) -> None:
            if not checked:
                check_input(call, expected, at, self.channels)
                checked.append(True)

        out: dict[tuple[tuple[int, int], str], torch.Tensor] = {}
        width = max(1, self.capacity // size)  # copies of the batch in one rerun
        for i in range(0, len(receivers), width):
            chunk = receivers[i : i + width]
            n = len(chunk)
            probes = _ChannelProbes(via, check)
            with torch.enable_grad():
                hidden = x.repeat(n, *([1] * (x.ndim - 1)))
                heads = rerun(layer, hidden, size, probes)  # [n*B, T, H, d]
                loss = sum(
                    (
                        heads[c * size : (c + 1) * size, :, h].float() * g_heads[:, :, h].float()
                    ).sum()
                    for c, (_, h) in enumerate(chunk)
                )
                leaves = [probes.leaves[c] for c in via]
                grads = torch.autograd.grad(loss, leaves, allow_unused=True)
            normed: list[torch.Tensor] = []
            for c, g in zip(via, grads, strict=True):
                leaf = probes.leaves[c]
                g = torch.zeros_like(leaf) if g is None else g
                matrix = self._matrix(probes.project[c], x)  # [hidden, n_slices * d]
                flat = g.reshape(n, size, x.shape[1], -1).float()
                normed.append(flat @ matrix.T)  # [n, B, T, hidden]
            grad_x = self._through_norm(layer, x, torch.cat(normed))  # [len(via) * n, B, T, h]
            for k, c in enumerate(via):
                for j, receiver in enumerate(chunk):
                    out[receiver, c] = grad_x[k * n + j]
        return out

    @staticmethod
    def _matrix(project: object, x: torch.Tensor) -> torch.Tensor:
        """The channel's (affine) projection as a matrix ``[hidden, width]`` in float32."""
        hidden = x.shape[-1]
        with torch.no_grad():
            basis = torch.eye(hidden, device=x.device, dtype=x.dtype)
            zero = torch.zeros(1, hidden, device=x.device, dtype=x.dtype)
            rows = project(basis).reshape(hidden, -1) - project(zero).reshape(1, -1)  # type: ignore[operator]
        return rows.float()  # [hidden, width]: row i is the projection of basis vector i

    def _through_norm(self, layer: int, x: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """The attention norm's vector-Jacobian product at ``x`` for each of ``grads``."""
        norm = self.channels.norms[layer]
        if norm is None:
            return grads
        with torch.enable_grad():
            copies = x.unsqueeze(0).expand(grads.shape[0], *x.shape).clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(norm(copies), copies, grad_outputs=grads.to(x.dtype))
        return grad.float()
