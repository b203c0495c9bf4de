"""``trace_paths``: how a task's important heads work together, as exact paths between them.

For each task, take its important heads (given, or the ``top`` of a :class:`HeadScores`), and
for every sender and every receiver in a later layer among them measure how much of the task
goes through the sender's output reaching the receiver's query, key or value directly (and
from each head to the logits): :mod:`headwidget.methods.paths` (exact, the default) or
:mod:`headwidget.methods.path_attribution` (first order, every edge from one backward pass,
``refine=K`` edges then exactly).

>>> scores = load_demo_scores("operations")                             # doctest: +SKIP
>>> paths = trace_paths(model, tokenizer, tasks, scores=scores, top=10)  # doctest: +SKIP
>>> paths.top_edges("next year", 3)                                      # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..methods.base import ScoringContext, is_whole
from ..methods.options import ABLATIONS, check_metric
from ..methods.path_attribution import PathAttribution
from ..methods.path_edges import VIA, Edge, edges_among
from ..methods.paths import ExactPaths
from ..methods.refinement import agreement, random_sample
from ..modeling.adapters import HeadLayout, resolve_layout
from ..modeling.channels import ChannelLayout, resolve_channels
from ..modeling.inputs import check_token_ids, context_limit, encode_task, pad_id
from ..modeling.provenance import model_provenance
from ..modeling.session import model_session
from ..scores import HeadPaths, HeadScores
from ..tasks import Task, as_task_list
from .driver import resolve_device

__all__ = ["PATH_METHODS", "trace_paths"]

PATH_METHODS: tuple[str, ...] = ("exact", "attribution")

HeadList = Sequence[tuple[int, int]]


def _check_via(via: Sequence[str]) -> tuple[str, ...]:
    chosen = [via] if isinstance(via, str) else list(via)
    if not chosen or any(c not in VIA for c in chosen) or len(set(chosen)) != len(chosen):
        raise ValueError(f"via must be some of {VIA}, each once, got {via!r}")
    return tuple(c for c in VIA if c in chosen)


def _check_options(
    via: Sequence[str], ablation: str, metric: str, method: str, refine: int, batch_size: Any
) -> tuple[str, ...]:
    """Every option of :func:`trace_paths` checked; ``via`` in its canonical order."""
    via = _check_via(via)
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}")
    check_metric(metric)
    if method not in PATH_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(PATH_METHODS)}")
    if not is_whole(refine) or refine < 0 or (refine and method != "attribution"):
        raise ValueError(
            f"refine must be a whole number >= 0, with method='attribution' only; got {refine!r}"
        )
    if method == "attribution" and metric == "accuracy":
        raise ValueError(
            "method='attribution' needs a differentiable metric; accuracy has no gradient"
            " (use metric='logprob', 'prob' or 'logit_diff', or method='exact')"
        )
    if batch_size is not None and (not is_whole(batch_size) or batch_size < 1):
        raise ValueError(f"batch_size must be a whole number >= 1 or None, got {batch_size!r}")
    return via


def _check_heads(heads: Any, n_layers: int, n_heads: int) -> list[tuple[int, int]]:
    bad = ValueError(f"heads must be a list of (layer, head) pairs, e.g. [(16, 0), (18, 6)], got"
                     f" {str(heads)[:80]}")  # fmt: skip
    if isinstance(heads, (str, bytes)):
        raise bad
    try:
        pairs = [tuple(pair) for pair in heads]
    except TypeError:
        raise bad from None
    if not all(len(p) == 2 and all(is_whole(v) for v in p) for p in pairs):
        raise bad
    chosen = [(int(layer), int(head)) for layer, head in pairs]
    outside = [p for p in chosen if not (0 <= p[0] < n_layers and 0 <= p[1] < n_heads)]
    if outside:
        raise ValueError(f"heads {outside} are outside the model's {n_layers} layers x {n_heads}"
                         " heads (numbered from 0)")  # fmt: skip
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"heads must not repeat a head, got {chosen}")
    return chosen


def _heads_of(
    tasks: list[Task], heads: Any, scores: HeadScores | None, top: int, shape: tuple[int, int]
) -> dict[str, list[tuple[int, int]]]:
    """Each task's heads: ``heads`` for all of them, else its ``top`` heads in ``scores``."""
    if heads is not None:
        chosen = _check_heads(heads, *shape)
        return {t.name: chosen for t in tasks}
    if not isinstance(scores, HeadScores):
        raise TypeError("give heads=[(layer, head), ...] or scores=HeadScores to pick them from")
    if not is_whole(top) or top < 1:
        raise ValueError(f"top must be a whole number >= 1, got {top!r}")
    if tuple(scores.shape[1:]) != shape:
        raise ValueError(
            f"the scores have {scores.n_layers} layers x {scores.n_heads} heads but the model"
            f" {shape[0]} x {shape[1]}: not scores of this model"
        )
    missing = [t.name for t in tasks if t.name not in scores.tasks]
    if missing:
        raise ValueError(f"task(s) {missing} are not in the scores (they have {scores.tasks})")
    return {
        t.name: [(layer, head) for layer, head, _ in scores.top_heads(t.name, int(top))]
        for t in tasks
    }


