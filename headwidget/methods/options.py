"""How to score: one frozen record, :class:`ScoringOptions`, built and checked once.

It travels unchanged from where the user says it (``score_heads``' keywords, the widget, the
command's flags) through a sweep's fingerprint and runner to the method, so each option is
checked once, its default is written once (here, or in the method's ``check_options``), and the
keep-examples policy is one function (:meth:`ScoringOptions.keeps_examples`).

>>> options = ScoringOptions(method="ablation", ablation="zero", metric="logit_diff")
>>> dict(options.method_options), options.entry.unit
({'heads': None, 'replay': 'float32'}, 'layer')
>>> ScoringOptions(ablation="half")
Traceback (most recent call last):
...
ValueError: unknown ablation 'half'; choose one of mean, zero
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import METHODS, MethodEntry, load_method
from .base import is_whole

__all__ = [
    "ABLATIONS",
    "KEEP_EXAMPLES_BYTES",
    "METRICS",
    "SCORING_OPTIONS",
    "ScoringOptions",
    "check_metric",
    "check_options",
    "examples_bytes",
]

ABLATIONS: tuple[str, ...] = ("mean", "zero")
"""``"mean"``: a head's output replaced by its mean over the task; ``"zero"``: by zeros."""

METRICS: tuple[str, ...] = ("logprob", "prob", "accuracy", "logit_diff")
"""Supported metric names.

- ``"logprob"``: teacher-forced sum of the log-probabilities of all answer tokens.
- ``"prob"``: ``exp`` of that (the probability of the whole answer).
- ``"accuracy"``: 1 if every answer token is the argmax under teacher forcing, else 0.
- ``"logit_diff"``: logit of the answer's token minus logit of the distractor's, at the first
  token where answer and distractor differ (needs a distractor on every example).
"""

KEEP_EXAMPLES_BYTES = 256 * 2**20
"""Per-example effects are kept by default up to this many bytes (all tasks of one call)."""

_COMMON = (
    "method", "ablation", "metric", "batch_size", "device", "head_layout", "keep_examples",
    "add_bos",
)  # fmt: skip

SCORING_OPTIONS: tuple[str, ...] = _COMMON + tuple(
    dict.fromkeys(name for entry in METHODS.values() for name in entry.options)
)
"""Every keyword of :func:`~headwidget.score_heads` that says how to score (not where to
report): the common ones and each registered method's own."""


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is known, else raise a ValueError listing the choices."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return metric


def examples_bytes(
    n_layers: int,
    n_heads: int,
    head_dim: int,
    sizes: Sequence[int],
    *,
    method: str = "ablation",
    ablation: str = "mean",
) -> int:
    """Bytes that keeping per-example effects takes for tasks of ``sizes`` examples (what
    ``keep_examples=None`` compares with :data:`KEEP_EXAMPLES_BYTES`): 4 per layer, head and
    example, plus what the method holds per example while it scores the largest task
    (:attr:`MethodEntry.held_per_example`; attribution with mean ablation: a float32 gradient
    sum per head and dimension).

    >>> examples_bytes(2, 4, 8, [10, 5])
    480
    """
    needed = 4 * n_layers * n_heads * sum(int(n) for n in sizes)
    held = METHODS[method].held_per_example
    if held is not None and len(sizes):
        needed += held(n_layers, n_heads, head_dim, ablation) * max(int(n) for n in sizes)
    return needed


