"""What do two torchrun ranks cost against one process, on the same sweep (CPU, gloo)?

Saves a random-weight Llama (default: 8 layers, 8 heads, hidden 256) and 4 tasks of 24
examples, then runs the same ``headwidget score`` sweep (exact mean ablation, 4 x 8 = 32
(task, layer) units) as one process and as ``torchrun --nproc_per_node 2``, each rank on one
thread, and prints for both: wall time (process start to exit), sweep time (``meta["seconds"]``:
model loaded to file written) and CPU time of all processes together. The CPU-time ratio is
the overhead of ranks (interpreter and model start-up per rank, each rank's clean pass and
clean-accuracy pass for the tasks it holds units of, the gather), and stays meaningful on a
loaded machine, where wall times do not. It also measures one process's start-up alone, to
give the overhead without it, and checks that both files hold the same scores.

    python benchmarks/cli_ranks.py
    python benchmarks/cli_ranks.py --layers 12 --examples 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
from tiny_models import WORDS, tiny_model, word_tokenizer  # noqa: E402

from headwidget import HeadScores  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the children) of one command."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--examples", type=int, default=24)
    parser.add_argument("--tasks", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="headwidget-ranks-"))
    tok = word_tokenizer()
    model = tiny_model(
        "llama", vocab_size=len(tok), n_layers=args.layers, hidden_size=256,
        intermediate_size=1024, num_attention_heads=8, num_key_value_heads=8,
        max_position_embeddings=128,
    )  # fmt: skip
    model.save_pretrained(work / "model")
    tok.save_pretrained(work / "model")
    words = [w for w in WORDS if w.isalpha()]
    with open(work / "tasks.jsonl", "w") as fh:
        for t in range(args.tasks):
            for i in range(args.examples):
                prompt = " ".join(words[(t * 7 + i * 3 + k) % len(words)] for k in range(24))
                answer = " " + words[(t + i) % len(words)]
                fh.write(json.dumps({"task": f"task{t}", "prompt": prompt, "answer": answer}))
                fh.write("\n")
    score = ["score", str(work / "model"), "--tasks", str(work / "tasks.jsonl"), "-q"]
    one = [sys.executable, "-m", "headwidget", *score, "-o", str(work / "one.npz")]
    two = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "headwidget", *score, "-o", str(work / "two.npz"),
    ]  # fmt: skip
    rows = []
    for label, command, name in (("1 process", one, "one"), ("2 ranks", two, "two")):
        wall, cpu = _run(command)
        sweep = HeadScores.load(work / f"{name}.npz").meta["seconds"]
        rows.append((label, wall, sweep, cpu))
    # start-up of one process (interpreter, torch, transformers, the model), measured apart
    startup = [
        sys.executable, "-c",
        "import sys; from headwidget.sweep import run_sweep;"
        " from transformers import AutoModelForCausalLM;"
        " AutoModelForCausalLM.from_pretrained(sys.argv[1])",
        str(work / "model"),
    ]  # fmt: skip
    start_wall, start_cpu = _run(startup)
    a, b = HeadScores.load(work / "one.npz"), HeadScores.load(work / "two.npz")
    same = np.array_equal(a.values, b.values) and a.baseline == b.baseline
    n_units = args.tasks * args.layers
    print(
        f"Llama {args.layers} layers x 8 heads, hidden 256; {args.tasks} tasks x"
        f" {args.examples} examples; {n_units} units; {os.cpu_count()} CPUs,"
        f" load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':10s} {'wall s':>8s} {'sweep s':>8s} {'CPU s':>8s}")
    for label, wall, sweep, cpu in rows:
        print(f"{label:10s} {wall:8.1f} {sweep:8.1f} {cpu:8.1f}")
    (_, w1, s1, c1), (_, w2, s2, c2) = rows
    print(
        f"2 ranks vs 1: wall x{w2 / w1:.2f}, sweep x{s2 / s1:.2f} (ideal x0.50),"
        f" CPU time +{100 * (c2 / c1 - 1):.0f} %; same scores: {same}"
    )
    e1, e2 = c1 - start_cpu, c2 - 2 * start_cpu
    print(
        f"start-up of one process: {start_wall:.1f} s wall, {start_cpu:.1f} CPU s; CPU time"
        f" without start-ups: 1 process {e1:.1f} s, 2 ranks {e2:.1f} s"
        f" (+{100 * (e2 / e1 - 1):.0f} %)"
    )


if __name__ == "__main__":
    main()
