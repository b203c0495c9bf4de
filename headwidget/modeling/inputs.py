"""From tasks to tensors: tokenising examples, right-padded batches, and where the model lives.

Every method reads the model the same way: teacher forcing over ``prompt + answer[:-1]``, the
metric read only at the positions that predict answer tokens.

A model trained with a BOS token first reads nonsense without it, and some tokenizers drop it
(Gemma-3 loaded from GGUF in transformers 5 gets ``add_bos_token=False``): :func:`encode_task`
warns once per model (:class:`MissingBosWarning`, naming the fix) when the tokenizer has a BOS
token it does not add and the model is known to need it (:func:`needs_bos`); ``add_bos=True``
puts it first, ``add_bos=False`` leaves it out and says nothing.

>>> from headwidget import Task
>>> task = Task("sum", [("2 + 2 =", " 4")])
>>> items = encode_task(task, tokenizer, "logprob", limit=None)         # doctest: +SKIP
>>> items = encode_task(task, tokenizer, "logprob", None, add_bos=True)  # doctest: +SKIP
>>> batch = make_batch(items, "logprob", 0, 9, torch.device("cpu"))     # doctest: +SKIP
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..tasks import Task

__all__ = [
    "BOS_FAMILIES",
    "Batch",
    "Encoded",
    "MissingBosWarning",
    "bos_token_id",
    "check_token_ids",
    "context_limit",
    "encode_task",
    "make_batch",
    "make_batches",
    "model_device",
    "model_dtype",
    "needs_bos",
    "pad_id",
    "same_device",
    "split_tokens",
]


@dataclass
class Encoded:
    """One tokenised example."""

    prompt: list[int]
    answer: list[int]
    distractor: int | None  # "logit_diff": the distractor's token at answer[split]'s position
    split: int = 0  # "logit_diff": the first answer token that differs from the distractor's


def _token_ids(tokenizer: Any, text: str, special: bool = True) -> list[int]:
    ids = tokenizer(text, add_special_tokens=special)["input_ids"]
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    return [int(i) for i in ids]


def _special_ids(tokenizer: Any) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", None) or ())
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    return ids


def _special_tail(ids: list[int], specials: set[int]) -> int:
    n = 0
    while n < len(ids) and ids[-1 - n] in specials:
        n += 1
    return n


def _text_ids(tokenizer: Any, text: str) -> list[int]:
    """``text`` tokenised with the tokenizer's special tokens, but without any it appends at the
    end (an EOS, say): the prompt is continued, not ended, so nothing may follow its text."""
    ids = _token_ids(tokenizer, text)
    specials = _special_ids(tokenizer)
    if not ids or ids[-1] not in specials:
        return ids
    # special tokens the text itself ends with (a literal "</s>") stay
    appended = _special_tail(ids, specials) - _special_tail(
        _token_ids(tokenizer, text, special=False), specials
    )
    return ids[: len(ids) - appended] if appended > 0 else ids


def split_tokens(tokenizer: Any, prompt: str, continuation: str) -> tuple[list[int], list[int]]:
    """Prompt tokens and continuation tokens, tokenising the text as the model would see it
    (special tokens a tokenizer appends, such as EOS, are left out)."""
    prompt_ids = _text_ids(tokenizer, prompt)
    full = _text_ids(tokenizer, prompt + continuation)
    if len(full) > len(prompt_ids) and full[: len(prompt_ids)] == prompt_ids:
        return prompt_ids, full[len(prompt_ids) :]
    # The joint tokenisation merged across the boundary: tokenise the parts separately.
    return prompt_ids, _token_ids(tokenizer, continuation, special=False)


def context_limit(model: nn.Module) -> int | None:
    """The model's context length from its config, if it says."""
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


# -- the BOS token ----------------------------------------------------------------------------

