"""Do maps computed in bfloat16 / float16 rank the heads as float32 does (issue #23, item 3)?

Scores the demo model (SmolLM2-135M-Instruct, 30 layers x 9 heads) on copying, country →
capital and past tense (6 examples each) with exact mean ablation and with attribution (its
defaults), once in float32 and once in each lower precision, and prints per task the Spearman
correlation of the low-precision map with the float32 one over the heads scored and how many of
the float32 top 10 are in its top 10. A dtype whose run fails prints the error instead.

    python benchmarks/precision.py                          # CPU: bfloat16 and float16
    python benchmarks/precision.py --dtypes bfloat16 --methods ablation --device cuda
    python benchmarks/precision.py --dtypes float16 --layers 25-29   # exact cells of 5 layers

The float32 maps are kept in ``--cache`` (default ``/tmp/headwidget-precision``, per method,
examples and layers) and reused: they are what the low-precision maps are compared with, and
float32 scoring is the same before and after a change to low-precision scoring.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headwidget import load_suite, score_heads  # noqa: E402
from headwidget.demo import load_demo_model  # noqa: E402
from headwidget.methods.agreement import spearman  # noqa: E402

TASKS = ["copying", "country → capital", "past tense"]


def top10_shared(a: np.ndarray, b: np.ndarray) -> int:
    return len(
        set(np.argsort(-a, kind="stable")[:10].tolist())
        & set(np.argsort(-b, kind="stable")[:10].tolist())
    )


def scores(dtype: str, method: str, tasks, args: argparse.Namespace) -> np.ndarray:
    """``[tasks, scored heads]``: the map of the scored layers."""
    model, tok = load_demo_model(dtype=dtype, device=args.device)
    options: dict = {}
    if method == "ablation" and args.layers:
        options["heads"] = {layer: list(range(9)) for layer in args.layers}
    start = time.perf_counter()
    result = score_heads(model, tok, tasks, method=method, progress=False, **options)
    print(f"  {method:<11} {dtype:<8} {time.perf_counter() - start:7.1f} s", flush=True)
    values = (
        result.values
        if not args.layers or method != "ablation"
        else (result.values[:, args.layers])
    )
    return values.reshape(len(tasks), -1)


def reference(method: str, tasks, args: argparse.Namespace) -> np.ndarray:
    layers = "all" if not args.layers or method != "ablation" else "-".join(map(str, args.layers))
    path = args.cache / f"float32-{method}-{args.examples}-{layers}.npy"
    if path.is_file():
        return np.load(path)
    values = scores("float32", method, tasks, args)
    args.cache.mkdir(parents=True, exist_ok=True)
    np.save(path, values)
    return values


def layer_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16"])
    parser.add_argument("--methods", nargs="+", default=["ablation", "attribution"])
    parser.add_argument("--examples", type=int, default=6)
    parser.add_argument("--layers", type=layer_range, help="exact ablation of these layers only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/headwidget-precision"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = load_suite("operations", max_examples=args.examples, tasks=TASKS)
    rows = []
    for method in args.methods:
        ref = reference(method, tasks, args)
        for dtype in args.dtypes:
            try:
                low = scores(dtype, method, tasks, args)
            except Exception as err:  # a clear refusal is one of the accepted outcomes
                rows.append((method, dtype, f"{type(err).__name__}: {err}"))
                continue
            cells = []
            for t, task in enumerate(tasks):
                rho = spearman(ref[t], low[t])
                cells.append(f"{task.name}: {rho:.4f} / {top10_shared(ref[t], low[t])}")
            rows.append((method, dtype, "; ".join(cells)))
    print("\nmethod       dtype     per task: Spearman with float32 / top-10 shared")
    for method, dtype, text in rows:
        print(f"{method:<12} {dtype:<9} {text}")


if __name__ == "__main__":
    main()
