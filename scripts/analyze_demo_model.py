"""What the demo model's shipped maps show, measured: the README's claims come from this script.

1. Induction and previous-token heads of SmolLM2-135M-Instruct, found from attention patterns on
   repeated random tokens (no task data), and where they rank in the maps of copying-type tasks.
2. Top-k vs random-k: each task's k top-scored heads ablated together vs. k random heads, on
   held-out examples (the task's examples that the shipped maps were not computed from), for
   every task the model can do (clean accuracy on the scored examples ≥ ``--min-accuracy``).
3. How the maps differ: correlation of the maps within and across categories, and where the
   importance sits across layers.

Writes the report as Markdown (default ``docs/demo_model.md``) and prints it.

    python scripts/analyze_demo_model.py
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
from pathlib import Path

import numpy as np
import torch

from headwidget import HeadScores, Task, load_suite
from headwidget.demo import load_demo_model, load_demo_scores

COPYING_TASKS = ("copying", "name copying")


def attention_pattern_scores(
    model, tokenizer, *, length: int = 40, n_sequences: int = 8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(induction, previous_token)``, each ``[layers, heads]``: on sequences of ``length``
    random tokens repeated once, the mean attention from each second-half position to the token
    after its earlier occurrence (induction), and from each position to the one before it."""
    generator = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    vocab = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
    pick = vocab[torch.randint(len(vocab), (n_sequences, length), generator=generator)]
    ids = torch.cat([pick, pick], dim=1)  # [batch, 2 * length]
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")  # attention weights are only returned by eager
    try:
        with torch.no_grad():
            attentions = model(input_ids=ids, output_attentions=True).attentions
    finally:
        model.set_attn_implementation(previous)
    pattern = torch.stack(attentions, dim=1).float()  # [batch, layers, heads, query, key]
    second = torch.arange(length, 2 * length)
    induction = pattern[:, :, :, second, second - length + 1].mean(dim=(0, 3))
    rows = torch.arange(1, 2 * length)
    previous_token = pattern[:, :, :, rows, rows - 1].mean(dim=(0, 3))
    return induction.numpy(), previous_token.numpy()


def rank_of(scores: HeadScores, task: str, layer: int, head: int) -> int:
    """1-based rank of a head in a task's map (1 = most important)."""
    order = [(la, h) for la, h, _ in scores.top_heads(task, scores.n_layers * scores.n_heads)]
    return order.index((layer, head)) + 1


def held_out(scores: HeadScores, task: str) -> Task:
    """The task's built-in examples that the shipped maps were not computed from."""
    settings = dict(scores.meta["suite"], tasks=[task])
    scored = {example.prompt for example in load_suite(**settings)[0].examples}
    (full,) = load_suite(**{**settings, "max_examples": None})
    return Task(task, [e for e in full.examples if e.prompt not in scored], category=full.category)


def describe(name: str, scores: HeadScores) -> str:
    """How a suite's maps were made and how sure they are: method, n, split-half reliability."""
    refine = scores.meta.get("refine")
    method = scores.method + (f" (refine={refine})" if scores.method == "attribution" else "")
    n = sorted(set(scores.meta.get("examples", {}).values()) or {0})
    reliability = [r for r in scores.reliability().values() if np.isfinite(r)]
    spread = f"{min(reliability):.2f}-{max(reliability):.2f}" if reliability else "unknown"
    examples = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    return (
        f"{name}, {len(scores.tasks)} tasks, {method}, {scores.meta.get('ablation', '?')}"
        f" ablation, {scores.meta.get('metric', '?')}, n = {examples} examples a task,"
        f" split-half reliability {spread}"
    )


def heads_section(model, tokenizer, suites: dict[str, HeadScores], top: int) -> list[str]:
    induction, previous = attention_pattern_scores(model, tokenizer)
    lines = ["## Induction and previous-token heads", ""]
    lines.append(
        "Found from attention patterns alone: 8 sequences of 40 random tokens, each repeated"
        " once. *Induction*: mean attention from a token of the repeat to the token after its"
        " first occurrence; *previous token*: mean attention to the token just before."
    )
    lines.append("")
    operations = suites["operations"]
    tasks = [t for t in COPYING_TASKS if t in operations.tasks]
    header = "| head | kind | pattern score | " + " | ".join(f"rank in {t}" for t in tasks)
    lines += [header + " |", "|---|---|---:|" + "---:|" * len(tasks)]
    for kind, matrix in (("induction", induction), ("previous token", previous)):
        flat = np.argsort(-matrix.ravel())[:top]
        for index in flat:
            layer, head = divmod(int(index), matrix.shape[1])
            ranks = " | ".join(str(rank_of(operations, t, layer, head)) for t in tasks)
            lines.append(f"| L{layer} H{head} | {kind} | {matrix[layer, head]:.2f} | {ranks} |")
    n = operations.n_layers * operations.n_heads
    lines += ["", f"Ranks are out of {n} heads (1 = the map's most important head)."]
    return lines


