"""How long does detect_heads take for every head of the demo model, and what would 8B cost?

Times ``detect_heads(model, tokenizer)`` with its defaults (all five built-in roles: 8 random
and 8 repeated sequences of 64 tokens after BOS, so two forward passes of 8 x 65 tokens) on the
demo model (SmolLM2-135M-Instruct, 30 layers x 9 heads) on the CPU, and prints the wall time,
the cost per head, and the forward-pass FLOPs it needs (2 x the decoder's weights per token,
plus the attention scores; the LM head is not run). The same arithmetic for Llama-3-8B's shape
is printed for comparison (no 8B model is run).

    python benchmarks/detect_heads_speed.py               # 1 thread, 3 runs after a warm-up
    python benchmarks/detect_heads_speed.py --threads 2 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headwidget import detect_heads  # noqa: E402
from headwidget.demo import load_demo_model  # noqa: E402

# Llama-3-8B: 32 layers x 32 query heads (8 key/value), head size 128, hidden 4096, MLP 14336
LLAMA3_8B = {"layers": 32, "heads": 32, "kv_heads": 8, "head_dim": 128, "hidden": 4096,
             "mlp": 14336}  # fmt: skip


def decoder_weights(layers: int, heads: int, kv_heads: int, head_dim: int, hidden: int,
                    mlp: int) -> int:  # fmt: skip
    """Weights one token multiplies through the decoder (attention + gated MLP, no norms)."""
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)  # q, o and k, v
    return layers * (attention + 3 * hidden * mlp)


def forward_flops(weights: int, layers: int, heads: int, head_dim: int, tokens: int,
                  length: int) -> float:  # fmt: skip
    """2 FLOPs per weight per token, plus Q·K and A·V: 4 x T x head_dim per query per head."""
    return 2.0 * weights * tokens + 4.0 * layers * heads * head_dim * length * tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n-sequences", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_demo_model()
    config = model.config
    options = dict(n_sequences=args.n_sequences, seq_len=args.seq_len, progress=False)
    started = time.perf_counter()
    scores = detect_heads(model, tokenizer, **options)  # warm-up (first eager call)
    first = time.perf_counter() - started
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        detect_heads(model, tokenizer, **options)
        times.append(time.perf_counter() - started)
    n_heads = scores.n_layers * scores.n_heads
    length = args.seq_len + 1
    tokens = 2 * args.n_sequences * length  # random and repeated sequences
    shape = dict(layers=config.num_hidden_layers, heads=config.num_attention_heads,
                 kv_heads=config.num_key_value_heads, head_dim=config.head_dim,
                 hidden=config.hidden_size, mlp=config.intermediate_size)  # fmt: skip
    flops = forward_flops(decoder_weights(**shape), shape["layers"], shape["heads"],
                          shape["head_dim"], tokens, length)  # fmt: skip
    best, median = min(times), statistics.median(times)
    print(
        f"demo model ({config.num_hidden_layers} layers x {config.num_attention_heads} heads ="
        f" {n_heads} heads), {args.threads} thread(s), torch {torch.__version__}"
    )
    print(
        f"  detect_heads, 5 roles, 2 passes of {args.n_sequences} x {length} tokens:"
        f" first {first:.2f} s, then median {median:.2f} s (best {best:.2f} s of {args.runs})"
    )
    print(
        f"  per head: {1e3 * median / n_heads:.1f} ms; forward FLOPs {flops / 1e9:.0f} GFLOP"
        f" ({flops / n_heads / 1e9:.2f} GFLOP per head), {flops / median / 1e9:.1f} GFLOP/s"
    )
    big = forward_flops(decoder_weights(**LLAMA3_8B), LLAMA3_8B["layers"], LLAMA3_8B["heads"],
                        LLAMA3_8B["head_dim"], tokens, length)  # fmt: skip
    n_big = LLAMA3_8B["layers"] * LLAMA3_8B["heads"]
    print(
        f"Llama-3-8B shape ({n_big} heads), same sequences: {big / 1e12:.1f} TFLOP in all,"
        f" {big / n_big / 1e9:.1f} GFLOP per head; at this machine's"
        f" {flops / median / 1e9:.1f} GFLOP/s: {big / (flops / median):.0f} s"
    )


if __name__ == "__main__":
    main()
