"""Exact head-ablation scores for every (task, layer, head) of a causal LM.

How it works (and why it is exact): for each batch of examples the model runs once, clean, with
``use_cache=False``; a pre-hook on every decoder layer records the call it receives (the hidden
state entering the layer plus every other argument: masks, position ids, rotary tables, alibi).
To score the heads of layer ``l`` the engine tiles the recorded hidden state entering ``l`` into
one copy per (head, example), replaces each copy's head slice at the *input* of layer ``l``'s
attention output projection (a pre-hook; exact for grouped-query attention too), and replays only
layers ``l .. L-1`` with every batch-shaped argument tiled the same way. The final norm and LM
head are applied only at the positions that predict answer tokens. Layers before ``l`` are never
rerun, which is where the speed comes from: about half a forward pass per head.

>>> from headwidget import Task, score_heads                            # doctest: +SKIP
>>> task = Task("capitals", [("The capital of France is", " Paris")])  # doctest: +SKIP
>>> scores = score_heads(model, tokenizer, task, ablation="mean")       # doctest: +SKIP
>>> scores.values.shape   # [n_tasks, n_layers, n_heads]                # doctest: +SKIP
(1, 32, 32)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .adapters import HeadLayout, ResolvedLayout, UnsupportedModelError, resolve_layout
from .metrics import check_metric, compute_metric
from .results import HeadScores
from .tasks import Task, as_task_list

__all__ = [
    "ABLATIONS",
    "HeadLayout",
    "NonFiniteMetricError",
    "UnsupportedModelError",
    "score_heads",
]

ABLATIONS: tuple[str, ...] = ("mean", "zero")

# CPU replay batches: measured on a 12-layer, 768-wide Llama, the time per sequence is flat from
# about 16 to 128 sequences of 36 tokens and grows beyond (1.2x at 384, 1.5x at 768: the
# activations leave the cache and big allocations page-fault), so cap the tokens per forward.
_CPU_BUDGET_BYTES = 2 * 2**30
_CPU_MAX_TOKENS = 4096  # sequences x tokens per replay forward on CPU
_CUDA_FREE_FRACTION = 0.5


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


# -- tokenisation ----------------------------------------------------------------------------


@dataclass
class _Encoded:
    prompt: list[int]
    answer: list[int]
    distractor: int | None  # "logit_diff": the distractor's token at answer[split]'s position
    split: int = 0  # "logit_diff": the first answer token that differs from the distractor's


def _token_ids(tokenizer: Any, text: str, special: bool = True) -> list[int]:
    ids = tokenizer(text, add_special_tokens=special)["input_ids"]
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    return [int(i) for i in ids]


def _split(tokenizer: Any, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
    """Prompt tokens and continuation tokens, tokenising the text as the model would see it."""
    prompt_ids = _token_ids(tokenizer, prompt)
    full = _token_ids(tokenizer, prompt + continuation)
    if len(full) > len(prompt_ids) and full[: len(prompt_ids)] == prompt_ids:
        return prompt_ids, full[len(prompt_ids) :]
    # The joint tokenisation merged across the boundary: tokenise the parts separately.
    return prompt_ids, _token_ids(tokenizer, continuation, special=False)


def _context_limit(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _encode_task(task: Task, tokenizer: Any, metric: str, limit: int | None) -> list[_Encoded]:
    if len(task) == 0:
        raise ValueError(f"task {task.name!r} has no examples; give it at least one")
    if metric == "logit_diff":
        missing = [i for i, ex in enumerate(task.examples) if not ex.distractor]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise ValueError(
                f"metric='logit_diff' needs a distractor on every example, but task"
                f" {task.name!r} has none on example(s) {shown}; add distractors or use"
                " metric='logprob'"
            )
    encoded = []
    for i, ex in enumerate(task.examples):
        where = f"task {task.name!r}, example {i}"
        prompt, answer = _split(tokenizer, ex.prompt, ex.answer)
        if not answer:
            raise ValueError(
                f"{where}: the answer {ex.answer!r} tokenizes to no tokens; give an answer the"
                " tokenizer turns into at least one token"
            )
        if not prompt:
            raise ValueError(
                f"{where}: the prompt {ex.prompt!r} tokenizes to no tokens, so there is no"
                " position to predict the answer from; give a non-empty prompt"
            )
        n_tokens = len(prompt) + len(answer)
        if limit is not None and n_tokens > limit:
            raise ValueError(
                f"{where}: prompt + answer is {n_tokens} tokens, longer than the model's context"
                f" of {limit} tokens; shorten the example"
            )
        distractor, split = None, 0
        if metric == "logit_diff":
            _, dist = _split(tokenizer, ex.prompt, ex.distractor or "")
            if not dist:
                raise ValueError(f"{where}: the distractor {ex.distractor!r} tokenizes to nothing")
            # Compare where the two continuations part (" 1807" vs " 1806" may share " 18").
            while split < min(len(answer), len(dist)) and answer[split] == dist[split]:
                split += 1
            if split == len(answer) or split == len(dist):
                raise ValueError(
                    f"{where}: the answer {ex.answer!r} and the distractor {ex.distractor!r}"
                    " tokenize to the same tokens (or one is a prefix of the other), so there is"
                    " no token where their logits differ; give a distractor that differs"
                )
            distractor = dist[split]
        encoded.append(_Encoded(prompt, answer, distractor, split))
    return encoded


@dataclass
class _Batch:
    """A right-padded batch of examples and the positions the metric reads."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    rows: torch.Tensor  # [P] example index (within the batch) of each scored position
    positions: torch.Tensor  # [P] time index whose logits predict the target
    targets: torch.Tensor  # [P]
    distractors: torch.Tensor | None  # [P] ("logit_diff")
    size: int


