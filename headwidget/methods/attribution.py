"""Attribution patching: every head's importance from gradients, a few passes for all heads.

A head's importance is ``metric(clean) - metric(head ablated)``. To first order that is
``(a_clean - a_ablated) . dmetric/da`` with ``a`` the head's slice of its layer's attention
output projection input, summed over positions and averaged over examples (Nanda 2022; AtP*,
Kramár et al. 2024). One forward and one backward pass per batch give it for every head.

First order misses large, nonlinear effects; on SmolLM2-135M three kinds, each with its fix:

- Confident answers: the log-softmax is flat where the answer's probability is near 1, so a
  head that lowers the answer's logit by several units looks harmless. ``competitors=C``
  (default 1) estimates, per example and head, the answer's logit and its ``C`` strongest
  rivals to first order and passes them through the exact log-softmax
  (:mod:`headwidget.methods.output_softmax`); ``C + 1`` more backward passes per answer token.
- The first layers: every later layer reads them, and ablating one of their heads changes the
  input of every later head at once (on the real model some rank 260th of 270 by first order
  with the wrong sign, though in the exact top 10). ``exact_layers=N`` (default 1) scores every
  head of the first ``N`` layers exactly, with the ablation engine.
- Attention-sink heads: ``screen=S`` (default 0) finds the heads whose ablation at the first
  position derails the first-token attention sink (the first position sees only itself: one
  forward of one-token sequences, a copy per head, see
  :mod:`headwidget.methods.sink_screen`) and scores the ``S`` most disruptive of the
  rest exactly.

``steps > 1`` averages the gradient over points between the clean and the ablated run, as
integrated gradients do (EAP-IG, Hanna et al. 2024): at step ``i`` every head's activation is
moved the fraction ``i / steps`` of the way to its ablated value, all heads together; ``steps``
forward + backward passes per batch. (Measured on the real model it agrees less with exact
ablation than ``steps=1``: moving every head at once is far from ablating one; see the README.)

``refine=K`` then scores exactly, with the ablation engine restricted to those heads, ``K``
heads per task apart from those already exact: the ``K - S`` that attribution ranks highest
(signed, as ``HeadScores.top_heads`` ranks) and the ``S = refine_sensitive`` (default
``K // 10``) with the largest first-order bound, ``|a_clean - a_ablated| * |dmetric/da|`` summed
over positions, among the others (heads whose first-order terms cancel; see
:mod:`headwidget.methods.refinement`); plus a random sample of ``refine_random`` others (default
``K // 2``, seeded by ``seed`` and the task's name). Their exact values replace the approximations
(``HeadScores.exact`` marks them) and ``meta["agreement"]`` records, per task, the Spearman
correlation of attribution and exact over the exact cells and the fraction of the random sample
that beat the K-th refined head (an estimate of how many true top heads the approximation
missed). Blocks stream in that order: every layer approximate, then exact cells.

No gradient reaches the weights: ``requires_grad`` is off on every parameter during the passes
(restored after), and only the hooks' zero-valued probes are leaves. Sums are float32 whatever
the model's dtype.

>>> scores = score_heads(model, tok, tasks, method="attribution", refine=20)  # doctest: +SKIP
>>> scores.exact.sum(axis=(1, 2))   # layer 0's heads + 20 + 10 random a task  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch

from ..modeling.batching import backward_sequences
from ..modeling.hooks import (
    Form,
    add_head_sums,
    head_means,
    hooks,
    mean_head_outputs,
    metric_of_logits,
    run_to_last_layer,
    scored_logits,
)
from ..modeling.inputs import Batch, Encoded, make_batches, model_dtype
from ..modeling.session import frozen_parameters
from .ablation import DEFAULT_REPLAY, AblationMethod, check_replay
from .base import Block, Clean, ScoringContext, is_whole
from .output_softmax import CORRECTED_METRICS, softmax_correction
from .refinement import agreement, pick_refined, random_sample, ranking
from .sink_screen import first_position_screen

__all__ = [
    "DEFAULT_COMPETITORS",
    "DEFAULT_EXACT_LAYERS",
    "DEFAULT_SCREEN",
    "DEFAULT_STEPS",
    "METHOD",
    "AttributionMethod",
]

DEFAULT_STEPS = 1
DEFAULT_SCREEN = 0
DEFAULT_COMPETITORS = 1
DEFAULT_EXACT_LAYERS = 1


class _Probe:
    """ADD (a ``heads=`` strategy) for one gradient pass: keep each out_proj input, move every
    head ``alpha`` of the way to its ablated value and add a zero probe (a leaf) whose gradient
    is the metric's gradient there."""

    form: ClassVar[Form] = "heads"

    def __init__(self, n_layers: int, fills: list[torch.Tensor] | None, alpha: float) -> None:
        self.fills = fills  # per layer [n_heads, head_dim] (mean), None: zeros
        self.alpha = alpha
        self.probes: list[torch.Tensor | None] = [None] * n_layers  # [B, T, n_heads, head_dim]
        self.inputs: list[torch.Tensor | None] = [None] * n_layers  # detached, the same

    def __call__(self, layer: int, heads: torch.Tensor) -> torch.Tensor:
        self.inputs[layer] = heads.detach()  # [B, T, n_heads, head_dim]
        if self.alpha:
            if self.fills is None:
                heads = heads * (1 - self.alpha)
            else:
                fill = self.fills[layer].to(device=heads.device, dtype=heads.dtype)
                heads = heads + self.alpha * (fill - heads)
        probe = torch.zeros_like(heads, requires_grad=True)
        self.probes[layer] = probe
        return heads + probe


