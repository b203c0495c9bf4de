"""Where the heads are: per-architecture descriptions of a causal LM for the scoring methods.

The methods need four things from a model: the list of decoder layers (in order), each layer's
attention output projection (whose *input* is the concatenation of the per-head outputs, so one
head is one slice of it), the number of query heads, and a function turning the last decoder
layer's output into logits. :class:`HeadLayout` holds exactly that; :func:`describe_model` builds
one for the built-in Hugging Face architectures, detects it for others that follow the usual
conventions, and you can fill one in by hand for any other model:

>>> layout = HeadLayout(                                   # doctest: +SKIP
...     layers=model.backbone.blocks,                      # the decoder layers, in order
...     out_proj="attn.proj",                              # path inside each layer
...     n_heads=model.config.n_head,                       # query heads per layer
...     final=lambda h: model.head(model.backbone.norm(h)),  # last hidden state -> logits
... )
>>> scores = score_heads(model, tokenizer, tasks, head_layout=layout)  # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .architectures import ARCHITECTURES
from .inputs import model_device
from .session import eval_mode, in_owner_thread, owner_thread

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


SUPPORTED_ARCHITECTURES: tuple[str, ...] = tuple(sorted(ARCHITECTURES))
"""``config.model_type`` values that :func:`describe_model` knows (:mod:`.architectures`)."""

_HEAD_COUNT_KEYS = ("num_attention_heads", "n_head", "num_heads", "n_heads", "attention_heads")
_LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def _get_path(root: Any, path: str) -> Any:
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _unsupported(model: Any, why: str) -> UnsupportedModelError:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return UnsupportedModelError(
        f"{type(model).__name__} (model_type={model_type!r}) is not supported: {why}. Built-in"
        f" architectures: {', '.join(SUPPORTED_ARCHITECTURES)}; others are detected when they"
        " follow the usual layout (a ModuleList of decoder layers, attention with a Linear or"
        " Conv1D output projection, the head count in the config, a final norm and LM head)."
        " For another decoder-only model,"
        " describe it by hand and pass it as score_heads(..., head_layout=HeadLayout(layers=...,"
        " out_proj='path.inside.each.layer', n_heads=..., final=lambda h: logits)); see"
        " help(headwidget.HeadLayout)"
    )


def describe_model(model: nn.Module) -> HeadLayout:
    """The :class:`HeadLayout` of a Hugging Face causal LM: from the built-in description of
    its architecture, or else detected by convention and checked on a short forward pass (once
    per model; see :func:`_detect` and :func:`_verify`).

    Raises :class:`UnsupportedModelError` (naming the model class and the check that failed)
    for models that fit neither.

    >>> layout = describe_model(model)  # doctest: +SKIP
    >>> layout.out_proj, layout.n_heads  # doctest: +SKIP
    ('self_attn.o_proj', 32)
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    arch = ARCHITECTURES.get(model_type)  # type: ignore[arg-type]
    if arch is None:
        return _detected_layout(model)
    try:
        layers = _get_path(model, arch.layers)
        norm = _get_path(model, arch.final_norm)
        after_norm = _get_path(model, arch.after_norm) if arch.after_norm else None
    except AttributeError:
        raise _unsupported(
            model,
            f"expected a causal LM with decoder layers at model.{arch.layers} (load it with"
            " AutoModelForCausalLM, not AutoModel)",
        ) from None
    lm_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if lm_head is None:
        raise _unsupported(
            model, "it has no language-model head (load it with AutoModelForCausalLM)"
        )
    n_heads = _config_int(config, _HEAD_COUNT_KEYS)
    if n_heads is None:
        raise _unsupported(model, f"its config has none of {_HEAD_COUNT_KEYS}")
    final = _final(config, norm, after_norm, lm_head, scaled=False)

    # Some models build more layer modules than they run (Gemma-3 runs
    # layers[: num_hidden_layers]); replay exactly the ones the forward pass uses.
    n_layers = getattr(config, "num_hidden_layers", None) or len(layers)
    return HeadLayout(
        layers=list(layers)[:n_layers],
        out_proj=arch.out_proj,
        n_heads=int(n_heads),
        final=final,
        name=str(model_type),
    )


