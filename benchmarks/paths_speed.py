"""What trace_paths costs on the demo model, and how well edge attribution agrees with exact.

On SmolLM2-135M-Instruct (30 layers x 9 heads, 3 key/value heads; ``load_demo_model``) and
``--examples`` examples of one task of the operations suite, with ``--threads`` CPU threads:

- exact paths among the task's top 10 heads (shipped demo maps), all three channels and the
  logits: wall time, and forward-equivalents per edge (wall time / one clean forward of the
  model over the same examples, fastest of 3);
- edge attribution for every edge among the top ``--heads`` heads (default 50): wall time in
  forward-equivalents (per example: the same ratio, since the forward runs on all examples);
- agreement of attribution with exact over the top-10 heads' edges: Spearman over edges, and
  how many of the 10 strongest exact edges (by |effect|) are among attribution's 10 and 20
  strongest.

    python benchmarks/paths_speed.py                         # next year, 8 examples, 2 threads
    python benchmarks/paths_speed.py --task "first letter" --threads 1

Targets (issue #22): exact top-10 paths of one task under 2 minutes on 2 cores with <= 0.5
forward-equivalents per edge; attribution for all edges among 50 heads in <= 4
forward-equivalents per example.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import forward_seconds  # noqa: E402

from headwidget import load_suite, trace_paths  # noqa: E402
from headwidget.demo import load_demo_model, load_demo_scores  # noqa: E402
from headwidget.methods.agreement import spearman  # noqa: E402


def timed(*args, **kwargs):
    start = time.perf_counter()
    paths = trace_paths(*args, progress=False, **kwargs)
    return paths, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="next year")
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heads", type=int, default=50, help="attribution: top K heads (50)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_demo_model()
    scores = load_demo_scores("operations")
    (task,) = [t for t in load_suite("operations", max_examples=args.examples)
               if t.name == args.task]  # fmt: skip
    forward = forward_seconds(model, tokenizer, task)
    print(f"{args.task}: {len(task)} examples, {args.threads} threads; one clean forward"
          f" {forward:.3f} s")  # fmt: skip

    exact, seconds = timed(model, tokenizer, task, scores=scores, top=10)
    n = len(exact.edges)
    print(f"\nexact, top 10 heads, q/k/v/logits: {n} edges in {seconds:.1f} s ="
          f" {seconds / forward:.1f} forward-equivalents, {seconds / forward / n:.3f} per edge"
          f" (target: under 120 s, <= 0.5 per edge)")  # fmt: skip
    heads = exact.heads[args.task].tolist()
    print("  heads: " + " ".join(f"L{layer}H{head}" for layer, head in heads))
    for edge in exact.top_edges(args.task, 8):
        print(f"    {edge}")

    rough, seconds = timed(model, tokenizer, task, scores=scores, top=10, method="attribution")
    print(
        f"\nattribution, the same {n} edges: {seconds:.1f} s = {seconds / forward:.1f}"
        " forward-equivalents"
    )
    rho = spearman(rough.effect, exact.effect)
    strongest = set(np.argsort(-np.abs(exact.effect))[:10].tolist())
    found = [len(strongest & set(np.argsort(-np.abs(rough.effect))[:k].tolist())) for k in (10, 20)]
    print(f"  Spearman(attribution, exact) over edges: {rho:.3f}; of the exact 10 strongest"
          f" edges, {found[0]} in attribution's 10 strongest, {found[1]} in its 20")  # fmt: skip
    head_edges = exact.edges[:, 5] != 3
    print(f"  head-to-head edges only: Spearman"
          f" {spearman(rough.effect[head_edges], exact.effect[head_edges]):.3f}; logits edges:"
          f" {spearman(rough.effect[~head_edges], exact.effect[~head_edges]):.3f}")  # fmt: skip

    refined, seconds = timed(model, tokenizer, task, scores=scores, top=10, method="attribution",
                             refine=10)  # fmt: skip
    record = refined.meta["agreement"][args.task]
    found = len(strongest & set(np.flatnonzero(refined.exact).tolist()))
    print(f"  refine=10: {seconds:.1f} s = {seconds / forward:.1f} forward-equivalents; exact 10"
          f" strongest among the refined: {found}; Spearman on the refined"
          f" {record['spearman']:.3f}")  # fmt: skip

    wide, seconds = timed(model, tokenizer, task, scores=scores, top=args.heads,
                          method="attribution")  # fmt: skip
    print(f"\nattribution, top {args.heads} heads: {len(wide.edges)} edges in {seconds:.1f} s ="
          f" {seconds / forward:.2f} forward-equivalents per example (target <= 4)")  # fmt: skip


if __name__ == "__main__":
    main()
