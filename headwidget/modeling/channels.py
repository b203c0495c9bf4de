"""Where each layer's attention computes its query, key and value: what path patching patches.

:func:`headwidget.trace_paths` patches one *channel* (query, key or value) of one receiver head:
the input that channel is computed from is the attention norm's output, and the projection that
computes it is a module (``q_proj``) or a slice of a fused one (``c_attn``, ``query_key_value``).
:class:`ChannelLayout` says where those are; :func:`channel_layout` reads it from the
architecture registry (:mod:`.architectures`, ``Architecture.inputs``) and :func:`resolve_channels`
turns it into the modules and output columns the ``qkv=`` site of :func:`.hooks.hooks` uses.

For a model the registry does not describe, write one by hand (paths inside each layer):

>>> spec = ChannelLayout(query="attn.q_proj", key="attn.k_proj", value="attn.v_proj",
...                      norm="ln")
>>> channels = resolve_channels(model, layout, spec)              # doctest: +SKIP
>>> channels.n_slices                                             # doctest: +SKIP
{'q': 4, 'k': 2, 'v': 2}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .adapters import ResolvedLayout
from .architectures import ARCHITECTURES

__all__ = [
    "CHANNELS",
    "ChannelLayout",
    "ResolvedChannels",
    "UnreachableChannelsError",
    "channel_layout",
    "resolve_channels",
]

CHANNELS: tuple[str, ...] = ("q", "k", "v")
"""The attention inputs a path can go through: query, key, value."""

_LAYOUTS = ("separate", "concat", "grouped")


class UnreachableChannelsError(TypeError):
    """The query, key and value inputs of this model's attention cannot be reached."""


@dataclass(frozen=True)
class ChannelLayout:
    """Where each decoder layer computes its attention's query, key and value.

    Attributes:
        query, key, value: paths inside each layer to the modules computing them from
            ``norm``'s output (the same path three times for a fused projection); each must
            be affine in its input (``Linear``, ``Conv1D``).
        layout: ``"separate"``, ``"concat"`` or ``"grouped"``, as
            :class:`headwidget.modeling.architectures.AttentionInputs` says.
        norm: path inside each layer to the norm whose output the projections read (None:
            they read the residual stream entering the layer itself).
        out_norm: path inside each layer to a norm on the attention's output before the
            residual stream adds it, if any.
        name: a label for error messages.
    """

    query: str
    key: str
    value: str
    layout: str = "separate"
    norm: str | None = None
    out_norm: str | None = None
    name: str = "custom"


