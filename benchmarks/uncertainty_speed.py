"""How long a map's uncertainty takes: ``sem``, ``reliability()`` and ``significant()`` of
synthetic per-example effects, by default 21 tasks x 80 layers x 64 heads x 100 examples (a
70B-class model's sweep); the target is under a second for the three together.

Each task's effects: a sparse true map (2% of heads with a drop of 0.5-3, a random sign) plus
heavy-tailed per-example noise (Student-t, 3 degrees of freedom, scale 1) and, in a tenth of the
examples, a large common drop (the "3 of 12 examples drop by 10" shape). Prints each measure's
seconds (best of ``--repeat`` runs) and the total, and a summary of what was measured.

    python benchmarks/uncertainty_speed.py
    python benchmarks/uncertainty_speed.py --tasks 5 --layers 30 --heads 9 --examples 8
    python benchmarks/uncertainty_speed.py --strength 0   # pure noise

OpenBLAS threads on a machine whose cores are busy make small matrix products 10-100x slower;
the uncertainty code keeps its products under OpenBLAS's threading threshold, so the figures
hold on a loaded machine too (compare with ``OPENBLAS_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from headwidget import HeadScores


def synthetic(
    n_tasks: int, n_layers: int, n_heads: int, n_examples: int, strength: float = 1.0, seed: int = 0
) -> HeadScores:
    rng = np.random.default_rng(seed)
    shape = (n_layers, n_heads)
    effects = {}
    for t in range(n_tasks):
        size = rng.uniform(0.5, 3.0, shape) * rng.choice([-1, 1], shape) * strength
        true = np.where(rng.random(shape) < 0.02, size, 0.0)
        noise = rng.standard_t(3, size=(*shape, n_examples))
        burst = (rng.random(n_examples) < 0.1) * rng.uniform(5, 10, n_examples)
        effects[f"task {t}"] = (true[..., None] * (1 + burst) + noise).astype(np.float32)
    values = np.stack([e.mean(-1) for e in effects.values()])
    return HeadScores(values, list(effects), effects=effects)


def best(run, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=21)
    parser.add_argument("--layers", type=int, default=80)
    parser.add_argument("--heads", type=int, default=64)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument(
        "--strength", type=float, default=1.0, help="the true map's scale (0: noise)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scores = synthetic(args.tasks, args.layers, args.heads, args.examples, args.strength)
    print(
        f"{args.tasks} tasks x {args.layers} layers x {args.heads} heads x {args.examples}"
        f" examples ({sum(e.nbytes for e in scores.effects.values()) / 2**20:.0f} MiB of effects)"
    )
    t_sem, sem = best(lambda: scores.sem, args.repeat)
    t_rel, reliability = best(lambda: scores.reliability(), args.repeat)
    t_sig, significant = best(lambda: scores.significant(), args.repeat)
    print(f"sem            {t_sem:7.3f} s")
    print(f"reliability()  {t_rel:7.3f} s")
    print(f"significant()  {t_sig:7.3f} s")
    print(f"total          {t_sem + t_rel + t_sig:7.3f} s")
    rel = np.array(list(reliability.values()))
    splits = [scores._split_half(task, 0).n_splits for task in scores.tasks]
    print(
        f"reliability {rel.min():.3f}-{rel.max():.3f} (splits per task {min(splits)}-"
        f"{max(splits)}); significant cells per task {significant.sum(axis=(1, 2)).mean():.0f}"
        f" of {args.layers * args.heads}; median sem {np.nanmedian(sem):.3f}"
    )


if __name__ == "__main__":
    main()
