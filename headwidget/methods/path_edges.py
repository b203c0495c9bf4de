"""What both path engines share: the edges among a task's heads, each sender's own contribution
to the residual stream, and one layer's attention rerun on recorded calls.

A sender's contribution ``delta_s`` is what its layer's attention adds to the residual stream
minus what it adds with the sender ablated (its slice of the output projection's input set to
its mean, or zero): ``written(out_proj(a)) - written(out_proj(a with s ablated))``, where
``written`` is the out norm of Gemma-2/3 and OLMo-2, else nothing (then ``delta_s`` is the
sender's slice through the output projection, the bias cancelling).

>>> [str(e) for e in edges_among([(0, 1), (1, 0)], ("k", "logits"))]
['L0H1 -> L1H0 via k', 'L0H1 -> logits', 'L1H0 -> logits']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..modeling.adapters import ResolvedLayout
from ..modeling.batching import tile
from ..modeling.channels import ResolvedChannels
from ..modeling.hooks import Form, LayerCall, ProjectionCall, add_head_sums, hooks

__all__ = [
    "VIA",
    "AttentionRun",
    "Edge",
    "SenderOutputs",
    "check_input",
    "contributions",
    "edges_among",
    "tiled_call",
]

VIA: tuple[str, ...] = ("q", "k", "v", "logits")
"""The channels, in order (as :data:`headwidget.scores.paths.VIA`)."""


@dataclass(frozen=True)
class Edge:
    """A direct path: ``sender``'s output into ``receiver``'s ``via`` input (None: logits)."""

    sender: tuple[int, int]
    receiver: tuple[int, int] | None
    via: str

    def __str__(self) -> str:
        target = (
            "logits" if self.receiver is None else "L{}H{} via {}".format(*self.receiver, self.via)
        )
        return "L{}H{} -> ".format(*self.sender) + target


def edges_among(heads: Iterable[tuple[int, int]], via: Sequence[str]) -> list[Edge]:
    """Every edge among ``heads`` through ``via``: each sender (by layer, then head) to every
    head of a later layer, one edge per query/key/value channel in ``via``, then to the logits
    if ``"logits"`` is in ``via``."""
    chosen = sorted({(int(layer), int(head)) for layer, head in heads})
    out = []
    for sender in chosen:
        for receiver in chosen:
            if receiver[0] > sender[0]:
                out += [Edge(sender, receiver, c) for c in VIA[:3] if c in via]
        if "logits" in via:
            out.append(Edge(sender, None, "logits"))
    return out


class SenderOutputs:
    """READ (``heads=``): the senders' layers' out_proj inputs, kept, and (``sums``: mean
    ablation) every head's output summed over the non-pad positions (set ``token_mask``)."""

    form: ClassVar[Form] = "tensor"

    def __init__(
        self, layers: Iterable[int], n_layers: int, sums: bool, detach: bool = False
    ) -> None:
        self.layers = set(layers)
        self.detach = detach
        self.outputs: dict[int, torch.Tensor] = {}
        self.token_mask: torch.Tensor | None = None
        self.sums: list[torch.Tensor | None] | None = [None] * n_layers if sums else None
        self.counts = [0] * n_layers

    def __call__(self, layer: int, x: torch.Tensor) -> None:
        if layer in self.layers:
            self.outputs[layer] = x.detach() if self.detach else x
        if self.sums is not None:
            assert self.token_mask is not None, "set token_mask before the forward pass"
            add_head_sums(x.detach(), self.token_mask, self.sums, self.counts, layer)


