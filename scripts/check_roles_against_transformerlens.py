"""headwidget's detect_heads against TransformerLens's head detector, on the same sequences.

Runs ``transformer_lens.head_detector.detect_head`` (TransformerLens 4.3, through a
``TransformerBridge``) and :func:`headwidget.detect_heads` (``rows="all"``, TransformerLens's
counting) for the previous-token, duplicate-token and induction patterns, with every
combination of ``exclude_bos``, ``exclude_current_token`` and ``error_measure``, and checks
that they agree to 1e-5: for ``"mul"`` the mean over the sequences of one call; for ``"abs"``,
which TransformerLens rounds to 3 decimals per sequence and headwidget does not, one call per
sequence rounded the same way, compared sequence by sequence (a score within 1e-5 of a rounding
boundary may round either way; such ties are counted and reported). Models: a tiny GPT-2
and a tiny Llama with grouped-query attention, built from configs with fixed random weights,
and the demo model (SmolLM2-135M-Instruct) from headwidget's demo cache when it is there.

TransformerLens lives in a venv of its own (it brings its own transformers)::

    python3 -m venv .venv-tl && .venv-tl/bin/pip install torch==2.13.0 transformer_lens==4.3.0
    PYTHONPATH=. .venv-tl/bin/python scripts/check_roles_against_transformerlens.py [--no-demo]

Prints one line per model and setting with the largest difference; exits 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

HEADS = {  # TransformerLens's name -> headwidget's
    "previous_token_head": "previous token",
    "duplicate_token_head": "duplicate token",
    "induction_head": "induction",
}


def word_tokenizer(n_words: int) -> Any:
    """A whitespace word-level tokenizer, saved and loaded back (TransformerLens reloads it by
    name to prepend BOS)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    vocab = {t: i for i, t in enumerate(specials + [f"w{i}" for i in range(n_words)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<pad>",
    )  # fmt: skip
    folder = tempfile.mkdtemp(prefix="hw-tl-tok-")
    tokenizer.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def tiny_model(family: str, vocab_size: int) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    sizes: dict[str, Any] = (
        {"n_layer": 3, "n_head": 4, "n_embd": 32, "n_positions": 64}
        if family == "gpt2"
        else {
            "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
            "hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 64,
        }
    )  # fmt: skip
    config = AutoConfig.for_model(
        family, vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=3, **sizes
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # larger weights than the init: attention far from uniform
        for param in model.parameters():
            if param.ndim >= 2:
                param.normal_(0.0, 0.3)
    return model.eval()


def repeated_texts(words: list[str], n: int, half: int, seed: int) -> list[str]:
    """``n`` texts of ``half`` distinct random words, then the same words again."""
    generator = torch.Generator().manual_seed(seed)
    texts = []
    for _ in range(n):
        picked = [words[i] for i in torch.randperm(len(words), generator=generator)[:half]]
        texts.append(" ".join(picked + picked))
    return texts


def compare(name: str, hf_model: Any, tokenizer: Any, texts: list[str], boot_name: str) -> float:
    """Worst difference over heads, patterns and settings (raises on a mismatch)."""
    from transformer_lens.head_detector import detect_head
    from transformer_lens.model_bridge import TransformerBridge

    from headwidget import detect_heads

    ours = copy.deepcopy(hf_model)  # the bridge wraps its model; headwidget gets a twin
    bridge = TransformerBridge.boot_transformers(boot_name, hf_model=hf_model, tokenizer=tokenizer)
    tokens = bridge.to_tokens(texts)
    caches = [bridge.run_with_cache(bridge.to_tokens(text), remove_batch_dim=True)[1]
              for text in texts]  # fmt: skip
    worst, failures = 0.0, []
    for exclude_bos, exclude_current, measure in itertools.product(
        (False, True), (False, True), ("mul", "abs")
    ):
        options = dict(
            rows="all", exclude_bos=exclude_bos, exclude_current_token=exclude_current,
            error_measure=measure, progress=False,
        )  # fmt: skip
        if measure == "mul":  # all sequences in one call: the mean over them
            mine = detect_heads(ours, tokenizer, list(HEADS.values()), sequences=tokens, **options)
        else:  # one call per sequence: TransformerLens rounds each sequence's "abs" score
            each = [detect_heads(ours, tokenizer, list(HEADS.values()), sequences=row[None],
                                 **options) for row in tokens]  # fmt: skip
        for tl_name, role in HEADS.items():
            # [sequences, layers, heads]
            theirs = torch.stack([
                detect_head(bridge, text, tl_name, cache=cache, exclude_bos=exclude_bos,
                            exclude_current_token=exclude_current, error_measure=measure)
                for text, cache in zip(texts, caches, strict=True)
            ]).double()  # fmt: skip
            ties = 0
            if measure == "mul":  # detect_head's mean over a list of prompts
                diff = float((torch.as_tensor(mine[role]).double() - theirs.mean(0)).abs().max())
            else:
                raw = torch.stack([torch.as_tensor(one[role]).double() for one in each])
                rounded = 1 - torch.round(1 - raw, decimals=3)
                off = (rounded - theirs).abs()
                # 1 - x within 1e-5 of a rounding boundary (k + 0.5) / 1000: either side is right
                tie = ((1000 * (1 - raw)) % 1 - 0.5).abs() < 1e-2
                ties = int(((off > 1e-5) & tie).sum())
                diff = float(torch.where(tie, (off - 1e-3).clamp(min=0), off).max())
            worst = max(worst, diff)
            setting = f"{role:15s} {measure} bos={exclude_bos!s:5} current={exclude_current!s:5}"
            note = f" ({ties} rounding ties at x.xxx5)" if ties else ""
            print(f"  {name:12s} {setting}  max |diff| {diff:.2e}{note}")
            if not diff <= 1e-5:
                failures.append(f"{name} {setting}: {diff:.3g} > 1e-5")
    if failures:
        raise AssertionError("detect_heads differs from TransformerLens:\n" + "\n".join(failures))
    return worst


def demo_folder() -> Path | None:
    from headwidget.demo import DEMO_MODEL_NAME, demo_cache_dir

    found = sorted(demo_cache_dir().glob(f"{DEMO_MODEL_NAME}-*/config.json"))
    return found[-1].parent if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-demo", action="store_true", help="only the tiny models")
    parser.add_argument("--n", type=int, default=3, help="sequences per model (3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from importlib.metadata import version

    print(f"TransformerLens {version('transformer_lens')}, transformers {version('transformers')},"
          f" torch {torch.__version__}")  # fmt: skip
    worst = 0.0
    tokenizer = word_tokenizer(60)
    words = [f"w{i}" for i in range(60)]
    for family in ("gpt2", "llama"):
        model = tiny_model(family, len(tokenizer))
        texts = repeated_texts(words, args.n, 12, seed=1)
        worst = max(worst, compare(f"tiny {family}", model, tokenizer, texts, family))
    folder = None if args.no_demo else demo_folder()
    if folder is not None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        # words that are one token with a leading space, so the text tokenizes back to them
        words = []
        for i in range(1000, 20000):
            text = tokenizer.decode([i])
            if text[1:].isalpha() and text[:1] == " " and tokenizer.encode(text) == [i]:
                words.append(text[1:])
        texts = repeated_texts(words, args.n, 20, seed=2)
        worst = max(worst, compare("demo model", model, tokenizer, texts, str(folder)))
    elif not args.no_demo:
        print("  (no demo model cache: run headwidget.demo.load_demo_model() once to add it)")
    print(f"OK: detect_heads equals TransformerLens's detect_head; max |diff| {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
