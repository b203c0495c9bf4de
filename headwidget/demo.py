"""The demo model: a small Llama trained on the built-in suites, shipped in the package.

:func:`load_demo_model` loads it offline (no model hub) from ``headwidget/data/demo_model``: a
6-layer, 8-head Llama (grouped-query attention, 4 key/value heads, hidden size 128) with a
word-level tokenizer over the suites' vocabulary, trained by ``scripts/train_demo_model.py`` on
the "operations" and "cognitive" suites. Its per-task accuracy on held-out examples is in
``training_report.json`` next to the weights (and in the README).

>>> from headwidget import load_suite, score_heads          # doctest: +SKIP
>>> model, tokenizer = load_demo_model()                    # doctest: +SKIP
>>> scores = score_heads(model, tokenizer, load_suite("operations"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from .tasks import Task

__all__ = [
    "DEMO_MODEL_FILES",
    "DEMO_MODEL_NAME",
    "demo_model_config",
    "demo_training_report",
    "load_demo_model",
    "word_level_tokenizer",
]

#: ``model.config.name_or_path`` of the loaded demo model (shown as the grid's title).
DEMO_MODEL_NAME = "headwidget demo model (Llama, 6 layers × 8 heads)"

#: The files of the shipped demo model, inside ``headwidget/data/demo_model``.
DEMO_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_report.json",
)


def word_level_tokenizer(tasks: Iterable[Task]):
    """A ``PreTrainedTokenizerFast`` with one token per word or punctuation mark of ``tasks``.

    Text is split at whitespace and every punctuation character stands alone (``"gold?"`` is
    ``gold`` + ``?``), so a question mark does not make a second copy of a word. Unknown words map
    to ``<unk>``; ``<eos>`` is the end-of-sequence token. There is no pad token, like many
    causal-LM tokenizers.

    >>> from headwidget import Task
    >>> tokenizer = word_level_tokenizer([Task("t", [("Is it hot?", " Yes")])])
    >>> tokenizer.tokenize("Is it cold?")
    ['Is', 'it', '<unk>', '?']
    """
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    splitter = _pre_tokenizer()
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


def _pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )


def demo_model_config(tokenizer: Any, **overrides: Any):
    """The demo model's ``LlamaConfig`` for ``tokenizer``'s vocabulary (sizes overridable).

    >>> from headwidget import Task
    >>> config = demo_model_config(word_level_tokenizer([Task("t", [("a", " b")])]))
    >>> config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads
    (6, 8, 4)
    """
    from transformers import LlamaConfig

    sizes: dict[str, Any] = {
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 6,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "max_position_embeddings": 512,
        "tie_word_embeddings": True,
        **overrides,
    }
    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
        **sizes,
    )


def _demo_dir():
    return resources.files("headwidget") / "data" / "demo_model"


def load_demo_model(*, device: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
    """The shipped demo model and its tokenizer, loaded offline with ``from_pretrained``.

    ``dtype`` (a ``torch.dtype`` or its name, e.g. ``"bfloat16"``) defaults to float32; the
    weights are stored in float16 to keep the package small.

    >>> model, tokenizer = load_demo_model()                    # doctest: +SKIP
    >>> model.config.num_hidden_layers, model.config.num_attention_heads  # doctest: +SKIP
    (6, 8)
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype is None:
        dtype = torch.float32
    elif isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(
                f"dtype={dtype!r} is not a torch dtype; use e.g. torch.float32 or 'bfloat16'"
            )
        dtype = getattr(torch, dtype)
    with resources.as_file(_demo_dir()) as directory:
        missing = [name for name in DEMO_MODEL_FILES if not (Path(directory) / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"the demo model's files {missing} are missing from {directory}. In a source"
                " checkout, make them with `python scripts/train_demo_model.py`; otherwise"
                " reinstall headwidget"
            )
        # Converting after loading works the same under transformers 4.x (float32 by default)
        # and 5.x (the stored float16 by default).
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True)
        model.to(dtype)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    # The name scores and the widget show, instead of a path inside site-packages.
    model.config.name_or_path = DEMO_MODEL_NAME
    model.eval()
    if device is not None:
        model.to(device)
    return model, tokenizer


def demo_training_report() -> dict[str, Any]:
    """How the demo model was trained and its accuracy per task (``training_report.json``).

    >>> report = demo_training_report()                         # doctest: +SKIP
    >>> report["tasks"]["country → capital"]["heldout_accuracy"]  # doctest: +SKIP
    """
    path = _demo_dir() / "training_report.json"
    return json.loads(path.read_text(encoding="utf-8"))
