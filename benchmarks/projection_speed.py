"""How long does method="projection" take for every head, on the demo model and at 8B scale?

Prints, in one run:

1. the demo model (SmolLM2-135M-Instruct: 30 layers x 9 heads, vocabulary 49,152) on the whole
   operations suite through ``score_heads(..., method="projection")``: wall time, pairs kept;
2. random weights shaped like Llama-3-8B (32 layers x 32 heads, 8 key/value heads, head size
   128, hidden 4096, vocabulary 128,256), built one layer at a time (only the unembedding,
   2.1 GB in float32, lives throughout): the same per-layer computation as the method
   (sources' values through the layer's W_V, then :func:`count_outranking` with every layer's
   W_O and the unembedding), for as many (source, target) pairs as the operations suite has
   examples, with random token ids (a 128k tokenizer keeps most of them single tokens).

    python benchmarks/projection_speed.py                  # both, 2 threads
    python benchmarks/projection_speed.py --threads 1 --skip-8b

Random weights settle most pairs in the first vocabulary chunk; a trained model has more heads
that rank targets high, which costs more (the demo model's line measures that on real weights).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headwidget import load_suite, score_heads  # noqa: E402
from headwidget.methods.projection import COPYING_K, DEFAULT_K, count_outranking  # noqa: E402

LLAMA3_8B = {"layers": 32, "heads": 32, "kv_heads": 8, "head_dim": 128, "hidden": 4096}
LLAMA3_VOCAB = 128_256


def demo_model() -> tuple[torch.nn.Module, object, str]:
    cache = Path("/work/cache/smollm2")
    if cache.is_dir():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32)
        return model.eval(), AutoTokenizer.from_pretrained(cache), str(cache)
    from headwidget.demo import load_demo_model

    model, tokenizer = load_demo_model()
    return model, tokenizer, "headwidget.demo.load_demo_model()"


def bench_demo(chunk_size: int | None) -> None:
    model, tokenizer, where = demo_model()
    tasks = load_suite("operations", n_shots=0)
    options = {} if chunk_size is None else {"chunk_size": chunk_size}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        scores = score_heads(
            model, tokenizer, tasks, method="projection", progress=False, **options
        )
    seconds = time.perf_counter() - start
    kept = {t: n for t, n in scores.meta["pairs"].items() if t not in scores.meta["dropped"]}
    n_heads = scores.values.shape[1] * scores.values.shape[2]
    print(f"demo model ({where}): {n_heads} heads, {len(kept)} of {len(tasks)} operations")
    print(
        f"  ({sum(kept.values())} single-token pairs; left out, too few: {scores.meta['dropped']})"
    )
    print(f"  all heads, all kept operations: {seconds:.1f} s")


def bench_8b(n_pairs: int, n_copying: int, chunk_size: int, seed: int = 0) -> None:
    shape = LLAMA3_8B
    hidden, hd, n_heads, n_kv = (
        shape["hidden"],
        shape["head_dim"],
        shape["heads"],
        shape["kv_heads"],
    )
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    unembed = torch.randn(LLAMA3_VOCAB, hidden, generator=gen) * 0.02
    sources = torch.randn(n_pairs, hidden, generator=gen)
    x = sources / sources.pow(2).mean(-1, keepdim=True).sqrt()  # the pre-attention RMSNorm
    pair_source = torch.arange(n_pairs)
    pair_target = torch.randint(0, LLAMA3_VOCAB, (n_pairs,), generator=gen)
    # k = 1 for the copying operations' pairs, 10 for the others (the method's defaults)
    cap = torch.full((n_pairs,), DEFAULT_K)
    cap[:n_copying] = COPYING_K
    built = time.perf_counter() - start
    counted = 0.0
    hits = 0
    for _ in range(shape["layers"]):
        t0 = time.perf_counter()
        w_v = torch.randn(hidden, n_kv * hd, generator=gen) * 0.02
        w_o = torch.randn(n_heads, hd, hidden, generator=gen) * 0.02
        built += time.perf_counter() - t0
        t0 = time.perf_counter()
        values = (x @ w_v).reshape(n_pairs, n_kv, hd)[:, torch.arange(n_heads) // (n_heads // n_kv)]
        counts = count_outranking(values, w_o, unembed, pair_source, pair_target, cap, chunk_size)
        hits += int((counts < cap).sum())
        counted += time.perf_counter() - t0
        del w_v, w_o
    total = shape["layers"] * n_heads
    print(
        f"Llama-3-8B shape, random weights: {total} heads x {n_pairs} pairs, vocabulary"
        f" {LLAMA3_VOCAB:,}: {counted:.1f} s ({counted / total * 1000:.0f} ms a head;"
        f" making the random weights took another {built:.1f} s)"
    )
    print(f"  pairs in their head's top k: {hits} of {total * n_pairs} (random weights: chance)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=None, help="default: the method's")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-8b", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    if not args.skip_demo:
        bench_demo(args.chunk_size)
    if not args.skip_8b:
        tasks = load_suite("operations", n_shots=0)
        n_pairs = sum(len(t) for t in tasks)
        n_copying = sum(len(t) for t in tasks if t.name in ("copying", "name copying"))
        from headwidget.methods.projection import ProjectionMethod

        chunk = args.chunk_size or ProjectionMethod.check_options()["chunk_size"]
        bench_8b(n_pairs, n_copying, chunk)


if __name__ == "__main__":
    main()
