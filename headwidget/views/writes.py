"""What a head writes, for the drill-down: its OV circuit read in vocabulary space
(:mod:`headwidget.methods.ov_circuit`) for one task, as JSON for the browser.

The browser asks ``{"type": "hw:writes", "task", "layer", "head", "source"}`` when a head is
selected (js/src/writes.ts); :func:`writes_reply` answers from the model the grid holds:

- the MAPS mapping of the task's (source, target) pairs: each target's rank in its source's row
  (``France → Paris (rank 1)``) and the share of pairs in the top ``k`` (the head's projection
  score);
- the tokens the head promotes most, and suppresses most, when it attends to ``source`` (default:
  the task's first source);
- for a copying task (every target is its source), its copying score.

A saved page has no kernel: :func:`precompute` fills the grid's ``writes`` trait beforehand,
``{"<layer>,<head>": {task: record}}``, which the page (and the widget) show without asking.

>>> record = head_writes(model, tok, task, 23, 4)            # doctest: +SKIP
>>> [(p["source"], p["rank"]) for p in record["mapping"]["pairs"][:2]]  # doctest: +SKIP
[('France', 3), ('Germany', 9)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..tasks import Task

__all__ = ["MESSAGE", "head_key", "head_writes", "precompute", "writes_reply"]

#: The message type of the drill-down's requests and replies.
MESSAGE = "hw:writes"
#: Pairs listed per mapping, tokens per promoted / suppressed list, sources a precomputed record
#: keeps the tokens of, and the longest token or word sent.
MAX_PAIRS = 40
TOP_TOKENS = 10
PRECOMPUTED_SOURCES = 6
MAX_TEXT = 80


def head_key(layer: int, head: int) -> str:
    """The key of a head in the ``writes`` trait: ``"3,5"``."""
    return f"{int(layer)},{int(head)}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _sources(task: Task) -> list[str]:
    """The task's source words, each once, in example order."""
    return list(dict.fromkeys(e.source for e in task.examples if e.source is not None))


def head_writes(
    model: Any,
    tokenizer: Any,
    task: Task,
    layer: int,
    head: int,
    *,
    sources: Iterable[str] | None = None,
    n: int = TOP_TOKENS,
) -> dict[str, Any]:
    """What head ``(layer, head)`` writes for ``task``, as a JSON-ready record:
    ``{"task", "layer", "head", "sources", "mapping", "tokens", "copying"}`` — ``mapping``
    ``{"k", "fraction", "in_top", "n_pairs", "skipped", "pairs": [{"source", "target", "rank",
    "top"}]}`` (the first :data:`MAX_PAIRS`), ``tokens`` ``{source: {"promoted": [[token,
    logit]], "suppressed": [...]}}`` for ``sources`` (default: the task's first source word;
    one that is not a single token gets empty lists and a ``"note"``),
    ``copying`` the copying score of a copying task (else None). A task without source words
    gives ``{"reason": ...}`` instead of the mapping."""
    from ..methods.ov_circuit import copying_score, head_mapping, ov_top_tokens
    from ..methods.projection import COPYING_K

    record: dict[str, Any] = {"task": task.name, "layer": int(layer), "head": int(head)}
    words = _sources(task)
    if not words:
        return {
            **record,
            "reason": f"task {task.name!r} has no source words (Example(..., source=...)), so"
            " its pairs cannot be read in the head's OV circuit",
        }
    record["sources"] = [_clip(w) for w in words[:200]]
    mapping = head_mapping(model, tokenizer, layer, head, task)
    pairs = mapping.pairs
    record["mapping"] = {
        "k": mapping.k,
        "fraction": _finite(mapping.fraction),
        "in_top": sum(pair.rank <= mapping.k for pair in pairs),
        "n_pairs": len(pairs),
        "skipped": len(mapping.skipped),
        "pairs": [
            {
                "source": _clip(p.source.strip()),
                "target": _clip(p.target.strip()),
                "rank": p.rank,
                "top": _clip(p.top),
            }
            for p in pairs[:MAX_PAIRS]
        ],
    }
    chosen = list(sources) if sources is not None else words[:1]
    record["tokens"] = {}
    for word in chosen:
        try:
            top = ov_top_tokens(model, tokenizer, layer, head, word, n=n)
        except ValueError:  # not one token: no row to read
            note = f"{word!r} is not one token (with a leading space) for this tokenizer"
            record["tokens"][_clip(word)] = {"promoted": [], "suppressed": [], "note": note}
            continue
        record["tokens"][_clip(word)] = {
            kind: [[_clip(token), _finite(logit)] for token, logit in rows]
            for kind, rows in top.items()
        }
    copying = (
        pairs
        and mapping.k == COPYING_K
        and all(p.source.strip() == p.target.strip() for p in pairs)
    )
    record["copying"] = (
        _finite(copying_score(model, tokenizer, layer, head, task)) if copying else None
    )
    return record


def _task(tasks: Sequence[Task] | None, name: Any) -> Task:
    for task in tasks or []:
        if task.name == name:
            return task
    raise ValueError(f"no task {str(name)[:80]!r} among the tasks the grid scored")


def writes_reply(
    held: tuple[Any, Any, Any] | None,
    tasks: Sequence[Task] | None,
    content: Mapping[str, Any],
    shape: Sequence[int],
) -> tuple[dict[str, Any], list[bytes]]:
    """The reply to ``{"type": "hw:writes", "task", "layer", "head", "source"?}``: the record of
    :func:`head_writes` (``source``: whose tokens), or ``{"error": ...}``."""
    reply: dict[str, Any] = {"type": MESSAGE, "request": content.get("request")}
    # the browser files the answer under the head and task it asked about, errors included
    for name in ("task", "layer", "head"):
        value = content.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            reply[name] = value
    try:
        layer, head = content.get("layer"), content.get("head")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (layer, head)):
            raise ValueError("layer and head must be integers")
        if not (0 <= layer < shape[1] and 0 <= head < shape[2]):  # type: ignore[operator]
            raise ValueError(f"no head ({layer}, {head})")
        if held is None:
            return {
                **reply,
                "error": "the grid holds no model: give it the model (HeadImportanceGrid(model,"
                " ...)), or grid.precompute_writes(model=..., tokenizer=..., task_list=...)",
            }, []
        task = _task(tasks, content.get("task"))
        source = content.get("source")
        chosen = [source] if isinstance(source, str) and source else None
        model, tokenizer, _ = held
        return {**reply, **head_writes(model, tokenizer, task, layer, head, sources=chosen)}, []
    except Exception as err:  # the browser shows it; the kernel carries on
        return {**reply, "error": f"{type(err).__name__}: {err}"[:500]}, []


def precompute(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[Task],
    heads: Mapping[str, Sequence[tuple[int, int]]],
    *,
    n: int = TOP_TOKENS,
) -> dict[str, dict[str, Any]]:
    """``{"<layer>,<head>": {task: record}}`` for the heads of each task (``heads``: task name
    -> its heads), each record with the tokens of the task's first
    :data:`PRECOMPUTED_SOURCES` sources."""
    by_name = {task.name: task for task in tasks}
    out: dict[str, dict[str, Any]] = {}
    for name, chosen in heads.items():
        task = by_name[name]
        words = _sources(task)[:PRECOMPUTED_SOURCES]
        for layer, head in chosen:
            record = head_writes(model, tokenizer, task, layer, head, sources=words, n=n)
            out.setdefault(head_key(layer, head), {})[name] = record
    return out