def channel_layout(model: nn.Module) -> ChannelLayout:
    """The :class:`ChannelLayout` of a Hugging Face causal LM from the architecture registry.

    Raises :class:`UnreachableChannelsError`, naming the architecture, where the registry does
    not say where its query, key and value are, or its configuration puts the attention norm
    elsewhere (OPT with ``do_layer_norm_before=False``, BLOOM with
    ``apply_residual_connection_post_layernorm``)."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    arch = ARCHITECTURES.get(model_type)  # type: ignore[arg-type]
    named = f"{type(model).__name__} (model_type={model_type!r})"
    known = sorted(name for name, a in ARCHITECTURES.items() if a.inputs is not None)
    if arch is None or arch.inputs is None:
        raise UnreachableChannelsError(
            f"{named}: path patching cannot reach the query, key and value inputs of its"
            f" attention: the architecture registry describes them for {', '.join(known)}."
            " For another model pass channel_layout=ChannelLayout(query=..., key=...,"
            " value=..., norm=...) (paths inside each decoder layer)"
        )
    if getattr(config, "do_layer_norm_before", True) is False or getattr(
        config, "apply_residual_connection_post_layernorm", False
    ):
        raise UnreachableChannelsError(
            f"{named}: this configuration normalizes the residual stream after the attention"
            " (post-norm), so a head's contribution is not a term of the stream the next"
            " layers read; path patching supports pre-norm models only"
        )
    layers = model.get_submodule(arch.layers)
    norm = None
    for path in arch.attention_norms:
        if _at(layers[0], path) is not None:
            norm = path
            break
    inputs = arch.inputs
    return ChannelLayout(
        inputs.query, inputs.key, inputs.value, inputs.layout, norm, inputs.out_norm,
        str(model_type),
    )  # fmt: skip


def _at(root: nn.Module, path: str) -> nn.Module | None:
    for part in path.split("."):
        root = getattr(root, part, None)  # type: ignore[assignment]
    return root


@dataclass
class ResolvedChannels:
    """A :class:`ChannelLayout` resolved against a model: per layer the modules, and per
    channel which output columns of its module it is (None: the whole output), in slices of
    ``head_dim`` (``n_slices``: query heads for ``q``, key/value heads for ``k`` and ``v``)."""

    norms: list[nn.Module | None]
    out_norms: list[nn.Module | None]
    modules: dict[str, list[nn.Module]]
    columns: dict[str, torch.Tensor | None]
    n_slices: dict[str, int]
    head_dim: int
    name: str

    def parts(
        self, layer: int, channels: Sequence[str]
    ) -> list[tuple[nn.Module, list[tuple[str, torch.Tensor | None, int]]]]:
        """Layer ``layer``'s projection modules computing ``channels``, each with the
        ``(channel, columns, n_slices)`` it computes (a fused module: several)."""
        grouped: dict[int, tuple[nn.Module, list[tuple[str, torch.Tensor | None, int]]]] = {}
        for channel in channels:
            module = self.modules[channel][layer]
            entry = grouped.setdefault(id(module), (module, []))
            entry[1].append((channel, self.columns[channel], self.n_slices[channel]))
        return list(grouped.values())

    def normed(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """What layer ``layer``'s projections read when the residual stream entering it is
        ``hidden``: its attention norm applied (or ``hidden`` itself where there is none)."""
        norm = self.norms[layer]
        return hidden if norm is None else norm(hidden)

    def written(self, layer: int, attention_out: torch.Tensor) -> torch.Tensor:
        """What the residual stream adds for the attention output ``attention_out`` of layer
        ``layer`` (its out norm applied, where it has one)."""
        norm = self.out_norms[layer]
        return attention_out if norm is None else norm(attention_out)


def _out_width(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.out_features
    if hasattr(module, "nf"):  # transformers' Conv1D
        return int(module.nf)
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim == 2:
        return int(weight.shape[0])
    return None


def _fused_columns(layout: str, n_heads: int, n_kv: int, head_dim: int) -> dict[str, torch.Tensor]:
    """Each channel's columns of a fused projection's output (see :class:`ChannelLayout`)."""
    d = torch.arange(head_dim)
    if layout == "concat":
        q, kv = n_heads * head_dim, n_kv * head_dim
        return {"q": torch.arange(q), "k": q + torch.arange(kv), "v": q + kv + torch.arange(kv)}
    group = n_heads // n_kv
    block = (group + 2) * head_dim
    starts = torch.arange(n_kv)[:, None] * block  # [n_kv, 1]
    q = starts[:, :, None] + (torch.arange(group) * head_dim)[None, :, None] + d  # [n_kv, g, d]
    return {
        "q": q.reshape(-1),
        "k": (starts + group * head_dim + d).reshape(-1),
        "v": (starts + (group + 1) * head_dim + d).reshape(-1),
    }


def resolve_channels(
    model: nn.Module | None, layout: ResolvedLayout, spec: ChannelLayout | None = None
) -> ResolvedChannels:
    """``spec`` (default: :func:`channel_layout` of ``model``) checked against the model's
    layers: every path names a module, the widths fit ``layout``'s heads and head size."""
    if spec is None:
        if model is None:
            raise ValueError("give the model or a ChannelLayout")
        spec = channel_layout(model)
    if not isinstance(spec, ChannelLayout):
        raise TypeError(f"channel_layout must be a ChannelLayout, got {type(spec).__name__}")
    if spec.layout not in _LAYOUTS:
        raise ValueError(f"ChannelLayout.layout must be one of {_LAYOUTS}, got {spec.layout!r}")
    paths = {"q": spec.query, "k": spec.key, "v": spec.value}
    fused = spec.layout != "separate"
    if fused and len(set(paths.values())) != 1:
        raise ValueError(f"a {spec.layout!r} ChannelLayout names one fused module, got {paths}")

    def find(layer: nn.Module, path: str | None, i: int, what: str) -> nn.Module | None:
        if path is None:
            return None
        module = _at(layer, path)
        if not isinstance(module, nn.Module):
            raise UnreachableChannelsError(
                f"{spec.name}: layer {i} has no {what} at {path!r}; path patching cannot reach"
                " its attention inputs"
            )
        return module

    n = layout.n_layers
    modules = {c: [find(layout.layers[i], p, i, f"{c} projection") for i in range(n)]
               for c, p in paths.items()}  # fmt: skip
    norms = [find(layout.layers[i], spec.norm, i, "attention norm") for i in range(n)]
    out_norms = [find(layout.layers[i], spec.out_norm, i, "attention out norm") for i in range(n)]
    n_heads, head_dim = layout.n_heads, layout.head_dim
    widths = {c: {_out_width(m) for m in ms} for c, ms in modules.items()}  # type: ignore[arg-type]
    if any(len(w) != 1 or None in w for w in widths.values()):
        raise UnreachableChannelsError(
            f"{spec.name}: cannot read one output width of the projections in every layer"
            f" ({widths})"
        )
    width = {c: next(iter(w)) for c, w in widths.items()}
    if fused:
        total = width["q"] // head_dim - n_heads
        n_kv = total // 2
        ok = width["q"] % head_dim == 0 and total > 0 and total % 2 == 0
    else:
        n_kv = width["k"] // head_dim
        ok = width["q"] == n_heads * head_dim and width["k"] == width["v"] == n_kv * head_dim
    if not ok or n_kv < 1 or n_heads % n_kv:
        raise UnreachableChannelsError(
            f"{spec.name}: the projections' output widths {width} do not fit {n_heads} query"
            f" heads of size {head_dim} and a divisor of them of key/value heads"
        )
    columns: dict[str, torch.Tensor | None] = (
        dict(_fused_columns(spec.layout, n_heads, n_kv, head_dim))
        if fused
        else dict.fromkeys(CHANNELS)
    )
    return ResolvedChannels(
        norms=norms,
        out_norms=out_norms,
        modules=modules,  # type: ignore[arg-type]
        columns=columns,
        n_slices={"q": n_heads, "k": n_kv, "v": n_kv},
        head_dim=head_dim,
        name=spec.name,
    )
