"""Where the heads are: per-architecture descriptions of a causal LM for the scoring methods.

The methods need four things from a model: the list of decoder layers (in order), each layer's
attention output projection (whose *input* is the concatenation of the per-head outputs, so one
head is one slice of it), the number of query heads, and a function turning the last decoder
layer's output into logits. :class:`HeadLayout` holds exactly that; :func:`describe_model` builds
one for the supported Hugging Face architectures, and you can fill one in by hand for any other
model:

>>> layout = HeadLayout(                                   # doctest: +SKIP
...     layers=model.backbone.blocks,                      # the decoder layers, in order
...     out_proj="attn.proj",                              # path inside each layer
...     n_heads=model.config.n_head,                       # query heads per layer
...     final=lambda h: model.head(model.backbone.norm(h)),  # last hidden state -> logits
... )
>>> scores = score_heads(model, tokenizer, tasks, head_layout=layout)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "HeadLayout",
    "ResolvedLayout",
    "UnsupportedModelError",
    "describe_model",
    "resolve_layout",
]


class UnsupportedModelError(TypeError):
    """The model's architecture is not known to headwidget; pass ``head_layout=`` instead."""


@dataclass
class HeadLayout:
    """A hand-written description of where a model's attention heads are.

    Attributes:
        layers: the decoder layers in the order the model runs them (e.g. ``model.model.layers``).
            Each is called as the model calls it, with the hidden state as the first positional
            argument or as ``hidden_states=``; exact ablation replays those calls. The model itself
            is called as ``model(input_ids=..., attention_mask=..., use_cache=False)``.
        out_proj: the attention output projection of each layer: either a dotted path inside every
            layer (``"self_attn.o_proj"``) or one module per layer. Its input must be the
            per-head attention outputs concatenated head-major, ``[..., n_heads * head_dim]``.
        n_heads: query heads per layer.
        final: maps the last decoder layer's output ``[..., hidden]`` to logits ``[..., vocab]``
            (final norm, LM head and any logit soft-capping). Applied only at answer positions.
        head_dim: width of one head's slice; default ``in_features // n_heads`` of ``out_proj``.
        name: a label for ``HeadScores.meta["architecture"]``.

    >>> import torch
    >>> blocks = torch.nn.ModuleList(
    ...     torch.nn.ModuleDict({"proj": torch.nn.Linear(8, 8)}) for _ in range(2))
    >>> layout = HeadLayout(layers=blocks, out_proj="proj", n_heads=2, final=lambda h: h)
    >>> resolve_layout(None, layout).head_dim
    4
    """

    layers: Sequence[nn.Module]
    out_proj: str | Sequence[nn.Module]
    n_heads: int
    final: Callable[[torch.Tensor], torch.Tensor]
    head_dim: int | None = None
    name: str = "custom"


@dataclass
class ResolvedLayout:
    """A checked :class:`HeadLayout`: concrete modules and sizes (what the methods use)."""

    layers: list[nn.Module]
    out_projs: list[nn.Module]
    n_heads: int
    head_dim: int
    final: Callable[[torch.Tensor], torch.Tensor]
    name: str

    @property
    def n_layers(self) -> int:
        return len(self.layers)


@dataclass(frozen=True)
class _Spec:
    layers: str
    out_proj: str
    norm: str | None
    after_norm: str | None = None  # OPT's project_out (a Linear or None)


_LLAMA_LIKE = _Spec("model.layers", "self_attn.o_proj", "model.norm")
_GPT_STYLE = _Spec("transformer.h", "self_attention.dense", "transformer.ln_f")
_SPECS: dict[str, _Spec] = {
    **dict.fromkeys(
        [
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen3",
            "gemma",
            "gemma2",
            "gemma3_text",
            "phi3",
            "olmo",
            "olmo2",
        ],
        _LLAMA_LIKE,
    ),
    "gpt2": _Spec("transformer.h", "attn.c_proj", "transformer.ln_f"),
    "gpt_neox": _Spec("gpt_neox.layers", "attention.dense", "gpt_neox.final_layer_norm"),
    "gptj": _Spec("transformer.h", "attn.out_proj", "transformer.ln_f"),
    "opt": _Spec(
        "model.decoder.layers",
        "self_attn.out_proj",
        "model.decoder.final_layer_norm",
        "model.decoder.project_out",
    ),
    "falcon": _GPT_STYLE,
    "bloom": _GPT_STYLE,
}
SUPPORTED_ARCHITECTURES: tuple[str, ...] = tuple(sorted(_SPECS))
"""``config.model_type`` values that :func:`describe_model` knows."""

_HEAD_COUNT_KEYS = ("num_attention_heads", "n_head", "num_heads")


def _get_path(root: Any, path: str) -> Any:
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _unsupported(model: Any, why: str) -> UnsupportedModelError:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return UnsupportedModelError(
        f"{type(model).__name__} (model_type={model_type!r}) is not supported: {why}. Supported"
        f" architectures: {', '.join(SUPPORTED_ARCHITECTURES)}. For another decoder-only model,"
        " describe it by hand and pass it as score_heads(..., head_layout=HeadLayout(layers=...,"
        " out_proj='path.inside.each.layer', n_heads=..., final=lambda h: logits)); see"
        " help(headwidget.HeadLayout)"
    )


