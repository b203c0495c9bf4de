"""How well do projection scores agree with exact ablation on the demo model, task by task?

Loads the shipped exact maps (``headwidget.demo.load_demo_scores("operations")``: mean ablation,
log-probability metric, SmolLM2-135M-Instruct), scores the same model with
``method="projection"`` on the same operations (every pair of each task: the projection needs no
prompts, and MAPS scores whole data sets), and prints per task: the clean accuracy, the pairs
kept, Spearman's rank correlation over all heads, and how many of the exact top-10 heads are in
the projection's top 10 (expected over random tie-breaking when several heads tie at the
projection's 10th score; the number tied is printed). Both ``first_mlp`` settings are shown.

    python benchmarks/projection_agreement.py
    python benchmarks/projection_agreement.py --scores my_exact_maps.npz
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headwidget import HeadScores, load_suite, score_heads  # noqa: E402
from headwidget.methods.agreement import spearman  # noqa: E402


def top10_shared(exact: np.ndarray, approx: np.ndarray) -> tuple[float, int]:
    """How many of the exact top-10 heads are in the projection's top 10, expected over random
    tie-breaking of the heads tied at the projection's 10th score; and how many tie there."""
    top = set(np.argsort(-exact, kind="stable")[:10].tolist())
    tenth = np.sort(approx)[::-1][9]
    above = set(np.nonzero(approx > tenth)[0].tolist())
    tied = set(np.nonzero(approx == tenth)[0].tolist())
    slots = 10 - len(above)
    return len(top & above) + len(top & tied) * slots / len(tied), len(tied)


def load_model():
    cache = Path("/work/cache/smollm2")
    if cache.is_dir():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32).eval()
        return model, AutoTokenizer.from_pretrained(cache)
    from headwidget.demo import load_demo_model

    return load_demo_model()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, help="exact maps (default: the shipped ones)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.scores:
        exact = HeadScores.load(args.scores)
    else:
        from headwidget.demo import load_demo_scores

        exact = load_demo_scores("operations")
    model, tokenizer = load_model()
    tasks = load_suite("operations", n_shots=0, tasks=exact.tasks)
    runs = {}
    for first_mlp in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs[first_mlp] = score_heads(
                model, tokenizer, tasks, method="projection", first_mlp=first_mlp, progress=False
            )
    print(f"exact: {exact.meta.get('model', '?')}, {exact.method}, {exact.meta.get('ablation')}")
    print("task | accuracy | pairs | first_mlp=True: Spearman, top-10 shared | first_mlp=False")
    summary = {True: [], False: []}
    for i, name in enumerate(exact.tasks):
        proj = runs[True]
        if name in proj.meta["dropped"]:
            print(f"{name} | {exact.accuracy.get(name, float('nan')):.2f} | "
                  f"{proj.meta['pairs'][name]} (too few) | - | -")  # fmt: skip
            continue
        cells = []
        for first_mlp in (True, False):
            approx = runs[first_mlp].values[runs[first_mlp].tasks.index(name)].ravel()
            rho = spearman(exact.values[i].ravel(), approx)
            shared, tied = top10_shared(exact.values[i].ravel(), approx)
            summary[first_mlp].append((rho, shared))
            cells.append(f"{rho:+.2f}, {shared:.1f}/10" + (f" ({tied} tied)" if tied > 1 else ""))
        accuracy = exact.accuracy.get(name, float("nan"))
        print(f"{name} | {accuracy:.2f} | {proj.meta['pairs'][name]} | {cells[0]} | {cells[1]}")
    for first_mlp, rows in summary.items():
        if rows:
            rho = np.nanmean([r for r, _ in rows])
            shared = np.mean([s for _, s in rows])
            print(f"mean, first_mlp={first_mlp}: Spearman {rho:+.2f}, top-10 shared {shared:.1f}")


if __name__ == "__main__":
    main()