def trace_paths(
    model: nn.Module,
    tokenizer: Any,
    tasks: Task | Sequence[Task],
    *,
    heads: HeadList | None = None,
    top: int = 10,
    scores: HeadScores | None = None,
    via: Sequence[str] = VIA,
    ablation: str = "mean",
    metric: str = "logprob",
    method: str = "exact",
    batch_size: int | None = None,
    progress: bool = True,
    refine: int = 0,
    seed: int = 0,
    device: str | torch.device | None = None,
    head_layout: HeadLayout | None = None,
    channel_layout: ChannelLayout | None = None,
) -> HeadPaths:
    """Direct paths among each task's important heads: every sender into every receiver of a
    later layer through its query, key or value, and every head into the logits.

    ``effect(s -> r via c)`` is the mean over the task's examples of ``metric(clean) -
    metric(patched)``, where only receiver ``r``'s ``c`` input (what its query, key or value
    is computed from, at every position, through ``r``'s layer's norm) reads the residual
    stream without ``s``'s own contribution (its output through the output projection, at its
    mean with ``ablation="mean"``, removed with ``"zero"``); every other head, the rest of
    ``r``'s key/value group included, sees the clean stream. ``via="logits"``: only the final
    norm's input is patched (the direct path). A path through heads or MLPs between ``s`` and
    ``r`` is not in the edge: it is what the sender does *directly*.

    Args:
        model, tokenizer, tasks: as for :func:`~headwidget.score_heads`.
        heads: the heads (``[(layer, head), ...]``) for every task; else ``scores``'s
            ``top`` heads of each task (``scores``: a :class:`~headwidget.HeadScores` of this
            model holding the tasks).
        via: the channels, some of ``("q", "k", "v", "logits")``.
        ablation, metric, batch_size, device, head_layout: as for ``score_heads``.
        method: ``"exact"`` (the replay engine, :mod:`headwidget.methods.paths`) or
            ``"attribution"`` (first order from one backward pass per batch,
            :mod:`headwidget.methods.path_attribution`); ``refine=K`` then computes the ``K``
            strongest estimated edges exactly, and a seeded (``seed``) random sample of
            ``K // 2`` others, recording the agreement in ``meta["agreement"]``.
        channel_layout: where the query, key and value are, for a model the architecture
            registry does not describe (:class:`~headwidget.modeling.channels.ChannelLayout`).
        progress: a progress bar over edges.

    Returns:
        :class:`~headwidget.HeadPaths`, with each example's effect and the clean metric.

    Raises:
        UnreachableChannelsError: the model's query/key/value inputs cannot be reached (it
            names the architecture); ValueError for bad options, before any forward pass.

    >>> paths = trace_paths(model, tokenizer, task, heads=[(2, 1), (18, 6)])  # doctest: +SKIP
    >>> paths.to_pandas().sort_values("effect").tail(3)                       # doctest: +SKIP
    """
    started = time.perf_counter()
    via = _check_options(via, ablation, metric, method, refine, batch_size)
    task_list = as_task_list(tasks)
    layout = resolve_layout(model, head_layout)
    channels = resolve_channels(model, layout, channel_layout)
    target = resolve_device(model, device)
    chosen = _heads_of(task_list, heads, scores, top, (layout.n_layers, layout.n_heads))
    limit = context_limit(model)
    encoded = [encode_task(t, tokenizer, metric, limit) for t in task_list]
    for task, items in zip(task_list, encoded, strict=True):
        check_token_ids(items, task, tokenizer, model)
    names = [t.name for t in task_list]
    context = ScoringContext(model, layout, metric, ablation, target, batch_size,
                             pad_id(tokenizer, model), names, tokenizer=tokenizer,
                             task_list=task_list)  # fmt: skip
    edges = {name: edges_among(chosen[name], via) for name in names}
    meta = {**model_provenance(model, layout, target), "ablation": ablation, "metric": metric,
            "via": list(via), "heads_from": "given" if heads is not None else f"scores top {top}",
            "examples": {t.name: len(t) for t in task_list}}  # fmt: skip
    from tqdm.auto import tqdm

    total = sum(len(e) for e in edges.values()) + (refine * len(names) * 3 // 2)
    bar = tqdm(total=total, disable=not progress, desc="trace_paths", unit="edge")
    results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    agreements: dict[str, dict[str, float]] = {}
    try:
        with model_session(model, "trace_paths"):
            for name, items in zip(names, encoded, strict=True):
                bar.set_postfix_str(name, refresh=False)
                task_edges = edges[name]
                if not task_edges:  # one head and no logits: nothing to run
                    continue
                if method == "exact":
                    clean, each = ExactPaths(context, channels).run(items, task_edges, bar.update)
                    results[name] = (clean, each, np.ones(len(task_edges), bool))
                    continue
                clean, each = PathAttribution(context, channels).run(items, task_edges)
                bar.update(len(task_edges))
                exact = np.zeros(len(task_edges), bool)
                if refine:
                    each, exact, agreements[name] = _refine(
                        ExactPaths(context, channels), items, task_edges, each, refine, seed,
                        name, bar.update,
                    )  # fmt: skip
                results[name] = (clean, each, exact)
    finally:
        bar.close()
    if method == "attribution":
        meta.update(refine=int(refine), seed=int(seed))
        if agreements:
            meta["agreement"] = agreements
    meta["seconds"] = time.perf_counter() - started
    return _assemble(names, layout, chosen, edges, results, method, meta)


def _refine(
    engine: ExactPaths, items: list[Any], edges: list[Edge], estimates: np.ndarray, k: int,
    seed: int, task: str, update: Any,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:  # fmt: skip
    """The ``k`` edges of largest ``|estimate|`` and a random ``k // 2`` of the others,
    computed exactly; their per-example effects replace the estimates."""
    approx = estimates.mean(axis=1)
    ranked = np.argsort(-np.nan_to_num(np.abs(approx), nan=-np.inf), kind="stable")
    top = ranked[:k]
    sample = random_sample(ranked[k:], k // 2, seed, task)
    scored = np.concatenate([top, sample]).astype(np.int64)
    _, exact_each = engine.run(items, [edges[i] for i in scored], update)
    each = estimates.copy()
    each[scored] = exact_each
    exact_mean = np.full(len(edges), np.nan)
    exact_mean[scored] = exact_each.mean(axis=1)
    mask = np.zeros(len(edges), bool)
    mask[scored] = True
    return each, mask, agreement(approx, exact_mean, scored, top, sample)


def _assemble(
    names: list[str], layout: Any, chosen: dict[str, list[tuple[int, int]]],
    edges: dict[str, list[Edge]], results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    method: str, meta: dict[str, Any],
) -> HeadPaths:  # fmt: skip
    rows, effect, exact = [], [], []
    effects, clean, baseline = {}, {}, {}
    for t, name in enumerate(names):
        if name not in results:
            continue
        task_clean, each, mask = results[name]
        for edge in edges[name]:
            receiver = edge.receiver or (-1, -1)
            rows.append([t, *edge.sender, *receiver, VIA.index(edge.via)])
        effect.append(each.mean(axis=1))
        exact.append(mask)
        effects[name] = each.astype(np.float32)
        clean[name] = task_clean
        baseline[name] = float(task_clean.mean()) if task_clean.size else math.nan
    return HeadPaths(
        names, layout.n_layers, layout.n_heads,
        heads={name: np.asarray(chosen[name], np.int32).reshape(-1, 2) for name in names},
        edges=np.asarray(rows, np.int32).reshape(-1, 6),
        effect=np.concatenate(effect) if effect else np.zeros(0),
        exact=np.concatenate(exact) if exact else None,
        effects=effects, clean=clean, baseline=baseline, method=method, meta=meta,
    )  # fmt: skip
