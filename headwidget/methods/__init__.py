"""Scoring methods, one module each, registered here by name.

A method plugs in as one module with a class following
:class:`~headwidget.methods.base.ScoringMethod` (exported as ``METHOD``) plus one entry in
:data:`METHODS`, naming the module, the method's own keyword options and what the driver and a
sweep need to know of it (its unit of work, whether it runs the model, the memory it holds per
example), so that nothing outside a method tests method names. Modules are imported on first
use, so checking option names needs no torch.

>>> sorted(METHODS)
['ablation', 'attribution', 'projection']
>>> METHODS["attribution"].options[-3:], METHODS["ablation"].unit
(('refine_random', 'refine_sensitive', 'seed'), 'layer')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .base import ScoringMethod

__all__ = ["METHODS", "MethodEntry", "gradient_sums_bytes", "load_method"]


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its module (in this package), its own options, what it is, and
    what a sweep needs from it.

    ``unit``: ``"layer"`` when a task can be scored one layer at a time (the method takes
    ``heads={layer: [head, ...]}`` and emits one exact block per layer, each sequence of a
    batch being one example with one head ablated: a sweep's unit is one (task, layer));
    ``"task"`` when it scores all heads of a task at once (a sweep's unit is one task).
    ``weights_only``: it runs no forward pass (no clean metric, accuracy or per-example
    effects). ``held_per_example``: bytes it holds per example while it scores a task, as a
    function of (layers, heads, head size, ablation), or None.
    """

    module: str
    options: tuple[str, ...]
    summary: str
    unit: Literal["layer", "task"] = "task"
    weights_only: bool = False
    held_per_example: Callable[[int, int, int, str], int] | None = None


def gradient_sums_bytes(n_layers: int, n_heads: int, head_dim: int, ablation: str) -> int:
    """Attribution with mean ablation holds a float32 gradient sum per example, head and
    dimension (the mean's term of each example's estimate) while it scores a task.

    >>> gradient_sums_bytes(2, 4, 8, "mean"), gradient_sums_bytes(2, 4, 8, "zero")
    (256, 0)
    """
    return 4 * n_layers * n_heads * head_dim if ablation == "mean" else 0


METHODS: dict[str, MethodEntry] = {
    "ablation": MethodEntry(
        "ablation",
        ("heads", "replay"),
        "exact: the metric's drop with one head ablated, about 1/2 forward a head",
        unit="layer",
    ),
    "attribution": MethodEntry(
        "attribution",
        (
            "steps",
            "competitors",
            "exact_layers",
            "replay",
            "screen",
            "refine",
            "refine_random",
            "refine_sensitive",
            "seed",
        ),
        "approximate: gradient x activation for all heads at once, optionally refined exactly",
        held_per_example=gradient_sums_bytes,
    ),
    "projection": MethodEntry(
        "projection",
        ("k", "suppression", "first_mlp", "min_pairs", "chunk_size"),
        "weights only (MAPS): fraction of (source, target) pairs a head's OV circuit maps to the"
        " target's top k",
        weights_only=True,
    ),
}


def load_method(name: str) -> type[ScoringMethod]:
    """The method class registered as ``name`` (imports its module)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return import_module(f".{METHODS[name].module}", __name__).METHOD