@dataclass(frozen=True)
class ScoringOptions:
    """Everything that says how heads are scored, checked once, the method's defaults filled in.

    ``method``: a name in :data:`headwidget.methods.METHODS`; ``ablation``: one of
    :data:`ABLATIONS`; ``metric``: one of :data:`METRICS`; ``batch_size``: sequences per forward
    (None: chosen from free memory); ``device``: where inputs go (None: the model's; checked
    against the model when scoring starts); ``head_layout``: a
    :class:`~headwidget.HeadLayout` for an architecture headwidget does not know;
    ``keep_examples``: keep per-example effects (None: :meth:`keeps_examples` decides);
    ``add_bos``: True makes every prompt start with the tokenizer's BOS token, False with none
    the tokenizer adds, None leaves the tokenizer's tokens as they are and warns (once per
    model) when it drops a BOS the model needs (:func:`headwidget.modeling.inputs.encode_task`);
    ``method_options``: the method's own keywords, returned with every default filled in (a
    read-only mapping). Build one from keywords as ``score_heads`` takes them with
    :meth:`from_keywords`; change one with :meth:`replace` (checked again).

    >>> options = ScoringOptions.from_keywords(method="attribution", refine=20)
    >>> options.method_options["refine_random"], options.keywords()["refine"]
    (10, 20)
    """

    method: str = "ablation"
    ablation: str = "mean"
    metric: str = "logprob"
    batch_size: int | None = None
    device: Any = None
    head_layout: Any = None
    keep_examples: bool | None = None
    add_bos: bool | None = None
    method_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.ablation not in ABLATIONS:
            raise ValueError(
                f"unknown ablation {self.ablation!r}; choose one of {', '.join(ABLATIONS)}"
            )
        check_metric(self.metric)
        if self.batch_size is not None and (not is_whole(self.batch_size) or self.batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {self.batch_size!r}")
        if self.keep_examples is not None and not isinstance(self.keep_examples, bool):
            keep = self.keep_examples
            raise TypeError(f"keep_examples must be True, False or None, got {keep!r}")
        if self.add_bos is not None and not isinstance(self.add_bos, bool):
            raise TypeError(f"add_bos must be True, False or None, got {self.add_bos!r}")
        given = dict(self.method_options)
        unknown = sorted(set(given) - set(self.entry.options))
        if unknown:
            takes = ", ".join(self.entry.options) or "no options of its own"
            raise TypeError(f"method={self.method!r} does not take {unknown}; it takes {takes}")
        filled = load_method(self.method).check_options(**given)
        object.__setattr__(self, "method_options", MappingProxyType(filled))
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", int(self.batch_size))

    @classmethod
    def from_keywords(cls, **keywords: Any) -> ScoringOptions:
        """The record of ``score_heads``-style keywords: the common ones by name, any other
        keyword a method option (``refine=20``)."""
        common = {k: keywords.pop(k) for k in _COMMON if k in keywords}
        return cls(**common, method_options=keywords)

    def replace(self, **changes: Any) -> ScoringOptions:
        """A copy with ``changes`` (fields of this record), checked again."""
        if "method" in changes and "method_options" not in changes:
            changes["method_options"] = {}  # another method's options are not these
        return dataclasses.replace(self, **changes)

    @property
    def entry(self) -> MethodEntry:
        """The method's registry entry: what it is and what a sweep needs from it."""
        return METHODS[self.method]

    def keywords(self) -> dict[str, Any]:
        """The options as ``score_heads`` keywords, the method's own spread out."""
        return {
            **{name: getattr(self, name) for name in _COMMON},
            **self.method_options,
        }

    def keeps_examples(
        self, n_layers: int, n_heads: int, head_dim: int, sizes: Sequence[int]
    ) -> bool:
        """Whether per-example effects are kept for tasks of ``sizes`` examples: as
        ``keep_examples`` says, or (None) unless they need over :data:`KEEP_EXAMPLES_BYTES`
        (:func:`examples_bytes`). Never for a weights-only method."""
        if self.entry.weights_only:
            return False
        if self.keep_examples is not None:
            return self.keep_examples
        needed = examples_bytes(
            n_layers, n_heads, head_dim, sizes, method=self.method, ablation=self.ablation
        )
        return needed <= KEEP_EXAMPLES_BYTES

    def fingerprint(self) -> dict[str, Any]:
        """What of these options decides the numbers a sweep computes (not ``batch_size``,
        ``device``), as JSON values: the method's options with their defaults filled in, or
        ``{}`` when they are all the defaults; ``add_bos`` only when given (so the fingerprints
        of sweeps made before it existed stay equal)."""
        defaults = load_method(self.method).check_options()
        own = {} if dict(self.method_options) == defaults else dict(self.method_options)
        out = {
            "method": self.method,
            "ablation": self.ablation,
            "metric": self.metric,
            "options": json.loads(json.dumps(own, sort_keys=True, default=str)),
        }
        if self.add_bos is not None:
            out["add_bos"] = self.add_bos
        return out


def check_options(**keywords: Any) -> dict[str, Any]:
    """``score_heads``-style keywords checked, as a dict with the defaults filled in (the
    :class:`ScoringOptions` record, flattened). Raises ValueError for a bad value and TypeError
    for a keyword the method does not take.

    >>> check_options(method="ablation", ablation="zero", metric="logit_diff")["heads"] is None
    True
    """
    return ScoringOptions.from_keywords(**keywords).keywords()