BOS_FAMILIES: Mapping[str, tuple[str, ...]] = {
    "gemma": (),  # every Gemma (gemma, gemma2, gemma3, gemma3_text, ...): whatever its BOS token
    "recurrent_gemma": (),
    "paligemma": (),
    "llama": ("<s>", "<|begin_of_text|>"),  # Llama 1-2, Llama 3 (not SmolLM's <|im_start|>)
    "mistral": ("<s>",),
    "mixtral": ("<s>",),
}
"""The start of a ``model_type`` (``gemma`` covers ``gemma3_text``) -> the BOS tokens the family
is trained with first (empty: any). A Llama-architecture model with another BOS token (SmolLM2's
``<|im_start|>``) is not known to need it."""


class MissingBosWarning(UserWarning):
    """The tokenizer does not add the BOS token the model was trained with: every map is of a
    model reading text it never saw (pass ``add_bos=True``, or ``add_bos=False`` to say so)."""


_warned: weakref.WeakSet[Any] = weakref.WeakSet()  # models warned about their BOS token


def _known_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def bos_token_id(tokenizer: Any, model: nn.Module | None = None) -> int | None:
    """The BOS token's id: the tokenizer's, else the model's config or generation config's."""
    found = _known_id(getattr(tokenizer, "bos_token_id", None))
    for source in ("config", "generation_config"):
        if found is None and model is not None:
            found = _known_id(getattr(getattr(model, source, None), "bos_token_id", None))
    return found


def _adds_bos(tokenizer: Any, bos: int) -> bool:
    """Whether the tokenizer puts ``bos`` first in what it encodes (probed on a short text)."""
    ids = _token_ids(tokenizer, "The")
    return bool(ids) and ids[0] == bos


def needs_bos(model: nn.Module, tokenizer: Any) -> str | None:
    """Why ``model`` needs a BOS token that ``tokenizer`` (which has one) does not add, as a
    phrase; None when the tokenizer adds it, has none, or the model is not known to need it:
    its family (:data:`BOS_FAMILIES`), or a chat template that starts from ``bos_token``. (A
    config's ``bos_token_id`` alone says nothing: SmolLM2 and GPT-2 name one, trained without.)
    """
    bos = _known_id(getattr(tokenizer, "bos_token_id", None))
    if bos is None or _adds_bos(tokenizer, bos):
        return None
    kind = str(getattr(getattr(model, "config", None), "model_type", "") or "")
    token = getattr(tokenizer, "bos_token", None)
    family = next((f for f in BOS_FAMILIES if kind.startswith(f)), None)
    if family is not None and (not BOS_FAMILIES[family] or token in BOS_FAMILIES[family]):
        return f"{kind} models are trained with the BOS token {token!r} first"
    template = getattr(tokenizer, "chat_template", None)
    texts = template.values() if isinstance(template, Mapping) else [template]
    if any(isinstance(t, str) and "bos_token" in t for t in texts):
        return f"the tokenizer's chat template starts from its BOS token {token!r}"
    return None


def warn_missing_bos(model: nn.Module, tokenizer: Any) -> None:
    """:class:`MissingBosWarning` (once per model) when :func:`needs_bos` finds a reason."""
    if model in _warned:
        return
    why = needs_bos(model, tokenizer)
    if why is None:
        return
    _warned.add(model)
    name = getattr(getattr(model, "config", None), "name_or_path", "") or type(model).__name__
    warnings.warn(
        f"{name}: the tokenizer does not add its BOS token {tokenizer.bos_token!r}, but {why};"
        " without it the model reads text it never saw and the maps are of a broken model."
        " Pass add_bos=True (headwidget score --add-bos) to put it first, or add_bos=False"
        " (--no-add-bos) to score without it and silence this warning",
        MissingBosWarning,
        stacklevel=3,
    )


def _with_bos(prompt: list[int], text: str, tokenizer: Any, add_bos: bool, bos: int) -> list[int]:
    """``prompt`` starting with ``bos`` (``add_bos``), or without one the tokenizer added."""
    if add_bos:
        return prompt if prompt[:1] == [bos] else [bos, *prompt]
    if prompt[:1] == [bos] and _token_ids(tokenizer, text, special=False)[:1] != [bos]:
        return prompt[1:]  # the tokenizer's; a BOS written in the text itself stays
    return prompt