def _make_batch(
    items: list[_Encoded], metric: str, pad_id: int, n_heads: int, device: torch.device
) -> _Batch:
    # Teacher forcing: the model reads the prompt and every answer token but the last.
    seqs = [e.prompt + e.answer[:-1] for e in items]
    size = len(items)
    length = max(len(s) for s in seqs)
    # Replayed arguments are tiled when their leading dimension is the batch size (or batch x
    # heads for alibi); make sure the sequence length never equals either.
    while length in (size, size * n_heads):
        length += 1
    ids = torch.full((size, length), pad_id, dtype=torch.long)
    mask = torch.zeros((size, length), dtype=torch.long)
    rows, positions, targets, distractors = [], [], [], []
    for b, (seq, e) in enumerate(zip(seqs, items, strict=True)):
        ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[b, : len(seq)] = 1
        first = e.split if metric == "logit_diff" else 0
        last = first + 1 if metric == "logit_diff" else len(e.answer)
        for j in range(first, last):
            rows.append(b)
            positions.append(len(e.prompt) - 1 + j)
            targets.append(e.answer[j])
            distractors.append(e.distractor if e.distractor is not None else 0)

    def as_tensor(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    return _Batch(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        rows=as_tensor(rows),
        positions=as_tensor(positions),
        targets=as_tensor(targets),
        distractors=as_tensor(distractors) if metric == "logit_diff" else None,
        size=size,
    )


# -- hooks -----------------------------------------------------------------------------------


class _StopForward(Exception):
    """Raised after the last decoder layer: the clean pass needs nothing after it."""


@dataclass
class _Call:
    """One recorded decoder-layer call: the hidden state and every other argument."""

    args: tuple[Any, ...]  # positional arguments after the hidden state
    kwargs: dict[str, Any]  # keyword arguments other than hidden_states
    hidden_in_kwargs: bool
    hidden: torch.Tensor | None  # dropped once its layer has been scored


@dataclass
class _State:
    """What the out-proj hooks do right now (shared by all of them)."""

    mode: str = "off"  # "off" | "record" | "ablate"
    capturing: bool = False
    offload: bool = False  # keep recorded hidden states in CPU memory
    layer: int = -1
    n_copies: int = 0
    copy_index: torch.Tensor | None = None
    heads: torch.Tensor | None = None
    values: torch.Tensor | float = 0.0
    token_mask: torch.Tensor | None = None  # [B*T] bool, for "record"
    sums: list[torch.Tensor | None] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    calls: list[_Call | None] = field(default_factory=list)
    last_output: torch.Tensor | None = None


def _add_head_sums(
    x: torch.Tensor,
    token_mask: torch.Tensor,
    sums: list[torch.Tensor | None],
    counts: list[int],
    index: int,
) -> None:
    """Add layer ``index``'s head outputs ``x`` at the non-pad positions (``token_mask``, one
    flag per batch x time) to ``sums[index]`` in float32 and count them: mean ablation's mean."""
    flat = x.reshape(-1, x.shape[-1])[token_mask.to(x.device)]
    total = flat.sum(0, dtype=torch.float32)
    prev = sums[index]
    sums[index] = total if prev is None else prev + total
    counts[index] += flat.shape[0]


def _head_means(
    sums: list[torch.Tensor | None], counts: list[int], n_heads: int, head_dim: int
) -> list[torch.Tensor]:
    """Per layer, each head's mean output ``[n_heads, head_dim]`` from :func:`_add_head_sums`."""
    missing = [
        i for i, (total, n) in enumerate(zip(sums, counts, strict=True)) if total is None or not n
    ]
    if missing:
        raise RuntimeError(
            f"the attention output projection of layer(s) {missing} was never called; the"
            " HeadLayout's out_proj must be the modules the model runs"
        )
    return [
        (total / n).view(n_heads, head_dim)  # type: ignore[operator]
        for total, n in zip(sums, counts, strict=True)
    ]


def _out_proj_hook(state: _State, index: int, n_heads: int, head_dim: int) -> Callable:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if state.layer != index or state.mode == "off":
            return None
        x = args[0]
        if state.mode == "record":
            _add_head_sums(x, state.token_mask, state.sums, state.counts, index)
            return None
        # "ablate": copy c (of n) of the batch gets head heads[c] replaced.
        # reshape is a view for the usual contiguous input (then the edit is in place, which is
        # fine: the tensor exists only to be projected) and a copy otherwise.
        view = x.reshape(state.n_copies, -1, n_heads, head_dim)
        fill = state.values
        heads, copies = state.heads, state.copy_index
        if heads.device != x.device:  # layers spread over devices (device_map)
            heads, copies = heads.to(x.device), copies.to(x.device)
        if isinstance(fill, torch.Tensor):
            fill = fill.to(device=x.device, dtype=x.dtype)
        view[copies, :, heads, :] = fill
        return (view.view(x.shape), *args[1:])

    return hook


def _layer_pre_hook(state: _State, index: int) -> Callable:
    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not state.capturing:
            return None
        kwargs = dict(kwargs)
        if args:
            hidden, rest, in_kwargs = args[0], tuple(args[1:]), False
        else:
            if "hidden_states" not in kwargs:
                raise ValueError(
                    f"decoder layer {index} ({type(module).__name__}) was called without its"
                    " hidden state as the first positional argument or as hidden_states=; the"
                    " HeadLayout's layers must be modules called that way (the decoder blocks)"
                )
            hidden, rest, in_kwargs = kwargs.pop("hidden_states"), (), True
        if state.offload:
            hidden = hidden.to("cpu")
        state.calls[index] = _Call(rest, kwargs, in_kwargs, hidden)
        state.layer = index  # this layer's out-proj hook records next (mean ablation)
        return None

    return hook


def _last_layer_hook(state: _State) -> Callable:
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        state.last_output = output[0] if isinstance(output, (tuple, list)) else output
        raise _StopForward

    return hook


# -- argument tiling -------------------------------------------------------------------------


def _tile(obj: Any, n: int, size: int, n_heads: int, memo: dict[int, Any]) -> Any:
    """``obj`` with every batch-shaped tensor repeated ``n`` times along the batch (tile order:
    copy-major, so row ``c * size + b`` is copy ``c`` of example ``b``)."""
    if isinstance(obj, torch.Tensor):
        if obj.ndim < 2:  # cache_position and other per-position vectors
            return obj
        key = id(obj)
        if key in memo:
            return memo[key]
        lead = obj.shape[0]
        rest = obj.shape[1:]
        if n == 1:  # one head per replay: the recorded tensor serves as it is
            out = obj
        elif lead == size:
            out = obj.repeat(n, *([1] * len(rest)))
        elif n_heads > 1 and lead == size * n_heads:  # alibi: [batch * heads, 1, T]
            out = obj.reshape(size, n_heads, *rest).repeat(n, *([1] * (len(rest) + 1)))
            out = out.reshape(n * size * n_heads, *rest)
        else:  # broadcast over the batch (leading 1) or not batch-shaped at all
            out = obj
        memo[key] = out
        return out
    if isinstance(obj, tuple):
        items = [_tile(v, n, size, n_heads, memo) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, list):
        return [_tile(v, n, size, n_heads, memo) for v in obj]
    if isinstance(obj, dict):
        return {k: _tile(v, n, size, n_heads, memo) for k, v in obj.items()}
    return obj


# -- memory planning -------------------------------------------------------------------------


def _config_int(config: Any, keys: Sequence[str], default: int) -> int:
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def _hidden_size(model: nn.Module, layout: ResolvedLayout) -> int:
    """Width of the residual stream (the config's, else the attention width)."""
    config = getattr(model, "config", None)
    return _config_int(
        config, ("hidden_size", "n_embd", "d_model"), layout.n_heads * layout.head_dim
    )


def _bytes_per_sequence(
    model: nn.Module, layout: ResolvedLayout, length: int, answer_tokens: int, dtype_bytes: int
) -> int:
    """Rough peak activation bytes one replayed sequence needs (deliberately generous)."""
    config = getattr(model, "config", None)
    width = layout.n_heads * layout.head_dim
    hidden = _hidden_size(model, layout)
    inter = _config_int(config, ("intermediate_size", "ffn_dim", "n_inner"), 4 * hidden)
    inter *= _config_int(config, ("num_experts_per_tok",), 1)
    vocab = _config_int(config, ("vocab_size",), 50000)
    per_token = 10 * hidden + 4 * width + 3 * inter
    attention = 2 * layout.n_heads * length * length  # scores and probabilities (eager path)
    masks = 2 * length * length
    logits = answer_tokens * vocab * (dtype_bytes + 12)  # model-dtype logits + float32 temps
    return (per_token * length + attention) * dtype_bytes + masks * 4 + logits


def _memory_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * _CUDA_FREE_FRACTION)
    available = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if available:
        return int(min(_CPU_BUDGET_BYTES, available // 4))
    return _CPU_BUDGET_BYTES


def _plan(n_examples: int, n_heads: int, max_sequences: int) -> tuple[int, int]:
    """(examples per batch, heads per replay chunk) so one replay holds <= max_sequences rows."""
    max_sequences = max(1, max_sequences)
    if max_sequences < n_examples:
        n_batches = math.ceil(n_examples / max_sequences)
        return math.ceil(n_examples / n_batches), 1  # even batches: 32 + 32, not 56 + 8
    heads_per_chunk = min(n_heads, max_sequences // n_examples)
    # Even chunks (4, 4, 4 rather than 5, 5, 2): same cost, fewer distinct tiled shapes.
    n_chunks = math.ceil(n_heads / heads_per_chunk)
    return n_examples, math.ceil(n_heads / n_chunks)


# -- the engine ------------------------------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(embeddings, "weight", None)
    if isinstance(weight, torch.Tensor):
        return weight.device
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cuda":
        current = torch.cuda.current_device()
        return (a.index if a.index is not None else current) == (
            b.index if b.index is not None else current
        )
    return a.index == b.index or a.index is None or b.index is None


def _pad_id(tokenizer: Any, model: nn.Module) -> int:
    """Any valid token id works for padding (padded positions are masked and never scored)."""
    for candidate in (
        getattr(tokenizer, "pad_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ):
        if isinstance(candidate, int) and candidate >= 0:
            embeddings = (
                model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
            )
            limit = getattr(embeddings, "num_embeddings", None)
            if limit is None or candidate < limit:
                return candidate
    return 0


def _versions() -> dict[str, str]:
    import transformers

    from . import __version__

    return {
        "headwidget": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


class _Engine:
    def __init__(
        self,
        model: nn.Module,
        layout: ResolvedLayout,
        metric: str,
        ablation: str,
        device: torch.device,
        batch_size: int | None,
    ) -> None:
        self.model = model
        self.layout = layout
        self.metric = metric
        self.ablation = ablation
        self.device = device
        self.batch_size = batch_size
        self.dtype = _model_dtype(model)
        self.state = _State()
        self.handles: list[Any] = []

    # hooks live for the whole score_heads call and are removed in close()
    def install(self) -> None:
        lay = self.layout
        for i, (layer, proj) in enumerate(zip(lay.layers, lay.out_projs, strict=True)):
            self.handles.append(
                proj.register_forward_pre_hook(
                    _out_proj_hook(self.state, i, lay.n_heads, lay.head_dim)
                )
            )
            self.handles.append(
                layer.register_forward_pre_hook(_layer_pre_hook(self.state, i), with_kwargs=True)
            )

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.state.calls = [None] * self.layout.n_layers
        self.state.last_output = None

    def max_sequences(self, n_examples: int, length: int, answer_tokens: int) -> int:
        """Sequences per replay forward; on CUDA also decides where recorded states live."""
        dtype_bytes = torch.finfo(self.dtype).bits // 8
        budget = _memory_budget(self.device)
        # The clean pass keeps the hidden state entering every layer for every example.
        hidden = _hidden_size(self.model, self.layout)
        recorded = self.layout.n_layers * n_examples * length * hidden * dtype_bytes
        self.state.offload = self.device.type == "cuda" and recorded > budget // 2
        if not self.state.offload:
            budget -= recorded
        if self.batch_size is not None:
            return self.batch_size
        per_seq = _bytes_per_sequence(self.model, self.layout, length, answer_tokens, dtype_bytes)
        n = max(budget, 0) // max(per_seq, 1)
        if self.device.type == "cpu":
            n = min(n, max(1, _CPU_MAX_TOKENS // max(length, 1)))
        return max(1, int(n))

    def clean_pass(self, batch: _Batch) -> tuple[list[_Call], torch.Tensor]:
        """Run the model once; return every layer's recorded call and the clean metric [B]."""
        state = self.state
        state.calls = [None] * self.layout.n_layers
        state.mode = "record" if self.ablation == "mean" else "off"
        state.capturing = True
        state.token_mask = batch.attention_mask.reshape(-1).bool()
        try:
            last = _run_to_last_layer(self.model, self.layout, batch, state)
        finally:
            state.capturing = False
            state.mode = "off"
            state.layer = -1
        calls = list(state.calls)
        missing = [i for i, c in enumerate(calls) if c is None]
        if missing or last is None:
            raise RuntimeError(
                f"the model's forward pass did not call decoder layer(s) {missing}; the"
                " HeadLayout's layers must be the modules the model runs, in order"
            )
        clean = self.score_output(last, batch, n_copies=1)[0]
        return calls, clean  # type: ignore[return-value]

    def score_output(self, hidden: torch.Tensor, batch: _Batch, n_copies: int) -> torch.Tensor:
        """Metric [n_copies, B] from the last layer's output, reading only scored positions."""
        return _score_output(self.layout, self.metric, hidden, batch, n_copies)

    def replay(
        self,
        calls: list[_Call],
        batch: _Batch,
        layer: int,
        heads: torch.Tensor,
        values: torch.Tensor | float,
        tiled_cache: dict[int, list[tuple[tuple[Any, ...], dict[str, Any]]]],
    ) -> torch.Tensor:
        """Metric [len(heads), B] with head heads[c] of ``layer`` ablated in copy c."""
        n = len(heads)
        size = batch.size
        lay = self.layout
        per_layer = tiled_cache.get(n)
        if per_layer is None:
            memo: dict[int, Any] = {}
            per_layer = []
            for call in calls:
                per_layer.append(
                    (
                        _tile(call.args, n, size, lay.n_heads, memo),
                        _tile(call.kwargs, n, size, lay.n_heads, memo),
                    )
                )
            tiled_cache[n] = per_layer
        recorded = calls[layer].hidden
        assert recorded is not None, "hidden state already released"
        hidden_in = recorded.to(self.device)
        hidden = hidden_in.repeat(n, *([1] * (hidden_in.ndim - 1)))
        state = self.state
        state.mode = "ablate"
        state.layer = layer
        state.n_copies = n
        state.copy_index = torch.arange(n, device=heads.device)
        state.heads = heads
        state.values = values
        try:
            for k in range(layer, lay.n_layers):
                args, kwargs = per_layer[k]
                if calls[k].hidden_in_kwargs:
                    out = lay.layers[k](*args, hidden_states=hidden, **kwargs)
                else:
                    out = lay.layers[k](hidden, *args, **kwargs)
                hidden = out[0] if isinstance(out, (tuple, list)) else out
        finally:
            state.mode = "off"
            state.layer = -1
        return self.score_output(hidden, batch, n_copies=n)


def _run_to_last_layer(
    model: nn.Module, layout: ResolvedLayout, batch: _Batch, state: _State
) -> torch.Tensor | None:
    """Run ``model`` on ``batch`` and stop after its last decoder layer; return that layer's
    output (None if it never ran). The hooks installed on ``state`` see the run."""
    stop = layout.layers[-1].register_forward_hook(_last_layer_hook(state))
    try:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    except _StopForward:
        pass
    finally:
        stop.remove()
    last, state.last_output = state.last_output, None
    return last


def _score_output(
    layout: ResolvedLayout, metric: str, hidden: torch.Tensor, batch: _Batch, n_copies: int
) -> torch.Tensor:
    """Metric [n_copies, B] from the last layer's output, reading only scored positions."""
    hidden = hidden.reshape(n_copies, batch.size, *hidden.shape[1:])
    # with device_map the last layer and the LM head may sit on other devices than the inputs
    picked = hidden[:, batch.rows.to(hidden.device), batch.positions.to(hidden.device)]
    logits = layout.final(picked)
    dev = logits.device
    distractors = None if batch.distractors is None else batch.distractors.to(dev)
    return compute_metric(
        metric, logits, batch.targets.to(dev), batch.rows.to(dev), batch.size, distractors
    )


def score_heads(
    model: nn.Module,
    tokenizer: Any,
    tasks: Task | Sequence[Task],
    *,
    ablation: str = "mean",
    metric: str = "logprob",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_layer: Callable[[str, int, np.ndarray], None] | None = None,
    head_layout: HeadLayout | None = None,
) -> HeadScores:
    """Importance of every attention head for every task, by exact ablation.

    ``importance[task, layer, head]`` = mean over the task's examples of
    ``metric(clean) - metric(head ablated)``, so a head that helps scores > 0.

    Args:
        model: a Hugging Face causal LM (``AutoModelForCausalLM``) of a supported architecture
            (see :data:`headwidget.adapters.SUPPORTED_ARCHITECTURES`), or any model described by
            ``head_layout``. It runs in its own dtype; it is put in eval mode for the call and
            its training flag is restored afterwards. It is never moved or modified.
        tokenizer: its tokenizer. Used read-only; one without a pad token works (padding is
            masked, so any id will do).
        tasks: a :class:`~headwidget.tasks.Task` or a list of them (unique names).
        ablation: ``"mean"`` replaces a head's output (its slice of the attention output
            projection's input) with its mean over the task's examples and all non-pad positions
            the model reads (prompt and answer tokens but the last); ``"zero"`` with zeros.
        metric: ``"logprob"`` (sum of the teacher-forced log-probabilities of all answer tokens),
            ``"prob"`` (exp of that), ``"accuracy"`` (1 if every answer token is the argmax) or
            ``"logit_diff"`` (answer token's logit minus the distractor token's, at the first
            token where the two continuations differ, the shared tokens before it teacher-forced;
            every example needs a distractor).
        batch_size: sequences per replay forward (each is one example with one head ablated).
            Default: chosen from free GPU memory on CUDA, or a conservative budget on CPU.
        device: where inputs go. Default: the device of the model's input embeddings. The model
            is not moved: if it is elsewhere, a ValueError says so (call ``model.to(device)``).
        progress: show a tqdm progress bar over (task, layer).
        on_layer: called as ``on_layer(task_name, layer, row)`` when a layer of a task is done;
            ``row`` is that layer's float32 importance over heads.
        head_layout: describe the model by hand (:class:`~headwidget.adapters.HeadLayout`) when
            its architecture is not built in.

    Returns:
        :class:`~headwidget.results.HeadScores` with ``values[task, layer, head]``, the clean
        metric per task in ``baseline`` and provenance in ``meta``.

    Raises:
        NonFiniteMetricError: the metric was NaN/inf; ``err.partial`` holds the finished scores.
        UnsupportedModelError: unknown architecture and no ``head_layout``.
        ValueError: bad tasks, examples, metric or ablation names (the message says which).

    >>> scores = score_heads(model, tokenizer, [task_a, task_b], metric="logprob")  # doctest: +SKIP
    >>> scores.top_heads("task_a", k=3)                                             # doctest: +SKIP
    """
    started = time.perf_counter()
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}")
    check_metric(metric)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    task_list = as_task_list(tasks)
    layout = resolve_layout(model, head_layout)

    model_device = _model_device(model)
    if device is None:
        target = model_device
    else:
        target = torch.device(device)
        if not getattr(model, "hf_device_map", None) and not _same_device(target, model_device):
            raise ValueError(
                f"device={str(device)!r} but the model is on {model_device}; score_heads does not"
                f" move your model: call model.to({str(device)!r}) first, or leave device=None"
            )
    limit = _context_limit(model)
    encoded = [_encode_task(task, tokenizer, metric, limit) for task in task_list]
    pad_id = _pad_id(tokenizer, model)

    n_tasks, n_layers, n_heads = len(task_list), layout.n_layers, layout.n_heads
    values = np.full((n_tasks, n_layers, n_heads), np.nan, dtype=np.float32)
    baseline: dict[str, float] = {}
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
        "dtype": str(_model_dtype(model)).replace("torch.", ""),
    }

    def result(partial: bool) -> HeadScores:
        extra = {"seconds": time.perf_counter() - started, **({"partial": True} if partial else {})}
        return HeadScores(
            values.copy() if partial else values,
            [t.name for t in task_list],
            {t.name: t.category for t in task_list},
            dict(baseline),
            {**meta, **extra},
            {t.name: t.description for t in task_list},
        )

    from tqdm.auto import tqdm

    bar = tqdm(total=n_tasks * n_layers, disable=not progress, desc="headwidget", unit="layer")
    engine = _Engine(model, layout, metric, ablation, target, batch_size)
    was_training = model.training
    model.eval()
    try:
        engine.install()
        with torch.inference_mode():
            for t, (task, items) in enumerate(zip(task_list, encoded, strict=True)):
                bar.set_postfix_str(task.name, refresh=False)
                _score_task(engine, t, task, items, pad_id, values, baseline, result, on_layer, bar)
    finally:
        engine.close()
        model.train(was_training)
        bar.close()
    return result(partial=False)


def _score_task(
    engine: _Engine,
    t: int,
    task: Task,
    items: list[_Encoded],
    pad_id: int,
    values: np.ndarray,
    baseline: dict[str, float],
    result: Callable[[bool], HeadScores],
    on_layer: Callable[[str, int, np.ndarray], None] | None,
    bar: Any,
) -> None:
    layout = engine.layout
    n_layers, n_heads = layout.n_layers, layout.n_heads
    device = engine.device
    # Similar lengths together: less padding per batch.
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt) + len(items[i].answer))
    items = [items[i] for i in order]
    longest = max(len(e.prompt) + len(e.answer) for e in items)
    most_answer = 1 if engine.metric == "logit_diff" else max(len(e.answer) for e in items)
    per_batch, per_chunk = _plan(
        len(items), n_heads, engine.max_sequences(len(items), longest, most_answer)
    )
    batches = [
        _make_batch(items[i : i + per_batch], engine.metric, pad_id, n_heads, device)
        for i in range(0, len(items), per_batch)
    ]

    # Clean pass: one forward per batch, recording every layer's call (and head means).
    state = engine.state
    state.sums = [None] * n_layers
    state.counts = [0] * n_layers
    recorded: list[list[_Call]] = []
    clean: list[torch.Tensor] = []
    for batch in batches:
        calls, metric = engine.clean_pass(batch)
        recorded.append(calls)
        clean.append(metric)
    clean_all = torch.cat(clean)
    if not torch.isfinite(clean_all).all():
        bad = [order[i] for i in torch.nonzero(~torch.isfinite(clean_all)).flatten().tolist()]
        raise NonFiniteMetricError(
            f"task {task.name!r}: the clean (un-ablated) metric {engine.metric!r} is not finite"
            f" for example(s) {sorted(bad)[:10]}; check the model's dtype (float16 overflow?)"
            " and weights. Scores finished before this task are in error.partial",
            result(True),
            task.name,
        )
    baseline[task.name] = float(clean_all.double().mean())

    if engine.ablation == "mean":
        means = _head_means(state.sums, state.counts, n_heads, layout.head_dim)
        state.sums = [None] * n_layers

    chunks = [
        torch.arange(h, min(h + per_chunk, n_heads), device=device)
        for h in range(0, n_heads, per_chunk)
    ]
    tiled: list[dict[int, Any]] = [{} for _ in batches]
    for layer in range(n_layers):
        drop = torch.zeros(n_heads, dtype=torch.float64)
        for b, batch in enumerate(batches):
            for heads in chunks:
                fill: torch.Tensor | float = 0.0
                if engine.ablation == "mean":
                    fill = means[layer][heads].unsqueeze(1)  # [n, 1, head_dim]
                ablated = engine.replay(recorded[b], batch, layer, heads, fill, tiled[b])
                delta = (clean[b].unsqueeze(0) - ablated).double().sum(1).cpu()
                drop[heads.cpu()] += delta
            recorded[b][layer].hidden = None  # not needed any more: free it
        row = (drop / len(items)).numpy()
        bad_heads = [int(h) for h in np.nonzero(~np.isfinite(row))[0]]
        row = np.where(np.isfinite(row), row, np.nan).astype(np.float32)
        values[t, layer] = row
        bar.update(1)
        if on_layer is not None:
            on_layer(task.name, layer, row.copy())
        if bad_heads:
            raise NonFiniteMetricError(
                f"task {task.name!r}, layer {layer}, head(s) {bad_heads}: the metric"
                f" {engine.metric!r} is not finite with the head ablated (stored as NaN). Scores"
                " finished so far, including the rest of this layer, are in error.partial",
                result(True),
                task.name,
                layer,
                bad_heads,
            )
