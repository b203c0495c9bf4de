"""Computing a 16-bit model's forward in float32, in one thread, without touching the model.

Exact ablation measures ``metric(clean) − metric(head ablated)``: most heads change the metric by
less than a bfloat16 residual stream can hold (8 bits of mantissa: a hidden state of size 30 is
rounded in steps of 0.125), so in the model's own precision every layer after the ablated head
rounds the two runs differently and the small differences drown: on the demo model (SmolLM2-135M)
the bfloat16 maps rank heads with Spearman 0.91-0.94 against float32, while the weights rounded
to bfloat16 but computed in float32 give 0.9995+. :func:`float32_compute` runs the model's code
in float32 inside a ``with`` block: every 16-bit floating tensor an operation is given (weights,
recorded masks, rotary tables) is read as float32, conversions to a 16-bit dtype keep float32,
and so every result is float32. It is a torch function mode, which lives in the calling thread
only: the model's parameters stay as they are, no copy of them is made (each is widened where an
operation reads it), and forward passes other threads run meanwhile see nothing of it.

>>> model = torch.nn.Linear(4, 2).to(torch.bfloat16)
>>> with float32_compute():
...     out = model(torch.ones(1, 4, dtype=torch.bfloat16))
>>> out.dtype, model.weight.dtype
(torch.float32, torch.bfloat16)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

__all__ = [
    "LOW_PRECISION",
    "Float16OverflowError",
    "check_float16_range",
    "float32_compute",
    "is_low_precision",
]

LOW_PRECISION: frozenset[torch.dtype] = frozenset({torch.bfloat16, torch.float16})
"""The floating dtypes :func:`float32_compute` widens."""


def is_low_precision(dtype: torch.dtype) -> bool:
    """Whether ``dtype`` is a 16-bit floating dtype (bfloat16, float16)."""
    return dtype in LOW_PRECISION


def _widen(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.dtype in LOW_PRECISION:
        return x.float()
    return x


# conversions whose 16-bit result would round a float32 tensor: keep the float32 one
_CONVERSIONS: frozenset[Callable[..., Any]] = frozenset(
    {
        torch.Tensor.to,
        torch.Tensor.type,
        torch.Tensor.type_as,
        torch.Tensor.half,
        torch.Tensor.bfloat16,
    }
)


class float32_compute(TorchFunctionMode):  # noqa: N801 (used as a function: ``with ...():``)
    """Inside the block, in this thread, every torch operation computes in float32 (see the
    module docstring); tensors of other dtypes (integer ids, bool masks, float64) are left as
    they are."""

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__setitem__" or (name.endswith("_") and not name.endswith("__")):
            return func(*args, **kwargs)  # in place: the tensor written keeps its dtype
        if func in _CONVERSIONS and args and isinstance(args[0], torch.Tensor):
            out = func(*args, **kwargs)
            source = args[0]
            if isinstance(out, torch.Tensor) and out.dtype in LOW_PRECISION:
                if source.dtype == torch.float32:
                    return source.to(out.device)  # no rounding to 16 bits on the way
                return out.float()
            return out
        args, kwargs = tree_map(_widen, (args, kwargs))
        return tree_map(_widen, func(*args, **kwargs))


class Float16OverflowError(OverflowError):
    """A float16 model's hidden state went past float16's largest value (65504)."""


def check_float16_range(states: list[torch.Tensor | None], last: torch.Tensor,
                        mask: torch.Tensor) -> None:  # fmt: skip
    """Raise :class:`Float16OverflowError` naming the first decoder layer whose output is not
    finite at a real (non-pad) position, if the last layer's output ``last`` is not: ``states``
    are the hidden states entering each layer (``[B, T, d]``), ``mask`` the attention mask."""
    real = mask.to(last.device).bool()
    if torch.isfinite(last[real]).all():
        return
    outputs = [*states[1:], last]
    layer = next(
        (
            i
            for i, out in enumerate(outputs)
            if out is not None and not torch.isfinite(out.to(last.device)[real]).all()
        ),
        len(outputs) - 1,
    )
    raise Float16OverflowError(
        f"float16 overflow: the hidden state after decoder layer {layer} is not finite (float16"
        " holds at most 65504, and this model's residual stream goes past it), so every"
        " metric would be inf or NaN. Load the model in bfloat16 (the same memory, float32's"
        " range) or float32"
    )
