"""Tiny random-weight causal LMs and a word-level tokenizer, built offline for tests.

Nothing here touches the Hugging Face hub: every model is built from a transformers config with
random weights, and the tokenizer is a whitespace word-level vocabulary made with ``tokenizers``.

>>> tokenizer = word_tokenizer()
>>> model = tiny_model("llama", vocab_size=len(tokenizer))
>>> model.config.num_hidden_layers, model.config.num_attention_heads
(2, 4)
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "DETECTED_FAMILIES",
    "FAMILIES",
    "MIXED_EXAMPLES",
    "WORDS",
    "suite_tokenizer",
    "tiny_config",
    "tiny_model",
    "word_tokenizer",
]

# Enough words for prompts like "one two three ->" and multi-token answers.
_WORD_TEXT = (
    "the a of to and in is was he she it they cat dog bird fish red blue green one two three"
    " four five six seven eight nine ten paris rome tokyo berlin france italy japan germany"
    " capital city country color number yes no up down left right big small hot cold -> : ."
)
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())

# (prompt, answer) pairs in that vocabulary: unequal lengths (padding) and multi-token answers.
MIXED_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("the cat is", " red"),
    ("one two three four five six", " seven eight"),
    ("paris is the capital of", " france"),
    ("big dog", " up down left"),
    ("tokyo is in", " japan"),
)

# model_type -> config kwargs on top of the shared tiny sizes. GQA (fewer key/value heads than
# query heads) wherever the family supports it, and head_dim != hidden / heads where the family
# allows it (Gemma, Qwen3), since that is where reading sizes from the config alone goes wrong.
_HIDDEN = 32
_HEADS = 4
_COMMON_LLAMA_LIKE: dict[str, Any] = {
    "hidden_size": _HIDDEN,
    "intermediate_size": 64,
    "num_attention_heads": _HEADS,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
}
_FAMILY_KWARGS: dict[str, dict[str, Any]] = {
    "llama": {**_COMMON_LLAMA_LIKE},
    "mistral": {**_COMMON_LLAMA_LIKE, "sliding_window": None},
    "mixtral": {**_COMMON_LLAMA_LIKE, "num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen2": {**_COMMON_LLAMA_LIKE},
    "qwen3": {**_COMMON_LLAMA_LIKE, "head_dim": 16},
    "gemma": {**_COMMON_LLAMA_LIKE, "num_key_value_heads": 1, "head_dim": 16},
    "gemma2": {
        **_COMMON_LLAMA_LIKE,
        "head_dim": 16,
        "sliding_window": 4,
        "final_logit_softcapping": 3.0,
        "attn_logit_softcapping": 5.0,
        "query_pre_attn_scalar": 16,
    },
    "gemma3_text": {
        **_COMMON_LLAMA_LIKE,
        "head_dim": 16,
        "sliding_window": 4,
        "final_logit_softcapping": 3.0,
        "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
    },
    "phi3": {**_COMMON_LLAMA_LIKE, "original_max_position_embeddings": 64},
    "olmo": {**_COMMON_LLAMA_LIKE, "clip_qkv": 8.0},
    "olmo2": {**_COMMON_LLAMA_LIKE},
    "gpt2": {"n_embd": _HIDDEN, "n_head": _HEADS, "n_positions": 64},
    "gpt_neox": {
        "hidden_size": _HIDDEN,
        "intermediate_size": 64,
        "num_attention_heads": _HEADS,
        "rotary_pct": 0.5,
        "max_position_embeddings": 64,
    },
    "gptj": {"n_embd": _HIDDEN, "n_head": _HEADS, "rotary_dim": 4, "n_positions": 64},
    # word_embed_proj_dim != hidden_size gives OPT its project_in / project_out layers.
    "opt": {
        "hidden_size": _HIDDEN,
        "ffn_dim": 64,
        "num_attention_heads": _HEADS,
        "word_embed_proj_dim": 16,
        "max_position_embeddings": 64,
    },
    "falcon": {
        "hidden_size": _HIDDEN,
        "num_attention_heads": _HEADS,
        "num_kv_heads": 2,
        "new_decoder_architecture": True,
        "max_position_embeddings": 64,
    },
    # Falcon's other shape: alibi positions and multi-query attention.
    "falcon_alibi": {
        "hidden_size": _HIDDEN,
        "num_attention_heads": _HEADS,
        "alibi": True,
        "multi_query": True,
        "parallel_attn": False,
        "new_decoder_architecture": False,
    },
    "bloom": {"hidden_size": _HIDDEN, "n_head": _HEADS},
}
FAMILIES = tuple(_FAMILY_KWARGS)

# Architectures without a built-in description: headwidget finds their layout by convention.
# Between them: multi-query attention (gpt_bigcode), parallel attention and MLP (phi, cohere,
# codegen, stablelm), local attention (gpt_neo), scaling multipliers (granite: embedding,
# residual, attention and logits; cohere's logit_scale), partial rotary, QK norms, alibi (mpt).
_DETECTED_KWARGS: dict[str, dict[str, Any]] = {
    "phi": {**_COMMON_LLAMA_LIKE, "partial_rotary_factor": 0.5},
    "cohere": {**_COMMON_LLAMA_LIKE, "logit_scale": 0.5},
    "granite": {
        **_COMMON_LLAMA_LIKE,
        "embedding_multiplier": 2.0,
        "residual_multiplier": 0.5,
        "attention_multiplier": 0.3,
        "logits_scaling": 4.0,
    },
    "gpt_bigcode": {"n_embd": _HIDDEN, "n_head": _HEADS, "multi_query": True, "n_positions": 64},
    "gpt_neo": {
        "hidden_size": _HIDDEN,
        "num_heads": _HEADS,
        "window_size": 3,
        "max_position_embeddings": 64,
    },
    "stablelm": {
        **_COMMON_LLAMA_LIKE,
        "partial_rotary_factor": 0.5,
        "use_parallel_residual": True,  # (qk_layernorm fails to initialise in transformers 4.57)
    },
    "starcoder2": {**_COMMON_LLAMA_LIKE, "sliding_window": None},
    "persimmon": {
        "hidden_size": _HIDDEN,
        "intermediate_size": 64,
        "num_attention_heads": _HEADS,
        "partial_rotary_factor": 0.5,
        "qk_layernorm": True,
        "max_position_embeddings": 64,
    },
    "codegen": {"n_embd": _HIDDEN, "n_head": _HEADS, "rotary_dim": 4, "n_positions": 64},
    "helium": {**_COMMON_LLAMA_LIKE, "head_dim": 8},  # its default (128) is not hidden / heads
    "glm": {**_COMMON_LLAMA_LIKE, "head_dim": 16, "partial_rotary_factor": 0.5},
    "nemotron": {**_COMMON_LLAMA_LIKE, "head_dim": 16, "partial_rotary_factor": 0.5},
    "mpt": {"d_model": _HIDDEN, "n_heads": _HEADS, "expansion_ratio": 2, "max_seq_len": 64},
    "xglm": {
        "d_model": _HIDDEN,
        "attention_heads": _HEADS,
        "ffn_dim": 64,
        "max_position_embeddings": 64,
    },
    "biogpt": {
        "hidden_size": _HIDDEN,
        "intermediate_size": 64,
        "num_attention_heads": _HEADS,
        "max_position_embeddings": 64,
    },
    "olmo3": {**_COMMON_LLAMA_LIKE, "sliding_window": 4},
}
DETECTED_FAMILIES = tuple(_DETECTED_KWARGS)
_FAMILY_KWARGS.update(_DETECTED_KWARGS)

_N_LAYER_KEY = {
    "gpt2": "n_layer",
    "gptj": "n_layer",
    "bloom": "n_layer",
    "gpt_bigcode": "n_layer",
    "codegen": "n_layer",
    "gpt_neo": "num_layers",
    "mpt": "n_layers",
    "xglm": "num_layers",
}


def tiny_config(family: str, *, vocab_size: int = 64, n_layers: int = 2, **overrides: Any) -> Any:
    """A transformers config for a tiny model of ``family`` (a key of :data:`FAMILIES`)."""
    from transformers import AutoConfig

    if family not in _FAMILY_KWARGS:
        raise ValueError(f"unknown tiny family {family!r}; choose from {FAMILIES}")
    kwargs = dict(_FAMILY_KWARGS[family])
    if family == "gemma3_text":
        n_layers = len(kwargs["layer_types"])
    if family == "gpt_neo":  # global and local attention in turn
        kwargs["attention_types"] = [
            [["global", "local"], n_layers // 2],
            [["global"], n_layers % 2],
        ]
        kwargs["attention_types"] = [item for item in kwargs["attention_types"] if item[1]]
    kwargs[_N_LAYER_KEY.get(family, "num_hidden_layers")] = n_layers
    kwargs["vocab_size"] = vocab_size
    # Special-token ids inside the tiny vocabulary (the defaults point past its end).
    kwargs.update(bos_token_id=1, eos_token_id=2, pad_token_id=3)
    kwargs.update(overrides)
    model_type = "falcon" if family == "falcon_alibi" else family
    return AutoConfig.for_model(model_type, **kwargs)


def tiny_model(
    family: str,
    *,
    vocab_size: int = 64,
    n_layers: int = 2,
    seed: int = 0,
    attn_implementation: str | None = None,
    **overrides: Any,
) -> torch.nn.Module:
    """A float32 causal LM of ``family`` with random weights, in eval mode."""
    from transformers import AutoModelForCausalLM

    config = tiny_config(family, vocab_size=vocab_size, n_layers=n_layers, **overrides)
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"dtype": torch.float32}  # (transformers >= 4.56 spelling)
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_config(config, **kwargs)
    # Random init gives near-uniform predictions; larger weights make heads matter more, so the
    # tests compare scores that are clearly non-zero.
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim >= 2:
                param.normal_(0.0, 0.2)
    return model.float().eval()


def word_tokenizer(
    *,
    bos: bool = True,
    pad: bool = True,
    eos: bool = False,
    words: tuple[str, ...] = (),
    adds_bos: bool = True,
) -> Any:
    """A whitespace word-level ``PreTrainedTokenizerFast`` over :data:`WORDS` (plus ``words``).

    ``bos`` prepends ``<s>`` to every encoding (like Llama); ``adds_bos=False`` keeps ``<s>``
    as the BOS token but does not add it (like Gemma-3 loaded from GGUF in transformers 5);
    ``eos`` appends ``</s>`` (like tokenizers set up with ``add_eos_token``); ``pad=False``
    gives a tokenizer with no pad token (like GPT-2).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    vocab = {token: i for i, token in enumerate(specials + list(WORDS) + list(words))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if (bos and adds_bos) or eos:
        first, last = ("<s> " if bos and adds_bos else ""), (" </s>" if eos else "")
        backend.post_processor = processors.TemplateProcessing(
            single=f"{first}$A{last}",
            pair=f"{first}$A{last} {first}$B{last}",
            special_tokens=[(token, vocab[token]) for token in ("<s>", "</s>")],
        )
    kwargs: dict[str, Any] = {"unk_token": "<unk>", "eos_token": "</s>"}
    if bos:
        kwargs["bos_token"] = "<s>"
    if pad:
        kwargs["pad_token"] = "<pad>"
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def suite_tokenizer(tasks: Any) -> Any:
    """A ``PreTrainedTokenizerFast`` with one token per word or punctuation mark of ``tasks``.

    Text is split at whitespace and every punctuation character stands alone (``"gold?"`` is
    ``gold`` + ``?``). Unknown words map to ``<unk>``; ``<eos>`` ends sequences; no pad token,
    like many causal-LM tokenizers. Tiny models over the built-in suites use it.

    >>> from headwidget import Task
    >>> suite_tokenizer([Task("t", [("Is it hot?", " Yes")])]).tokenize("Is it cold?")
    ['Is', 'it', '<unk>', '?']
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    splitter = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )
    words = sorted(
        {
            word
            for task in tasks
            for example in task.examples
            for text in (example.prompt, example.answer, example.distractor or "")
            for word, _ in splitter.pre_tokenize_str(text)
        }
    )
    vocab = {"<unk>": 0, "<eos>": 1, **{word: i + 2 for i, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>")
