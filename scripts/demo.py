"""Headless headwidget demo: score a small locally built model and save what it found.

The model comes from :func:`headwidget.demo.build_demo_model` (random weights, a word-level
tokenizer over the suite's vocabulary, saved and reloaded locally), so the demo runs offline.
Random weights have no task-specific circuits; the point here is the pipeline: tasks -> exact
ablation scores -> file, table and figure.

    python scripts/demo.py --out demo-output
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from headwidget import HeadScores, load_suite, score_heads
from headwidget.demo import build_demo_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--suite", default="operations")
    parser.add_argument("--examples", type=int, default=16, help="examples per task")
    args = parser.parse_args()

    tasks = load_suite(args.suite, max_examples=args.examples)
    model, tokenizer = build_demo_model(args.out / "model", tasks)

    started = time.perf_counter()
    scores = score_heads(model, tokenizer, tasks)
    elapsed = time.perf_counter() - started
    n_tasks, n_layers, n_heads = scores.shape
    print(
        f"scored {n_layers} layers × {n_heads} heads for {n_tasks} tasks"
        f" ({sum(len(t) for t in tasks)} examples) in {elapsed:.1f} s"
    )
    print(
        f"{'task':<24} {'category':<12} {'clean logprob':>13}  top heads (layer.head: importance)"
    )
    for task in scores.tasks:
        top = ", ".join(
            f"{layer}.{head}: {value:+.3f}" for layer, head, value in scores.top_heads(task, k=3)
        )
        category = scores.categories[task] or "-"
        print(f"{task:<24} {category:<12} {scores.baseline[task]:>13.3f}  {top}")

    path = scores.save(args.out / "scores.npz")
    assert HeadScores.load(path).shape == scores.shape
    print(f"saved {path}")
    try:
        figure = scores.plot()
    except ImportError as err:
        print(f"no figure: {err}")
    else:
        figure.savefig(args.out / "heads.png", dpi=120, bbox_inches="tight")
        print(f"saved {args.out / 'heads.png'}")


if __name__ == "__main__":
    main()
