"""Check the Spearman-Brown projection against a measured reliability curve.

For each task of a scores file with per-example effects (``HeadScores.effects``), measures the
split-half reliability of maps made from random subsets of n = 4, 8, 16, ... of its examples
(the mean over ``--subsets`` subsets; all its examples once at the end) and prints it next to
the Spearman-Brown projection from the smallest n, ``k r / (1 + (k - 1) r)`` with
``k = n / n_smallest``: the projection :meth:`HeadScores.examples_needed` relies on.

    python scripts/reliability_curve.py scores.npz --tasks copying counting
    python scripts/reliability_curve.py --synthetic /tmp/synthetic.npz   # write one, then check
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headwidget import HeadScores
from headwidget.scores.uncertainty import spearman_brown, split_half, task_seed


@dataclass(frozen=True)
class Point:
    """The measured reliability at ``n`` examples (``spread``: the standard deviation over
    the ``subsets`` it is the mean of) and the projection from the curve's first point."""

    n: int
    measured: float
    spread: float
    subsets: int
    projected: float


def curve(
    effects: np.ndarray, *, smallest: int = 4, subsets: int = 20, seed: int = 0
) -> list[Point]:
    """The measured and projected reliability of ``effects`` (``[layers, heads, examples]``)
    at ``smallest``, twice that, ... and at all its examples."""
    total = effects.shape[2]
    sizes = []
    n = smallest
    while n < total:
        sizes.append(n)
        n *= 2
    sizes.append(total)
    rng = np.random.default_rng(seed)
    measured = []
    for n in sizes:
        draws = subsets if n < total else 1
        values = []
        for _ in range(draws):
            chosen = np.sort(rng.choice(total, size=n, replace=False))
            values.append(split_half(effects[..., chosen], rng).reliability)
        measured.append((n, float(np.mean(values)), float(np.std(values)), draws))
    first_n, first_r = measured[0][0], measured[0][1]
    return [
        Point(n, r, spread, draws, spearman_brown(first_r, n / first_n))
        for n, r, spread, draws in measured
    ]


def synthetic(path: Path, n_examples: int = 128, seed: int = 0) -> Path:
    """Write a scores file of 3 synthetic tasks (30 layers x 9 heads, the demo model's size):
    sparse true maps of differing strength under heavy-tailed per-example noise (Student-t, 3
    degrees of freedom), with a quarter of the examples carrying most of the effect."""
    rng = np.random.default_rng(seed)
    shape = (30, 9)
    effects = {}
    for name, strength in (("strong", 2.0), ("medium", 0.6), ("weak", 0.2)):
        true = np.where(rng.random(shape) < 0.1, rng.uniform(0.5, 1.5, shape), 0.0) * strength
        carriers = 1 + 3 * (rng.random(n_examples) < 0.25)
        noise = rng.standard_t(3, size=(*shape, n_examples))
        effects[name] = (true[..., None] * carriers + noise).astype(np.float32)
    values = np.stack([e.mean(-1) for e in effects.values()])
    meta = {"model": "synthetic", "metric": "logprob", "synthetic_seed": seed}
    return HeadScores(values, list(effects), meta=meta, effects=effects).save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="?", type=Path, help="a HeadScores file with effects")
    parser.add_argument("--tasks", nargs="+", help="the tasks to check (default: all with effects)")
    parser.add_argument("--smallest", type=int, default=4, help="the first n (4)")
    parser.add_argument("--subsets", type=int, default=20, help="random subsets per n (20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", type=Path, metavar="OUT.npz", help="write a synthetic file")
    args = parser.parse_args(argv)
    if args.synthetic is not None:
        args.scores = synthetic(args.synthetic, seed=args.seed)
        print(f"wrote {args.scores}")
    if args.scores is None:
        parser.error("give a scores file or --synthetic OUT.npz")
    scores = HeadScores.load(args.scores)
    tasks = args.tasks or [name for name in scores.tasks if name in scores.effects]
    if not tasks:
        parser.error(f"{args.scores} holds no per-example effects")
    for name in tasks:
        if name not in scores.effects:
            print(f"\n{name}: no per-example effects")
            continue
        points = curve(
            scores.effects[name],
            smallest=args.smallest,
            subsets=args.subsets,
            seed=task_seed(args.seed, name)[1] ^ args.seed,
        )
        print(f"\n{name}: reliability measured (mean ± sd over subsets) vs projected from n ="
              f" {points[0].n}")  # fmt: skip
        print(f"{'n':>6} {'measured':>9} {'± sd':>7} {'projected':>10} {'difference':>11}")
        for p in points:
            print(
                f"{p.n:6d} {p.measured:9.3f} {p.spread:7.3f} {p.projected:10.3f}"
                f" {p.projected - p.measured:+11.3f}"
            )


if __name__ == "__main__":
    main()
