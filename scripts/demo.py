"""Headless headwidget demo: score the shipped demo model and save what it found.

For people without Jupyter. The model is the small Llama trained on the built-in suites
(:func:`headwidget.demo.load_demo_model`, offline). For each suite it scores every head, prints
the top heads per task, saves the scores (``<suite>.npz``) and a PNG of the grid (``<suite>.png``,
matplotlib, the published style), then checks the scores causally: each task's top-k heads
ablated together vs. k random heads (``validation.md``).

    python scripts/demo.py --out demo-output
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from headwidget import HeadScores, load_suite, score_heads
from headwidget.demo import load_demo_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--suites", nargs="+", default=["operations", "cognitive"])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="heads to ablate")
    parser.add_argument("--random", type=int, default=10, help="random draws per task and k")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model, tokenizer = load_demo_model()
    report = []
    for suite in args.suites:
        tasks = load_suite(suite)
        started = time.perf_counter()
        scores = score_heads(model, tokenizer, tasks, progress=False)
        elapsed = time.perf_counter() - started
        n_tasks, n_layers, n_heads = scores.shape
        print(
            f"\n{suite}: scored {n_layers} layers × {n_heads} heads for {n_tasks} tasks"
            f" ({sum(len(t) for t in tasks)} examples) in {elapsed:.1f} s"
        )
        print(f"{'task':<24} {'category':<12} {'logprob':>8}  top heads (layer.head: importance)")
        for task in scores.tasks:
            top = ", ".join(
                f"{layer}.{head}: {value:+.3f}" for layer, head, value in scores.top_heads(task, 3)
            )
            category = scores.categories[task] or "-"
            print(f"{task:<24} {category:<12} {scores.baseline[task]:>8.3f}  {top}")

        print(map_similarity(scores))
        path = scores.save(args.out / f"{suite}.npz")
        assert HeadScores.load(path).shape == scores.shape
        print(f"saved {path}")
        try:
            figure = scores.plot(kind="categories" if suite == "operations" else "tasks")
        except ImportError as err:
            print(f"no figure: {err}")
        else:
            figure.savefig(args.out / f"{suite}.png", dpi=120, bbox_inches="tight")
            print(f"saved {args.out / f'{suite}.png'}")

        started = time.perf_counter()
        check = scores.validate(model, tokenizer, tasks, k=tuple(args.k), n_random=args.random)
        print(f"{check!r} ({time.perf_counter() - started:.0f} s)")
        report.append(f"### {suite}\n\n{check.to_markdown()}\n")

    path = args.out / "validation.md"
    path.write_text(
        "Accuracy with each task's top-k heads ablated together (top-k) and with k random heads"
        f" ({args.random} draws, mean: random-k); {check.ablation} ablation.\n\n"
        + "\n".join(report),
        encoding="utf-8",
    )
    print(f"saved {path}")


def map_similarity(scores: HeadScores) -> str:
    """How alike the tasks' maps are: mean correlation between tasks of the same category and
    of different categories, and each task's nearest other task."""
    flat = scores.values.reshape(len(scores.tasks), -1).astype(np.float64)
    corr = np.corrcoef(flat)
    same, other = [], []
    lines = []
    for i, task in enumerate(scores.tasks):
        for j in range(i + 1, len(scores.tasks)):
            alike = scores.categories[task] == scores.categories[scores.tasks[j]]
            (same if alike else other).append(corr[i, j])
        nearest = max((j for j in range(len(scores.tasks)) if j != i), key=lambda j: corr[i, j])
        lines.append(f"  {task:<24} nearest: {scores.tasks[nearest]} (r = {corr[i, nearest]:.2f})")
    head = "map correlation between tasks"
    if same and other:
        head += f": same category {np.mean(same):.2f}, different categories {np.mean(other):.2f}"
    return "\n".join([head, *lines])


if __name__ == "__main__":
    main()