def _config_int(config: Any, keys: Sequence[str]) -> int | None:
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _final(
    config: Any,
    norm: nn.Module | None,
    after_norm: nn.Module | None,
    lm_head: nn.Module,
    *,
    scaled: bool,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Last hidden state -> logits: final norm, LM head, soft-capping and (``scaled``: for
    detected layouts, which a forward pass checks) the config's logit scaling."""
    softcap = getattr(config, "final_logit_softcapping", None)
    # Cohere: logits * logit_scale; Granite: logits / logits_scaling
    scale = getattr(config, "logit_scale", None) if scaled else None
    divide = getattr(config, "logits_scaling", None) if scaled else None

    def final(hidden: torch.Tensor) -> torch.Tensor:
        if norm is not None:
            hidden = norm(hidden)
        if after_norm is not None:
            hidden = after_norm(hidden)
        logits = lm_head(hidden)
        if isinstance(scale, (int, float)) and not isinstance(scale, bool):
            logits = logits * scale
        if isinstance(divide, (int, float)) and not isinstance(divide, bool) and divide:
            logits = logits / divide
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    return final


# -- layouts detected by convention ----------------------------------------------------------

# Names of the attention output projection, most specific first.
_OUT_PROJ_NAMES = ("o_proj", "out_proj", "c_proj", "dense", "wo", "proj", "out", "o")
_verified: weakref.WeakKeyDictionary[nn.Module, HeadLayout] = weakref.WeakKeyDictionary()


def _detected_layout(model: nn.Module) -> HeadLayout:
    """The layout of a decoder-only model no built-in architecture describes, found by the usual
    conventions and checked once against a forward pass of the model (then remembered)."""
    if model in _verified:
        return _verified[model]
    layout = _detect(model)
    _verify(model, layout)
    _verified[model] = layout
    return layout


def _detect(model: nn.Module) -> HeadLayout:
    """A ModuleList of the config's number of decoder layers (the shallowest); in layer 0, a
    Linear / Conv1D output projection inside an attention module, whose input width is heads x
    head size; the final norm after the layers; the LM head."""
    config = getattr(model, "config", None)
    if config is None:
        raise _unsupported(model, "it has no config (not a Hugging Face model)")
    n_heads = _config_int(config, _HEAD_COUNT_KEYS)
    n_layers = _config_int(config, _LAYER_COUNT_KEYS)
    if n_heads is None or n_layers is None:
        raise _unsupported(
            model, f"its config gives no head count ({_HEAD_COUNT_KEYS}) or layer count"
        )
    lists = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList)
        and len(module) == n_layers
        and len({type(layer) for layer in module}) == 1
    ]
    if not lists:
        raise _unsupported(model, f"found no ModuleList of its {n_layers} decoder layers")
    path, layers = min(lists, key=lambda item: item[0].count("."))
    head_dim = _config_int(config, ("head_dim",))
    if head_dim is None:
        hidden = _config_int(config, ("hidden_size", "n_embd", "d_model"))
        head_dim = hidden // n_heads if hidden and hidden % n_heads == 0 else None
    candidates = []
    for name, module in layers[0].named_modules():
        parts = name.split(".")
        if (
            len(parts) >= 2
            and parts[-1] in _OUT_PROJ_NAMES
            and any("attn" in part.lower() or "attention" in part.lower() for part in parts[:-1])
            and (isinstance(module, nn.Linear) or hasattr(module, "nx"))
        ):
            candidates.append((_OUT_PROJ_NAMES.index(parts[-1]), len(parts), name, module))
    if not candidates:
        raise _unsupported(
            model,
            f"found no attention output projection (a Linear or Conv1D named one of"
            f" {_OUT_PROJ_NAMES} inside an attention module) in {path}[0]",
        )
    _, _, out_proj, proj = min(candidates, key=lambda item: item[:2])
    width = _in_features(proj)
    if head_dim is None or width != n_heads * head_dim:
        raise _unsupported(
            model,
            f"{path}[0].{out_proj} takes {width} features, not heads x head size ="
            f" {n_heads} x {head_dim}",
        )
    # the attention module's own sizes, where it keeps them, must agree with the config's
    attention = layers[0].get_submodule(out_proj.rpartition(".")[0])
    for key in ("num_heads", "num_attention_heads", "n_head", "n_heads", "head_dim", "head_size"):
        own, expected = _config_int(attention, (key,)), head_dim if "head_" in key else n_heads
        if own is not None and own != expected:
            raise _unsupported(
                model,
                f"its attention module ({type(attention).__name__}) has {key}={own} but the"
                f" config says {expected}",
            )
    parent_path = path.rpartition(".")[0]
    parent = model.get_submodule(parent_path) if parent_path else model
    children = list(parent.named_children())
    after = [i for i, (_, child) in enumerate(children) if child is layers][0] + 1
    norms = [
        child
        for name, child in children[after:]
        if "norm" in type(child).__name__.lower() or "norm" in name.lower() or name == "ln_f"
    ]
    if len(norms) != 1:
        raise _unsupported(
            model,
            f"found {len(norms)} norm modules after {path} (expected one final norm)",
        )
    lm_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if lm_head is None:
        raise _unsupported(
            model, "it has no language-model head (load it with AutoModelForCausalLM)"
        )
    return HeadLayout(
        layers=list(layers),
        out_proj=out_proj,
        n_heads=n_heads,
        final=_final(config, norms[0], None, lm_head, scaled=True),
        head_dim=head_dim,
        name=f"{getattr(config, 'model_type', type(model).__name__)} (detected)",
    )


