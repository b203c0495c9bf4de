"""One hook toolkit: every torch hook headwidget puts on a model is registered here.

A hook sits at a *site* of each decoder layer and runs a *strategy*: ``strategy(layer, x)`` gets
the layer's index and the tensor at the site and returns a replacement of the same shape, or
None to leave it (reading it, or editing it in place where that is safe). The sites:

- ``heads=``: the input of the layer's attention output projection (``layout.out_projs``:
  ``o_proj``, ``c_proj``, ``dense``...). It is the per-head attention outputs concatenated
  head-major, so the strategy sees it as ``[..., n_heads, head_dim]`` (``form = "heads"``, the
  default) or raw, ``[..., n_heads * head_dim]`` (``form = "tensor"``);
- ``layer_in=``: the residual stream entering the decoder layer (its hidden-state argument,
  positional or ``hidden_states=``; ``form = "call"`` gets the whole call, a :class:`LayerCall`);
- ``layer_out=``: the decoder layer's output hidden state;
- ``qkv=``: the query, key or value a layer's attention computes (``channels=``, a
  :class:`~.channels.ResolvedChannels`, says where: a module's output or its columns of a fused
  projection). The strategy sees a :class:`ProjectionCall` (the projection's input, the
  channel's part of its output as ``[..., n, head_dim]``, and the channel's projection to apply
  to another input) for each channel in its ``channels`` attribute (default all three), and
  returns a replacement of that part; the hook puts it back into the module's output.

:func:`hooks` installs them for a ``with`` block on the chosen layers. They act only in the
thread that entered the block (forward passes other threads run meanwhile see the model as it
is; :mod:`.session`) and are removed when it ends, also on an exception. The strategies here:
READ :class:`HeadSums` (each head's output summed over the non-pad positions: mean ablation's
mean) and :class:`CaptureCalls` (each layer's call, which the replay engine of
:mod:`headwidget.methods.ablation` reruns); REPLACE :class:`Ablate` (heads set to their mean or
zero, per copy of a tiled batch: exact ablation, validation, the sink screen); and
:func:`run_to_last_layer`, which stops the forward after the last layer. A strategy used by one
method lives with it (attribution's probe, which ADDs a zero leaf to read the gradient), but
registers through :func:`hooks`: nothing outside :mod:`headwidget.modeling` registers a hook.

Meant to grow by strategies, not copies. Path patching (:mod:`headwidget.methods.paths`) is
the ``qkv=`` site and two strategies of its own: one replaces a channel with its projection of
a patched input (every head of the layer then sees it, and the engine keeps only the receiver's
output slice, which it splices into a clean replay with :class:`Ablate`: exact under
grouped-query attention, where a key/value group is shared), one adds a zero probe there for
attribution's gradient.

>>> sums = HeadSums(layout.n_layers)                                        # doctest: +SKIP
>>> with hooks(layout, heads=sums):             # read every out_proj input  # doctest: +SKIP
...     sums.token_mask = batch.attention_mask.reshape(-1).bool()
...     last = run_to_last_layer(model, layout, batch)
>>> means = sums.means(layout.n_heads, layout.head_dim)     # [n_heads, head_dim] a layer
>>> plan = {3: Ablate.together(torch.tensor([0, 2]), means[3])}            # doctest: +SKIP
>>> with hooks(layout, heads=Ablate(layout, plan), layers=plan):  # 3.0, 3.2 at their mean
...     metric = score_output(layout, "logprob", run_to_last_layer(model, layout, batch),
...                           batch, n_copies=1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from .adapters import ResolvedLayout
from .channels import ResolvedChannels
from .inputs import Batch
from .metrics import compute_metric
from .session import in_owner_thread, owner_thread

__all__ = [
    "Ablate",
    "CaptureCalls",
    "Form",
    "HeadSums",
    "LayerCall",
    "ProjectionCall",
    "Strategy",
    "add_head_sums",
    "head_means",
    "hooks",
    "mean_head_outputs",
    "metric_of_logits",
    "run_to_last_layer",
    "score_output",
    "scored_logits",
]

Form = Literal["heads", "tensor", "call"]
Fill = torch.Tensor | float


class Strategy(Protocol):
    """What a hook does at its site: ``(layer, x) -> replacement or None``. Its ``form``
    attribute, if any, says how it sees ``x`` (default ``"heads"`` at out_proj inputs,
    ``"tensor"`` elsewhere); it is read once, when :func:`hooks` installs it."""

    def __call__(self, layer: int, x: Any, /) -> torch.Tensor | None: ...


@dataclass
class LayerCall:
    """One decoder-layer call: the hidden state and every other argument."""

    args: tuple[Any, ...]  # positional arguments after the hidden state
    kwargs: dict[str, Any]  # keyword arguments other than hidden_states
    hidden_in_kwargs: bool
    hidden: torch.Tensor | None  # the replay engine drops it once its layer has been scored


@dataclass
class ProjectionCall:
    """One channel of one projection call (the ``qkv=`` site)."""

    channel: str  # "q", "k" or "v"
    input: torch.Tensor  # [..., hidden]: what the projection read (the attention norm's output)
    output: torch.Tensor  # [..., n, head_dim]: the channel's part of the projection's output
    project: Callable[[torch.Tensor], torch.Tensor]  # [..., hidden] -> [..., n, head_dim]


# -- the toolkit ---------------------------------------------------------------------------------


@contextmanager
def hooks(
    layout: ResolvedLayout,
    *,
    heads: Strategy | None = None,
    layer_in: Strategy | None = None,
    layer_out: Strategy | None = None,
    layers: Iterable[int] | None = None,
    qkv: Strategy | None = None,
    channels: ResolvedChannels | None = None,
) -> Iterator[None]:
    """Inside the block, ``heads`` acts on each out_proj's input, ``layer_in`` on each decoder
    layer's input, ``layer_out`` on its output and ``qkv`` on the query, key and value its
    attention computes (where ``channels`` says), in ``layers`` (default: all; negative
    indices count from the end), in the calling thread only; all removed on exit."""
    owner = owner_thread()
    indices = range(layout.n_layers)
    chosen = list(indices) if layers is None else [indices[i] for i in layers]
    if qkv is not None and channels is None:
        raise ValueError("the qkv= site needs channels= (resolve_channels) to find the projections")
    handles = []
    try:
        for i in chosen:
            if qkv is not None:
                wanted = getattr(qkv, "channels", ("q", "k", "v"))
                for module, parts in channels.parts(i, wanted):  # type: ignore[union-attr]
                    hook = _qkv_hook(qkv, i, owner, module, parts, layout.head_dim)
                    handles.append(module.register_forward_hook(hook))
            if heads is not None:
                hook = _out_proj_hook(heads, i, owner, layout.n_heads, layout.head_dim)
                handles.append(layout.out_projs[i].register_forward_pre_hook(hook))
            if layer_in is not None:
                hook = _layer_in_hook(layer_in, i, owner)
                handles.append(layout.layers[i].register_forward_pre_hook(hook, with_kwargs=True))
            if layer_out is not None:
                hook = _layer_out_hook(layer_out, i, owner)
                handles.append(layout.layers[i].register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _form(strategy: Strategy, default: Form, allowed: tuple[Form, ...], site: str) -> Form:
    form = getattr(strategy, "form", default)
    if form not in allowed:
        raise ValueError(f"a {site} strategy's form is one of {allowed}, not {form!r}")
    return form


def _out_proj_hook(fn: Strategy, index: int, owner: int, n_heads: int, head_dim: int) -> Callable:
    if _form(fn, "heads", ("heads", "tensor"), "heads=") == "tensor":

        def raw(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            if not in_owner_thread(owner):  # another thread's forward pass
                return None
            out = fn(index, args[0])
            return None if out is None else (out, *args[1:])

        return raw

    def by_head(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not in_owner_thread(owner):
            return None
        x = args[0]  # [..., n_heads * head_dim], head-major
        out = fn(index, x.reshape(*x.shape[:-1], n_heads, head_dim))  # [..., n_heads, head_dim]
        return None if out is None else (out.reshape(x.shape), *args[1:])

    return by_head


def _layer_in_hook(fn: Strategy, index: int, owner: int) -> Callable:
    whole = _form(fn, "tensor", ("tensor", "call"), "layer_in=") == "call"

    def hook(
        module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if not in_owner_thread(owner):
            return None
        in_kwargs = not args
        if in_kwargs and "hidden_states" not in kwargs:
            raise ValueError(
                f"decoder layer {index} ({type(module).__name__}) was called without its"
                " hidden state as the first positional argument or as hidden_states=; the"
                " HeadLayout's layers must be modules called that way (the decoder blocks)"
            )
        hidden = kwargs["hidden_states"] if in_kwargs else args[0]  # [B, T, d]
        if whole:
            rest = {k: v for k, v in kwargs.items() if k != "hidden_states"}
            out = fn(index, LayerCall(tuple(args[1:]), rest, in_kwargs, hidden))
        else:
            out = fn(index, hidden)
        if out is None:
            return None
        if in_kwargs:
            return args, {**kwargs, "hidden_states": out}
        return (out, *args[1:]), kwargs

    return hook


def _layer_out_hook(fn: Strategy, index: int, owner: int) -> Callable:
    _form(fn, "tensor", ("tensor",), "layer_out=")

    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        if not in_owner_thread(owner):
            return None
        many = isinstance(output, (tuple, list))
        out = fn(index, output[0] if many else output)  # [B, T, d]
        if out is None:
            return None
        return (out, *output[1:]) if many else out

    return hook


def _qkv_hook(
    fn: Strategy,
    index: int,
    owner: int,
    module: nn.Module,
    parts: list[tuple[str, torch.Tensor | None, int]],
    head_dim: int,
) -> Callable:
    _form(fn, "call", ("call",), "qkv=")
    where: dict[torch.device, list[torch.Tensor | None]] = {}  # the columns on each device

    def hook(mod: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> Any:
        if not in_owner_thread(owner):
            return None
        columns = where.get(output.device)
        if columns is None:
            columns = [None if c is None else c.to(output.device) for _, c, _ in parts]
            where[output.device] = columns
        result = output
        for (channel, _, n), cols in zip(parts, columns, strict=True):

            def project(x: torch.Tensor, cols: torch.Tensor | None = cols, n: int = n) -> Any:
                y = module.forward(x)  # .forward: this hook does not see it
                y = y if cols is None else y.index_select(-1, cols)
                return y.reshape(*y.shape[:-1], n, head_dim)

            part = output if cols is None else output.index_select(-1, cols)
            shaped = part.reshape(*part.shape[:-1], n, head_dim)
            new = fn(index, ProjectionCall(channel, args[0], shaped, project))
            if new is None:
                continue
            flat = new.reshape(part.shape).to(output.dtype)
            result = flat if cols is None else result.index_copy(-1, cols, flat)
        return None if result is output else result

    return hook


# -- strategies ----------------------------------------------------------------------------------


def add_head_sums(
    x: torch.Tensor,
    token_mask: torch.Tensor,
    sums: list[torch.Tensor | None],
    counts: list[int],
    index: int,
) -> None:
    """Add layer ``index``'s head outputs ``x`` at the non-pad positions (``token_mask``, one
    flag per batch x time) to ``sums[index]`` in float32 and count them: mean ablation's mean."""
    flat = x.reshape(-1, x.shape[-1])[token_mask.to(x.device)]
    total = flat.sum(0, dtype=torch.float32)
    prev = sums[index]
    sums[index] = total if prev is None else prev + total
    counts[index] += flat.shape[0]


