"""Exact path patching on the replay engine: the effect of every edge among a task's heads.

``effect(s -> r via c)`` is the mean over examples of ``metric(clean) - metric(patched)``, where
in the patched run only receiver ``r``'s input on channel ``c`` (query, key or value) is
computed from the residual stream entering ``r``'s layer minus the sender's contribution
``delta_s`` (:mod:`.path_edges`), through that layer's own attention norm; every other head,
the other heads of ``r``'s key/value group included, sees the clean stream.
``effect(s -> logits)`` patches only the final norm's input: ``final(x_L - delta_s)``.

How, and why it is exact. Per batch the model runs once, clean, recording every decoder
layer's call (as exact ablation does, :mod:`.ablation`), the senders' head outputs and the
heads' means. For each receiver layer ``l`` and channel ``c``:

1. the layer's attention is rerun from its recorded call, one copy per sender, with channel
   ``c``'s projection replaced by its projection of ``norm_l(x_l - delta_s)`` (the ``qkv=``
   site of :func:`headwidget.modeling.hooks.hooks`; a fused projection: only ``c``'s columns).
   Every head of the copy sees the patched channel, but only receiver ``r``'s output is kept:
   ``r``'s output depends on nothing but its own query and its key/value group, so it is
   exactly ``r``'s output with its ``c`` input patched, under grouped-query attention too
   (patching the group's key for ``r`` alone needs no attention code of the model's: the
   other heads' outputs of the rerun are thrown away);
2. layers ``l .. L-1`` are replayed from the recorded clean stream, one copy per edge, with
   ``r``'s slice of the out_proj input replaced by that output at every position
   (:class:`~headwidget.modeling.hooks.Ablate` with per-position values), every other head
   clean.

Layers before ``l`` never rerun, so an edge costs about ``(L - l) / L`` of a forward pass plus
its share of step 1 (one layer's attention per sender and channel); a logits edge costs one
final norm and LM head at the answer positions.

>>> engine = ExactPaths(context, resolve_channels(model, layout))          # doctest: +SKIP
>>> clean, effects = engine.run(items, edges_among([(16, 0), (18, 6)], VIA))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from ..modeling.channels import ResolvedChannels
from ..modeling.hooks import (
    CaptureCalls,
    Form,
    LayerCall,
    ProjectionCall,
    head_means,
    hooks,
    metric_of_logits,
    run_to_last_layer,
    score_output,
)
from ..modeling.inputs import Batch, Encoded, make_batches
from .ablation import AblationMethod
from .base import ScoringContext
from .path_edges import AttentionRun, Edge, SenderOutputs, check_input, contributions

__all__ = ["CleanRecord", "ExactPaths", "PatchChannel"]

Progress = Callable[[int], None]


class PatchChannel:
    """REPLACE (``qkv=``): channel ``channel`` computed from ``inputs`` (``[n*B, T, hidden]``,
    one patched attention input per copy) instead of what the projection read."""

    form: ClassVar[Form] = "call"

    def __init__(self, channel: str, inputs: torch.Tensor, check: Callable[..., None]) -> None:
        self.channels = (channel,)
        self.inputs = inputs
        self.check = check

    def __call__(self, layer: int, call: ProjectionCall) -> torch.Tensor:
        self.check(call, layer)
        return call.project(self.inputs.to(call.input.dtype))


class CleanRecord:
    """One batch's clean pass: every layer's call, the senders' out_proj inputs, the last
    layer's output and the clean metric ``[B]``."""

    def __init__(
        self, calls: list[LayerCall], outputs: dict[int, torch.Tensor], last: torch.Tensor,
        clean: torch.Tensor,
    ) -> None:  # fmt: skip
        self.calls, self.outputs, self.last, self.clean = calls, outputs, last, clean
        self.deltas: dict[tuple[int, int], torch.Tensor] = {}
        self.tiled: dict[int, Any] = {}  # the replay engine's tiled calls, per copy count


