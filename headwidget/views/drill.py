"""The widget's per-example drill-down: a head's effect on each example, and its attention.

The browser asks over the widget's message channel (``{"type": "hw:examples", ...}`` and
``{"type": "hw:attention", ...}``); :func:`handle_message` answers with a JSON reply and, for the
numbers, little-endian float32 buffers. The same functions serve Python users:

>>> rows = top_examples(scores, "copying", 5, 1, k=3)             # doctest: +SKIP
>>> tokens, weights = attention_pattern(model, tok, example, layer=5, head=1)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..scores import HeadScores
from ..tasks import Example, Task

__all__ = ["attention_pattern", "handle_message", "top_examples"]

#: Examples listed per head (the most changed first), and the longest text sent per field.
TOP_EXAMPLES = 10
MAX_TEXT = 2000
#: Longest example (tokens) whose attention pattern is drawn.
MAX_ATTENTION_TOKENS = 256


def top_examples(
    scores: HeadScores, task: str, layer: int, head: int, k: int = TOP_EXAMPLES
) -> list[dict[str, Any]]:
    """The ``k`` examples whose metric head ``(layer, head)`` changes most (largest
    ``|effect|``, ties by index), each ``{"index", "prompt", "answer", "clean", "ablated",
    "effect"}``; ``[]`` where the scores keep no per-example effects for ``task``. A number that
    is not finite (NaN, ±inf) is None, so that the rows are valid JSON."""
    effects = scores.example_effects(task, layer, head)
    if effects is None:
        return []
    clean = scores.clean.get(task)
    texts = scores.examples.get(task, [])
    size = np.where(np.isnan(effects), -np.inf, np.abs(effects))
    order = np.argsort(-size, kind="stable")[: max(0, int(k))]
    rows = []
    for i in order.tolist():
        effect = _finite(effects[i])
        base = None if clean is None else _finite(clean[i])
        prompt, answer = texts[i] if i < len(texts) else ("", "")
        rows.append(
            {
                "index": i,
                "prompt": prompt,
                "answer": answer,
                "clean": base,
                "ablated": None if base is None or effect is None else _finite(base - effect),
                "effect": effect,
            }
        )
    return rows


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None where it is NaN or infinite (JSON has neither)."""
    number = float(value)
    return number if np.isfinite(number) else None


def attention_pattern(
    model: Any,
    tokenizer: Any,
    example: Example | tuple[str, str],
    layer: int,
    head: int,
    head_layout: Any = None,
    add_bos: bool | None = None,
) -> tuple[list[str], np.ndarray]:
    """Head ``(layer, head)``'s attention on ``example`` (prompt then answer, tokenised as
    :func:`~headwidget.score_heads` does, ``add_bos`` as it was scored with): the tokens and
    the float32 ``[T, T]`` weights (row: query position, column: key position; rows sum to 1).

    One forward pass with ``output_attentions=True``; the model is switched to eager attention
    for it and put back exactly as it was (attention setting, training flags). Raises
    ``ModelBusyError`` while the model is being scored.
    """
    import torch

    from ..modeling.adapters import resolve_layout
    from ..modeling.attention import attention_weights
    from ..modeling.inputs import context_limit, encode_task, model_device
    from ..modeling.session import model_session

    if not isinstance(example, Example):
        example = Example(*example)
    layout = resolve_layout(model, head_layout)
    if not (0 <= layer < layout.n_layers and 0 <= head < layout.n_heads):
        raise ValueError(
            f"no head ({layer}, {head}): the model has {layout.n_layers} layers of"
            f" {layout.n_heads} heads"
        )
    (encoded,) = encode_task(
        Task("example", [example]), tokenizer, "logprob", context_limit(model), add_bos=add_bos
    )
    ids = (encoded.prompt + encoded.answer)[:MAX_ATTENTION_TOKENS]
    with model_session(model, "attention_pattern"):
        attentions = attention_weights(
            model, torch.tensor([ids], device=model_device(model)), n_layers=layout.n_layers
        )
    weights = attentions[layer][0, head].float().cpu().numpy().astype(np.float32)
    tokens = [tokenizer.decode([i]) for i in ids]
    return tokens, weights


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _head(content: Mapping[str, Any], scores: HeadScores) -> tuple[str, int, int]:
    task, layer, head = content.get("task"), content.get("layer"), content.get("head")
    if task not in scores.tasks:
        raise ValueError(f"no task {str(task)[:80]!r}")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (layer, head)):
        raise ValueError("layer and head must be integers")
    if not (0 <= layer < scores.n_layers and 0 <= head < scores.n_heads):  # type: ignore[operator]
        raise ValueError(f"no head ({layer}, {head})")
    return task, layer, head  # type: ignore[return-value]


