"""How much to put in one forward: memory planning, and tiling recorded calls into copies.

Exact ablation replays a layer's recorded call with one copy of the batch per ablated head;
:func:`tile` repeats every batch-shaped argument accordingly, and :func:`plan` picks examples
per batch and heads per replay so one replay fits the memory budget.

>>> plan(n_examples=8, n_heads=9, max_sequences=40)   # 8 examples, 5 heads per replay
(8, 5)
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .adapters import ResolvedLayout

if TYPE_CHECKING:
    from .inputs import Encoded

__all__ = [
    "backward_sequences",
    "bytes_per_sequence",
    "hidden_size",
    "memory_budget",
    "plan",
    "tile",
    "CPU_MAX_TOKENS",
]

# CPU replay batches: measured on a 12-layer, 768-wide Llama, the time per sequence is flat from
# about 16 to 128 sequences of 36 tokens and grows beyond (1.2x at 384, 1.5x at 768: the
# activations leave the cache and big allocations page-fault), so cap the tokens per forward.
_CPU_BUDGET_BYTES = 2 * 2**30
CPU_MAX_TOKENS = 4096  # sequences x tokens per replay forward on CPU
_CUDA_FREE_FRACTION = 0.5


def tile(obj: Any, n: int, size: int, n_heads: int, memo: dict[int, Any]) -> Any:
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
        items = [tile(v, n, size, n_heads, memo) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, list):
        return [tile(v, n, size, n_heads, memo) for v in obj]
    if isinstance(obj, dict):
        return {k: tile(v, n, size, n_heads, memo) for k, v in obj.items()}
    return obj


def _config_int(config: Any, keys: Sequence[str], default: int) -> int:
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return default


def hidden_size(model: nn.Module, layout: ResolvedLayout) -> int:
    """Width of the residual stream (the config's, else the attention width)."""
    config = getattr(model, "config", None)
    return _config_int(
        config, ("hidden_size", "n_embd", "d_model"), layout.n_heads * layout.head_dim
    )


def bytes_per_sequence(
    model: nn.Module, layout: ResolvedLayout, length: int, answer_tokens: int, dtype_bytes: int
) -> int:
    """Rough peak activation bytes one replayed sequence needs (deliberately generous)."""
    config = getattr(model, "config", None)
    width = layout.n_heads * layout.head_dim
    hidden = hidden_size(model, layout)
    inter = _config_int(config, ("intermediate_size", "ffn_dim", "n_inner"), 4 * hidden)
    inter *= _config_int(config, ("num_experts_per_tok",), 1)
    vocab = _config_int(config, ("vocab_size",), 50000)
    per_token = 10 * hidden + 4 * width + 3 * inter
    attention = 2 * layout.n_heads * length * length  # scores and probabilities (eager path)
    masks = 2 * length * length
    logits = answer_tokens * vocab * (dtype_bytes + 12)  # model-dtype logits + float32 temps
    return (per_token * length + attention) * dtype_bytes + masks * 4 + logits


def memory_budget(device: torch.device) -> int:
    """Bytes one forward may use: half the free GPU memory, or a fixed CPU budget."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * _CUDA_FREE_FRACTION)
    available = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if available:
        return int(min(_CPU_BUDGET_BYTES, available // 4))
    return _CPU_BUDGET_BYTES


def backward_sequences(
    model: nn.Module,
    layout: ResolvedLayout,
    device: torch.device,
    items: Sequence[Encoded],
    metric: str,
    extra_bytes: int,
) -> int:
    """Sequences of ``items`` per float32 gradient pass (a forward and its backward).

    A backward keeps every layer's activations: about ``n_layers / 2`` times one replayed
    sequence's :func:`bytes_per_sequence`, plus ``extra_bytes`` a sequence; on CPU the tokens
    of one pass are capped at :data:`CPU_MAX_TOKENS`. ``metric`` decides the answer tokens
    scored (one for ``logit_diff``)."""
    longest = max(len(e.prompt) + len(e.answer) for e in items)
    answer = 1 if metric == "logit_diff" else max(len(e.answer) for e in items)
    per_seq = bytes_per_sequence(model, layout, longest, answer, 4)
    per_seq = per_seq * max(1, layout.n_layers) // 2 + extra_bytes
    n = memory_budget(device) // max(per_seq, 1)
    if device.type == "cpu":
        n = min(n, max(1, CPU_MAX_TOKENS // max(longest, 1)))
    return max(1, int(n))


def plan(n_examples: int, n_heads: int, max_sequences: int) -> tuple[int, int]:
    """(examples per batch, heads per replay chunk) so one replay holds <= max_sequences rows."""
    max_sequences = max(1, max_sequences)
    if max_sequences < n_examples:
        n_batches = math.ceil(n_examples / max_sequences)
        return math.ceil(n_examples / n_batches), 1  # even batches: 32 + 32, not 56 + 8
    heads_per_chunk = min(n_heads, max_sequences // n_examples)
    # Even chunks (4, 4, 4 rather than 5, 5, 2): same cost, fewer distinct tiled shapes.
    n_chunks = math.ceil(n_heads / heads_per_chunk)
    return n_examples, math.ceil(n_heads / n_chunks)
