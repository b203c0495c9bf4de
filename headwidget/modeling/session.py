"""The model while headwidget works on it: one scoring call at a time per model, in eval mode,
and every module's training flag as it was afterwards.

``score_heads``, ``validate_scores`` and ``evaluate_tasks`` run inside :func:`model_session`. A
second call on the same model while one runs (from another thread, or from a callback of the
first) raises :class:`ModelBusyError` at once. The hooks headwidget installs act only in the
thread that installed them (:func:`owner_thread` / :func:`in_owner_thread`), so forward passes
that other threads run meanwhile see the model unchanged, apart from its eval mode.

>>> with model_session(model, "score_heads"):   # doctest: +SKIP
...     ...                                      # the model is in eval mode here
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = [
    "ModelBusyError",
    "eval_mode",
    "frozen_parameters",
    "in_owner_thread",
    "model_session",
    "owner_thread",
]

_busy: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()
_busy_lock = threading.Lock()


class ModelBusyError(RuntimeError):
    """The model is already being scored (or validated) by another call."""


@contextmanager
def model_session(model: nn.Module, what: str) -> Iterator[None]:
    """Claim ``model`` for ``what`` (e.g. ``"score_heads"``), put it in eval mode, and on exit
    give every module back the training flag it had (also when the body raises)."""
    with _busy_lock:
        running = _busy.get(model)
        if running is not None:
            raise ModelBusyError(
                f"this model is already scoring ({running} is running on it, in another thread"
                f" or in a callback of that call); {what} waits for no one: run it when that"
                " call has finished, or on a copy of the model (copy.deepcopy(model))"
            )
        _busy[model] = what
    try:
        with eval_mode(model):
            yield
    finally:
        with _busy_lock:
            _busy.pop(model, None)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode inside the block; afterwards every module has the training flag
    it had before (``model.train(flag)`` would give every submodule the same one)."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, training in flags:
            module.training = training


def owner_thread() -> int:
    """The current thread's id, for hooks to remember who installed them."""
    return threading.get_ident()


def in_owner_thread(owner: int | None) -> bool:
    """Whether the current thread is ``owner`` (hooks do nothing in any other thread)."""
    return threading.get_ident() == owner


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """``requires_grad`` off on every parameter of ``model`` inside the block (gradients flow
    to the activations only), each parameter's flag restored after, also on an error.

    >>> with frozen_parameters(model):  # doctest: +SKIP
    ...     metric.backward()
    """
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
