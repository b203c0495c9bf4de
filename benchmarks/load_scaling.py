"""How HeadScores.load and as_task_list scale with the number of tasks (expected: linearly).

Saves scores of N tasks (1 layer x 2 heads, so the header's task list dominates) and loads them,
and checks a list of N tasks with ``as_task_list``, for doubling N; prints the seconds and the
ratio to the previous N (about 2 for linear time, about 4 for quadratic).

    python benchmarks/load_scaling.py               # N = 10,000 ... 80,000
    python benchmarks/load_scaling.py --largest 320000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from headwidget import HeadScores, Task
from headwidget.tasks import as_task_list


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smallest", type=int, default=10_000)
    parser.add_argument("--largest", type=int, default=80_000)
    args = parser.parse_args()
    print(f"{'tasks':>8} {'load s':>8} {'ratio':>6} {'as_task_list s':>15} {'ratio':>6}")
    previous = None
    with tempfile.TemporaryDirectory() as folder:
        n = args.smallest
        while n <= args.largest:
            names = [f"task number {i}" for i in range(n)]
            path = HeadScores(np.zeros((n, 1, 2), np.float32), names).save(Path(folder) / "s")
            tasks = [Task(name, [("a", " b")]) for name in names]
            load = seconds(lambda path=path: HeadScores.load(path))
            check = seconds(lambda tasks=tasks: as_task_list(tasks))
            ratios = (
                ("", "")
                if previous is None
                else (f"{load / previous[0]:.1f}", f"{check / previous[1]:.1f}")
            )
            print(f"{n:>8,} {load:>8.3f} {ratios[0]:>6} {check:>15.4f} {ratios[1]:>6}")
            previous = (load, check)
            n *= 2


if __name__ == "__main__":
    main()
