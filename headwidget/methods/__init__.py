"""Scoring methods, one module each, registered here by name.

A method plugs in as one module with a class following
:class:`~headwidget.methods.base.ScoringMethod` (exported as ``METHOD``) plus one entry in
:data:`METHODS`, naming the module and the method's own keyword options. Modules are imported on
first use, so checking option names needs no torch.

>>> sorted(METHODS)
['ablation', 'attribution', 'projection']
>>> METHODS["attribution"].options[-3:]
('refine_random', 'refine_sensitive', 'seed')
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import ScoringMethod

__all__ = ["METHODS", "MethodEntry", "load_method"]


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its module (in this package), its own options, what it is."""

    module: str
    options: tuple[str, ...]
    summary: str


METHODS: dict[str, MethodEntry] = {
    "ablation": MethodEntry(
        "ablation",
        ("heads",),
        "exact: the metric's drop with one head ablated, about 1/2 forward a head",
    ),
    "attribution": MethodEntry(
        "attribution",
        (
            "steps",
            "competitors",
            "exact_layers",
            "screen",
            "refine",
            "refine_random",
            "refine_sensitive",
            "seed",
        ),
        "approximate: gradient x activation for all heads at once, optionally refined exactly",
    ),
    "projection": MethodEntry(
        "projection",
        ("k", "suppression", "first_mlp", "min_pairs", "chunk_size"),
        "weights only (MAPS): fraction of (source, target) pairs a head's OV circuit maps to the"
        " target's top k",
    ),
}


def load_method(name: str) -> type[ScoringMethod]:
    """The method class registered as ``name`` (imports its module)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return import_module(f".{METHODS[name].module}", __name__).METHOD
