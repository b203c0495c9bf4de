"""Attention-head roles as target patterns, and how well a head's attention matches one.

A role is a function from a sequence's token ids to a ``[T, T]`` (query, key) *pattern*: where a
head of that role attends. The built-in patterns for previous-token, duplicate-token and
induction heads are TransformerLens's (``head_detector``); "first token" (an attention sink) and
"current token" are new. :func:`pattern_scores` measures a batch of attention weights against
patterns as TransformerLens's ``compute_head_attention_similarity_score`` does ("mul": the share
of attention on the pattern; "abs": one minus the mean L1 distance per position), for all heads
and sequences at once. :func:`headwidget.detect_heads` (``methods/roles.py``) runs the model.

>>> induction_pattern(torch.tensor([1, 7, 8, 7, 8]))[3]     # the 2nd 7 attends to the 1st 8
tensor([0., 0., 1., 0., 0.])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "BUILTIN_ROLES",
    "Pattern",
    "Role",
    "as_roles",
    "current_token_pattern",
    "duplicate_token_pattern",
    "first_token_pattern",
    "induction_pattern",
    "pattern_batch",
    "pattern_scores",
    "previous_token_pattern",
]

Pattern = Callable[[torch.Tensor], Any]
"""A sequence's token ids (1-D int64, on the CPU) -> its ``[T, T]`` target pattern (bool mask or
float weights; row: query position, column: key position; nothing above the diagonal)."""


# -- the built-in patterns (TransformerLens's for previous token, duplicate token, induction) ----


def previous_token_pattern(ids: torch.Tensor) -> torch.Tensor:
    """Each position attends to the one before it.

    >>> previous_token_pattern(torch.tensor([5, 6, 7]))
    tensor([[0., 0., 0.],
            [1., 0., 0.],
            [0., 1., 0.]])
    """
    n = len(ids)
    return torch.diag(torch.ones(max(n - 1, 0)), -1)[:n, :n]


def duplicate_token_pattern(ids: torch.Tensor) -> torch.Tensor:
    """Each position attends to the earlier positions holding the same token.

    >>> duplicate_token_pattern(torch.tensor([5, 6, 5]))[2]
    tensor([1., 0., 0.])
    """
    ids = torch.as_tensor(ids).flatten()
    return torch.tril((ids[:, None] == ids[None, :]).float(), -1)


def induction_pattern(ids: torch.Tensor) -> torch.Tensor:
    """Each position attends to the positions just after the earlier copies of its token.

    >>> induction_pattern(torch.tensor([5, 6, 5, 6]))[2]
    tensor([0., 1., 0., 0.])
    """
    duplicate = duplicate_token_pattern(ids)
    shifted = torch.zeros_like(duplicate)
    shifted[:, 1:] = duplicate[:, :-1]
    return torch.tril(shifted)


def first_token_pattern(ids: torch.Tensor) -> torch.Tensor:
    """Every position after the first attends to the first (an attention sink).

    >>> first_token_pattern(torch.tensor([1, 5, 6]))[:, 0]
    tensor([0., 1., 1.])
    """
    pattern = torch.zeros(len(ids), len(ids))
    pattern[1:, 0] = 1.0
    return pattern


def current_token_pattern(ids: torch.Tensor) -> torch.Tensor:
    """Every position after the first attends to itself.

    >>> current_token_pattern(torch.tensor([1, 5, 6])).diagonal()
    tensor([0., 1., 1.])
    """
    pattern = torch.eye(len(ids))
    if len(ids):
        pattern[0, 0] = 0.0
    return pattern


@dataclass(frozen=True)
class Role:
    """A kind of head, by where it attends.

    Attributes:
        name: the role's name (its row in the scores).
        pattern: a sequence's token ids -> its ``[T, T]`` target (see :data:`Pattern`).
        repeated: score it on repeated random sequences (the second half copies the first), as
            induction and duplicate-token heads need; else on plain random ones.
        keeps_first: ``exclude_bos`` does not apply (the pattern is attention to the first
            position).
        keeps_current: ``exclude_current_token`` does not apply.
        description: one line for the scores' ``descriptions``.

    >>> same = Role("same token", duplicate_token_pattern, repeated=True)
    >>> scores = detect_heads(model, tokenizer, ["induction", same])   # doctest: +SKIP
    """

    name: str
    pattern: Pattern
    repeated: bool = False
    keeps_first: bool = False
    keeps_current: bool = False
    description: str = ""


BUILTIN_ROLES: Mapping[str, Role] = {
    role.name: role
    for role in (
        Role("previous token", previous_token_pattern,
             description="attends to the previous position"),
        Role("induction", induction_pattern, repeated=True,
             description="attends to the token after the earlier copy of the current token"),
        Role("duplicate token", duplicate_token_pattern, repeated=True,
             description="attends to earlier copies of the current token"),
        Role("first token", first_token_pattern, keeps_first=True,
             description="attends to the first position (attention sink)"),
        Role("current token", current_token_pattern, keeps_current=True,
             description="attends to its own position"),
    )
}  # fmt: skip
"""The built-in roles by name, in the order :func:`detect_heads` scores them."""


def as_roles(roles: Any) -> list[Role]:
    if roles is None:
        return list(BUILTIN_ROLES.values())
    if isinstance(roles, (str, Role)):
        roles = [roles]
    items = list(roles.items()) if isinstance(roles, Mapping) else list(roles)
    out: list[Role] = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, given = item
            role = given if isinstance(given, Role) else Role(name, given)
            if not callable(role.pattern):
                raise TypeError(f"role {name!r}: the pattern must be callable, got {given!r}")
            out.append(Role(name, role.pattern, role.repeated, role.keeps_first,
                            role.keeps_current, role.description))  # fmt: skip
        elif isinstance(item, Role):
            out.append(item)
        elif isinstance(item, str) and item in BUILTIN_ROLES:
            out.append(BUILTIN_ROLES[item])
        else:
            raise ValueError(
                f"unknown role {item!r}: give a built-in name ({', '.join(BUILTIN_ROLES)}), a"
                " Role, or {name: function from a sequence's token ids to its [T, T] pattern}"
            )
    names = [role.name for role in out]
    if not out or len(set(names)) != len(names):
        raise ValueError(f"roles must be distinct and at least one, got {names}")
    return out


def pattern_batch(role: Role, ids: torch.Tensor) -> torch.Tensor:
    """The role's ``[B, T, T]`` float patterns of a batch of sequences, checked."""
    length = ids.shape[1]
    out = []
    for row in ids:
        given = role.pattern(row.clone())
        pattern = torch.as_tensor(np.asarray(given) if not torch.is_tensor(given) else given)
        pattern = pattern.detach().to("cpu", torch.float32)
        if pattern.shape != (length, length):
            raise ValueError(
                f"role {role.name!r}: the pattern of a {length}-token sequence must be"
                f" [{length}, {length}], got {list(pattern.shape)}"
            )
        if not torch.isfinite(pattern).all():
            raise ValueError(f"role {role.name!r}: the pattern has non-finite values")
        if torch.triu(pattern, 1).any():
            raise ValueError(
                f"role {role.name!r}: the pattern has weight above the diagonal (row: query"
                " position, column: key position; a causal model attends only to earlier ones)"
            )
        out.append(pattern)
    return torch.stack(out)


