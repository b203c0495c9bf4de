"""How the demo model's important heads work together: exact paths among each task's top 10.

For the tasks whose shipped maps are most reliable (next year, first letter, copying), takes
the top 10 heads of the shipped operations map (``load_demo_scores``), traces every path among
them with ``trace_paths`` (exact, mean ablation, log-probability; q, k, v and the logits) on
``--examples`` examples, and prints, as Markdown:

- each task's strongest edges (by |effect|, with the standard error over examples);
- whether the previous-token -> induction *key* path appears: the known previous-token heads
  (16.0, 11.1, 2.1) and induction heads (18.6, 17.3, 17.4) of the demo model, first among the
  task's top 10 (which of them are there, and the rank of their key edges), then traced on their
  own (all 9 previous-token -> induction key edges, whatever the task's top 10).

    python scripts/demo_paths.py                 # 8 examples a task, 2 threads: ~15 min here
    python scripts/demo_paths.py --examples 16 --edges 12
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headwidget import load_suite, trace_paths  # noqa: E402
from headwidget.demo import load_demo_model, load_demo_scores  # noqa: E402

TASKS = ("next year", "first letter", "copying")
PREVIOUS_TOKEN = ((16, 0), (11, 1), (2, 1))
INDUCTION = ((18, 6), (17, 3), (17, 4))


def name(head: tuple[int, int]) -> str:
    return "L{}H{}".format(*head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--edges", type=int, default=8, help="strongest edges shown (8)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_demo_model()
    scores = load_demo_scores("operations")
    tasks = [t for t in load_suite("operations", max_examples=args.examples) if t.name in TASKS]
    started = time.perf_counter()
    for task in tasks:
        paths = trace_paths(model, tokenizer, task, scores=scores, top=10, progress=False)
        heads = [tuple(h) for h in paths.heads[task.name].tolist()]
        rows = paths.task_rows(task.name)
        print(f"\n### {task.name} (n = {len(task)}; clean log-probability"
              f" {paths.baseline[task.name]:.2f}; {len(rows)} edges among"
              f" {' '.join(name(h) for h in heads)})\n")  # fmt: skip
        print("| rank | sender | receiver | via | effect ± s.e. |")
        print("|---:|---|---|---|---:|")
        ranked = paths.top_edges(task.name, len(rows))
        for rank, edge in enumerate(ranked[: args.edges], 1):
            receiver = "logits" if edge.receiver is None else name(edge.receiver)
            print(f"| {rank} | {name(edge.sender)} | {receiver} | {edge.via} |"
                  f" {edge.effect:+.3f} ± {edge.sem:.3f} |")  # fmt: skip
        present = [h for h in (*PREVIOUS_TOKEN, *INDUCTION) if h in heads]
        keys = [
            (rank, e)
            for rank, e in enumerate(ranked, 1)
            if e.via == "k" and e.sender in PREVIOUS_TOKEN and e.receiver in INDUCTION
        ]
        print(f"\nKnown previous-token / induction heads among the top 10:"
              f" {', '.join(name(h) for h in present) or 'none'}.")  # fmt: skip
        for rank, e in keys:
            print(f"Previous-token -> induction key edge in the top 10: {e} (rank {rank} of"
                  f" {len(ranked)}).")  # fmt: skip
        own = trace_paths(model, tokenizer, task, heads=[*PREVIOUS_TOKEN, *INDUCTION],
                          via=("k",), progress=False)  # fmt: skip
        edges = [e for e in own.top_edges(task.name, len(own.edges), signed=True)
                 if e.sender in PREVIOUS_TOKEN and e.receiver in INDUCTION]  # fmt: skip
        shown = [f"{name(e.sender)} -> {name(e.receiver)} {e.effect:+.3f} ± {e.sem:.3f}"  # type: ignore[arg-type]
                 for e in edges]  # fmt: skip
        print("All 9 previous-token -> induction key edges, traced on their own (strongest"
              " first): " + "; ".join(shown) + ".")  # fmt: skip
    print(f"\n({time.perf_counter() - started:.0f} s, {args.threads} threads)")


if __name__ == "__main__":
    main()