def validation_section(
    model,
    tokenizer,
    suites: dict[str, HeadScores],
    ks: tuple[int, ...],
    n_random: int,
    min_accuracy: float,
) -> list[str]:
    lines = ["## Top-k vs random-k on held-out examples", ""]
    lines.append(
        f"Each task's k top-scored heads ablated together (mean ablation) vs. {n_random} draws"
        f" of k random heads; accuracy on the task's held-out examples. Tasks whose clean"
        f" accuracy on the scored examples is below {min_accuracy} are left out (the model"
        " fails them, so their maps are noise)."
    )
    lines += [
        "",
        "| suite | task | held-out | clean | "
        + " | ".join(f"top-{k} / random-{k}" for k in ks)
        + " |",
        "|---|---|---:|---:|" + "---:|" * len(ks),
    ]
    wins = total = 0
    for name, scores in suites.items():
        for task in scores.tasks:
            if scores.accuracy.get(task, 0.0) < min_accuracy:
                continue
            examples = held_out(scores, task)
            check = scores.validate(model, tokenizer, examples, k=ks, n_random=n_random, seed=0)
            cells = []
            for k in ks:
                top, rand = check.top[task][k], float(np.mean(check.random[task][k]))
                wins += top < rand
                total += 1
                cells.append(f"{top:.2f} / {rand:.2f}")
            lines.append(
                f"| {name} | {task} | {len(examples)} | {check.clean[task]:.2f} | "
                + " | ".join(cells)
                + " |"
            )
    lines += ["", f"Top-k hurt more than random-k in {wins} of {total} (task, k) cases."]
    return lines


def maps_section(suites: dict[str, HeadScores]) -> list[str]:
    lines = ["## How the maps differ", ""]
    for name, scores in suites.items():
        share = scores.normalized("share")
        flat = share.values.reshape(len(scores.tasks), -1)
        corr = np.corrcoef(flat)
        within, across = [], []
        for i, j in itertools.combinations(range(len(scores.tasks)), 2):
            a, b = scores.tasks[i], scores.tasks[j]
            same = scores.categories[a] is not None and scores.categories[a] == scores.categories[b]
            (within if same else across).append(corr[i, j])
        positive = np.clip(share.values, 0, None).sum(axis=2)  # [tasks, layers]
        positive = positive / positive.sum(axis=1, keepdims=True)
        thirds = np.array_split(np.arange(scores.n_layers), 3)
        parts = [positive[:, third].sum(axis=1).mean() for third in thirds]
        lines.append(f"**{name}** ({len(scores.tasks)} tasks):")
        lines.append("")
        if within:
            lines.append(
                f"- map correlation (Pearson, share scale): {np.mean(within):.2f} within a"
                f" category, {np.mean(across):.2f} across categories"
            )
        else:
            lines.append(f"- mean map correlation between tasks: {np.mean(across):.2f}")
        lines.append(
            "- share of positive importance in the first, middle and last third of the layers:"
            f" {parts[0]:.2f} / {parts[1]:.2f} / {parts[2]:.2f}"
        )
        peaks = []
        for task in scores.tasks:
            layer, head, value = scores.top_heads(task, 1)[0]
            peaks.append(f"{task} L{layer}H{head} ({value:+.2f})")
        lines.append("- top head per task (logprob drop): " + "; ".join(peaks))
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/demo_model.md"))
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--random", type=int, default=5, help="random draws per task and k")
    parser.add_argument("--min-accuracy", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    model, tokenizer = load_demo_model()
    suites = {name: load_demo_scores(name) for name in ("operations", "cognitive")}
    lines = ["# What the demo model's maps show", ""]
    lines.append(
        "Measured by `python scripts/analyze_demo_model.py` on SmolLM2-135M-Instruct and its"
        " shipped maps (`headwidget.demo.load_demo_scores`): "
        + "; ".join(describe(name, scores) for name, scores in suites.items())
        + "."
    )
    lines.append("")
    lines += ["## Clean accuracy per task (the scored examples)", ""]
    lines += ["| suite | task | accuracy |", "|---|---|---:|"]
    for name, scores in suites.items():
        for task in scores.tasks:
            lines.append(f"| {name} | {task} | {scores.accuracy[task]:.2f} |")
    lines.append("")
    lines += heads_section(model, tokenizer, suites, top=3)
    lines.append("")
    lines += validation_section(
        model, tokenizer, suites, tuple(args.k), args.random, args.min_accuracy
    )
    lines.append("")
    lines += maps_section(suites)
    lines.append(f"_Computed in {time.perf_counter() - started:.0f} s on {args.threads} threads._")
    text = "\n".join(lines) + "\n"
    # keep the sections other scripts wrote into the report between their markers
    # (scripts/role_importance.py, scripts/demo_paths.py)
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    marked = re.finditer(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->", old, re.S)
    kept = [m.group(0) for m in marked]
    if kept:
        text = text.replace("_Computed in", "\n\n".join(kept) + "\n\n_Computed in", 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