@torch.no_grad()
def pattern_scores(
    attention: torch.Tensor,
    pattern: torch.Tensor,
    *,
    exclude_first: bool = False,
    exclude_current: bool = False,
    error_measure: str = "mul",
    rows: str = "pattern",
) -> torch.Tensor:
    """Each head's match to ``pattern`` on each sequence (float32 ``[B, H]``; NaN where no
    query position is counted): see the module docstring.

    Args:
        attention: ``[B, H, T, T]`` attention weights (query, key).
        pattern: ``[B, T, T]`` target patterns, one per sequence.

    >>> a = torch.tensor([[[[1.0, 0.0], [0.25, 0.75]]]])
    >>> pattern_scores(a, previous_token_pattern(torch.arange(2))[None])
    tensor([[0.2500]])
    """
    a = attention.float()
    target = pattern.to(a)
    length = a.shape[-1]
    keep = torch.ones(length, length, dtype=a.dtype, device=a.device)
    if exclude_first:
        keep[:, 0] = 0
    if exclude_current:
        keep.fill_diagonal_(0)
    target = target * keep
    if rows == "pattern":
        counted = pattern.to(a).ne(0).any(-1).to(a.dtype)  # [B, T]
    else:
        counted = torch.ones(a.shape[0], length, dtype=a.dtype, device=a.device)
    if error_measure == "mul":
        kept = a * keep
        hit = torch.einsum("bhqk,bqk,bq->bh", kept, target, counted)
        total = torch.einsum("bhqk,bq->bh", kept, counted)
        return hit / total
    distance = torch.einsum("bhqk,bq->bh", (a - target[:, None]).abs() * keep, counted)
    return 1 - distance / counted.sum(-1)[:, None]