def head_means(
    sums: list[torch.Tensor | None], counts: list[int], n_heads: int, head_dim: int
) -> list[torch.Tensor]:
    """Per layer, each head's mean output ``[n_heads, head_dim]`` from :func:`add_head_sums`."""
    missing = [
        i for i, (total, n) in enumerate(zip(sums, counts, strict=True)) if total is None or not n
    ]
    if missing:
        raise RuntimeError(
            f"the attention output projection of layer(s) {missing} was never called; the"
            " HeadLayout's out_proj must be the modules the model runs"
        )
    return [
        (total / n).view(n_heads, head_dim)  # type: ignore[operator]
        for total, n in zip(sums, counts, strict=True)
    ]


class HeadSums:
    """READ (``heads=``): each layer's head outputs summed over the non-pad positions, in
    float32. Set ``token_mask`` (``[B*T]`` bool) before each batch's forward."""

    form: ClassVar[Form] = "tensor"

    def __init__(self, n_layers: int) -> None:
        self.token_mask: torch.Tensor | None = None
        self.sums: list[torch.Tensor | None] = [None] * n_layers
        self.counts = [0] * n_layers

    def __call__(self, layer: int, x: torch.Tensor) -> None:
        assert self.token_mask is not None, "set token_mask before the forward pass"
        add_head_sums(x, self.token_mask, self.sums, self.counts, layer)

    def means(self, n_heads: int, head_dim: int) -> list[torch.Tensor]:
        """Each head's mean output ``[n_heads, head_dim]`` per layer (mean ablation's fill)."""
        return head_means(self.sums, self.counts, n_heads, head_dim)


