"""Hooks at a head's slice of the attention output projection's input, and around the layers.

The input of a layer's attention output projection (``o_proj``) is the per-head attention
outputs concatenated head-major, so head ``h`` is the slice ``[..., h * head_dim:(h + 1) *
head_dim]``. Three things happen there: *record* (sum every head's output over the non-pad
positions, for mean ablation), *patch* (replace some heads' slices: ablation) and *gradient*
(see the gradient of the metric with respect to each head's slice: attribution, in
:mod:`headwidget.methods.attribution`). Decoder-layer pre-hooks record each layer's call so
that exact ablation can replay the layers after the patched one.

>>> state = HookState()                                                   # doctest: +SKIP
>>> handles = install_replay_hooks(state, layout)                          # doctest: +SKIP
>>> last = run_to_last_layer(model, layout, batch)                         # doctest: +SKIP
>>> metric = score_output(layout, "logprob", last, batch, n_copies=1)      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .adapters import ResolvedLayout
from .inputs import Batch
from .metrics import compute_metric
from .session import in_owner_thread, owner_thread

__all__ = [
    "HookState",
    "LayerCall",
    "add_head_sums",
    "head_means",
    "install_replay_hooks",
    "metric_of_logits",
    "run_to_last_layer",
    "score_output",
    "scored_logits",
]


class _StopForward(Exception):
    """Raised after the last decoder layer: the clean pass needs nothing after it."""


@dataclass
class LayerCall:
    """One recorded decoder-layer call: the hidden state and every other argument."""

    args: tuple[Any, ...]  # positional arguments after the hidden state
    kwargs: dict[str, Any]  # keyword arguments other than hidden_states
    hidden_in_kwargs: bool
    hidden: torch.Tensor | None  # dropped once its layer has been scored


@dataclass
class HookState:
    """What the hooks of :func:`install_replay_hooks` do right now (shared by all of them)."""

    mode: str = "off"  # "off" | "record" | "ablate"
    owner: int | None = None  # the thread that installed the hooks: they act only there
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
    calls: list[LayerCall | None] = field(default_factory=list)


def add_head_sums(
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


def head_means(
    sums: list[torch.Tensor | None], counts: list[int], n_heads: int, head_dim: int
) -> list[torch.Tensor]:
    """Per layer, each head's mean output ``[n_heads, head_dim]`` from :func:`add_head_sums`."""
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


def _out_proj_hook(state: HookState, index: int, n_heads: int, head_dim: int) -> Callable:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if state.layer != index or state.mode == "off" or not in_owner_thread(state.owner):
            return None
        x = args[0]
        if state.mode == "record":
            add_head_sums(x, state.token_mask, state.sums, state.counts, index)
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


def _layer_pre_hook(state: HookState, index: int) -> Callable:
    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not state.capturing or not in_owner_thread(state.owner):
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
        state.calls[index] = LayerCall(rest, kwargs, in_kwargs, hidden)
        state.layer = index  # this layer's out-proj hook records next (mean ablation)
        return None

    return hook


def install_replay_hooks(state: HookState, layout: ResolvedLayout) -> list[Any]:
    """Pre-hooks on every out_proj (record / patch, as ``state`` says) and on every decoder
    layer (record its call while ``state.capturing``), acting only in the calling thread.
    Returns the handles to remove."""
    state.owner = owner_thread()
    handles = []
    for i, (layer, proj) in enumerate(zip(layout.layers, layout.out_projs, strict=True)):
        handles.append(
            proj.register_forward_pre_hook(
                _out_proj_hook(state, i, layout.n_heads, layout.head_dim)
            )
        )
        handles.append(layer.register_forward_pre_hook(_layer_pre_hook(state, i), with_kwargs=True))
    return handles


def run_to_last_layer(
    model: nn.Module, layout: ResolvedLayout, batch: Batch
) -> torch.Tensor | None:
    """Run ``model`` on ``batch`` and stop after its last decoder layer; return that layer's
    output (None if it never ran). Hooks installed on the model see the run."""
    captured: list[torch.Tensor] = []
    owner = owner_thread()

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if not in_owner_thread(owner):  # another thread's forward pass runs on
            return
        captured.append(output[0] if isinstance(output, (tuple, list)) else output)
        raise _StopForward

    stop = layout.layers[-1].register_forward_hook(hook)
    try:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    except _StopForward:
        pass
    finally:
        stop.remove()
    return captured[0] if captured else None


def scored_logits(
    layout: ResolvedLayout, hidden: torch.Tensor, batch: Batch, n_copies: int
) -> torch.Tensor:
    """Logits ``[n_copies, P, vocab]`` at the batch's scored positions only, from the last
    layer's output ``[n_copies * B, T, d]``."""
    hidden = hidden.reshape(n_copies, batch.size, *hidden.shape[1:])
    # with device_map the last layer and the LM head may sit on other devices than the inputs
    picked = hidden[:, batch.rows.to(hidden.device), batch.positions.to(hidden.device)]
    return layout.final(picked)


def score_output(
    layout: ResolvedLayout, metric: str, hidden: torch.Tensor, batch: Batch, n_copies: int
) -> torch.Tensor:
    """Metric [n_copies, B] from the last layer's output, reading only scored positions."""
    return metric_of_logits(metric, scored_logits(layout, hidden, batch, n_copies), batch)


def metric_of_logits(metric: str, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Metric [n_copies, B] from :func:`scored_logits`' output."""
    dev = logits.device
    distractors = None if batch.distractors is None else batch.distractors.to(dev)
    return compute_metric(
        metric, logits, batch.targets.to(dev), batch.rows.to(dev), batch.size, distractors
    )
