"""Attribution patching against exact ablation on the real model: cost and agreement, per task.

Loads SmolLM2-135M-Instruct (30 layers x 9 heads) from a local folder (``--model``, default
/work/cache/smollm2 when it exists) or with ``headwidget.demo.load_demo_model()`` (``--model
demo``), takes ``--examples`` examples of each task of the operations suite the model can do
(clean accuracy >= 0.2) and prints, in one run:

- the cost of plain attribution (first order only: ``competitors=0, exact_layers=0``) and of
  the default settings, in forward-equivalents (wall time / one clean forward over the same
  examples);
- the time of attribution + ``refine=20`` against a full exact sweep, and refine=K's cost for
  growing K;
- per task: Spearman(attribution, exact) over all heads for each setting, and with refine=20
  how many of the exact top 10 heads were scored exactly (exact layers or refined; also with
  ``refine_sensitive=0``, every refined head by signed attribution), and the fraction of the
  random sample that beat the 20th refined head; the same top-10 count for each refine=K.

    python benchmarks/attribution_speed.py                      # 4 tasks, ~15 min on one core
    python benchmarks/attribution_speed.py --tasks all --threads 2
    python benchmarks/attribution_speed.py --suite cognitive --tasks all --examples 4

Exact sweeps take about a minute per task per core with 8 examples; figures in the README come
from this script.
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

from headwidget import load_suite  # noqa: E402
from headwidget.methods.agreement import spearman  # noqa: E402
from headwidget.methods.attribution import DEFAULT_COMPETITORS, DEFAULT_EXACT_LAYERS  # noqa: E402
from headwidget.scoring import score_heads  # noqa: E402

CAPABLE = (  # clean accuracy >= 0.2 on the default prompts (see the README)
    "copying",
    "next year",
    "name copying",
    "past tense",
    "first letter",
    "country → language",
    "comparative",
    "antonym",
    "object → superclass",
    "pronoun",
    "product → company",
    "country → capital",
    "superlative",
)
DEFAULT_TASKS = ("copying", "comparative", "next year", "antonym")
PLAIN = {"steps": 1, "competitors": 0, "exact_layers": 0, "screen": 0}
SETTINGS = (  # (label, options) compared on agreement and cost
    ("plain", PLAIN),
    ("steps=2", {**PLAIN, "steps": 2}),
    ("screen=5", {**PLAIN, "screen": 5}),
    ("compet=1", {**PLAIN, "competitors": 1}),
    ("compet=2", {**PLAIN, "competitors": 2}),
    ("exactL=1", {**PLAIN, "exact_layers": 1}),
)


def _load(name: str):
    if name == "demo":
        from headwidget.demo import load_demo_model

        return load_demo_model()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(name)


def _run(model, tokenizer, task, **options):
    """(scores, wall seconds) of one score_heads call on one task."""
    start = time.perf_counter()
    scores = score_heads(model, tokenizer, task, progress=False, **options)
    return scores, time.perf_counter() - start


def _found(scores, top10: np.ndarray) -> int:
    """How many of the exact top-10 heads ``scores`` computed exactly."""
    return int(scores.exact[0].ravel()[top10].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_model = "/work/cache/smollm2" if Path("/work/cache/smollm2").is_dir() else "demo"
    parser.add_argument("--model", default=default_model, help="folder, or 'demo'")
    parser.add_argument("--suite", default="operations", help="a built-in suite")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(DEFAULT_TASKS),
        help="names, or 'all' (operations: the ones the model can do; another suite: every task)",
    )
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ks", default="5,10,20,40", help="refine=K values to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.tasks
    if names == ["all"]:
        names = list(CAPABLE) if args.suite == "operations" else None
    model, tokenizer = _load(args.model)
    tasks = load_suite(args.suite, max_examples=args.examples, tasks=names)
    ks = [int(k) for k in args.ks.split(",")]
    default = f"default (competitors={DEFAULT_COMPETITORS}, exact_layers={DEFAULT_EXACT_LAYERS})"
    print(f"model {args.model}; {args.examples} examples a task; {args.threads} thread(s)")
    print(
        f"{'task':22s} {'fwd s':>6s} {'exact s':>8s} "
        + " ".join(f"{label:>10s}" for label, _ in SETTINGS)
        + f" {'default':>10s} {'refine20':>9s} {'top10':>5s} {'signed':>6s} {'beat':>5s}"
    )
    rows = []
    for task in tasks:
        fwd = forward_seconds(model, tokenizer, task)
        exact, t_exact = _run(model, tokenizer, task)
        e = exact.values[0].ravel()
        row = {"task": task.name, "fwd": fwd, "exact": t_exact, "settings": {}}
        for label, options in SETTINGS:
            got, secs = _run(model, tokenizer, task, method="attribution", **options)
            row["settings"][label] = (spearman(got.values[0].ravel(), e), secs / fwd)
        default_scores, t_default = _run(model, tokenizer, task, method="attribution")
        refined, t_refine = _run(model, tokenizer, task, method="attribution", refine=20)
        top10 = np.argsort(-e)[:10]
        signed = _run(model, tokenizer, task, method="attribution", refine=20, refine_sensitive=0)
        refine_k = {}
        for k in ks:
            scores, secs = _run(model, tokenizer, task, method="attribution", refine=k)
            refine_k[k] = (secs / fwd, _found(scores, top10))
        row.update(
            refine20=t_refine,
            top10=_found(refined, top10),
            signed=_found(signed[0], top10),
            beat=refined.meta["agreement"][task.name].get("random_beat_kth", float("nan")),
            default_rho=spearman(default_scores.values[0].ravel(), e),
            default_fe=t_default / fwd,
            refine_k=refine_k,
        )
        rows.append(row)
        cells = " ".join(f"{rho:5.2f}/{fe:4.1f}" for rho, fe in row["settings"].values())
        print(
            f"{task.name:22s} {fwd:6.2f} {t_exact:8.1f} {cells}"
            f" {row['default_rho']:5.2f}/{row['default_fe']:4.1f} {t_refine / t_exact:9.3f}"
            f" {row['top10']:5d} {row['signed']:6d} {row['beat']:5.2f}",
            flush=True,
        )
    print("\n(each setting: Spearman with exact over all heads / cost in forward-equivalents;")
    print(" refine20: time of attribution + refine=20 over a full exact sweep; top10: exact top-10")
    print(" heads scored exactly with refine=20; signed: the same with refine_sensitive=0; beat:")
    print(" random-sample heads above the 20th refined)")
    print("\nmean over tasks")
    exact_fe = np.mean([r["exact"] / r["fwd"] for r in rows])
    print(f"  exact sweep: {exact_fe:.1f} forward-equivalents")
    for label, _ in SETTINGS:
        rho = np.nanmean([r["settings"][label][0] for r in rows])
        fe = np.mean([r["settings"][label][1] for r in rows])
        print(f"  {label:10s}: Spearman {rho:.3f}, {fe:.1f} forward-equivalents")
    print(
        f"  {default}: Spearman {np.nanmean([r['default_rho'] for r in rows]):.3f},"
        f" {np.mean([r['default_fe'] for r in rows]):.1f} forward-equivalents"
    )
    ratio = np.mean([r["refine20"] / r["exact"] for r in rows])
    print(f"  attribution + refine=20 / exact sweep: {ratio:.3f} (target <= 1/3)")
    for key, label in (("top10", "refine=20"), ("signed", "refine=20, refine_sensitive=0")):
        counts = [r[key] for r in rows]
        print(f"  exact top-10 among exact cells, {label}: {counts} (mean {np.mean(counts):.2f})")
    print("  refine=K: cost in forward-equivalents; exact top-10 among exact cells (mean, min)")
    for k in ks:
        costs, counts = zip(*(r["refine_k"][k] for r in rows), strict=True)
        print(f"    K={k}: {np.mean(costs):.1f}; {np.mean(counts):.2f}, {min(counts)}")


if __name__ == "__main__":
    main()
