"""Exact head ablation: the metric's drop with one head's output replaced, for every head.

How it works (and why it is exact): for each batch of examples the model runs once, clean, with
``use_cache=False``; a pre-hook on every decoder layer records the call it receives (the hidden
state entering the layer plus every other argument: masks, position ids, rotary tables, alibi).
To score the heads of layer ``l`` the method tiles the recorded hidden state entering ``l`` into
one copy per (head, example), replaces each copy's head slice at the *input* of layer ``l``'s
attention output projection (a pre-hook; exact for grouped-query attention too), and replays only
layers ``l .. L-1`` with every batch-shaped argument tiled the same way. The final norm and LM
head are applied only at the positions that predict answer tokens. Layers before ``l`` are never
rerun, which is where the speed comes from: about half a forward pass per head.

16-bit models (``replay="float32"``, the default): most heads change the metric by less than a
bfloat16 residual stream can hold, so layers ``l .. L-1`` replayed in bfloat16 round each copy
differently and drown the small effects (the demo model's bfloat16 maps ranked heads with
Spearman 0.91-0.94 against float32). The replay therefore runs in float32
(:func:`~headwidget.modeling.precision.float32_compute`: the weights are widened where read, never
copied or changed) and takes the clean metric from an un-ablated copy in the same replay, so the
two sides of ``metric(clean) - metric(ablated)`` are computed alike; the recorded calls (layers
before ``l``) stay the model's own. One extra sequence per batch and layer; float32 arithmetic,
which on a GPU is slower than bfloat16 (``replay="model"`` keeps the model's dtype, the old way).
A float16 model whose hidden state passes float16's range fails at once with
:class:`~headwidget.modeling.precision.Float16OverflowError`, naming the layer.

``heads={layer: [head, ...]}`` scores only those heads (and replays only from those layers), so
scoring K heads costs in proportion to K; the other cells stay NaN. Attribution's refinement
uses it.

>>> from headwidget import Task, score_heads                            # doctest: +SKIP
>>> task = Task("capitals", [("The capital of France is", " Paris")])  # doctest: +SKIP
>>> scores = score_heads(model, tokenizer, task, heads={0: [2], 8: [1, 4]})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from ..modeling.batching import (
    CPU_MAX_TOKENS,
    bytes_per_sequence,
    hidden_size,
    memory_budget,
    plan,
    tile,
)
from ..modeling.hooks import (
    Ablate,
    CaptureCalls,
    HeadSums,
    LayerCall,
    hooks,
    run_to_last_layer,
    score_output,
)
from ..modeling.inputs import Batch, Encoded, make_batches, model_dtype
from ..modeling.precision import check_float16_range, float32_compute, is_low_precision
from .base import Block, Clean, ScoringContext, is_whole

__all__ = ["DEFAULT_REPLAY", "METHOD", "REPLAYS", "AblationMethod", "check_replay"]

REPLAYS = ("float32", "model")
DEFAULT_REPLAY = "float32"


def check_replay(replay: str) -> str:
    """``replay`` if it is one of :data:`REPLAYS`, else a ValueError saying what they mean."""
    if replay not in REPLAYS:
        raise ValueError(
            f"replay must be 'float32' (a 16-bit model's layers after the ablated head run in"
            f" float32: maps as float32's) or 'model' (in the model's dtype: faster on GPUs,"
            f" noisier), got {replay!r}"
        )
    return replay


def replays_in_float32(model: Any, dtype: torch.dtype, replay: str) -> bool:
    """Whether the replay runs in float32: ``replay="float32"`` and a 16-bit model, unless its
    attention runs only in 16 bits (flash attention) or its weights are offloaded (meta)."""
    if replay != "float32" or not is_low_precision(dtype):
        return False
    attention = str(getattr(getattr(model, "config", None), "_attn_implementation", "") or "")
    if "flash" in attention:
        return False
    return not any(p.device.type == "meta" for p in model.parameters())


class AblationMethod:
    """Exact ablation of every head (or of a chosen subset), one layer block at a time."""

    name: ClassVar[str] = "ablation"

    @classmethod
    def check_options(
        cls, heads: Mapping[int, Sequence[int]] | None = None, replay: str = DEFAULT_REPLAY
    ) -> dict[str, Any]:
        return {"heads": cls._check_heads(heads), "replay": check_replay(replay)}

    @staticmethod
    def _check_heads(heads: Mapping[int, Sequence[int]] | None) -> dict[int, list[int]] | None:
        if heads is None:
            return None
        bad = ValueError(
            "heads must map layer numbers to lists of head numbers, e.g. {0: [2], 8: [1, 4]},"
            f" got {heads!r}"
        )
        if not isinstance(heads, Mapping):
            raise bad
        checked: dict[int, list[int]] = {}
        for layer, chosen in heads.items():
            if not is_whole(layer) or isinstance(chosen, (str, bytes)):
                raise bad
            try:
                values = [int(h) for h in chosen if is_whole(h)]
            except TypeError:
                raise bad from None
            if len(values) != len(chosen):
                raise bad
            checked[int(layer)] = sorted(set(values))
        return checked

    def __init__(
        self,
        context: ScoringContext,
        heads: Mapping[int, Sequence[int]] | None = None,
        replay: str = DEFAULT_REPLAY,
    ):
        checked = self.check_options(heads, replay)
        self.heads = checked["heads"]
        if self.heads is not None:
            lay = context.layout
            wrong = {
                layer: hs
                for layer, hs in self.heads.items()
                if not 0 <= layer < lay.n_layers or any(not 0 <= h < lay.n_heads for h in hs)
            }
            if wrong:
                raise ValueError(
                    f"heads {wrong} are out of range: the model has layers 0..{lay.n_layers - 1}"
                    f" and heads 0..{lay.n_heads - 1} in each"
                )
        self.context = context
        self.layout = context.layout
        self.metric = context.metric
        self.device = context.device
        self.dtype = model_dtype(context.model)
        self.replay_dtype = checked["replay"]
        self.upcast = replays_in_float32(context.model, self.dtype, self.replay_dtype)
        self.offload = False  # keep the recorded hidden states in CPU memory
        self.sums: HeadSums | None = None  # mean ablation: the clean passes' head sums

    def blocks_per_task(self) -> int:
        if self.heads is None:
            return self.layout.n_layers
        return sum(1 for hs in self.heads.values() if hs)

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"replay": "float32" if self.upcast else "model"}
        if self.heads is not None:
            out["heads"] = {str(layer): hs for layer, hs in self.heads.items() if hs}
        return out

    # hooks live for one pass each (modeling.hooks): nothing to install for the whole call
    def open(self) -> None:
        pass

    def close(self) -> None:
        self.sums = None

    def max_sequences(self, n_examples: int, length: int, answer_tokens: int) -> int:
        """Sequences per replay forward; on CUDA also decides where recorded states live."""
        ctx = self.context
        dtype_bytes = torch.finfo(self.dtype).bits // 8
        budget = memory_budget(self.device)
        # The clean pass keeps the hidden state entering every layer for every example.
        hidden = hidden_size(ctx.model, self.layout)
        recorded = self.layout.n_layers * n_examples * length * hidden * dtype_bytes
        self.offload = self.device.type == "cuda" and recorded > budget // 2
        if not self.offload:
            budget -= recorded
        if ctx.batch_size is not None:
            return ctx.batch_size
        replayed_bytes = 4 if self.upcast else dtype_bytes  # a float32 replay: 4 bytes a value
        per_seq = bytes_per_sequence(ctx.model, self.layout, length, answer_tokens, replayed_bytes)
        n = max(budget, 0) // max(per_seq, 1)
        if self.device.type == "cpu":
            n = min(n, max(1, CPU_MAX_TOKENS // max(length, 1)))
        return max(1, int(n))

    def clean_pass(self, batch: Batch) -> tuple[list[LayerCall], torch.Tensor]:
        """Run the model once; return every layer's recorded call and the clean metric [B]
        (and, for mean ablation, add the heads' outputs to ``self.sums``)."""
        capture = CaptureCalls(self.layout.n_layers, self.offload)
        if self.sums is not None:
            self.sums.token_mask = batch.attention_mask.reshape(-1).bool()
        with hooks(self.layout, heads=self.sums, layer_in=capture):
            last = run_to_last_layer(self.context.model, self.layout, batch)
        calls = capture.calls
        missing = [i for i, c in enumerate(calls) if c is None]
        if missing or last is None:
            raise RuntimeError(
                f"the model's forward pass did not call decoder layer(s) {missing}; the"
                " HeadLayout's layers must be the modules the model runs, in order"
            )
        if self.dtype == torch.float16:
            states = [c.hidden for c in calls]  # type: ignore[union-attr]
            check_float16_range(states, last, batch.attention_mask)
        clean = score_output(self.layout, self.metric, last, batch, n_copies=1)[0]
        return calls, clean  # type: ignore[return-value]

    def replay(
        self,
        calls: list[LayerCall],
        batch: Batch,
        layer: int,
        heads: torch.Tensor,
        values: torch.Tensor | float,
        tiled_cache: dict[int, list[tuple[tuple[Any, ...], dict[str, Any]]]],
        clean_copy: bool = False,
    ) -> torch.Tensor:
        """Metric [len(heads), B] with head heads[c] of ``layer`` ablated in copy c; with
        ``clean_copy``, [1 + len(heads), B], copy 0 replayed with nothing ablated. In float32
        when :attr:`upcast` (:func:`~headwidget.modeling.precision.float32_compute`)."""
        with float32_compute() if self.upcast else contextlib.nullcontext():
            n = len(heads) + int(clean_copy)
            size = batch.size
            lay = self.layout
            per_layer = tiled_cache.get(n)
            if per_layer is None:
                memo: dict[int, Any] = {}
                per_layer = []
                for call in calls:
                    per_layer.append(
                        (
                            tile(call.args, n, size, lay.n_heads, memo),
                            tile(call.kwargs, n, size, lay.n_heads, memo),
                        )
                    )
                tiled_cache[n] = per_layer
            recorded = calls[layer].hidden
            assert recorded is not None, "hidden state already released"
            hidden_in = recorded.to(self.device)
            hidden = hidden_in.repeat(n, *([1] * (hidden_in.ndim - 1)))
            copies, heads, values = Ablate.tiled(heads, values)
            if clean_copy:  # copy 0 keeps every head
                copies = copies + 1
            ablate = Ablate(lay, {layer: (copies, heads, values)}, n_copies=n)
            with hooks(lay, heads=ablate, layers=[layer]):
                for k in range(layer, lay.n_layers):
                    args, kwargs = per_layer[k]
                    if calls[k].hidden_in_kwargs:
                        out = lay.layers[k](*args, hidden_states=hidden, **kwargs)
                    else:
                        out = lay.layers[k](hidden, *args, **kwargs)
                    hidden = out[0] if isinstance(out, (tuple, list)) else out
            return score_output(self.layout, self.metric, hidden, batch, n_copies=n)

    def score_task(
        self,
        task: int,
        items: list[Encoded],
        heads: Mapping[int, Sequence[int]] | None = None,
    ) -> Iterator[Clean | Block]:
        """Clean metrics, then one exact Block per layer (only ``heads``' layers and heads,
        in increasing layer order, when given; default: the ``heads`` the method was made
        with, else all)."""
        with torch.inference_mode():
            yield from self._score_task(task, items, self.heads if heads is None else heads)

    def _score_task(
        self, task: int, items: list[Encoded], heads: Mapping[int, Sequence[int]] | None
    ) -> Iterator[Clean | Block]:
        layout = self.layout
        n_layers, n_heads = layout.n_layers, layout.n_heads
        device = self.device
        if heads is None:
            wanted = {layer: list(range(n_heads)) for layer in range(n_layers)}
        else:
            wanted = {int(k): sorted({int(h) for h in v}) for k, v in heads.items() if len(v)}
        widest = max((len(v) for v in wanted.values()), default=1)
        longest = max(len(e.prompt) + len(e.answer) for e in items)
        most_answer = 1 if self.metric == "logit_diff" else max(len(e.answer) for e in items)
        slots = widest + int(self.upcast)  # a float32 replay has a clean copy of each batch
        per_batch, per_chunk = plan(
            len(items), slots, self.max_sequences(len(items), longest, most_answer)
        )
        order, batches = make_batches(
            items, self.metric, self.context.pad_id, n_heads, device, per_batch
        )

        # Clean pass: one forward per batch, recording every layer's call (and head means).
        mean = self.context.ablation == "mean"
        self.sums = HeadSums(n_layers) if mean else None
        recorded: list[list[LayerCall]] = []
        clean: list[torch.Tensor] = []
        for batch in batches:
            calls, metric = self.clean_pass(batch)
            recorded.append(calls)
            clean.append(metric)
        clean_sorted = torch.cat(clean).double().cpu().numpy()
        per_example = np.empty(len(items), dtype=np.float64)
        per_example[order] = clean_sorted
        yield Clean(task, per_example)

        if self.sums is not None:
            means = self.sums.means(n_heads, layout.head_dim)
            self.sums = None

        tiled: list[dict[int, Any]] = [{} for _ in batches]
        for layer in range(n_layers):
            if layer not in wanted:
                for calls in recorded:
                    calls[layer].hidden = None
                continue
            chunks = _chunks(wanted[layer], per_chunk, self.upcast, device)
            drop = torch.zeros(n_heads, dtype=torch.float64)
            # each example's drop, in the sorted (batched) order: [n_heads, n_examples]
            each = torch.zeros(n_heads, len(items), dtype=torch.float64)
            start = 0
            for b, batch in enumerate(batches):
                base = clean[b].double()
                for c, chunk in enumerate(chunks):
                    fill: torch.Tensor | float = 0.0
                    if mean:
                        fill = means[layer][chunk].unsqueeze(1)  # [n, 1, head_dim]
                    # float32 replay: the clean metric of the same replay, so rounding cancels
                    same_path = self.upcast and c == 0
                    ablated = self.replay(
                        recorded[b], batch, layer, chunk, fill, tiled[b], clean_copy=same_path
                    ).double()
                    if same_path:
                        base, ablated = ablated[0], ablated[1:]
                    delta = (base.unsqueeze(0) - ablated).cpu()
                    drop[chunk.cpu()] += delta.sum(1)
                    each[chunk.cpu(), start : start + batch.size] = delta
                recorded[b][layer].hidden = None  # not needed any more: free it
                start += batch.size
            index = np.asarray(wanted[layer], dtype=np.int64)
            row = (drop / len(items)).numpy()[index].astype(np.float32)
            per_example = np.empty((len(index), len(items)), dtype=np.float64)
            per_example[:, order] = each.numpy()[index]
            yield Block(task, layer, index, row, exact=True, per_example=per_example)


def _chunks(
    chosen: list[int], per_chunk: int, clean_slot: bool, device: torch.device
) -> list[torch.Tensor]:
    """``chosen`` heads in replays of ``per_chunk`` copies, the first one short by one for the
    clean copy when ``clean_slot`` (with ``per_chunk == 1``: a replay of the clean copy only)."""
    first = per_chunk - 1 if clean_slot else per_chunk
    cuts = [chosen[:first]] if clean_slot else []
    rest = chosen[first:] if clean_slot else chosen
    cuts += [rest[h : h + per_chunk] for h in range(0, len(rest), per_chunk)]
    return [torch.tensor(cut, dtype=torch.long, device=device) for cut in cuts]


METHOD = AblationMethod
