"""What one head writes: its OV circuit read in vocabulary space, for the drill-down.

For head ``h`` of layer ``l`` and a source token ``s``, the head's vocabulary row is
``M_h[s] = a_s · W_O,h · U``: what it adds to the logits when it attends only to ``s`` (``a_s``
is its value of ``s``; ``method="projection"``'s module docstring says exactly how ``a_s`` and
``U`` are read from the weights, and this module uses the same functions):

- :func:`head_mapping`: the MAPS view of a task: each source's target's rank in the source's
  row (``France -> Paris (rank 1)``), and the fraction of the task's pairs whose target is in
  the top ``k`` (which is the head's ``method="projection"`` score);
- :func:`ov_top_tokens`: the tokens a source's row promotes most and suppresses most;
- :func:`copying_score`: how much the OV circuit copies, restricted to a set of tokens: the
  eigenvalues ``λ`` of ``M_h`` on those tokens (rows and columns), ``Σ Re λ / Σ |λ|``, from −1
  to 1 (Elhage et al., "A Mathematical Framework for Transformer Circuits", 2021; 1: the head
  writes back what it reads).

>>> task = load_suite("operations", tasks=["country → capital"])[0]      # doctest: +SKIP
>>> head_mapping(model, tokenizer, 23, 4, task).lines(2)    # the demo model  # doctest: +SKIP
['France -> Paris (rank 3; top: France)', 'Germany -> Berlin (rank 9; top: Germany)']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..tasks import Example, Task
from .projection import (
    COPYING_K,
    DEFAULT_K,
    count_outranking,
    final_unembedding,
    head_values,
    single_token,
)

__all__ = ["HeadMapping", "MappedPair", "copying_score", "head_mapping", "ov_top_tokens"]


@dataclass(frozen=True)
class MappedPair:
    """One (source, target) pair in a head's OV circuit: ``rank`` 1 is the row's top token."""

    source: str
    target: str
    rank: int
    top: str  # the source row's top token

    def __str__(self) -> str:
        top = "" if self.rank == 1 else f"; top: {self.top.strip()}"
        return f"{self.source.strip()} -> {self.target.strip()} (rank {self.rank}{top})"


@dataclass
class HeadMapping:
    """A head's MAPS mapping of a task's (source, target) pairs (see :func:`head_mapping`)."""

    layer: int
    head: int
    k: int
    suppression: bool
    pairs: list[MappedPair]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not single tokens

    @property
    def fraction(self) -> float:
        """The share of pairs whose target is in the top ``k`` (NaN without pairs)."""
        if not self.pairs:
            return float("nan")
        return sum(pair.rank <= self.k for pair in self.pairs) / len(self.pairs)

    def lines(self, n: int | None = None) -> list[str]:
        """``"France -> Paris (rank 1)"`` for the first ``n`` pairs (all by default)."""
        return [str(pair) for pair in self.pairs[:n]]


def _pairs(examples: Any) -> list[tuple[str, str]]:
    if isinstance(examples, Task):
        examples = examples.examples
    pairs = []
    for item in examples:
        if isinstance(item, Example):
            if item.source is None:
                raise ValueError(f"example {item.prompt[:40]!r} has no source word")
            pairs.append((item.source, item.answer))
        else:
            source, target = item
            pairs.append((str(source), str(target)))
    return pairs


def _row_logits(values: torch.Tensor, w_o: torch.Tensor, unembed: torch.Tensor) -> torch.Tensor:
    """``[n, vocab]``: each source's row for one head (values ``[n, head_dim]``)."""
    return (values @ w_o) @ unembed.T


def _head(model: nn.Module, layer: int, head: int, ids: list[int], first_mlp: bool) -> Any:
    values, w_o = head_values(model, layer, torch.tensor(ids), first_mlp=first_mlp)
    if not 0 <= head < w_o.shape[0]:
        raise ValueError(f"no head {head}: layer {layer} has {w_o.shape[0]}")
    unembed = final_unembedding(model, w_o.dtype, w_o.device)
    return values[:, head].to(w_o.device), w_o[head], unembed