def _changes(acts: list[torch.Tensor], fills: list[torch.Tensor] | None) -> list[torch.Tensor]:
    """Each layer's ``a - a_ablated`` in float32 (``fills``: the ablated values, None: zeros)."""
    out = []
    for i, a in enumerate(acts):
        fill = 0.0 if fills is None else fills[i].float().to(a.device)
        out.append(a.float() - fill)
    return out


class AttributionMethod:
    """Attribution patching (optionally integrated over ``steps``), optionally refined."""

    name: ClassVar[str] = "attribution"

    @classmethod
    def check_options(
        cls,
        steps: int = DEFAULT_STEPS,
        refine: int = 0,
        refine_random: int | None = None,
        refine_sensitive: int | None = None,
        seed: int = 0,
        screen: int = DEFAULT_SCREEN,
        competitors: int = DEFAULT_COMPETITORS,
        exact_layers: int = DEFAULT_EXACT_LAYERS,
        replay: str = DEFAULT_REPLAY,
    ) -> dict[str, Any]:
        if not is_whole(steps) or steps < 1:
            raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
        if not is_whole(refine) or refine < 0:
            raise ValueError(
                f"refine must be a whole number >= 0 (heads per task scored exactly), got"
                f" {refine!r}"
            )
        if refine_random is None:
            refine_random = refine // 2
        if not is_whole(refine_random) or refine_random < 0:
            raise ValueError(
                f"refine_random must be a whole number >= 0 or None (refine // 2), got"
                f" {refine_random!r}"
            )
        if refine_sensitive is None:
            refine_sensitive = refine // 10
        if not is_whole(refine_sensitive) or not 0 <= refine_sensitive <= refine:
            raise ValueError(
                f"refine_sensitive must be a whole number from 0 to refine ({refine!r}) or None"
                f" (refine // 10): how many of the refined heads are picked by the first-order"
                f" bound instead of signed attribution; got {refine_sensitive!r}"
            )
        if not is_whole(seed):
            raise ValueError(f"seed must be a whole number, got {seed!r}")
        if not is_whole(screen) or screen < 0:
            raise ValueError(
                f"screen must be a whole number >= 0 (heads per task the first-position screen"
                f" sends to exact scoring), got {screen!r}"
            )
        if not is_whole(competitors) or competitors < 0:
            raise ValueError(
                f"competitors must be a whole number >= 0 (rival logits the output correction"
                f" estimates; 0 turns it off), got {competitors!r}"
            )
        if not is_whole(exact_layers) or exact_layers < 0:
            raise ValueError(
                f"exact_layers must be a whole number >= 0 (the first layers, all of whose heads"
                f" are scored exactly), got {exact_layers!r}"
            )
        return {  # plain ints (a NumPy integer is accepted, and meta is JSON)
            "competitors": int(competitors),
            "exact_layers": int(exact_layers),
            "steps": int(steps),
            "refine": int(refine),
            "refine_random": int(refine_random),
            "refine_sensitive": int(refine_sensitive),
            "seed": int(seed),
            "screen": int(screen),
            "replay": check_replay(replay),
        }

    def __init__(self, context: ScoringContext, **options: Any) -> None:
        checked = self.check_options(**options)
        self.context = context
        self.layout = context.layout
        self.steps: int = checked["steps"]
        self.refine: int = checked["refine"]
        self.refine_random: int = checked["refine_random"]
        self.refine_sensitive: int = checked["refine_sensitive"] if self.refine else 0
        self.seed: int = checked["seed"]
        self.screen: int = checked["screen"]
        self.competitors: int = checked["competitors"]
        self.exact_layers: int = min(checked["exact_layers"], self.layout.n_layers)
        # the output correction applies to the log-softmax metrics only (logit_diff is linear)
        self.corrects = bool(self.competitors) and context.metric in CORRECTED_METRICS
        self.exact = AblationMethod(context, replay=checked["replay"])
        self.agreement: dict[str, dict[str, float]] = {}

    def blocks_per_task(self) -> int:
        return self.layout.n_layers * (2 if self._refines() else 1)

    def _refines(self) -> bool:
        """Whether any head is scored exactly after the attribution pass."""
        return bool(self.refine or self.screen or self.exact_layers)

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "steps": self.steps,
            "screen": self.screen,
            "exact_layers": self.exact_layers,
            "competitors": self.competitors if self.corrects else 0,
            "replay": self.exact.meta()["replay"],
        }
        if self.refine:
            out.update(
                refine=self.refine,
                refine_random=self.refine_random,
                refine_sensitive=self.refine_sensitive,
                seed=self.seed,
            )
        if self.agreement:
            out["agreement"] = dict(self.agreement)
        return out

    def open(self) -> None:
        if self._refines():
            self.exact.open()

    def close(self) -> None:
        self.exact.close()

    # -- attribution ---------------------------------------------------------------------------

    def _per_batch(self, items: list[Encoded]) -> int:
        ctx = self.context
        if ctx.batch_size is not None:
            return ctx.batch_size
        dtype_bytes = torch.finfo(model_dtype(ctx.model)).bits // 8
        return backward_sequences(
            ctx.model, self.layout, ctx.device, items, ctx.metric, extra_bytes=dtype_bytes
        )

    def _means(self, batches: list[Batch]) -> list[torch.Tensor]:
        """Every head's mean output over the task (mean ablation's fill), one forward a batch."""
        return mean_head_outputs(self.context.model, self.layout, batches)

    def _gradient_pass(
        self, batch: Batch, fills: list[torch.Tensor] | None, alpha: float, correct: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor | None]:
        """Metric per example [B]; per layer the activations and the metric's gradient at the
        out_proj inputs (both detached, ``[B, T, n_heads, head_dim]``), at ``alpha``; and, if
        ``correct``, the output correction per example ``[B, n_layers, n_heads]`` (``fills``:
        the ablated values, None for zeros; see :mod:`headwidget.methods.output_softmax`)."""
        lay, ctx = self.layout, self.context
        probes = _Probe(lay.n_layers, fills, alpha)
        shape = (batch.size, -1, lay.n_heads, lay.head_dim)
        with torch.enable_grad():
            with hooks(lay, heads=probes):  # the forward only: the backward needs no hooks
                last = run_to_last_layer(ctx.model, lay, batch)
            if last is None:
                raise RuntimeError(
                    "the model's forward pass did not call its last decoder layer; the"
                    " HeadLayout's layers must be the modules the model runs, in order"
                )
            logits = scored_logits(lay, last, batch, n_copies=1)
            metric = metric_of_logits(ctx.metric, logits, batch)[0]
            leaves = [p for p in probes.probes if p is not None]
            if len(leaves) != lay.n_layers:
                missing = [i for i, p in enumerate(probes.probes) if p is None]
                raise RuntimeError(
                    f"the attention output projection of layer(s) {missing} was never"
                    " called; the HeadLayout's out_proj must be the modules the model runs"
                )
            grads = torch.autograd.grad(
                metric.sum(), leaves, allow_unused=True, retain_graph=correct
            )
            acts = [x.reshape(shape) for x in probes.inputs]  # type: ignore[union-attr]
            correction = None
            if correct:
                correction = softmax_correction(
                    logits[0], batch, leaves, _changes(acts, fills), ctx.metric, self.competitors
                )
        out = [
            torch.zeros_like(a) if g is None else g.reshape(shape)
            for a, g in zip(acts, grads, strict=True)
        ]
        return metric.detach(), acts, out, correction

    def attribute(
        self, items: list[Encoded]
    ) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor] | None, list[Batch]]:
        """Clean metric per example (``items``' order), attribution ``[n_layers, n_heads]``,
        the heads' mean outputs (mean ablation; None for zero) and the batches."""
        ctx, lay = self.context, self.layout
        order, batches = make_batches(
            items, ctx.metric, ctx.pad_id, lay.n_heads, ctx.device, self._per_batch(items)
        )
        mean = ctx.ablation == "mean"
        bounds = bool(self.refine_sensitive)  # refinement picks some heads by the bound
        # the ablated values up front when a pass needs them (mean ablation only)
        upfront = mean and (self.steps > 1 or self.corrects or bounds)
        fills = self._means(batches) if upfront else None
        # float32 sums per layer: sum of a.g per head [n_heads], of g per head [n_heads, d]
        dot = torch.zeros(lay.n_layers, lay.n_heads, dtype=torch.float32)
        grad_sum = torch.zeros(lay.n_layers, lay.n_heads, lay.head_dim, dtype=torch.float32)
        corrected = torch.zeros(lay.n_layers, lay.n_heads, dtype=torch.float64)
        bound = torch.zeros(lay.n_layers, lay.n_heads, dtype=torch.float64)  # sum |da| |g|
        head_sums: list[torch.Tensor | None] = [None] * lay.n_layers
        counts = [0] * lay.n_layers
        clean_parts = []
        # per example (when kept): a.g per head [n_layers, B, n_heads] and, for mean ablation,
        # g summed over positions [n_layers, B, n_heads, d], one of each per batch
        keep = ctx.per_example
        dot_parts: list[torch.Tensor] = []
        grad_parts: list[torch.Tensor] = []
        correction_parts: list[torch.Tensor] = []  # [B, n_layers, n_heads] a batch
        with frozen_parameters(ctx.model):
            for batch in batches:
                clean_acts: list[torch.Tensor] = []
                changes: list[torch.Tensor] = []
                for step in range(self.steps):
                    alpha = step / self.steps
                    first = step == 0
                    metric, acts, grads, correction = self._gradient_pass(
                        batch, fills, alpha, correct=first and self.corrects
                    )
                    if correction is not None:
                        corrected += correction.sum(0)
                        if keep:
                            correction_parts.append(correction)
                    if first:
                        clean_parts.append(metric.double().cpu())
                        clean_acts = acts
                        if bounds:  # |a - a_ablated| per position [B, T, n_heads], each layer
                            changes = [d.norm(dim=-1) for d in _changes(acts, fills)]
                        if mean and fills is None:  # the means, from the clean pass
                            mask = batch.attention_mask.reshape(-1).bool()
                            for i, a in enumerate(acts):
                                add_head_sums(a.flatten(2), mask, head_sums, counts, i)
                    if keep and step == 0:
                        dot_parts.append(torch.zeros(lay.n_layers, batch.size, lay.n_heads))
                        if mean:
                            grad_parts.append(
                                torch.zeros(lay.n_layers, batch.size, lay.n_heads, lay.head_dim)
                            )
                    for i, (a, g) in enumerate(zip(clean_acts, grads, strict=True)):
                        g32 = g.float()
                        each = (a.float() * g32).sum(dim=(1, 3)).cpu()  # [B, n_heads]
                        dot[i] += each.sum(0)
                        grad_sum[i] += g32.sum(dim=(0, 1)).cpu()
                        if bounds:  # per position |a - a_ablated| |g|, summed
                            size = changes[i] * g32.norm(dim=-1)
                            bound[i] += size.sum(dim=(0, 1)).double().cpu()
                        if keep:
                            dot_parts[-1][i] += each
                            if mean:
                                grad_parts[-1][i] += g32.sum(dim=1).cpu()
        means = None
        if mean:
            means = (
                fills
                if fills is not None
                else head_means(head_sums, counts, lay.n_heads, lay.head_dim)
            )
            fill_dot = torch.stack(
                [(m.float().cpu() * grad_sum[i]).sum(-1) for i, m in enumerate(means)]
            )
        else:
            fill_dot = torch.zeros_like(dot)
        # importance ~ (a_clean - a_ablated) . mean gradient, averaged over examples
        values = (dot - fill_dot) / (self.steps * len(items)) + corrected / len(items)
        clean = np.empty(len(items))
        clean[order] = torch.cat(clean_parts).numpy()
        self.bound = (bound / (self.steps * len(items))).numpy() if bounds else None
        self.per_example = None
        if keep:
            each = torch.cat(dot_parts, dim=1)  # [n_layers, n_examples (sorted), n_heads]
            if mean:
                grads = torch.cat(grad_parts, dim=1)
                each = each - torch.stack(
                    [(grads[i] * means[i].float().cpu()).sum(-1) for i in range(lay.n_layers)]
                )
            per_example = np.empty((lay.n_layers, lay.n_heads, len(items)), np.float64)
            each = each.permute(0, 2, 1).double() / self.steps  # [n_layers, n_heads, n_examples]
            if correction_parts:
                each = each + torch.cat(correction_parts).permute(1, 2, 0)
            per_example[:, :, order] = each.numpy()
            self.per_example = per_example
        return clean, values.numpy().astype(np.float32), means, batches

    # -- the method ----------------------------------------------------------------------------

    def score_task(self, task: int, items: list[Encoded]) -> Iterator[Clean | Block]:
        clean, approx, means, batches = self.attribute(items)
        yield Clean(task, clean)
        lay = self.layout
        heads = np.arange(lay.n_heads)
        for layer in range(lay.n_layers):
            each = None if self.per_example is None else self.per_example[layer]
            yield Block(task, layer, heads, approx[layer].copy(), exact=False, per_example=each)
        if not self._refines():
            return
        flat = approx.reshape(-1)
        # exact whatever attribution says: every head of the first layers, then the screen's
        screened = np.arange(self.exact_layers * lay.n_heads, dtype=np.int64)
        if self.screen:
            change = first_position_screen(self.context, batches, means).reshape(-1)
            change[screened] = -np.inf
            found = np.argsort(-change, kind="mergesort")[: self.screen]
            screened = np.concatenate([screened, found])
        # refinement: K heads by signed attribution and the first-order bound, apart from those
        # already exact, and a seeded random sample of the others
        top = pick_refined(flat, self.bound, screened, self.refine, self.refine_sensitive)
        taken = set(np.concatenate([screened, top]).tolist())
        rest = np.asarray([i for i in ranking(flat) if i not in taken], dtype=np.int64)
        sample = random_sample(rest, self.refine_random, self.seed, self.context.tasks[task])
        chosen: dict[int, list[int]] = {}
        for index in (*screened.tolist(), *top.tolist(), *sample.tolist()):
            chosen.setdefault(int(index) // lay.n_heads, []).append(int(index) % lay.n_heads)
        exact = np.full(flat.shape, np.nan, dtype=np.float64)
        emitted = set()
        for event in self.exact.score_task(task, items, heads=chosen):
            if isinstance(event, Block):
                exact[event.layer * lay.n_heads + event.heads] = event.values
                emitted.add(event.layer)
                yield event
        for layer in range(lay.n_layers):  # one block per layer, for progress
            if layer not in emitted:
                yield Block(task, layer, np.zeros(0, np.int64), np.zeros(0, np.float32), True)
        scored = np.concatenate([screened, top, sample])
        name = self.context.tasks[task]
        self.agreement[name] = agreement(flat, exact, scored, top, sample)


METHOD = AttributionMethod
