"""Do the top-scored heads matter? Ablate them together and compare with random heads.

Single-head scores can mislead (heads back each other up, or only matter together), so the
check is causal: for each task and each ``k``, ablate the task's ``k`` top-scored heads *at
once* and measure the task's metric; then do the same for ``n_random`` sets of ``k`` heads drawn
uniformly from all heads. Top-k ablation should hurt more than random-k ablation.

Cost per task: ``1 + len(k) * (1 + n_random)`` forward passes over the task's examples.

>>> scores = score_heads(model, tokenizer, tasks)                     # doctest: +SKIP
>>> check = scores.validate(model, tokenizer, tasks, k=(5, 10, 20))   # doctest: +SKIP
>>> check.summary()          # mean over tasks: clean, top-k and random-k accuracy  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..durations import format_seconds
from ..modeling.adapters import HeadLayout, resolve_layout
from ..modeling.evaluate import batch_metric, clean_metrics, task_batches
from ..modeling.hooks import Ablate, HeadSums, Strategy, hooks
from ..modeling.session import model_session
from ..scores import HeadScores
from ..tasks import Task, as_task_list
from .base import is_whole
from .options import ABLATIONS, check_metric

if TYPE_CHECKING:
    import pandas

__all__ = ["ValidationResult", "evaluate_tasks", "validate_scores"]


@dataclass
class ValidationResult:
    """Task metric with the top-k heads ablated together vs. ``n_random`` random sets of k.

    ``clean[task]`` is the metric with nothing ablated, ``top[task][k]`` with the task's k
    top-scored heads ablated, and ``random[task][k]`` the metric for each random draw (a list of
    ``n_random`` values). ``heads[task][k]`` lists the ablated ``(layer, head)`` pairs.
    """

    metric: str
    ablation: str
    k: tuple[int, ...]
    n_random: int
    clean: dict[str, float]
    top: dict[str, dict[int, float]]
    random: dict[str, dict[int, list[float]]]
    heads: dict[str, dict[int, list[tuple[int, int]]]] = field(repr=False)

    @property
    def tasks(self) -> list[str]:
        return list(self.clean)

    def random_mean(self, task: str, k: int) -> float:
        return float(np.mean(self.random[task][k]))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (task, k): ``task, k, clean, top_k, random_k, random_k_std``."""
        return [
            {
                "task": task,
                "k": k,
                "clean": self.clean[task],
                "top_k": self.top[task][k],
                "random_k": self.random_mean(task, k),
                "random_k_std": float(np.std(self.random[task][k])),
            }
            for task in self.tasks
            for k in self.k
        ]

    def summary(self) -> dict[int, dict[str, float]]:
        """Mean over tasks, per k: ``{k: {"clean", "top_k", "random_k", "tasks_hurt_more"}}``.

        ``tasks_hurt_more`` is the fraction of tasks where top-k ablation left a lower metric
        than the mean random-k ablation.
        """
        out = {}
        for k in self.k:
            top = np.array([self.top[t][k] for t in self.tasks])
            rand = np.array([self.random_mean(t, k) for t in self.tasks])
            out[k] = {
                "clean": float(np.mean([self.clean[t] for t in self.tasks])),
                "top_k": float(top.mean()),
                "random_k": float(rand.mean()),
                "tasks_hurt_more": float((top < rand).mean()),
            }
        return out

    def to_pandas(self) -> pandas.DataFrame:
        """:meth:`rows` as a DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_markdown(self) -> str:
        """A Markdown table: one row per task, clean then top-k / random-k for every k."""
        head = ["task", f"clean {self.metric}"]
        for k in self.k:
            head += [f"top-{k}", f"random-{k}"]
        lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for task in self.tasks:
            cells = [task.replace("|", "\\|"), f"{self.clean[task]:.2f}"]
            for k in self.k:
                cells += [f"{self.top[task][k]:.2f}", f"{self.random_mean(task, k):.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        summary = self.summary()
        cells = ["**mean**", f"**{summary[self.k[0]]['clean']:.2f}**"]
        for k in self.k:
            cells += [f"**{summary[k]['top_k']:.2f}**", f"**{summary[k]['random_k']:.2f}**"]
        lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        parts = [
            f"k={k}: top {s['top_k']:.3f} vs random {s['random_k']:.3f}"
            f" ({s['tasks_hurt_more']:.0%} of tasks hurt more)"
            for k, s in self.summary().items()
        ]
        clean = np.mean(list(self.clean.values()))
        return (
            f"ValidationResult({len(self.tasks)} tasks, {self.metric} clean {clean:.3f}; "
            + "; ".join(parts)
            + ")"
        )


def validate_scores(
    scores: HeadScores,
    model: nn.Module,
    tokenizer: Any,
    tasks: Task | Sequence[Task],
    *,
    k: int | Sequence[int] = (5, 10, 20),
    n_random: int = 10,
    seed: int = 0,
    metric: str = "accuracy",
    ablation: str | None = None,
    batch_size: int = 16,
    head_layout: HeadLayout | None = None,
    progress: Any = True,
    add_bos: bool | None = None,
) -> ValidationResult:
    """Ablate each task's top-k heads together, and k random heads, and measure the task.

    Args:
        scores: the head scores to check (from :func:`~headwidget.score_heads`).
        model, tokenizer: the model they were computed on (same layers and heads).
        tasks: the tasks to measure on; every name must be in ``scores.tasks``. The examples
            used for scoring work; held-out examples of the same task make a stricter check.
        k: how many heads to ablate together (one value or several).
        n_random: random draws of k heads per (task, k), uniform over all heads.
        seed: seeds the random draws.
        metric: ``"accuracy"`` (default), ``"logprob"``, ``"prob"`` or ``"logit_diff"``.
        ablation: ``"mean"`` or ``"zero"``; default: the ablation the scores were made with.
        batch_size: examples per forward pass.
        head_layout: as for :func:`~headwidget.score_heads`.
        add_bos: as for :func:`~headwidget.score_heads` (True: a BOS token first, False:
            none); default: as the scores were made (``meta["add_bos"]``, else the tokenizer's
            tokens, with its warning when it drops a BOS the model needs).
        progress: ``True`` (default) shows a tqdm bar over the measurements (one per clean,
            top-k and random-k set: ``len(tasks) * (1 + len(k) * (1 + n_random))``), ``False``
            none; a :class:`~headwidget.HeadImportanceGrid` also shows it on the grid's
            progress line, which says "validation done in …" at the end (see
            ``grid.validate``).

    >>> check = validate_scores(scores, model, tokenizer, tasks, k=5)   # doctest: +SKIP
    >>> check.top["copying"][5], check.random_mean("copying", 5)         # doctest: +SKIP
    """
    check_metric(metric)
    if ablation is None:
        ablation = str(scores.meta.get("ablation", "mean"))
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; choose one of {', '.join(ABLATIONS)}")
    if add_bos is None and isinstance(scores.meta.get("add_bos"), bool):
        add_bos = scores.meta["add_bos"]
    if add_bos is not None and not isinstance(add_bos, bool):
        raise TypeError(f"add_bos must be True, False or None, got {add_bos!r}")
    ks = (k,) if is_whole(k) else tuple(k)
    total_heads = scores.n_layers * scores.n_heads
    if not ks or any(not is_whole(v) or not 1 <= v <= total_heads for v in ks):
        raise ValueError(
            f"k must be a whole number (or several) from 1 to the {total_heads} heads the scores"
            f" have, got {k!r}"
        )
    if not is_whole(n_random) or n_random < 1:
        raise ValueError(f"n_random must be a positive whole number, got {n_random!r}")
    if not is_whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}")
    task_list = as_task_list(tasks)
    unknown = [t.name for t in task_list if t.name not in scores.tasks]
    if unknown:
        raise ValueError(
            f"the scores have no task(s) {unknown}; they have {scores.tasks}. Validate with the"
            " tasks the scores were computed for"
        )
    layout = resolve_layout(model, head_layout)
    if (layout.n_layers, layout.n_heads) != (scores.n_layers, scores.n_heads):
        raise ValueError(
            f"the scores are for {scores.n_layers} layers × {scores.n_heads} heads but the model"
            f" has {layout.n_layers} × {layout.n_heads}; validate on the model that was scored"
        )
    for task in task_list:
        finite = int(np.isfinite(scores[task.name]).sum())
        if finite < max(ks):
            raise ValueError(
                f"task {task.name!r} has {finite} finite scores, fewer than k={max(ks)}"
            )

    rng = np.random.default_rng(seed)
    result = ValidationResult(metric, ablation, ks, n_random, {}, {}, {}, {})
    report = _Progress(progress, len(task_list) * (1 + len(ks) * (1 + n_random)))
    with model_session(model, "validate"), torch.inference_mode():
        try:
            for t, task in enumerate(task_list):
                batches = task_batches(
                    model, layout, tokenizer, task, metric, batch_size, add_bos=add_bos
                )
                measure = report.wrap(
                    partial(_mean_metric, model, layout, batches, metric),
                    f"task {t + 1}/{len(task_list)} {task.name}",
                )
                sums = HeadSums(layout.n_layers)
                result.clean[task.name] = measure(sums)
                if ablation == "mean":
                    fills = [mean.cpu() for mean in sums.means(layout.n_heads, layout.head_dim)]
                else:
                    fills = [torch.zeros(layout.n_heads, layout.head_dim) for _ in layout.out_projs]

                result.top[task.name], result.random[task.name] = {}, {}
                result.heads[task.name] = {}
                for size in ks:
                    top = [(layer, head) for layer, head, _ in scores.top_heads(task.name, size)]
                    result.heads[task.name][size] = top
                    result.top[task.name][size] = measure(_ablation(layout, fills, top))
                    draws = []
                    for _ in range(n_random):
                        flat = rng.choice(total_heads, size=size, replace=False)
                        picked = [(int(i // layout.n_heads), int(i % layout.n_heads)) for i in flat]
                        draws.append(measure(_ablation(layout, fills, picked)))
                    result.random[task.name][size] = draws
        except BaseException as err:
            report.close(err)
            raise
    report.close()
    return result


def evaluate_tasks(
    model: nn.Module,
    tokenizer: Any,
    tasks: Task | Sequence[Task],
    *,
    metric: str = "accuracy",
    batch_size: int = 16,
    head_layout: HeadLayout | None = None,
    add_bos: bool | None = None,
) -> dict[str, float]:
    """The model's mean ``metric`` per task, nothing ablated (e.g. accuracy on held-out tasks);
    ``add_bos`` as for :func:`~headwidget.score_heads`.

    >>> evaluate_tasks(model, tokenizer, load_suite("operations"))   # doctest: +SKIP
    {'copying': 0.755..., 'first letter': 0.666..., ...}
    """
    check_metric(metric)
    if not is_whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}")
    layout = resolve_layout(model, head_layout)
    with model_session(model, "evaluate_tasks"):
        return clean_metrics(
            model, layout, tokenizer, as_task_list(tasks), metric, batch_size, add_bos=add_bos
        )


def _mean_metric(
    model: nn.Module, layout: Any, batches: list[Any], metric: str, strategy: Strategy
) -> float:
    """Mean metric over all examples of ``batches``, with ``strategy`` at the out_proj inputs
    (:class:`HeadSums`: recording, the clean metric; :class:`Ablate`: on its layers only)."""
    total, count = 0.0, 0
    layers = strategy.plan if isinstance(strategy, Ablate) else None
    with hooks(layout, heads=strategy, layers=layers):
        for batch in batches:
            if isinstance(strategy, HeadSums):
                strategy.token_mask = batch.attention_mask.reshape(-1).bool()
            total += float(batch_metric(model, layout, batch, metric).double().sum())
            count += batch.size
    return total / count


def _ablation(layout: Any, fills: list[torch.Tensor], heads: Sequence[tuple[int, int]]) -> Ablate:
    """``heads`` (``(layer, head)`` pairs) ablated together, each set to its row of its layer's
    ``fills`` (``[n_heads, head_dim]``: the means, or zeros)."""
    grouped: dict[int, list[int]] = {}
    for layer, head in heads:
        grouped.setdefault(layer, []).append(head)
    plan = {
        layer: Ablate.together(torch.tensor(sorted(hs)), fills[layer])
        for layer, hs in grouped.items()
    }
    return Ablate(layout, plan)


class _Progress:
    """validate()'s progress: a tqdm bar and, when ``target`` is a grid, its progress line
    (sent at most every ``grid.sync_interval`` seconds; "validation done in …" at the end)."""

    def __init__(self, target: Any, total: int) -> None:
        from tqdm.auto import tqdm

        self.grid = target if hasattr(target, "progress") and hasattr(target, "hold_sync") else None
        self.total, self.done = total, 0
        self.start = self.last_sync = time.monotonic()
        self.bar = tqdm(total=total, disable=not target, desc="validate", unit="ablation")
        self._show("validating…", running=True, force=True)

    def wrap(self, measure: Any, label: str) -> Any:
        """``measure``, counting one step per call; ``label`` names the task."""
        self.bar.set_postfix_str(label, refresh=False)

        def counted(*args: Any) -> float:
            value = measure(*args)
            self.done += 1
            self.bar.update(1)
            if self.grid is not None:
                eta = (time.monotonic() - self.start) * (self.total - self.done) / self.done
                text = (
                    f"validating · {label} · {self.done}/{self.total} ablations · ETA"
                    f" {format_seconds(eta)}"
                )
                self._show(text, running=True)
            return value

        return counted

    def _show(self, text: str, *, running: bool, force: bool = False, error: bool = False) -> None:
        if self.grid is None:
            return
        now = time.monotonic()
        if force or now - self.last_sync >= getattr(self.grid, "sync_interval", 0.25):
            self.last_sync = now
            progress = {"text": text, "fraction": self.done / self.total, "running": running}
            self.grid.progress = {**progress, "error": True} if error else progress

    def close(self, err: BaseException | None = None) -> None:
        self.bar.close()
        if self.grid is None:
            return
        if err is None:
            seconds = time.monotonic() - self.start
            self._show(f"validation done in {format_seconds(seconds)}", running=False, force=True)
        else:
            reason = "interrupted" if isinstance(err, KeyboardInterrupt) else "error"
            text = f"validation {reason} after {self.done}/{self.total} ablations: {err}"
            self._show(text.rstrip(": "), running=False, force=True, error=True)