def head_mapping(
    model: nn.Module,
    tokenizer: Any,
    layer: int,
    head: int,
    examples: Task | Iterable[Example] | Iterable[tuple[str, str]],
    *,
    k: int | None = None,
    suppression: bool = False,
    first_mlp: bool = True,
) -> HeadMapping:
    """Where head ``(layer, head)``'s OV circuit puts each source's target: its rank among the
    source's row (1: the top token), the row's top token, and the fraction in the top ``k``
    (default as ``method="projection"``: 1 when every target is its source, else 10).

    ``examples``: a task whose examples have ``source`` words, or ``(source, target)`` word
    pairs. Pairs whose words are not single tokens (with a leading space) are skipped, as
    projection skips them; ``suppression=True`` ranks ``-M`` (what the head pushes down).

    >>> head_mapping(model, tok, 23, 4, [("Spain", "Madrid")]).lines()  # doctest: +SKIP
    ['Spain -> Madrid (rank 1)']
    """
    kept, skipped = [], []
    for source, target in _pairs(examples):
        ids = single_token(tokenizer, source), single_token(tokenizer, target)
        (kept if None not in ids else skipped).append((source, target, *ids))
    if k is None:
        copying = bool(kept) and all(s == t for _, _, s, t in kept)
        k = COPYING_K if copying else DEFAULT_K
    if not kept:
        return HeadMapping(layer, head, k, suppression, [], [(s, t) for s, t, *_ in skipped])
    sources = sorted({s for _, _, s, _ in kept})
    values, w_o, unembed = _head(model, layer, head, sources, first_mlp)
    sign = -1.0 if suppression else 1.0
    row = {token: i for i, token in enumerate(sources)}
    device = w_o.device
    src = torch.tensor([row[s] for _, _, s, _ in kept], device=device)
    tgt = torch.tensor([t for _, _, _, t in kept], device=device)
    cap = torch.full_like(tgt, unembed.shape[0])
    above = count_outranking((sign * values)[:, None], w_o[None], unembed, src, tgt, cap)[0]
    tops = (sign * _row_logits(values, w_o, unembed)).argmax(-1).tolist()
    pairs = [
        MappedPair(source, target, int(n) + 1, tokenizer.decode([tops[row[s]]]))
        for (source, target, s, _), n in zip(kept, above.tolist(), strict=True)
    ]
    return HeadMapping(layer, head, int(k), suppression, pairs, [(s, t) for s, t, *_ in skipped])


def _token_id(tokenizer: Any, source: str | int) -> int:
    if isinstance(source, int):
        return source
    token = single_token(tokenizer, source)
    if token is None:
        raise ValueError(f"{source!r} is not one token (with a leading space) for this tokenizer")
    return token


def ov_top_tokens(
    model: nn.Module,
    tokenizer: Any,
    layer: int,
    head: int,
    source: str | int,
    *,
    n: int = 10,
    first_mlp: bool = True,
) -> dict[str, list[tuple[str, float]]]:
    """The ``n`` tokens head ``(layer, head)``'s OV circuit promotes most, and the ``n`` it
    suppresses most, when it attends to ``source`` (a word, read with a leading space, or a
    token id): ``{"promoted": [(token, logit), ...], "suppressed": [...]}``, strongest first.

    >>> ov_top_tokens(model, tok, 23, 4, "France", n=3)["promoted"]  # doctest: +SKIP
    [(' France', 256.9...), (' French', 245.3...), (' Paris', 224.7...)]
    """
    values, w_o, unembed = _head(model, layer, head, [_token_id(tokenizer, source)], first_mlp)
    logits = _row_logits(values, w_o, unembed)[0].float()
    n = min(int(n), len(logits))
    out: dict[str, list[tuple[str, float]]] = {}
    for name, largest in (("promoted", True), ("suppressed", False)):
        top = torch.topk(logits, n, largest=largest)
        out[name] = [
            (tokenizer.decode([i]), float(v))
            for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
    return out


def copying_score(
    model: nn.Module,
    tokenizer: Any,
    layer: int,
    head: int,
    tokens: Task | Iterable[str | int],
    *,
    first_mlp: bool = True,
) -> float:
    """Head ``(layer, head)``'s copying score on ``tokens``: ``Σ Re λ / Σ |λ|`` over the
    eigenvalues of its OV circuit ``M_h`` restricted to those tokens (``[n, n]``: rows the
    tokens attended to, columns the same tokens' logits), from −1 to 1. A task counts its
    examples' source words; words that are not single tokens are left out.

    >>> copy = load_suite("operations", tasks=["copying"])[0]      # doctest: +SKIP
    >>> copying_score(model, tok, 23, 2, copy)      # the demo model  # doctest: +SKIP
    0.86...
    """
    if isinstance(tokens, Task):
        words: list[str | int] = [source for source, _ in _pairs(tokens)]
    else:
        words = list(tokens)
    ids = sorted({
        token for word in words
        if (token := word if isinstance(word, int) else single_token(tokenizer, word)) is not None
    })  # fmt: skip
    if len(ids) < 2:
        raise ValueError(f"copying_score needs at least 2 single-token words, got {len(ids)}")
    values, w_o, unembed = _head(model, layer, head, ids, first_mlp)
    # the nonzero eigenvalues of V (W U_S^T) [n x n] are those of (W U_S^T) V [head_dim^2]
    small = (w_o @ unembed[torch.tensor(ids, device=unembed.device)].T) @ values
    eigenvalues = torch.linalg.eigvals(small.double().cpu())
    total = float(eigenvalues.abs().sum())
    return float(eigenvalues.real.sum()) / total if total > 0 else float("nan")
