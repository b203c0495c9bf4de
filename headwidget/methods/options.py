"""The options :func:`~headwidget.score_heads` takes, and their checks.

Light on purpose (no torch): the widget checks a model grid's options when it is built, before
anything is scored.

>>> check_options(method="ablation", ablation="zero", metric="logit_diff")
{'method': 'ablation', 'ablation': 'zero', 'metric': 'logit_diff', 'batch_size': None}
>>> check_options(ablation="half")
Traceback (most recent call last):
...
ValueError: unknown ablation 'half'; choose one of mean, zero
"""

from __future__ import annotations

from typing import Any

from . import METHODS, load_method
from .base import is_whole

__all__ = ["ABLATIONS", "METRICS", "SCORING_OPTIONS", "check_metric", "check_options"]

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

_COMMON = (
    "method", "ablation", "metric", "batch_size", "device", "head_layout", "keep_examples",
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


def check_options(
    method: str = "ablation",
    ablation: str = "mean",
    metric: str = "logprob",
    batch_size: int | None = None,
    **method_options: Any,
) -> dict[str, Any]:
    """Check scoring options; return them (with the defaults filled in) or raise a clear error.

    ``method_options`` are the chosen method's own keywords (``steps=``, ``refine=`` ... for
    ``"attribution"``); ``device`` and ``head_layout`` may be passed and are returned unchecked
    (they need the model), ``keep_examples`` (True, False or None) checked. Raises ValueError
    for a bad value and TypeError for a keyword the method does not take.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}")
    check_metric(metric)
    if batch_size is not None and (not is_whole(batch_size) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    keep = method_options.get("keep_examples")
    if keep is not None and not isinstance(keep, bool):
        raise TypeError(f"keep_examples must be True, False or None, got {keep!r}")
    passthrough = {
        k: method_options.pop(k)
        for k in ("device", "head_layout", "keep_examples")
        if k in method_options
    }
    unknown = sorted(set(method_options) - set(METHODS[method].options))
    if unknown:
        takes = ", ".join(METHODS[method].options) or "no options of its own"
        raise TypeError(f"method={method!r} does not take {unknown}; it takes {takes}")
    checked = load_method(method).check_options(**method_options) if method_options else {}
    return {
        "method": method,
        "ablation": ablation,
        "metric": metric,
        "batch_size": batch_size,
        **passthrough,
        **checked,
    }
