"""A small model built locally for demos and tests: no download from any model hub.

:func:`word_level_tokenizer` makes a tokenizer whose vocabulary is exactly the words of the given
tasks, and :func:`build_demo_model` a small Llama-architecture model with random weights, saved
to and reloaded from a local directory (the same ``from_pretrained`` path a hub model takes).
Random weights carry no task-specific circuits; they exercise the whole pipeline offline.

>>> from headwidget import load_suite                               # doctest: +SKIP
>>> model, tokenizer = build_demo_model("demo-model", load_suite("operations"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .tasks import Task

__all__ = ["build_demo_model", "word_level_tokenizer"]


def word_level_tokenizer(tasks: Iterable[Task]):
    """A ``PreTrainedTokenizerFast`` with one token per whitespace-separated word of ``tasks``.

    Unknown words map to ``<unk>``; ``<eos>`` is the end-of-sequence token. There is no pad
    token, like many causal-LM tokenizers.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(
        {
            word
            for task in tasks
            for example in task.examples
            for text in (example.prompt, example.answer, example.distractor or "")
            for word in text.split()
        }
    )
    vocab = {"<unk>": 0, "<eos>": 1, **{word: i + 2 for i, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")


def build_demo_model(
    directory: str | Path,
    tasks: Iterable[Task],
    *,
    n_layers: int = 6,
    n_heads: int = 8,
    n_kv_heads: int = 4,
    hidden_size: int = 128,
    seed: int = 0,
):
    """Save a random-weight Llama (grouped-query attention) and its tokenizer to ``directory``
    and load both back with ``from_pretrained``. Returns ``(model, tokenizer)``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer = word_level_tokenizer(tasks)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=1024,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return AutoModelForCausalLM.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)