def contributions(
    layout: ResolvedLayout,
    channels: ResolvedChannels,
    outputs: dict[int, torch.Tensor],
    senders: Sequence[tuple[int, int]],
    fills: dict[tuple[int, int], torch.Tensor | float],
) -> dict[tuple[int, int], torch.Tensor]:
    """Each sender's ``delta_s`` ``[B, T, hidden]`` (module doc), from its layer's out_proj
    input in ``outputs`` (``[B, T, n_heads * head_dim]``) and its ablated value in ``fills``
    (``[head_dim]`` or 0.0). One out_proj call per sender layer, on a copy per sender."""
    out: dict[tuple[int, int], torch.Tensor] = {}
    by_layer: dict[int, list[tuple[int, int]]] = {}
    for sender in senders:
        by_layer.setdefault(sender[0], []).append(sender)
    n_heads, head_dim = layout.n_heads, layout.head_dim
    for layer, group in by_layer.items():
        a = outputs[layer]
        n = len(group)
        ablated = a.unsqueeze(0).repeat(n, *([1] * a.ndim))  # [n, B, T, n_heads * head_dim]
        view = ablated.view(n, *a.shape[:-1], n_heads, head_dim)
        for c, sender in enumerate(group):
            fill = fills[sender]
            view[c, ..., sender[1], :] = (
                fill.to(device=a.device, dtype=a.dtype) if isinstance(fill, torch.Tensor) else fill
            )
        proj = layout.out_projs[layer]
        clean = channels.written(layer, proj(a))
        changed = channels.written(layer, proj(ablated.flatten(0, 1)))
        delta = clean.unsqueeze(0) - changed.view(n, *clean.shape)
        for c, sender in enumerate(group):
            out[sender] = delta[c]
    return out


def tiled_call(
    calls: list[LayerCall], layer: int, n: int, size: int, n_heads: int, cache: dict[Any, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Layer ``layer``'s recorded arguments with every batch-shaped tensor tiled ``n`` times
    (remembered in ``cache`` per layer and ``n``)."""
    key = (layer, n)
    if key not in cache:
        memo: dict[int, Any] = {}
        call = calls[layer]
        cache[key] = (
            tile(call.args, n, size, n_heads, memo),
            tile(call.kwargs, n, size, n_heads, memo),
        )
    return cache[key]


class _Stop(Exception):
    """Raised at the out_proj input: the attention's head outputs are all a rerun needs."""


class _Grab:
    form: ClassVar[Form] = "heads"

    def __init__(self) -> None:
        self.heads: torch.Tensor | None = None

    def __call__(self, layer: int, x: torch.Tensor) -> None:
        self.heads = x
        raise _Stop


class AttentionRun:
    """Reruns one layer's attention from its recorded call on a tiled hidden state, with a
    ``qkv=`` strategy, up to the out_proj input: every head's output ``[n*B, T, H, d]``."""

    def __init__(
        self, layout: ResolvedLayout, channels: ResolvedChannels, calls: list[LayerCall]
    ) -> None:
        self.layout, self.channels, self.calls = layout, channels, calls
        self.cache: dict[Any, Any] = {}

    def __call__(self, layer: int, hidden: torch.Tensor, size: int, strategy: Any) -> torch.Tensor:
        n = hidden.shape[0] // size
        args, kwargs = tiled_call(self.calls, layer, n, size, self.layout.n_heads, self.cache)
        grab = _Grab()
        module = self.layout.layers[layer]
        with (
            hooks(self.layout, heads=grab, qkv=strategy, channels=self.channels, layers=[layer]),
            suppress(_Stop),
        ):
            if self.calls[layer].hidden_in_kwargs:
                module(*args, hidden_states=hidden, **kwargs)
            else:
                module(hidden, *args, **kwargs)
        if grab.heads is None:
            raise RuntimeError(
                f"layer {layer}'s attention output projection was not called when the layer"
                " was rerun; the HeadLayout's out_proj must be the modules the model runs"
            )
        return grab.heads


def check_input(
    call: ProjectionCall, expected: torch.Tensor, layer: int, channels: ResolvedChannels
) -> None:
    """Raise when what a projection read is not the attention norm of the residual stream
    (``expected``, for the first copy): the layout would patch the wrong thing."""
    seen = call.input[: expected.shape[0]].float()
    scale = float(expected.abs().max()) or 1.0
    if seen.shape != expected.shape or not torch.allclose(
        seen, expected.float(), rtol=1e-3, atol=1e-4 * scale
    ):
        raise RuntimeError(
            f"{channels.name}: the {call.channel} projection of layer {layer} does not read the"
            " attention norm of the residual stream entering the layer, so path patching"
            " cannot patch its input (check the ChannelLayout's norm)"
        )
