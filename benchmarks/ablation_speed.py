"""How fast is score_heads compared with a clean forward, a brute-force loop and nnsight?

Builds a random-weight Llama (default: 12 layers, 12 heads, hidden 768, intermediate 3072,
vocab 32000), 64 prompts of about 32 tokens with 1-2 token answers, and prints a table of wall
times and "forward-equivalents per head" = time / (clean forward time x n_layers x n_heads),
i.e. what one head's ablation costs in units of one clean forward over the same data.

    python benchmarks/ablation_speed.py                       # CPU, float32, the default model
    python benchmarks/ablation_speed.py --device cuda --dtype bfloat16 --layers 24 --prompts 256
    python benchmarks/ablation_speed.py --dtype bfloat16 --replay model   # bfloat16 replay

The brute-force loop (one full forward of the data per head, with a hook replacing the head's
slice of o_proj's input) and nnsight's batched patching (one trace per layer, one invoke per head)
are timed on a subset of layers and extrapolated; the output says which.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headwidget import Task  # noqa: E402
from headwidget.scoring import score_heads  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeat: int = 1) -> float:
    """Fastest of ``repeat`` runs (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def build(args: argparse.Namespace):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"w{i}": i + 3 for i in range(args.vocab - 3)})
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=max(128, 2 * args.tokens),
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(dtype=getattr(torch, args.dtype), device=args.device)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(args.prompts):
        length = args.tokens + int(torch.randint(-3, 4, (1,), generator=gen))
        words = torch.randint(3, args.vocab, (length + 2,), generator=gen).tolist()
        n_answer = 1 + int(torch.randint(0, 2, (1,), generator=gen))
        prompt = " ".join(f"w{w}" for w in words[:length])
        answer = "".join(f" w{w}" for w in words[length : length + n_answer])
        examples.append((prompt, answer))
    return model, tokenizer, Task("bench", examples)


def padded_batch(tokenizer, task: Task, device: torch.device):
    seqs = [tokenizer(ex.prompt + ex.answer)["input_ids"] for ex in task.examples]
    length = max(map(len, seqs))
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="score_heads batch_size")
    parser.add_argument("--ablation", default="mean", choices=["mean", "zero"])
    parser.add_argument(
        "--subset-layers", type=int, default=2, help="layers timed for the loop and nnsight"
    )
    parser.add_argument("--skip-nnsight", action="store_true")
    parser.add_argument(
        "--replay",
        choices=("float32", "model"),
        default="float32",
        help="score_heads replay: float32 (default; for a 16-bit model the layers after the"
        " ablated head run in float32) or model (the model's dtype)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)

    model, tokenizer, task = build(args)
    ids, mask = padded_batch(tokenizer, task, device)
    n_layers, n_heads = args.layers, args.heads
    head_dim = args.hidden // n_heads
    print(
        f"llama: {n_layers} layers x {n_heads} heads, hidden {args.hidden}, vocab {args.vocab};"
        f" {args.prompts} prompts of ~{args.tokens} tokens (padded length {ids.shape[1]});"
        f" {args.dtype} on {device}; torch threads {torch.get_num_threads()}"
    )

    def clean() -> None:
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask, use_cache=False)

    clean()  # warm-up
    t_clean = _timed(clean, device, repeat=5)
    units = t_clean * n_layers * n_heads  # one clean forward per head

    rows: list[tuple[str, float, str]] = [("clean forward (all prompts)", t_clean, "")]

    warm = Task("warm-up", task.examples[:2])
    # add_bos=False: the random model has no BOS to miss (and the warning would say it does)
    common = dict(ablation=args.ablation, replay=args.replay, add_bos=False, progress=False)
    score_heads(model, tokenizer, warm, **common)
    start = time.perf_counter()
    scores = score_heads(model, tokenizer, task, batch_size=args.batch_size, **common)
    _sync(device)
    t_sweep = time.perf_counter() - start
    rows.append(("headwidget score_heads (full sweep)", t_sweep, "measured"))
    # Clean again after the sweep; keep the faster (less disturbed) figure.
    t_clean = min(t_clean, _timed(clean, device, repeat=3))
    units = t_clean * n_layers * n_heads
    rows[0] = ("clean forward (all prompts)", t_clean, "fastest of 8 runs")
    assert scores.values.shape == (1, n_layers, n_heads)

    # Brute force: one full forward of the batch per head (zero ablation via a hook).
    projs = [layer.self_attn.o_proj for layer in model.model.layers]
    subset = list(range(min(args.subset_layers, n_layers)))

    def loop_layer(layer: int) -> None:
        for head in range(n_heads):
            sl = slice(head * head_dim, (head + 1) * head_dim)

            def hook(module, inputs, sl=sl):
                x = inputs[0].clone()
                x[..., sl] = 0
                return (x,)

            handle = projs[layer].register_forward_pre_hook(hook)
            try:
                with torch.inference_mode():
                    model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
            finally:
                handle.remove()

    t_loop_subset = _timed(lambda: [loop_layer(layer) for layer in subset], device)
    t_loop = t_loop_subset * n_layers / len(subset)
    rows.append(
        ("brute-force loop (1 forward per head)", t_loop, f"estimated from {len(subset)} layers")
    )

    nnsight_note = ""
    if args.skip_nnsight:
        nnsight_note = "skipped (--skip-nnsight)"
    else:
        try:
            import warnings

            import nnsight
            from nnsight import LanguageModel

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wrapped = LanguageModel(model, tokenizer=tokenizer)

            def nnsight_layer(layer: int) -> None:
                with torch.inference_mode(), wrapped.trace() as tracer:
                    saved = nnsight.save(list())
                    for head in range(n_heads):
                        with tracer.invoke({"input_ids": ids, "attention_mask": mask}):
                            proj = wrapped.model.layers[layer].self_attn.o_proj
                            proj.input[:, :, head * head_dim : (head + 1) * head_dim] = 0
                            saved.append(wrapped.lm_head.output[:, -1, :1])

            nnsight_layer(0)  # warm-up
            t_nn_subset = _timed(lambda: [nnsight_layer(layer) for layer in subset], device)
            t_nn = t_nn_subset * n_layers / len(subset)
            rows.append(
                (
                    f"nnsight {nnsight.__version__} batched patching",
                    t_nn,
                    f"estimated from {len(subset)} layers",
                )
            )
        except ImportError as err:
            nnsight_note = f"nnsight not available ({err}); pip install nnsight to compare"
        except Exception as err:  # report, don't crash the benchmark
            nnsight_note = f"nnsight failed: {type(err).__name__}: {str(err)[:200]}"

    print()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"1-minute load average at the end: {load:.2f} (other work on the machine skews timings)")
    print(f"{'method':<42}{'seconds':>10}{'fwd-eq/head':>13}  note")
    for name, seconds, note in rows:
        per_head = "" if name.startswith("clean") else f"{seconds / units:.3f}"
        print(f"{name:<42}{seconds:>10.3f}{per_head:>13}  {note}")
    if nnsight_note:
        print(f"{'nnsight batched patching':<42}{'-':>10}{'-':>13}  {nnsight_note}")
    print()
    print(f"score_heads vs loop: {t_loop / t_sweep:.2f}x faster (target >= 1.8x);")
    print(f"score_heads: {t_sweep / units:.3f} forward-equivalents per head (target <= 0.55)")


if __name__ == "__main__":
    main()
