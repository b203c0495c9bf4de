"""How sure each shipped demo map is: the README's table, printed as markdown.

For every task of ``load_demo_scores("operations")`` and ``load_demo_scores("cognitive")`` (or
the score files given): examples in the map and held out, clean accuracy, split-half
reliability (``HeadScores.reliability``), the examples a reliability of 0.9 needs
(``examples_needed``), cells significant at a 5 % false discovery rate (``significant``) and
the attribution / exact agreement over the refined heads (``meta["agreement"]``).

    python scripts/demo_maps_table.py
    python scripts/demo_maps_table.py /tmp/operations.npz
"""

from __future__ import annotations

import argparse

from headwidget import HeadScores
from headwidget.demo import DEMO_SUITES, load_demo_scores


def table(scores: HeadScores, min_accuracy: float = 0.2) -> str:
    """The markdown rows of ``scores``' tasks (see the module doc)."""
    reliability = scores.reliability()
    needed = scores.examples_needed(0.9)
    significant = scores.significant().sum(axis=(1, 2))
    held_out = scores.meta.get("held_out", {})
    agreement = scores.meta.get("agreement", {})
    cells = scores.n_layers * scores.n_heads
    lines = [
        "| task | examples (held out) | clean accuracy | reliability | examples for 0.9"
        f" | significant cells of {cells} | Spearman, refined |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t, task in enumerate(scores.tasks):
        accuracy = scores.accuracy.get(task, float("nan"))
        fails = " (fails)" if accuracy < min_accuracy else ""
        r = reliability[task]
        noisy = " (noisy)" if r < 0.7 else ""
        spearman = agreement.get(task, {}).get("spearman")
        lines.append(
            f"| {task} | {scores.meta['examples'][task]} ({held_out.get(task, '?')})"
            f" | {accuracy:.2f}{fails} | {r:.2f}{noisy} | {needed[task] or '—'}"
            f" | {int(significant[t])} | {'—' if spearman is None else f'{spearman:.2f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="score files (default: the shipped maps)")
    args = parser.parse_args()
    sources = args.files or list(DEMO_SUITES)
    for source in sources:
        scores = HeadScores.load(source) if args.files else load_demo_scores(source)
        print(f"\n{source}: {scores.method}, {scores.meta.get('metric')} metric\n")
        print(table(scores))


if __name__ == "__main__":
    main()