class ExactPaths:
    """Exact effects of a list of edges (:class:`.path_edges.Edge`) on one task."""

    def __init__(self, context: ScoringContext, channels: ResolvedChannels) -> None:
        self.context, self.channels = context, channels
        self.layout = context.layout
        self.engine = AblationMethod(context)  # replays and memory planning

    def run(
        self, items: list[Encoded], edges: Sequence[Edge], progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The clean metric ``[n_examples]`` and each edge's effect ``[n_edges, n_examples]``
        (float64, ``items``' order); ``progress(k)`` after every ``k`` edges."""
        with torch.inference_mode():
            return self._run(items, list(edges), progress or (lambda k: None))

    def _run(
        self, items: list[Encoded], edges: list[Edge], progress: Progress
    ) -> tuple[np.ndarray, np.ndarray]:
        ctx, lay = self.context, self.layout
        longest = max(len(e.prompt) + len(e.answer) for e in items)
        answer = 1 if ctx.metric == "logit_diff" else max(len(e.answer) for e in items)
        rows = self.engine.max_sequences(len(items), longest, answer)  # decides offloading
        per_batch = min(len(items), rows)
        self.copies = max(1, rows // per_batch)  # copies of a batch in one rerun or replay
        order, batches = make_batches(items, ctx.metric, ctx.pad_id, lay.n_heads, ctx.device,
                                      per_batch)  # fmt: skip
        senders = sorted({e.sender for e in edges})
        records = self.clean_passes(batches, senders)
        receivers = {e.receiver[0] for e in edges if e.receiver is not None}
        for record in records:  # only the receivers' layers' recorded states are replayed
            for layer, call in enumerate(record.calls):
                if layer not in receivers:
                    call.hidden = None
        effects = np.zeros((len(edges), len(items)))
        groups: dict[tuple[int, str], list[int]] = {}
        for i, edge in enumerate(edges):
            key = (-1, "logits") if edge.receiver is None else (edge.receiver[0], edge.via)
            groups.setdefault(key, []).append(i)
        start = 0
        for batch, record in zip(batches, records, strict=True):
            stop = start + batch.size
            for (layer, via), members in sorted(groups.items()):
                chosen = [edges[i] for i in members]
                if via == "logits":
                    patched = self.logits(batch, record, chosen)
                else:
                    patched = self.through(batch, record, layer, via, chosen)
                effects[members, start:stop] = (record.clean.unsqueeze(0) - patched).double().cpu()
                if batch is batches[-1]:
                    progress(len(members))
            for call in record.calls:  # not needed any more: free it
                call.hidden = None
            start = stop
        clean = torch.cat([r.clean for r in records]).double().cpu().numpy()
        out_clean, out_effects = np.empty(len(items)), np.empty_like(effects)
        out_clean[order], out_effects[:, order] = clean, effects
        return out_clean, out_effects

    def clean_passes(
        self, batches: list[Batch], senders: list[tuple[int, int]]
    ) -> list[CleanRecord]:
        """One clean forward per batch recording what the edges need, then every sender's
        contribution (mean ablation: the means over all batches)."""
        ctx, lay = self.context, self.layout
        mean = ctx.ablation == "mean"
        layers = {layer for layer, _ in senders}
        records, sums, counts = [], None, None
        for batch in batches:
            capture = CaptureCalls(lay.n_layers, self.engine.offload)
            grab = SenderOutputs(layers, lay.n_layers, sums=mean)
            if mean:
                grab.token_mask = batch.attention_mask.reshape(-1).bool()
                if sums is not None:
                    grab.sums, grab.counts = sums, counts  # type: ignore[assignment]
            with hooks(lay, heads=grab, layer_in=capture):
                last = run_to_last_layer(ctx.model, lay, batch)
            missing = [i for i, c in enumerate(capture.calls) if c is None]
            if missing or last is None:
                raise RuntimeError(
                    f"the model's forward pass did not call decoder layer(s) {missing}; the"
                    " HeadLayout's layers must be the modules the model runs, in order"
                )
            sums, counts = grab.sums, grab.counts
            clean = score_output(lay, ctx.metric, last, batch, n_copies=1)[0]
            records.append(CleanRecord(capture.calls, grab.outputs, last, clean))  # type: ignore[arg-type]
        fills: dict[tuple[int, int], torch.Tensor | float] = dict.fromkeys(senders, 0.0)
        if mean:
            means = head_means(sums, counts, lay.n_heads, lay.head_dim)  # type: ignore[arg-type]
            fills = {s: means[s[0]][s[1]] for s in senders}
        for record in records:
            record.deltas = contributions(lay, self.channels, record.outputs, senders, fills)
            record.outputs = {}
        return records

    def logits(self, batch: Batch, record: CleanRecord, edges: list[Edge]) -> torch.Tensor:
        """Metric ``[len(edges), B]`` with the final norm's input ``x_L - delta_s``."""
        rows = batch.rows.to(record.last.device)
        positions = batch.positions.to(record.last.device)
        picked = record.last[rows, positions]  # [P, hidden]
        out = []
        step = max(1, self.copies)
        for i in range(0, len(edges), step):
            deltas = torch.stack(
                [record.deltas[e.sender][rows, positions] for e in edges[i : i + step]]
            )
            logits = self.layout.final(picked.unsqueeze(0) - deltas.to(picked.device))
            out.append(metric_of_logits(self.context.metric, logits, batch))
        return torch.cat(out)

    def through(
        self, batch: Batch, record: CleanRecord, layer: int, via: str, edges: list[Edge]
    ) -> torch.Tensor:
        """Metric ``[len(edges), B]`` with each edge's receiver's ``via`` input patched."""
        lay, size = self.layout, batch.size
        recorded = record.calls[layer].hidden
        assert recorded is not None, "hidden state already released"
        x = recorded.to(self.context.device)
        expected = self.channels.normed(layer, x)
        checked: list[bool] = []

        def check(call: ProjectionCall, at: int) -> None:
            if not checked:
                check_input(call, expected, at, self.channels)
                checked.append(True)

        rerun = AttentionRun(lay, self.channels, record.calls)
        senders = sorted({e.sender for e in edges})
        outputs: dict[tuple[int, int], torch.Tensor] = {}  # sender -> [B, T, n_heads, d]
        for i in range(0, len(senders), self.copies):
            chunk = senders[i : i + self.copies]
            inputs = torch.cat(
                [self.channels.normed(layer, x - record.deltas[s].to(x.device)) for s in chunk]
            )
            hidden = x.repeat(len(chunk), *([1] * (x.ndim - 1)))
            heads = rerun(layer, hidden, size, PatchChannel(via, inputs, check))
            for c, sender in enumerate(chunk):
                outputs[sender] = heads[c * size : (c + 1) * size]
        out = []
        for i in range(0, len(edges), self.copies):
            chunk_edges = edges[i : i + self.copies]
            heads_t = torch.tensor([e.receiver[1] for e in chunk_edges], device=x.device)  # type: ignore[index]
            values = torch.stack(
                [
                    outputs[e.sender][:, :, e.receiver[1]].reshape(-1, lay.head_dim)
                    for e in chunk_edges
                ]  # type: ignore[index]
            )  # [n, B*T, head_dim]
            out.append(
                self.engine.replay(record.calls, batch, layer, heads_t, values, record.tiled)
            )
        return torch.cat(out)
