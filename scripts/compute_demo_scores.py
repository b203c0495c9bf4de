"""Compute the demo model's shipped maps: ``headwidget/data/demo_scores/<suite>.npz``.

Mean ablation with the log-probability metric, of SmolLM2-135M-Instruct
(:func:`headwidget.demo.load_demo_model`) on a built-in suite as ``load_suite`` builds it, by
attribution with ``refine`` heads per task scored exactly (default 20; ``--method ablation``:
every head exactly), with each task's clean accuracy and per-example effects on the same
examples. ``meta["suite"]`` records the ``load_suite`` arguments (the examples each task leaves
out are its held-out set: ``load_suite(**meta["suite"], held_out=True)``) and
``meta["model_file"]`` the GGUF file, so the file can be recomputed exactly
(``tests/test_real_model.py`` recomputes a sample of its exact cells).

    python scripts/compute_demo_scores.py operations --max-examples 32
    python scripts/compute_demo_scores.py cognitive --max-examples 42

Cost on this project's 2-core CI machine (one thread each): see the README's demo section.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
from pathlib import Path

import torch

from headwidget import load_suite, score_heads
from headwidget.demo import DEMO_MODEL_PACKAGE, demo_gguf_file, load_demo_model
from headwidget.methods.validation import evaluate_tasks

OUT = Path(__file__).resolve().parents[1] / "headwidget" / "data" / "demo_scores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=["operations", "cognitive"])
    parser.add_argument("--max-examples", type=int, required=True, help="examples per task")
    parser.add_argument("--n-shots", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="+", help="only these tasks (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--method", choices=["attribution", "ablation"], default="attribution")
    parser.add_argument("--refine", type=int, default=20, help="attribution: exact heads a task")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tokenizer = load_demo_model()
    suite = {
        "name": args.suite,
        "n_shots": args.n_shots,
        "seed": args.seed,
        "max_examples": args.max_examples,
    }
    tasks = load_suite(**suite, tasks=args.tasks)
    # the task names too, so the file stays recomputable when the suite gains tasks
    suite["tasks"] = [task.name for task in tasks]

    started = time.perf_counter()
    evaluate_tasks(model, tokenizer, tasks, metric="logprob")
    clean_seconds = time.perf_counter() - started  # one clean forward of every example
    options = {"refine": args.refine} if args.method == "attribution" else {}
    scores = score_heads(
        model, tokenizer, tasks, method=args.method, ablation="mean", metric="logprob",
        keep_examples=True, **options,
    )  # fmt: skip
    n_heads = scores.n_layers * scores.n_heads
    per_head = scores.meta["seconds"] / clean_seconds / n_heads

    gguf, sha256 = demo_gguf_file()
    scores.meta["suite"] = suite
    scores.meta["model_file"] = {
        "package": f"{DEMO_MODEL_PACKAGE}=={importlib.metadata.version(DEMO_MODEL_PACKAGE)}",
        "file": gguf.name,
        "quantisation": "Q4_1, dequantised to float32",
        "sha256": sha256,
    }
    scores.meta["threads"] = args.threads
    held_out = load_suite(**suite, held_out=True)
    scores.meta["held_out"] = {task.name: len(task) for task in held_out}
    scores.meta["forward_equivalents_per_head"] = round(per_head, 3)
    args.out.mkdir(parents=True, exist_ok=True)
    path = scores.save(args.out / f"{args.suite}.npz")
    print(
        f"{args.suite}: {len(tasks)} tasks × {args.max_examples} examples, {n_heads} heads in"
        f" {scores.meta['seconds']:.0f} s on {args.threads} thread(s)"
        f" ({per_head:.2f} forward-equivalents per head); wrote {path}"
    )
    for task in scores.tasks:
        top = ", ".join(f"L{la}H{h} {v:+.2f}" for la, h, v in scores.top_heads(task, 3))
        agreement = scores.meta.get("agreement", {}).get(task, {}).get("spearman")
        agree = "" if agreement is None else f"  Spearman(attribution, exact) {agreement:.2f}"
        print(f"  {task:<24} accuracy {scores.accuracy[task]:.2f}  {top}{agree}")


if __name__ == "__main__":
    main()