def encode_task(
    task: Task,
    tokenizer: Any,
    metric: str,
    limit: int | None,
    *,
    add_bos: bool | None = None,
    model: nn.Module | None = None,
) -> list[Encoded]:
    """Tokenise every example of ``task``; a clear ValueError for one the metric cannot use.

    ``add_bos``: True makes every prompt start with the BOS token (:func:`bos_token_id`; one
    the tokenizer adds is not doubled), False takes off a BOS the tokenizer adds, None keeps
    the tokenizer's tokens and, given the ``model``, warns once per model when the tokenizer
    drops a BOS the model needs (:func:`warn_missing_bos`)."""
    bos = None
    if add_bos is None and model is not None:
        warn_missing_bos(model, tokenizer)
    elif add_bos is not None:
        bos = bos_token_id(tokenizer, model)
        if bos is None and add_bos:
            raise ValueError(
                "add_bos=True, but neither the tokenizer nor the model's config names a BOS"
                " token; set tokenizer.bos_token, or leave add_bos at None"
            )
    if len(task) == 0:
        raise ValueError(f"task {task.name!r} has no examples; give it at least one")
    if metric == "logit_diff":
        missing = [i for i, ex in enumerate(task.examples) if not ex.distractor]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise ValueError(
                f"metric='logit_diff' needs a distractor on every example, but task"
                f" {task.name!r} has none on example(s) {shown}; add distractors or use"
                " metric='logprob'"
            )
    encoded = []
    for i, ex in enumerate(task.examples):
        where = f"task {task.name!r}, example {i}"
        prompt, answer = split_tokens(tokenizer, ex.prompt, ex.answer)
        if bos is not None and prompt:
            prompt = _with_bos(prompt, ex.prompt, tokenizer, bool(add_bos), bos)
        if not answer:
            raise ValueError(
                f"{where}: the answer {ex.answer!r} tokenizes to no tokens; give an answer the"
                " tokenizer turns into at least one token"
            )
        if not prompt:
            raise ValueError(
                f"{where}: the prompt {ex.prompt!r} tokenizes to no tokens, so there is no"
                " position to predict the answer from; give a non-empty prompt"
            )
        n_tokens = len(prompt) + len(answer)
        if limit is not None and n_tokens > limit:
            raise ValueError(
                f"{where}: prompt + answer is {n_tokens} tokens, longer than the model's context"
                f" of {limit} tokens; shorten the example"
            )
        distractor, split = None, 0
        if metric == "logit_diff":
            _, dist = split_tokens(tokenizer, ex.prompt, ex.distractor or "")
            if not dist:
                raise ValueError(f"{where}: the distractor {ex.distractor!r} tokenizes to nothing")
            # Compare where the two continuations part (" 1807" vs " 1806" may share " 18").
            while split < min(len(answer), len(dist)) and answer[split] == dist[split]:
                split += 1
            if split == len(answer) or split == len(dist):
                raise ValueError(
                    f"{where}: the answer {ex.answer!r} and the distractor {ex.distractor!r}"
                    " tokenize to the same tokens (or one is a prefix of the other), so there is"
                    " no token where their logits differ; give a distractor that differs"
                )
            distractor = dist[split]
        encoded.append(Encoded(prompt, answer, distractor, split))
    return encoded


