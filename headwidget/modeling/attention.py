"""Attention weights: the model switched to eager attention for one forward pass, and back.

Fused attention kernels (SDPA, flash attention) never form the ``[query, key]`` weights, so
reading them needs the model's "eager" implementation, which computes them explicitly and
returns them with ``output_attentions=True``. :func:`eager_attention` switches every config of
the model to it inside a block and puts back exactly what each had (the attribute set or not,
and its value); :func:`attention_weights` runs one forward pass that way and returns each
layer's weights. The drill-down's attention picture and :func:`headwidget.detect_heads` both go
through it. The output-collecting hooks transformers 5 adds to a model on its first
``output_attentions`` call are removed again, so the model keeps exactly the hooks it had.
Neither claims the model: run them inside
:func:`~headwidget.modeling.session.model_session`.

>>> with model_session(model, "attention"):                   # doctest: +SKIP
...     weights = attention_weights(model, torch.tensor([[1, 5, 9]]))
>>> weights[0].shape               # [batch, heads, query, key]   # doctest: +SKIP
torch.Size([1, 9, 3, 3])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = ["attention_weights", "eager_attention"]

_KEY = "_attn_implementation_internal"


def _configs(model: nn.Module) -> list[Any]:
    """Every distinct config object a module of ``model`` holds that names an attention
    implementation (the model's, and sub-configs that modules keep for themselves)."""
    found: dict[int, Any] = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            found.setdefault(id(config), config)
    return list(found.values())


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """The model computing attention weights explicitly ("eager") inside the block; every
    config's attention setting is put back exactly as it was afterwards (also on an error),
    an unset one removed again. Nests.

    >>> with eager_attention(model):                              # doctest: +SKIP
    ...     out = model(ids, output_attentions=True)
    """
    missing = object()
    saved = [(config, config.__dict__.get(_KEY, missing)) for config in _configs(model)]
    try:
        for config, _ in saved:
            setattr(config, _KEY, "eager")
        yield
    finally:
        for config, value in saved:
            if value is missing:
                config.__dict__.pop(_KEY, None)
            else:
                setattr(config, _KEY, value)


_FLAG = "_output_capturing_hooks_installed"


@contextmanager
def _capture_hooks_removed(model: nn.Module) -> Iterator[None]:
    """Transformers 5 installs forward hooks that collect ``output_attentions`` on a model's
    first such call, and keeps them (inactive) with a flag on the model; inside the block,
    hooks and flags it adds are taken away again afterwards, so the model keeps the hooks it
    had."""
    missing = object()
    modules = list(model.modules())
    flags = [(m, m.__dict__.get(_FLAG, missing)) for m in modules]
    before = [set(m._forward_hooks) for m in modules]
    try:
        yield
    finally:
        for module, known in zip(modules, before, strict=True):
            for key in [k for k in module._forward_hooks if k not in known]:
                hook = module._forward_hooks[key]
                if "output_capturing_hook" in getattr(hook, "__qualname__", ""):
                    del module._forward_hooks[key]
                    module._forward_hooks_with_kwargs.pop(key, None)
                    module._forward_hooks_always_called.pop(key, None)
        for module, value in flags:
            if value is missing:
                module.__dict__.pop(_FLAG, None)
            else:
                setattr(module, _FLAG, value)


def _trunk(model: nn.Module) -> nn.Module:
    """The decoder without its LM head (``model.base_model``) where the model has one: its
    attention weights are the same, and the logits are not computed."""
    base = getattr(model, "base_model", None)
    return base if isinstance(base, nn.Module) else model


def attention_weights(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    n_layers: int | None = None,
) -> tuple[torch.Tensor, ...]:
    """Every layer's attention weights on ``input_ids`` (``[batch, T]``, on the model's input
    device): one forward pass without gradients, in eager attention (:func:`eager_attention`)
    with ``output_attentions=True``, through the decoder alone (no logits). Each weight tensor
    is ``[batch, query heads, T (query), T (key)]``, rows summing to 1 (grouped-query models
    repeat a key/value group's keys for each of its query heads, so every query head has its
    own weights).

    ``n_layers``: check that many layers came back. Raises ``ValueError`` when the model
    returns no weights (a model without an eager attention path).

    >>> weights = attention_weights(model, ids)                   # doctest: +SKIP
    >>> weights[5][0, 1]            # layer 5, sequence 0, head 1: [T, T]   # doctest: +SKIP
    """
    kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": False}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    with eager_attention(model), _capture_hooks_removed(model), torch.inference_mode():
        out = _trunk(model)(**kwargs, output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if attentions is None and isinstance(out, tuple):  # return_dict=False models
        attentions = out[-1] if out and isinstance(out[-1], tuple) else None
    bad = (
        not attentions
        or any(a is None for a in attentions)
        or (n_layers is not None and len(attentions) != n_layers)
    )
    if bad:
        got = "none" if not attentions else f"{len(attentions)} layers"
        raise ValueError(
            f"{type(model).__name__} returned no attention weights for every layer with"
            f" output_attentions=True in eager attention (got {got}"
            + (f", expected {n_layers}" if n_layers is not None else "")
            + ")"
        )
    return tuple(attentions)
