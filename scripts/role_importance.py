"""Do the heads that matter for the operations tasks have attention roles? Measured on the demo.

Runs :func:`headwidget.detect_heads` on the demo model (SmolLM2-135M-Instruct) and loads its
shipped operations maps (``headwidget.demo.load_demo_scores("operations")``). For each task the
model can do (clean accuracy >= ``--min-accuracy``), the *top-10 share* is the part of the
task's summed positive importance that its 10 most important heads hold; it is split by role
(a head has a role when its role score is at least ``--threshold``; a head may have several)
and set against 10 random heads (the mean over ``--draws`` seeded draws). Then the role heads
that matter least: those whose largest share of any task's positive importance is smallest.

Prints a Markdown section; ``--write docs/demo_model.md`` also puts it in that file between
``<!-- role-importance:start -->`` and ``<!-- role-importance:end -->`` (replacing the last
one, else before the closing "_Computed in" line). Re-run it whenever the shipped maps change.

    python scripts/role_importance.py --write docs/demo_model.md
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch

from headwidget import HeadScores, detect_heads
from headwidget.demo import load_demo_model, load_demo_scores
from headwidget.methods.roles import ROLE_THRESHOLD

START, END = "<!-- role-importance:start -->", "<!-- role-importance:end -->"


def shares(values: np.ndarray) -> np.ndarray:
    """Each head's share of the task's summed positive importance (``[layers, heads]``)."""
    positive = np.clip(np.nan_to_num(values), 0, None)
    total = positive.sum()
    return positive / total if total > 0 else positive


def role_table(
    ops: HeadScores, roles: HeadScores, tasks: list[str], k: int, threshold: float, draws: int,
    seed: int,
) -> tuple[list[str], dict[str, np.ndarray]]:  # fmt: skip
    """Markdown rows per task, and per column the (top, random) shares over tasks."""
    has = {name: roles[name] >= threshold for name in roles.tasks}
    has["no role"] = ~np.any(np.stack(list(has.values())), axis=0)
    rng = np.random.default_rng(seed)
    n_heads = ops.n_layers * ops.n_heads
    columns = ["top-k", *has]
    totals = {column: np.zeros((len(tasks), 2)) for column in columns}
    rows = []
    for t, task in enumerate(tasks):
        share = shares(ops[task]).ravel()
        top = np.zeros(n_heads, bool)
        top[[layer * ops.n_heads + head for layer, head, _ in ops.top_heads(task, k)]] = True
        picks = np.zeros((draws, n_heads), bool)
        for d in range(draws):
            picks[d, rng.choice(n_heads, k, replace=False)] = True
        cells = []
        for column in columns:
            mask = np.ones(n_heads, bool) if column == "top-k" else has[column].ravel()
            mine = float(share[top & mask].sum())
            chance = float(((picks & mask).astype(float) @ share).mean()) if draws else np.nan
            totals[column][t] = mine, chance
            cells.append(f"{mine:.3f} / {chance:.3f}")
        rows.append(f"| {task} | " + " | ".join(cells) + " |")
    return rows, totals


def unused_role_heads(
    ops: HeadScores, roles: HeadScores, tasks: list[str], threshold: float, n: int
) -> list[str]:
    """Per role, the ``n`` heads with that role whose largest share of any task is smallest."""
    best = np.max(np.stack([shares(ops[task]) for task in tasks]), axis=0)  # [layers, heads]
    uniform = 1 / (ops.n_layers * ops.n_heads)
    lines = []
    for name in roles.tasks:
        heads = np.argwhere(roles[name] >= threshold)
        if not len(heads):
            lines.append(f"- *{name}*: no head passes {threshold:g}")
            continue
        order = sorted(heads.tolist(), key=lambda lh: best[lh[0], lh[1]])
        below = sum(best[layer, head] < uniform for layer, head in heads)
        shown = ", ".join(
            f"L{layer}H{head} ({roles[name][layer, head]:.2f}; {best[layer, head]:.4f})"
            for layer, head in order[:n]
        )
        lines.append(
            f"- *{name}* ({len(heads)} heads, {below} never above the uniform share"
            f" {uniform:.4f}): {shown}"
        )
    return lines


def section(args: argparse.Namespace) -> str:
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model, tokenizer = load_demo_model()
    roles = detect_heads(
        model, tokenizer, n_sequences=args.n_sequences, seq_len=args.seq_len, seed=args.seed,
        progress=False,
    )  # fmt: skip
    ops = load_demo_scores("operations")
    tasks = [t for t in ops.tasks if ops.accuracy.get(t, 1.0) >= args.min_accuracy]
    left_out = [t for t in ops.tasks if t not in tasks]
    rows, totals = role_table(ops, roles, tasks, args.k, args.threshold, args.draws, args.seed)
    columns = list(totals)
    counts = {name: int((roles[name] >= args.threshold).sum()) for name in roles.tasks}
    counts["no role"] = int(
        (~np.any(np.stack([roles[n] >= args.threshold for n in roles.tasks]), axis=0)).sum()
    )
    examples = sorted(set(ops.meta.get("examples", {}).values()))
    k = args.k
    lines = [START, "## Which roles the important heads have", ""]
    lines.append(
        f"Measured by `python scripts/role_importance.py`: `detect_heads` on the demo model"
        f" ({args.n_sequences} random and {args.n_sequences} repeated sequences of"
        f" {args.seq_len} tokens after BOS, seed {args.seed}; a head has a role when at least"
        f' {args.threshold:g} of its attention falls on the role\'s pattern, `rows="pattern"`)'
        f' against the shipped operations maps (`load_demo_scores("operations")`: method'
        f" {ops.method}, {ops.meta.get('ablation')} ablation, {ops.meta.get('metric')}, "
        f"{'/'.join(map(str, examples))} examples per task, computed"
        f" {str(ops.meta.get('created', '?'))[:10]}). Each cell: the share of the task's summed"
        f" positive importance held by its top-{k} heads that have the role / the same for"
        f" {k} random heads (mean of {args.draws} seeded draws). Tasks with clean accuracy"
        f" below {args.min_accuracy:g} are left out"
        + (f" ({', '.join(left_out)})." if left_out else ".")
        + " A head may have several roles, so the role columns overlap; *no role*: none."
    )
    lines += ["", "| task | " + " | ".join(c if c != "top-k" else f"top-{k}" for c in columns)
              + " |", "|---|" + "---:|" * len(columns)]  # fmt: skip
    lines += rows
    means = [totals[c].mean(axis=0) for c in columns]
    lines.append("| **mean** | " + " | ".join(f"**{m:.3f} / {r:.3f}**" for m, r in means) + " |")
    lines.append(
        "| heads with the role | "
        + " | ".join(str(counts.get(c, ops.n_layers * ops.n_heads)) for c in columns)
        + " |"
    )
    top, chance = totals["top-k"].mean(axis=0)
    ranked = sorted(roles.tasks, key=lambda name: -totals[name][:, 0].mean())
    n_all = ops.n_layers * ops.n_heads
    lines += [
        "",
        f"In short: a task's top {k} heads hold {top:.2f} of its positive importance on average"
        f" ({chance:.3f} for {k} random heads); {totals['no role'][:, 0].mean() / top:.0%} of"
        f" that is in heads with none of these roles ({counts['no role']} of {n_all} heads)."
        f" By role: "
        + "; ".join(
            f"{name} {totals[name][:, 0].mean():.3f} (random {totals[name][:, 1].mean():.3f},"
            f" {counts[name]} heads)"
            for name in ranked
        )
        + ".",
    ]
    lines += ["", "Role heads that matter least (role score; largest share of any task's"
              " positive importance):", ""]  # fmt: skip
    lines += unused_role_heads(ops, roles, tasks, args.threshold, args.bottom)
    lines += ["", f"_Computed in {time.perf_counter() - started:.0f} s on {args.threads}"
              f" thread{'s' if args.threads != 1 else ''}._", END]  # fmt: skip
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    """Put ``text`` into ``path``: over the marked section if there is one, else before the
    closing "_Computed in" line, else at the end."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    marked = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if marked.search(old):
        new = marked.sub(lambda _: text, old)
    else:
        closing = re.search(r"^_Computed in .*$", old, re.M)
        at = closing.start() if closing else len(old)
        new = old[:at].rstrip("\n") + "\n\n" + text + "\n\n" + old[at:]
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10, help="top heads per task (10)")
    parser.add_argument("--threshold", type=float, default=ROLE_THRESHOLD)
    parser.add_argument("--draws", type=int, default=1000, help="random draws per task")
    parser.add_argument("--n-sequences", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-accuracy", type=float, default=0.2)
    parser.add_argument("--bottom", type=int, default=3, help="least important heads per role")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", type=Path, metavar="DOC.md", help="also put it in this file")
    args = parser.parse_args()
    text = section(args)
    print(text)
    if args.write:
        write(args.write, text)


if __name__ == "__main__":
    main()