def examples_reply(
    scores: HeadScores | None, content: Mapping[str, Any], *, has_model: bool
) -> tuple[dict[str, Any], list[bytes]]:
    """The reply to ``{"type": "hw:examples", "task", "layer", "head"}``: the top examples as
    JSON, every example's effect as one float32 buffer."""
    reply: dict[str, Any] = {"type": "hw:examples", "request": content.get("request")}
    if scores is None:
        return {**reply, "available": False, "reason": "not scored yet"}, []
    task, layer, head = _head(content, scores)
    reply.update(task=task, layer=layer, head=head, has_model=has_model)
    reply["tasks"] = [name for name in scores.tasks if name in scores.effects]
    reply["metric"] = str(scores.meta.get("metric", "")) or "metric"
    effects = scores.example_effects(task, layer, head)
    if effects is None:
        if scores.method == "projection":
            reason = "projection scores from the weights alone: it has no per-example effects"
        elif scores.meta.get("compare") == "difference":
            reason = "a difference of two score sets has no per-example effects"
        elif scores.effects:
            reason = f"no per-example effects were kept for task {task!r}"
        else:
            reason = (
                "these scores keep no per-example effects (saved before format 3, or scored"
                " with keep_examples=False)"
            )
        return {**reply, "available": False, "reason": reason}, []
    rows = top_examples(scores, task, layer, head, TOP_EXAMPLES)
    for row in rows:
        row["prompt"], row["answer"] = _clip(row["prompt"]), _clip(row["answer"])
    finite = np.isfinite(effects)
    mean = _finite(effects[finite].astype(np.float64).mean()) if finite.any() else None
    reply.update(available=True, n=int(effects.size), rows=rows, mean=mean)
    return reply, [np.ascontiguousarray(effects, "<f4").tobytes()]


def attention_reply(
    scores: HeadScores | None, held: Any, content: Mapping[str, Any]
) -> tuple[dict[str, Any], list[bytes]]:
    """The reply to ``{"type": "hw:attention", "task", "layer", "head", "example"}``."""
    reply: dict[str, Any] = {"type": "hw:attention", "request": content.get("request")}
    if held is None or scores is None:
        return {**reply, "error": "the grid holds no model (give it the model to use this)"}, []
    task, layer, head = _head(content, scores)
    index = content.get("example")
    texts = scores.examples.get(task, [])
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(texts):
        raise ValueError(f"no example {str(index)[:20]} in task {task!r}")
    model, tokenizer, head_layout = held
    add_bos = scores.meta.get("add_bos")  # the pattern of the text the map was scored on
    tokens, weights = attention_pattern(
        model, tokenizer, texts[index], layer, head, head_layout,
        add_bos=add_bos if isinstance(add_bos, bool) else None,
    )  # fmt: skip
    reply.update(
        task=task, layer=layer, head=head, example=index, tokens=[_clip(t) for t in tokens]
    )
    return reply, [np.ascontiguousarray(weights, "<f4").tobytes()]


def handle_message(
    scores: HeadScores | None, held: Any, content: Any
) -> tuple[dict[str, Any], list[bytes]] | None:
    """The reply to one message from the browser, or None when it is not a drill-down one.
    Errors come back as ``{"error": ...}`` in the reply, never raised."""
    kinds = ("hw:examples", "hw:attention")
    if not isinstance(content, Mapping) or content.get("type") not in kinds:
        return None
    try:
        if content["type"] == "hw:examples":
            return examples_reply(scores, content, has_model=held is not None)
        return attention_reply(scores, held, content)
    except Exception as err:  # the browser shows it; the kernel carries on
        reply = {"type": content["type"], "request": content.get("request")}
        return {**reply, "error": f"{type(err).__name__}: {err}"[:500]}, []