def check_token_ids(encoded: list[Encoded], task: Task, tokenizer: Any, model: nn.Module) -> None:
    """A clear ValueError when a token id is not a row of the model's input embedding (the
    tokenizer is not the model's, or its vocabulary grew), instead of torch's IndexError."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    if not isinstance(rows, int):
        return
    for i, item in enumerate(encoded):
        ids = item.prompt + item.answer + ([] if item.distractor is None else [item.distractor])
        bad = sorted({t for t in ids if not 0 <= t < rows})
        if bad:
            try:
                size: Any = len(tokenizer)
            except TypeError:
                size = "unknown"
            raise ValueError(
                f"task {task.name!r}, example {i}: token id(s) {bad[:5]} are outside the model's"
                f" vocabulary of {rows} embeddings (the tokenizer has {size} tokens); use the"
                " tokenizer that belongs to the model, or resize the model's embeddings after"
                " adding tokens (model.resize_token_embeddings(len(tokenizer)))"
            )


@dataclass
class Batch:
    """A right-padded batch of examples and the positions the metric reads."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    rows: torch.Tensor  # [P] example index (within the batch) of each scored position
    positions: torch.Tensor  # [P] time index whose logits predict the target
    targets: torch.Tensor  # [P]
    distractors: torch.Tensor | None  # [P] ("logit_diff")
    size: int


def make_batch(
    items: list[Encoded], metric: str, pad_id: int, n_heads: int, device: torch.device
) -> Batch:
    """Right-pad ``items`` into one batch on ``device`` (teacher forcing)."""
    # Teacher forcing: the model reads the prompt and every answer token but the last.
    seqs = [e.prompt + e.answer[:-1] for e in items]
    size = len(items)
    length = max(len(s) for s in seqs)
    # Replayed arguments are tiled when their leading dimension is the batch size (or batch x
    # heads for alibi); make sure the sequence length never equals either.
    while length in (size, size * n_heads):
        length += 1
    ids = torch.full((size, length), pad_id, dtype=torch.long)
    mask = torch.zeros((size, length), dtype=torch.long)
    rows, positions, targets, distractors = [], [], [], []
    for b, (seq, e) in enumerate(zip(seqs, items, strict=True)):
        ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[b, : len(seq)] = 1
        first = e.split if metric == "logit_diff" else 0
        last = first + 1 if metric == "logit_diff" else len(e.answer)
        for j in range(first, last):
            rows.append(b)
            positions.append(len(e.prompt) - 1 + j)
            targets.append(e.answer[j])
            distractors.append(e.distractor if e.distractor is not None else 0)

    def as_tensor(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    return Batch(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        rows=as_tensor(rows),
        positions=as_tensor(positions),
        targets=as_tensor(targets),
        distractors=as_tensor(distractors) if metric == "logit_diff" else None,
        size=size,
    )


def make_batches(
    items: list[Encoded],
    metric: str,
    pad_id: int,
    n_heads: int,
    device: torch.device,
    per_batch: int,
) -> tuple[list[int], list[Batch]]:
    """Sort ``items`` by length (less padding) and cut them into batches of ``per_batch``.

    Returns the order (``order[i]``: the original index of the i-th sorted example) and the
    batches.
    """
    order = sorted(range(len(items)), key=lambda i: len(items[i].prompt) + len(items[i].answer))
    ordered = [items[i] for i in order]
    batches = [
        make_batch(ordered[i : i + per_batch], metric, pad_id, n_heads, device)
        for i in range(0, len(ordered), per_batch)
    ]
    return order, batches


def model_device(model: nn.Module) -> torch.device:
    """Where the model's inputs go: the device of its input embeddings."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(embeddings, "weight", None)
    if isinstance(weight, torch.Tensor):
        return weight.device
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter (float32 if none)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are the same (``cuda`` and ``cuda:<current>`` are)."""
    if a.type != b.type:
        return False
    if a.type == "cuda":
        current = torch.cuda.current_device()
        return (a.index if a.index is not None else current) == (
            b.index if b.index is not None else current
        )
    return a.index == b.index or a.index is None or b.index is None


def pad_id(tokenizer: Any, model: nn.Module) -> int:
    """Any valid token id works for padding (padded positions are masked and never scored)."""
    for candidate in (
        getattr(tokenizer, "pad_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ):
        if isinstance(candidate, int) and candidate >= 0:
            embeddings = (
                model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
            )
            limit = getattr(embeddings, "num_embeddings", None)
            if limit is None or candidate < limit:
                return candidate
    return 0
