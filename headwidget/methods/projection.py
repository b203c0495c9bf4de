"""Weight-only head scores (MAPS projection): how often a head's OV circuit maps sources to targets.

MAPS (Elhelo & Geva, "Inferring Functionality of Attention Heads from their Parameters", ACL 2025)
projects each head's OV circuit into vocabulary space, ``M_h = E · W_V,h · W_O,h · U``, and
scores an operation (``France -> Paris``) by the fraction of its (source, target) pairs whose
target is among the top ``k`` tokens of the source's row. No prompt is run.

What exactly is computed here, for head ``h`` of layer ``l`` and source token ``s``:

- the residual ``r_s``: the source's input embedding (with the model's embedding scale, as
  Gemma's); with ``first_mlp=True``, for layers after the first, ``r_s + MLP_0(r_s)``, the
  residual after the first block's MLP (its attention left out), since in many models the first
  MLP acts as part of the embedding. MAPS passes sources through the first MLP for every model
  but its largest; its code uses the MLP's output alone, here the residual keeps the embedding.
  The default, ``True``, also agrees more with exact ablation on the demo model (README);
- the head's output when it attends only to ``s``: ``(norm_l(r_s) · W_V,g + b_V,g) · W_O,h``,
  with the layer's own pre-attention norm module (RMSNorm, LayerNorm, Gemma's ``1 + w``), ``g``
  the key/value group the head reads (grouped-query attention), the value bias included; Gemma-2/3
  also scale it by their post-attention norm's weight. The output projection's bias is shared by
  all heads and left out;
- logits over the vocabulary through ``U``: the unembedding (tied or not) with the final norm's
  weight folded in (centred for LayerNorm). The final norm's per-token scale is positive, so it
  does not change which tokens rank first; its bias and the LM head's bias do not depend on the
  head and are left out, as in direct logit attribution;
- the target is "in the top ``k``" when fewer than ``k`` other tokens have a strictly larger
  logit. ``suppression=True`` ranks ``-M`` instead: heads that push the target down.

The vocabulary × vocabulary matrix is never built. Per layer, ``W_O,h · U`` is computed for all
heads at once on a screen of ``chunk_size`` tokens: every target plus the first other tokens of
the vocabulary. A pair with ``k`` screen tokens above its target is settled. The few pairs left
are finished over the rest of the vocabulary chunk by chunk, through ``(a · W_O,h) · U`` (pooled
over the layer's heads) or, for a head with more open pairs than its head size,
``a · (W_O,h · U)``; each pair stops as soon as ``k`` tokens are above it. Every comparison is
between logits computed the same way, so results do not depend on the chunk size. Memory:
about ``hidden × (chunk_size + distinct targets)`` floats besides ``U``.

>>> scores = score_heads(model, tokenizer, load_suite("operations"),   # doctest: +SKIP
...                      method="projection", k=10)
>>> scores.meta["units"]                                               # doctest: +SKIP
'fraction of pairs'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..modeling.adapters import resolve_layout
from ..modeling.architectures import ARCHITECTURES, Architecture, ProjectionWeights
from ..modeling.inputs import Encoded
from .base import Block, Clean, ScoringContext, is_whole

__all__ = [
    "METHOD",
    "PROJECTION_ARCHITECTURES",
    "ProjectionMethod",
    "count_outranking",
    "final_unembedding",
    "head_values",
    "single_token",
]

DEFAULT_K = 10
"""Top-k for operations whose target differs from the source (MAPS, most models)."""
COPYING_K = 1
"""Top-k for copying operations (every target is its source's token)."""


# -- reading a model's weights -----------------------------------------------------------------


PROJECTION_ARCHITECTURES: tuple[str, ...] = tuple(
    sorted(name for name, arch in ARCHITECTURES.items() if arch.projection is not None)
)
"""``config.model_type`` values whose weights ``method="projection"`` can read (those whose
:class:`~headwidget.modeling.architectures.Architecture` has ``projection`` weights)."""


def _get(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _norm_weight(norm: nn.Module, width: int, like: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The elementwise weight of a norm (up to a positive factor) and whether it centres."""
    if isinstance(norm, nn.LayerNorm):
        weight = norm.weight if norm.weight is not None else torch.ones(width)
        return weight.detach().to(like), True
    # RMSNorm-like: norm(1) = w_eff / rms(1) = w_eff up to eps, whatever the convention (w, 1 + w)
    ones = torch.ones(1, width, dtype=_param(norm, like).dtype, device=_param(norm, like).device)
    weight = norm(ones)[0].to(like)
    if not torch.isfinite(weight).all() or not weight.abs().sum() > 0:
        raise ValueError(f"cannot read the weight of {type(norm).__name__}: norm(1) is {weight}")
    return weight, False


def _param(module: nn.Module, fallback: torch.Tensor) -> torch.Tensor:
    return next(module.parameters(), fallback)


@torch.no_grad()
def final_unembedding(model: nn.Module, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``U`` as ``[vocab, hidden]`` rows: the LM head with the final norm's weight folded in.

    >>> unembed = final_unembedding(model, torch.float32, torch.device("cpu"))  # doctest: +SKIP
    """
    arch, _ = _architecture(model)
    head = model.get_output_embeddings().weight.detach().to(device=device, dtype=dtype)
    weight, centred = _norm_weight(_get(model, arch.final_norm), head.shape[1], head)
    unembed = head * weight
    if centred:  # (y - mean(y)) · u = y · (u - mean(u)) for every row u
        unembed = unembed - unembed.mean(dim=1, keepdim=True)
    return unembed


def _architecture(model: nn.Module) -> tuple[Architecture, ProjectionWeights]:
    """The model's architecture and the weights ``method="projection"`` reads in it."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    arch = ARCHITECTURES.get(model_type)  # type: ignore[arg-type]
    if arch is None or arch.projection is None:
        raise ValueError(
            f"method='projection' reads a model's weights and knows the architectures"
            f" {', '.join(PROJECTION_ARCHITECTURES)}; {type(model).__name__}"
            f" (model_type={model_type!r}) is not one of them. Use method='ablation'"
        )
    return arch, arch.projection


class _ModelWeights:
    """Per-layer source values and output projections of a supported Hugging Face model."""

    def __init__(self, model: nn.Module, n_heads: int, head_dim: int, dtype: torch.dtype) -> None:
        self.model = model
        self.arch, self.spec = _architecture(model)
        self.layers = list(_get(model, self.arch.layers))
        n_layers = getattr(model.config, "num_hidden_layers", None) or len(self.layers)
        self.layers = self.layers[:n_layers]
        self.n_heads, self.head_dim, self.dtype = n_heads, head_dim, dtype
        self.n_kv = getattr(model.config, "num_key_value_heads", None) or n_heads
        if n_heads % self.n_kv:
            raise ValueError(f"{n_heads} query heads do not split into {self.n_kv} kv groups")

    @torch.no_grad()
    def residuals(self, token_ids: torch.Tensor, first_mlp: bool) -> tuple[torch.Tensor, ...]:
        """Source residuals for layer 0 and (if ``first_mlp``) for the layers after it."""
        embed = self.model.get_input_embeddings()
        embeds = embed(token_ids.to(_param(embed, token_ids).device))
        if self.spec.embed_scale:
            embeds = embeds * torch.tensor(self.model.config.hidden_size**0.5, dtype=embeds.dtype)
        if not first_mlp:
            return (embeds,)
        block = self.layers[0]
        out = _get(block, self.spec.mlp)(_get(block, self.spec.mlp_norm)(embeds))
        if self.spec.post_mlp_norm:
            out = _get(block, self.spec.post_mlp_norm)(out)
        return embeds, embeds + out

    @torch.no_grad()
    def layer(self, index: int, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(values [n, n_heads, head_dim], w_o [n_heads, head_dim, hidden])`` of a layer:
        each head's value vector of each source (its kv group's) and its output projection."""
        block, spec = self.layers[index], self.spec
        hd, n_heads, n_kv = self.head_dim, self.n_heads, self.n_kv
        x = self.arch.attention_norm_in(block)(residual.to(_param(block, residual).device))
        values = _get(block, spec.value)(x)
        if spec.value_slice == "gpt2":
            values = values[..., 2 * n_heads * hd :]
        elif spec.value_slice == "phi3":
            values = values[..., (n_heads + n_kv) * hd :]
        values = values.reshape(len(residual), n_kv, hd).to(self.dtype)
        values = values[:, torch.arange(n_heads) // (n_heads // n_kv)]  # head h reads group g
        out_proj = _get(block, self.arch.out_proj)
        weight = out_proj.weight.detach().to(self.dtype)
        # Linear: [hidden, heads * hd]; GPT-2's Conv1D: [heads * hd, hidden]
        w_o = weight if spec.value_slice == "gpt2" else weight.T
        w_o = w_o.reshape(n_heads, hd, -1)
        if spec.post_attn_norm:
            scale, _ = _norm_weight(_get(block, spec.post_attn_norm), w_o.shape[-1], w_o)
            w_o = w_o * scale
        return values, w_o


@torch.no_grad()
def head_values(
    model: nn.Module, layer: int, token_ids: Any, *, first_mlp: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the heads of ``layer`` write when each attends only to one of ``token_ids``, in two
    factors: ``(values [n, n_heads, head_dim], w_o [n_heads, head_dim, hidden])`` (the module
    docstring's ``a`` and ``W_O,h``), float32 (float64 for a float64 model), on the model's
    devices. Row ``s`` of head ``h``'s vocabulary map is ``values[s, h] @ w_o[h] @ U.T`` with
    ``U = final_unembedding(model, ...)``.

    >>> values, w_o = head_values(model, 5, torch.tensor([1234]))   # doctest: +SKIP
    >>> unembed = final_unembedding(model, w_o.dtype, w_o.device)  # doctest: +SKIP
    >>> logits = values[0, 2] @ w_o[2] @ unembed.T  # head 2, token 1234  # doctest: +SKIP
    """
    layout = resolve_layout(model)
    double = _param(model, torch.zeros(1)).dtype == torch.float64
    weights = _ModelWeights(
        model, layout.n_heads, layout.head_dim, torch.float64 if double else torch.float32
    )
    if not 0 <= layer < len(weights.layers):
        raise ValueError(f"no layer {layer}: the model has {len(weights.layers)}")
    residuals = weights.residuals(torch.as_tensor(token_ids).long().flatten(), first_mlp)
    return weights.layer(layer, residuals[min(layer, len(residuals) - 1)])


# -- the ranking ---------------------------------------------------------------------------------


@torch.no_grad()
def count_outranking(
    values: torch.Tensor,
    w_o: torch.Tensor,
    unembed: torch.Tensor,
    pair_source: torch.Tensor,
    pair_target: torch.Tensor,
    cap: torch.Tensor,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """How many tokens outrank each pair's target in each head's row, counted up to ``cap``.

    Row ``p`` of head ``h`` is ``values[pair_source[p], h] @ w_o[h] @ unembed.T``; the count is the
    number of tokens ``j != pair_target[p]`` with a strictly larger logit than the target, exact
    below ``cap[p]`` and at least ``cap[p]`` otherwise. So the target is in the top ``k`` of the
    row exactly when the count is below ``k`` (for ``cap >= k``).

    Args:
        values: ``[n_sources, n_heads, head_dim]`` value vectors (a head's kv group's).
        w_o: ``[n_heads, head_dim, hidden]`` per-head output projections.
        unembed: ``[vocab, hidden]`` unembedding rows.
        pair_source / pair_target / cap: ``[n_pairs]`` source row, target token id, cap.
        chunk_size: vocabulary tokens per chunk: memory about ``hidden × (chunk_size +
            distinct targets)``. The first chunk (the screen) holds the targets.

    Returns:
        int64 ``[n_heads, n_pairs]`` counts.

    >>> v, w, u = torch.eye(2)[:, None], torch.eye(2)[None], torch.eye(2)
    >>> count_outranking(v, w, u, torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([5, 5]))
    tensor([[0, 1]])
    """
    n_heads, head_dim, _ = w_o.shape
    vocab, device = unembed.shape[0], values.device
    n_pairs = len(pair_target)
    counts = torch.zeros(n_heads, n_pairs, dtype=torch.long, device=device)
    # The screen: every target, then the first other tokens up to chunk_size columns in all.
    targets, target_col = torch.unique(pair_target, return_inverse=True)
    screened = torch.zeros(vocab, dtype=torch.bool, device=device)
    screened[targets] = True
    extra = torch.nonzero(~screened[: chunk_size + len(targets)]).flatten()
    columns = torch.cat([targets, extra[: max(chunk_size - len(targets), 0)]])
    screened[columns] = True
    # W_O,h · U on the screen for all heads at once (one matrix product).
    stacked = w_o.reshape(n_heads * head_dim, -1)
    screen = (stacked @ unembed[columns].T).reshape(n_heads, head_dim, len(columns))
    rows = torch.arange(n_pairs, device=device)
    pooled: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (head, open pairs, a · W_O,h)
    for h in range(n_heads):
        a = values[pair_source, h]  # [n_pairs, head_dim]
        logits = a @ screen[h]
        target_logit = logits[rows, target_col]
        above = logits > target_logit[:, None]
        above[rows, target_col] = False
        counts[h] = above.sum(-1)
        open_ = torch.nonzero(counts[h] < cap).flatten()
        if not len(open_) or len(columns) == vocab:
            continue
        if len(open_) > head_dim:  # many: a · (W_O,h · U), per chunk
            w = w_o[h]
            target_logit = (a[open_] * (w @ unembed[pair_target[open_]].T).T).sum(-1)
            counts[h, open_] = _scan(
                lambda rows_, chunk, a=a[open_], w=w: a[rows_] @ (w @ chunk.T), unembed,
                target_logit, pair_target[open_], cap[open_], counts[h, open_], screened,
                chunk_size,
            )  # fmt: skip
        else:  # few: (a · W_O,h) · U, pooled over the heads of the layer
            pooled.append((h, open_, a[open_] @ w_o[h]))
    if pooled:
        z = torch.cat([zs for _, _, zs in pooled])
        heads = torch.cat([torch.full_like(p, h) for h, p, _ in pooled])
        pairs = torch.cat([p for _, p, _ in pooled])
        target_logit = (z * unembed[pair_target[pairs]]).sum(-1)
        counts[heads, pairs] = _scan(
            lambda rows_, chunk: z[rows_] @ chunk.T, unembed, target_logit, pair_target[pairs],
            cap[pairs], counts[heads, pairs], screened, chunk_size,
        )  # fmt: skip
    return counts


def _scan(
    logits_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    unembed: torch.Tensor,
    target_logit: torch.Tensor,
    target: torch.Tensor,
    cap: torch.Tensor,
    count: torch.Tensor,
    screened: torch.Tensor,
    chunk_size: int,
) -> torch.Tensor:
    """Add to ``count`` the tokens not ``screened`` (the targets are) that outrank each row's
    target, chunk by chunk; a row stops once it reaches its cap. ``logits_of(rows, chunk)``
    computes the rows' logits the same way as ``target_logit``."""
    count = count.clone()
    open_ = torch.arange(len(target), device=target.device)
    for lo in range(0, len(screened), chunk_size):
        keep = ~screened[lo : lo + chunk_size]
        if not keep.any():
            continue
        logits = logits_of(open_, unembed[lo : lo + chunk_size])
        count[open_] += ((logits > target_logit[open_, None]) & keep).sum(-1)
        open_ = open_[count[open_] < cap[open_]]
        if not len(open_):
            break
    return count


# -- the method ----------------------------------------------------------------------------------


@dataclass
class _TaskPairs:
    sources: list[int]  # token ids
    targets: list[int]
    k: int
    total: int  # examples of the task


def single_token(tokenizer: Any, word: str) -> int | None:
    """The id of ``word`` with one leading space when that is one token, else None: the
    (source, target) words projection scores are those that are."""
    ids = tokenizer(" " + word.strip(), add_special_tokens=False)["input_ids"]
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    return int(ids[0]) if len(ids) == 1 else None


class ProjectionMethod:
    """MAPS relation scores from the weights alone (see the module docstring)."""

    name: ClassVar[str] = "projection"

    @classmethod
    def check_options(
        cls,
        k: int | None = None,
        suppression: bool = False,
        first_mlp: bool = True,
        min_pairs: int = 30,
        chunk_size: int = 2048,
    ) -> dict[str, Any]:
        """``k``: top-k (default 1 for copying operations, whose targets are their sources'
        tokens, 10 otherwise); ``suppression``: rank ``-M``; ``first_mlp``: pass sources through
        the first block's MLP for later layers; ``min_pairs``: operations with fewer single-token
        pairs are left out (NaN); ``chunk_size``: vocabulary tokens per chunk."""
        for name, value in (("k", k), ("min_pairs", min_pairs), ("chunk_size", chunk_size)):
            if value is None and name == "k":
                continue
            if not is_whole(value) or value < 1:
                what = "a whole number >= 1" + (" or None" if name == "k" else "")
                raise ValueError(f"{name} must be {what}, got {value!r}")
        for name, value in (("suppression", suppression), ("first_mlp", first_mlp)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        return {  # plain ints (a NumPy integer is accepted, and meta is JSON)
            "k": None if k is None else int(k),
            "suppression": suppression,
            "first_mlp": first_mlp,
            "min_pairs": int(min_pairs),
            "chunk_size": int(chunk_size),
        }

    def __init__(self, context: ScoringContext, **options: Any) -> None:
        self.options = self.check_options(**options)
        self.context = context
        _architecture(context.model)  # a clear error for an architecture it cannot read, first
        tasks = context.task_list
        for task in tasks:
            missing = [i for i, ex in enumerate(task.examples) if ex.source is None]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
                raise ValueError(
                    f"method='projection' needs Example.source (the word the operation acts on,"
                    f" e.g. 'France' for France -> Paris) on every example, but task"
                    f" {task.name!r} has none on example(s) {shown}. Give a 'source' column in"
                    " your task file, Example(..., source=...), or use few_shot_task /"
                    " load_suite('operations'), which fill it"
                )
        self.pairs = [self._pairs(task) for task in tasks]
        self.dropped = {
            task.name: len(p.sources)
            for task, p in zip(tasks, self.pairs, strict=True)
            if len(p.sources) < self.options["min_pairs"]
        }
        if len(self.dropped) == len(tasks):
            raise ValueError(
                "method='projection': no task has enough single-token (source, target) pairs"
                f" (min_pairs={self.options['min_pairs']}; per task: {self.dropped}). Lower"
                " min_pairs, or use tasks whose sources and targets are single tokens"
            )
        for name, n in self.dropped.items():
            warnings.warn(
                f"method='projection': task {name!r} has only {n} (source, target) pairs that are"
                f" single tokens (with a leading space) for this tokenizer, fewer than"
                f" min_pairs={self.options['min_pairs']}; it is left out (its scores are NaN)",
                stacklevel=3,
            )
        self.scores: np.ndarray | None = None  # [tasks, layers, heads], computed on first use

    def _pairs(self, task: Any) -> _TaskPairs:
        tokenizer = self.context.tokenizer
        sources, targets = [], []
        for ex in task.examples:
            s, t = single_token(tokenizer, ex.source), single_token(tokenizer, ex.answer)
            if s is not None and t is not None:
                sources.append(s)
                targets.append(t)
        copying = bool(sources) and sources == targets
        k = self.options["k"] or (COPYING_K if copying else DEFAULT_K)
        return _TaskPairs(sources, targets, k, len(task))

    def blocks_per_task(self) -> int:
        return self.context.layout.n_layers

    def open(self) -> None:
        """Nothing to install: the method only reads weights."""

    def close(self) -> None:
        """Nothing to remove."""

    def meta(self) -> dict[str, Any]:
        names = [task.name for task in self.context.task_list]
        return {
            "method": "projection",
            "units": "fraction of pairs",
            "metric": "relation score" + (" (suppression)" if self.options["suppression"] else ""),
            "ablation": None,
            "k": {n: p.k for n, p in zip(names, self.pairs, strict=True)},
            "pairs": {n: len(p.sources) for n, p in zip(names, self.pairs, strict=True)},
            "dropped": dict(self.dropped),
            **{key: self.options[key] for key in ("suppression", "first_mlp", "min_pairs")},
        }

    def score_task(self, task: int, items: list[Encoded]) -> Iterator[Clean | Block]:
        """Blocks of relation scores for one task (every task is computed on the first call,
        layer by layer, since the weights are shared). No Clean event: nothing runs on prompts,
        so there is no clean metric (``HeadScores.baseline`` stays empty)."""
        if self.scores is None:
            self.scores = self._compute()
        if self.context.task_list[task].name in self.dropped:
            return
        heads = np.arange(self.context.layout.n_heads)
        for layer in range(self.context.layout.n_layers):
            yield Block(task, layer, heads, self.scores[task, layer].copy(), exact=True)

    def _compute(self) -> np.ndarray:
        ctx, opts = self.context, self.options
        double = _param(ctx.model, torch.zeros(1)).dtype == torch.float64
        dtype = torch.float64 if double else torch.float32
        device = ctx.device
        weights = _ModelWeights(ctx.model, ctx.layout.n_heads, ctx.layout.head_dim, dtype)
        if len(weights.layers) != ctx.layout.n_layers:
            raise ValueError("the model's layers do not match its head layout")
        kept = [i for i, t in enumerate(ctx.task_list) if t.name not in self.dropped]
        ids = sorted({s for i in kept for s in self.pairs[i].sources})
        row = {token: r for r, token in enumerate(ids)}
        pair_source, pair_target, cap, owner = [], [], [], []
        for i in kept:
            p = self.pairs[i]
            pair_source += [row[s] for s in p.sources]
            pair_target += p.targets
            cap += [p.k] * len(p.sources)
            owner += [i] * len(p.sources)
        as_long = lambda xs: torch.tensor(xs, dtype=torch.long, device=device)  # noqa: E731
        src, tgt, caps = as_long(pair_source), as_long(pair_target), as_long(cap)
        owner_arr, k_of = np.array(owner), np.array([p.k for p in self.pairs])
        sign = -1.0 if opts["suppression"] else 1.0
        unembed = final_unembedding(ctx.model, dtype, device)
        residuals = weights.residuals(torch.tensor(ids, dtype=torch.long), opts["first_mlp"])
        scores = np.full((len(ctx.task_list), ctx.layout.n_layers, ctx.layout.n_heads), np.nan)
        for layer in range(ctx.layout.n_layers):
            values, w_o = weights.layer(layer, residuals[min(layer, len(residuals) - 1)])
            counts = count_outranking(
                sign * values.to(device), w_o.to(device), unembed, src, tgt, caps,
                opts["chunk_size"],
            ).cpu().numpy()  # fmt: skip
            hits = counts < k_of[owner_arr][None, :]
            for i in kept:
                scores[i, layer] = hits[:, owner_arr == i].mean(axis=1)
        return scores


METHOD = ProjectionMethod
