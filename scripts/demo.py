"""Headless headwidget demo: the real demo model's maps, and a slice of them scored live.

For people without Jupyter. Prints, for each built-in suite, each task's clean accuracy and top
heads from the shipped maps of SmolLM2-135M-Instruct (:func:`headwidget.demo.load_demo_scores`),
and writes a PNG of each grid (matplotlib, the published style)
and the standalone interactive page. Then loads the model (offline) and scores two tasks on a
few examples live, to show what scoring costs on this machine.

    python scripts/demo.py --out demo-output
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from headwidget import HeadImportanceGrid, load_suite, score_heads
from headwidget.demo import DEMO_SUITES, load_demo_model, load_demo_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument(
        "--live", nargs="*", default=["copying", "country → capital"], help="tasks scored live"
    )
    parser.add_argument("--live-examples", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    for suite in DEMO_SUITES:
        scores = load_demo_scores(suite)
        n_tasks, n_layers, n_heads = scores.shape
        print(
            f"\n{suite}: {scores.meta['model']}, {n_layers} layers × {n_heads} heads, {n_tasks}"
            f" tasks × {scores.meta['suite']['max_examples']} examples, exact mean ablation"
        )
        print(f"{'task':<24} {'category':<12} {'accuracy':>8}  top heads (layer.head: drop)")
        for task in scores.tasks:
            top = ", ".join(
                f"{layer}.{head}: {value:+.2f}" for layer, head, value in scores.top_heads(task, 3)
            )
            category = scores.categories[task] or "-"
            print(f"{task:<24} {category:<12} {scores.accuracy[task]:>8.2f}  {top}")
        try:
            figure = scores.plot(kind="categories" if suite == "operations" else "tasks")
        except ImportError as err:
            print(f"no figure: {err}")
        else:
            figure.savefig(args.out / f"{suite}.png", dpi=120, bbox_inches="tight")
            print(f"saved {args.out / f'{suite}.png'}")
        page = HeadImportanceGrid(scores, tab="categories" if suite == "operations" else "all")
        print(f"saved {page.save(args.out / f'{suite}.html')}")

    if args.live:
        started = time.perf_counter()
        model, tokenizer = load_demo_model()
        print(f"\nloaded the model in {time.perf_counter() - started:.1f} s")
        tasks = load_suite("operations", tasks=args.live, max_examples=args.live_examples)
        scores = score_heads(model, tokenizer, tasks)
        cells = len(tasks) * scores.n_layers * scores.n_heads
        seconds = scores.meta["seconds"]
        print(
            f"scored {cells} (task, head) cells on {args.live_examples} examples each in"
            f" {seconds:.0f} s: {1000 * seconds / cells:.0f} ms per cell"
        )
        print(f"saved {scores.save(args.out / 'live.npz')}")


if __name__ == "__main__":
    main()