def _verify(model: nn.Module, layout: HeadLayout) -> None:
    """One short forward pass: every layer runs, in order, with the hidden state first; every
    out_proj gets heads x head size features; final() of the last layer's output reproduces
    the model's logits."""
    resolved = resolve_layout(model, layout)
    width = resolved.n_heads * resolved.head_dim
    layer_order: list[int] = []
    widths: list[int] = []
    last: list[torch.Tensor] = []
    handles = []
    owner = owner_thread()  # other threads' forward passes are not this check's

    def on_layer(index: int) -> Callable:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if in_owner_thread(owner):
                hidden = args[0] if args else kwargs.get("hidden_states")
                layer_order.append(index if isinstance(hidden, torch.Tensor) else -1)

        return hook

    def on_proj(module: nn.Module, args: tuple[Any, ...]) -> None:
        if in_owner_thread(owner):
            widths.append(args[0].shape[-1])

    def on_last(module: nn.Module, args: Any, output: Any) -> None:
        if in_owner_thread(owner):
            last.append(output[0] if isinstance(output, (tuple, list)) else output)

    for i, (layer, proj) in enumerate(zip(resolved.layers, resolved.out_projs, strict=True)):
        handles.append(layer.register_forward_pre_hook(on_layer(i), with_kwargs=True))
        handles.append(proj.register_forward_pre_hook(on_proj))
    handles.append(resolved.layers[-1].register_forward_hook(on_last))
    vocab = _config_int(getattr(model, "config", None), ("vocab_size",)) or 2
    ids = (torch.arange(7) * 3 + 1) % vocab
    try:
        with eval_mode(model), torch.no_grad():
            logits = model(input_ids=ids[None].to(model_device(model)), use_cache=False).logits
            mine = resolved.final(last[-1]) if last else None
    except Exception as err:
        raise _unsupported(
            model,
            f"its layout was detected but the checking forward pass failed ({type(err).__name__}:"
            f" {err})",
        ) from err
    finally:
        for handle in handles:
            handle.remove()
    n = resolved.n_layers
    problem = None
    if layer_order != list(range(n)):
        problem = f"its forward pass did not run the {n} layers in order, hidden state first"
    elif widths != [width] * n:
        problem = f"the out_proj inputs were {sorted(set(widths))} wide, not {width}"
    elif mine is None or mine.shape != logits.shape:
        problem = "the final norm and LM head do not give logits of the model's shape"
    else:
        scale = float(logits.abs().max()) or 1.0
        diff = float((mine.float() - logits.float()).abs().max())
        if diff > 1e-3 * scale:
            problem = (
                "the final norm and LM head found do not reproduce the model's logits (max"
                f" difference {diff:.3g}): some step after the last layer is unknown"
            )
    if problem is not None:
        raise _unsupported(model, f"its layout was detected but does not check out: {problem}")


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