def describe_model(model: nn.Module) -> HeadLayout:
    """The :class:`HeadLayout` of a supported Hugging Face causal LM.

    Raises :class:`UnsupportedModelError` (naming the model class) for other models.

    >>> layout = describe_model(model)  # doctest: +SKIP
    >>> layout.out_proj, layout.n_heads  # doctest: +SKIP
    ('self_attn.o_proj', 32)
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    spec = _SPECS.get(model_type)  # type: ignore[arg-type]
    if spec is None:
        raise _unsupported(model, "its architecture has no built-in description")
    try:
        layers = _get_path(model, spec.layers)
        norm = _get_path(model, spec.norm) if spec.norm else None
        after_norm = _get_path(model, spec.after_norm) if spec.after_norm else None
    except AttributeError:
        raise _unsupported(
            model,
            f"expected a causal LM with decoder layers at model.{spec.layers} (load it with"
            " AutoModelForCausalLM, not AutoModel)",
        ) from None
    lm_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if lm_head is None:
        raise _unsupported(
            model, "it has no language-model head (load it with AutoModelForCausalLM)"
        )
    n_heads = next(
        (getattr(config, key) for key in _HEAD_COUNT_KEYS if getattr(config, key, None)), None
    )
    if n_heads is None:
        raise _unsupported(model, f"its config has none of {_HEAD_COUNT_KEYS}")
    softcap = getattr(config, "final_logit_softcapping", None)

    def final(hidden: torch.Tensor) -> torch.Tensor:
        if norm is not None:
            hidden = norm(hidden)
        if after_norm is not None:
            hidden = after_norm(hidden)
        logits = lm_head(hidden)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    # Some models build more layer modules than they run (Gemma-3 runs
    # layers[: num_hidden_layers]); replay exactly the ones the forward pass uses.
    n_layers = getattr(config, "num_hidden_layers", None) or len(layers)
    return HeadLayout(
        layers=list(layers)[:n_layers],
        out_proj=spec.out_proj,
        n_heads=int(n_heads),
        final=final,
        name=str(model_type),
    )


def _in_features(module: nn.Module) -> int | None:
    if isinstance(module, nn.Linear):
        return module.in_features
    if hasattr(module, "nx"):  # transformers' Conv1D (GPT-2): weight is [in, out]
        return int(module.nx)
    in_features = getattr(module, "in_features", None)
    if isinstance(in_features, int):
        return in_features
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim == 2:
        return int(weight.shape[1])
    return None


def resolve_layout(
    model: nn.Module | None, head_layout: HeadLayout | None = None
) -> ResolvedLayout:
    """Check ``head_layout`` (or describe ``model``) and return concrete modules and sizes."""
    layout = head_layout if head_layout is not None else describe_model(model)  # type: ignore[arg-type]
    if not isinstance(layout, HeadLayout):
        raise TypeError(f"head_layout must be a HeadLayout, got {type(layout).__name__}")
    layers = list(layout.layers)
    if not layers:
        raise ValueError("head_layout.layers is empty; give the model's decoder layers in order")
    if not isinstance(layout.n_heads, int) or layout.n_heads < 1:
        raise ValueError(f"head_layout.n_heads must be a positive int, got {layout.n_heads!r}")
    if isinstance(layout.out_proj, str):
        try:
            out_projs = [_get_path(layer, layout.out_proj) for layer in layers]
        except AttributeError:
            raise ValueError(
                f"head_layout.out_proj={layout.out_proj!r} is not a submodule path of every"
                f" layer; layer 0 has children {[n for n, _ in layers[0].named_children()]}"
            ) from None
    else:
        out_projs = list(layout.out_proj)
        if len(out_projs) != len(layers):
            raise ValueError(
                f"head_layout.out_proj has {len(out_projs)} modules for {len(layers)} layers;"
                " give one per layer or a path string"
            )
    if not callable(layout.final):
        raise TypeError("head_layout.final must be callable: last hidden state -> logits")
    head_dim = layout.head_dim
    for i, proj in enumerate(out_projs):
        if not isinstance(proj, nn.Module):
            raise TypeError(f"out_proj of layer {i} is a {type(proj).__name__}, not an nn.Module")
        width = _in_features(proj)
        if head_dim is None:
            if width is None:
                raise ValueError(
                    f"cannot read the input width of layer {i}'s out_proj"
                    f" ({type(proj).__name__}); set head_layout.head_dim"
                )
            if width % layout.n_heads:
                raise ValueError(
                    f"layer {i}'s out_proj takes {width} features, not a multiple of"
                    f" n_heads={layout.n_heads}; check n_heads or set head_dim"
                )
            head_dim = width // layout.n_heads
        elif width is not None and width != head_dim * layout.n_heads:
            raise ValueError(
                f"layer {i}'s out_proj takes {width} features but n_heads * head_dim ="
                f" {layout.n_heads} * {head_dim} = {layout.n_heads * head_dim}"
            )
    assert head_dim is not None
    return ResolvedLayout(
        layers=layers,
        out_projs=out_projs,
        n_heads=layout.n_heads,
        head_dim=int(head_dim),
        final=layout.final,
        name=layout.name,
    )