class CaptureCalls:
    """READ (``layer_in=``): each decoder layer's call, its hidden state in CPU memory if
    ``offload``; the replay engine reruns the layers after an ablated one from these."""

    form: ClassVar[Form] = "call"

    def __init__(self, n_layers: int, offload: bool = False) -> None:
        self.offload = offload
        self.calls: list[LayerCall | None] = [None] * n_layers

    def __call__(self, layer: int, call: LayerCall) -> None:
        if self.offload:
            call.hidden = call.hidden.to("cpu")  # type: ignore[union-attr]
        self.calls[layer] = call


class Ablate:
    """REPLACE (``heads=``): ``plan[layer] = (copies, heads, values)`` sets head ``heads[j]`` of
    copy ``copies[j]`` (of the batch tiled ``n_copies`` times) to ``values[j]``
    (``[k, 1, head_dim]``, or a number: 0.0 for zero ablation), in place. Install it on the
    plan's layers only (``hooks(..., layers=plan)``)."""

    form: ClassVar[Form] = "tensor"

    def __init__(
        self,
        layout: ResolvedLayout,
        plan: Mapping[int, tuple[torch.Tensor, torch.Tensor, Fill]],
        n_copies: int = 1,
    ) -> None:
        self.n_heads, self.head_dim = layout.n_heads, layout.head_dim
        self.plan = plan
        self.n_copies = n_copies

    @staticmethod
    def tiled(heads: torch.Tensor, values: Fill) -> tuple[torch.Tensor, torch.Tensor, Fill]:
        """A layer's plan with head ``heads[c]`` in copy ``c`` (``n_copies = len(heads)``)."""
        return torch.arange(len(heads), device=heads.device), heads, values

    @staticmethod
    def together(
        heads: torch.Tensor, fill: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Fill]:
        """A layer's plan with all of ``heads`` in the one copy, each set to its row of ``fill``
        (``[n_heads, head_dim]``: the means, or zeros)."""
        return torch.zeros_like(heads), heads, fill[heads].unsqueeze(1)

    def __call__(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        copies, heads, fill = self.plan[layer]
        # reshape is a view for the usual contiguous input (then the edit is in place, which is
        # fine: the tensor exists only to be projected) and a copy otherwise
        view = x.reshape(self.n_copies, -1, self.n_heads, self.head_dim)  # [n, B/n * T, H, d]
        if heads.device != x.device:  # layers spread over devices (device_map)
            heads, copies = heads.to(x.device), copies.to(x.device)
        if isinstance(fill, torch.Tensor):
            fill = fill.to(device=x.device, dtype=x.dtype)
        view[copies, :, heads, :] = fill
        return view.view(x.shape)


class _StopForward(Exception):
    """Raised after the last decoder layer: the clean pass needs nothing after it."""


def run_to_last_layer(
    model: nn.Module, layout: ResolvedLayout, batch: Batch
) -> torch.Tensor | None:
    """Run ``model`` on ``batch`` and stop after its last decoder layer; return that layer's
    output (None if it never ran). Hooks installed on the model see the run."""
    captured: list[torch.Tensor] = []

    def stop(layer: int, hidden: torch.Tensor) -> None:
        captured.append(hidden)
        raise _StopForward

    with hooks(layout, layer_out=stop, layers=[-1]), suppress(_StopForward):
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    return captured[0] if captured else None


def mean_head_outputs(
    model: nn.Module, layout: ResolvedLayout, batches: Sequence[Batch]
) -> list[torch.Tensor]:
    """Each head's mean output over the non-pad positions of ``batches`` (one forward each, up
    to the last decoder layer): ``[n_heads, head_dim]`` per layer, mean ablation's fill."""
    sums = HeadSums(layout.n_layers)
    with hooks(layout, heads=sums), torch.inference_mode():
        for batch in batches:
            sums.token_mask = batch.attention_mask.reshape(-1).bool()
            run_to_last_layer(model, layout, batch)
    return sums.means(layout.n_heads, layout.head_dim)


# -- reading the output --------------------------------------------------------------------------


def scored_logits(
    layout: ResolvedLayout, hidden: torch.Tensor, batch: Batch, n_copies: int
) -> torch.Tensor:
    """Logits ``[n_copies, P, vocab]`` at the batch's scored positions only, from the last
    layer's output ``[n_copies * B, T, d]``."""
    hidden = hidden.reshape(n_copies, batch.size, *hidden.shape[1:])
    # with device_map the last layer and the LM head may sit on other devices than the inputs
    picked = hidden[:, batch.rows.to(hidden.device), batch.positions.to(hidden.device)]
    return layout.final(picked)


def score_output(
    layout: ResolvedLayout, metric: str, hidden: torch.Tensor, batch: Batch, n_copies: int
) -> torch.Tensor:
    """Metric [n_copies, B] from the last layer's output, reading only scored positions."""
    return metric_of_logits(metric, scored_logits(layout, hidden, batch, n_copies), batch)


def metric_of_logits(metric: str, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Metric [n_copies, B] from :func:`scored_logits`' output."""
    dev = logits.device
    distractors = None if batch.distractors is None else batch.distractors.to(dev)
    return compute_metric(
        metric, logits, batch.targets.to(dev), batch.rows.to(dev), batch.size, distractors
    )
