"""Head roles from attention patterns: previous-token, induction, duplicate-token, sink heads.

:func:`detect_heads` runs the model on random token sequences in eager attention and scores
every (layer, head) for each role by how its attention matches the role's *pattern*: a
``[T, T]`` (query, key) matrix saying where a head of that role attends, built from a sequence's
token ids. It measures what TransformerLens's ``head_detector.detect_head`` measures, for every
role and all heads in one batched pass:

- ``error_measure="mul"`` (default): the share of the head's attention that falls on the pattern,
  ``Σ A·P / Σ A`` over the query positions counted (units: attention share, 0 to 1);
- ``error_measure="abs"``: ``1 − Σ |A − P| / n``, one minus the mean L1 distance between each
  counted query position's attention row and the pattern's (−1 to 1, 1 a perfect match);
  TransformerLens rounds it to 3 decimals, headwidget does not.

``rows="pattern"`` (default) counts only the query positions where the pattern has a target
(the second half of a repeated sequence for induction), so a perfect head scores 1 whatever the
role; ``rows="all"`` counts every position, as TransformerLens does (a perfect induction head
then scores about 0.5). ``exclude_bos`` leaves attention to the first position out (of the sums
and the pattern), ``exclude_current_token`` attention of each position to itself; neither
applies to the role whose pattern is exactly that ("first token", "current token").
A head's score is the mean over sequences of its score on each sequence (as TransformerLens
averages over a list of prompts).

>>> scores = detect_heads(model, tokenizer)                        # doctest: +SKIP
>>> scores.top_heads("induction", 3)                               # doctest: +SKIP
[(18, 6, 0.837...), (17, 4, 0.737...), (17, 3, 0.721...)]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..modeling.adapters import HeadLayout, resolve_layout
from ..modeling.attention import attention_weights
from ..modeling.batching import CPU_MAX_TOKENS, bytes_per_sequence, memory_budget
from ..modeling.inputs import bos_token_id, context_limit, model_device, model_dtype
from ..modeling.provenance import model_provenance
from ..modeling.session import model_session
from ..scores import HeadScores
from .patterns import (
    BUILTIN_ROLES,
    Role,
    as_roles,
    current_token_pattern,
    duplicate_token_pattern,
    first_token_pattern,
    induction_pattern,
    pattern_batch,
    pattern_scores,
    previous_token_pattern,
)

__all__ = [
    "BUILTIN_ROLES",
    "ROLE_THRESHOLD",
    "Role",
    "current_token_pattern",
    "detect_heads",
    "duplicate_token_pattern",
    "first_token_pattern",
    "head_roles",
    "induction_pattern",
    "pattern_scores",
    "previous_token_pattern",
    "random_sequences",
]

ROLE_THRESHOLD = 0.4
"""A head "has" a role when its score passes this (attention share, ``rows="pattern"``)."""


# -- sequences ---------------------------------------------------------------------------------


def _vocabulary(model: nn.Module, tokenizer: Any) -> int:
    """Token ids the model embeds and the tokenizer knows: ``range(this)``."""
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embed, "num_embeddings", None) or getattr(model.config, "vocab_size", 0)
    return min(int(rows), len(tokenizer)) if hasattr(tokenizer, "__len__") else int(rows)


def _token_pool(size: int, tokenizer: Any) -> torch.Tensor:
    """Token ids random sequences draw from: ``range(size)`` less the special tokens."""
    keep = torch.ones(size, dtype=torch.bool)
    special = [i for i in getattr(tokenizer, "all_special_ids", []) if 0 <= i < size]
    keep[special] = False
    pool = torch.nonzero(keep).flatten()
    if len(pool) < 2:
        raise ValueError(f"the tokenizer leaves {len(pool)} ordinary tokens to draw from")
    return pool


def random_sequences(
    pool: torch.Tensor, n: int, length: int, *, first: int | None, repeated: bool, seed: int
) -> torch.Tensor:
    """``n`` sequences of ``first`` (when not None) then ``length`` tokens drawn from ``pool``,
    distinct within a sequence while the pool allows; ``repeated``: ``length // 2`` tokens
    twice. Drawn on the CPU from ``seed``, so every device sees the same ones.

    >>> random_sequences(torch.arange(10, 20), 1, 4, first=1, repeated=True, seed=0).shape
    torch.Size([1, 5])
    """
    generator = torch.Generator().manual_seed(seed)
    draw = length // 2 if repeated else length
    rows = []
    for _ in range(n):
        if draw <= len(pool):
            picked = pool[torch.randperm(len(pool), generator=generator)[:draw]]
        else:
            picked = pool[torch.randint(len(pool), (draw,), generator=generator)]
        body = torch.cat([picked, picked]) if repeated else picked
        head = [] if first is None else [torch.tensor([first])]
        rows.append(torch.cat([*head, body]))
    return torch.stack(rows).long()


def _first_token(model: nn.Module, tokenizer: Any, size: int, add_bos: bool | None) -> int | None:
    """The token the random sequences start with: the tokenizer's BOS where it has one (None),
    the tokenizer's or else the config's BOS (True, an error without one), none (False)."""
    if add_bos is False:
        return None
    bos = (
        getattr(tokenizer, "bos_token_id", None)
        if add_bos is None
        else bos_token_id(tokenizer, model)
    )
    if isinstance(bos, int) and 0 <= bos < size:
        return bos
    if add_bos:
        raise ValueError(
            "add_bos=True, but neither the tokenizer nor the model's config names a BOS token"
            " inside the vocabulary; leave add_bos at None"
        )
    return None


# -- scoring -----------------------------------------------------------------------------------


def _batch_size(model: nn.Module, layout: Any, length: int, n: int, device: torch.device) -> int:
    """Sequences per forward: every layer's weights are kept until the pass ends."""
    width = torch.finfo(model_dtype(model)).bits // 8
    weights = layout.n_layers * layout.n_heads * length * length * (width + 8)
    per_sequence = weights + bytes_per_sequence(model, layout, length, 0, width)
    fit = max(1, memory_budget(device) // per_sequence)
    if device.type == "cpu":
        fit = min(fit, max(1, CPU_MAX_TOKENS // length))
    return int(min(n, fit))


def _check(n_sequences: int, seq_len: int, error_measure: str, rows: str, **flags: Any) -> None:
    for name, value, low in (("n_sequences", n_sequences, 1), ("seq_len", seq_len, 4)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    if error_measure not in ("mul", "abs"):
        raise ValueError(f"error_measure must be 'mul' or 'abs', got {error_measure!r}")
    if rows not in ("pattern", "all"):
        raise ValueError(f"rows must be 'pattern' or 'all', got {rows!r}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r}")


def _sequence_sets(
    model: nn.Module, tokenizer: Any, roles: list[Role], sequences: Any, options: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """The token ids each kind of role runs on: ``{"random" | "repeated" | "given": [n, T]}``."""
    if sequences is not None:
        ids = torch.as_tensor(sequences).long().cpu()
        if ids.ndim != 2 or ids.shape[0] < 1 or ids.shape[1] < 2:
            raise ValueError(f"sequences must be [n, T] token ids, T >= 2, got {list(ids.shape)}")
        return {"given": ids}
    size = _vocabulary(model, tokenizer)
    first = _first_token(model, tokenizer, size, options["add_bos"])
    pool = _token_pool(size, tokenizer)
    kinds = {"repeated" if role.repeated else "random" for role in roles}
    return {
        kind: random_sequences(
            pool,
            options["n_sequences"],
            options["seq_len"],
            first=first,
            repeated=kind == "repeated",
            seed=options["seed"],
        )
        for kind in sorted(kinds)
    }


def _kind(role: Role, sets: Mapping[str, torch.Tensor]) -> str:
    return "given" if "given" in sets else ("repeated" if role.repeated else "random")


def _measure(
    model: nn.Module,
    roles: list[Role],
    sets: Mapping[str, torch.Tensor],
    layout: Any,
    sizes: Mapping[str, int],
    measure: Mapping[str, Any],
    progress: bool,
) -> dict[str, np.ndarray]:
    """Each role's score on each of its sequences: ``{kind: [roles, n, layers, heads]}`` (NaN
    for the roles of the other kinds), ``sizes[kind]`` sequences per forward pass."""
    from tqdm.auto import tqdm

    device, n_layers, n_heads = model_device(model), layout.n_layers, layout.n_heads
    per_sequence = {kind: np.full((len(roles), len(ids), n_layers, n_heads), np.nan)
                    for kind, ids in sets.items()}  # fmt: skip
    total = sum(math.ceil(len(ids) / sizes[kind]) for kind, ids in sets.items())
    bar = tqdm(total=total, disable=not progress, desc="detect_heads", unit="pass")
    with model_session(model, "detect_heads"), bar:
        for kind, ids in sets.items():
            mine = [(r, role) for r, role in enumerate(roles) if _kind(role, sets) == kind]
            for start in range(0, len(ids), sizes[kind]):
                chunk = ids[start : start + sizes[kind]]
                patterns = [pattern_batch(role, chunk).to(device) for _, role in mine]
                weights = attention_weights(model, chunk.to(device), n_layers=n_layers)
                for layer, attention in enumerate(weights):
                    if attention.shape[1] != n_heads:
                        raise ValueError(f"layer {layer} returned {attention.shape[1]} heads of"
                                         f" attention weights, not {n_heads}")  # fmt: skip
                    for (r, role), pattern in zip(mine, patterns, strict=True):
                        scores = pattern_scores(
                            attention, pattern, error_measure=measure["error_measure"],
                            rows=measure["rows"],
                            exclude_first=measure["exclude_bos"] and not role.keeps_first,
                            exclude_current=measure["exclude_current_token"]
                            and not role.keeps_current,
                        )  # fmt: skip
                        cells = per_sequence[kind][r, start : start + len(chunk), layer]
                        cells[:] = scores.cpu().numpy()
                del weights
                bar.update(1)
    return per_sequence


def _summarize(
    roles: list[Role], sets: Mapping[str, torch.Tensor], per_sequence: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, float]]:
    """The mean over sequences per role, and each role's largest standard error over heads."""
    first = next(iter(per_sequence.values()))
    values = np.full((len(roles), *first.shape[2:]), np.nan)
    errors: dict[str, float] = {}
    for r, role in enumerate(roles):
        runs = per_sequence[_kind(role, sets)][r]
        counted = np.isfinite(runs).sum(0)
        if not counted.any():
            warnings.warn(f"role {role.name!r}: no sequence had a position its pattern targets"
                          " (its scores are NaN)", stacklevel=3)  # fmt: skip
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values[r] = np.nanmean(runs, axis=0)
            spread = np.nanstd(runs, axis=0, ddof=1) / np.sqrt(counted)
        errors[role.name] = float(np.nanmax(spread)) if np.isfinite(spread).any() else math.nan
    return values, errors


def detect_heads(
    model: nn.Module,
    tokenizer: Any,
    roles: Any = None,
    *,
    n_sequences: int = 8,
    seq_len: int = 64,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = True,
    exclude_bos: bool = False,
    exclude_current_token: bool = False,
    error_measure: str = "mul",
    rows: str = "pattern",
    sequences: Any = None,
    head_layout: HeadLayout | None = None,
    add_bos: bool | None = None,
) -> HeadScores:
    """Score every (layer, head) for each role by its attention pattern (module docstring).

    Args:
        roles: None (every built-in role: "previous token", "induction", "duplicate token",
            "first token", "current token"), or a list of built-in names and :class:`Role`\\ s,
            or ``{name: pattern function or Role}`` (a pattern function takes a sequence's
            token ids and returns its ``[T, T]`` target, bool or float).
        n_sequences, seq_len, seed: the random sequences: the tokenizer's BOS token (where it
            has one) then ``seq_len`` distinct random ordinary tokens; for repeated roles
            (induction, duplicate token) ``seq_len // 2`` tokens twice.
        batch_size: sequences per forward pass (default: from free memory; CPU: <= 4096 tokens).
        exclude_bos, exclude_current_token, error_measure, rows: as TransformerLens's
            ``detect_head`` (``rows="all"``) or counting only the positions where the pattern
            has a target (``rows="pattern"``, default).
        sequences: your own token ids ``[n, T]`` for every role instead of random ones (used
            as given: no BOS is put before them).
        add_bos: whether the random sequences start with a BOS token. None (default): the
            tokenizer's BOS token where it has one, whether or not its encoding adds it (a
            model trained with one reads nonsense without it; the patterns of the first-token
            role depend on it); True: the tokenizer's BOS, else the config's, an error if
            neither names one; False: random tokens only.
        head_layout: for an architecture headwidget does not know (see ``score_heads``).

    Returns:
        :class:`HeadScores` with one map per role (``method="pattern"``, ``meta["units"]``
        "attention share" for ``mul``), the mean over sequences; ``meta["standard_error"]``
        holds each role's largest standard error over heads.

    The model runs in eval mode with eager attention, without gradients, and comes back
    exactly as it was (attention implementation, training flags). Cost: one forward pass
    over ``n_sequences`` sequences per kind of sequence (random, repeated) the roles need.

    >>> scores = detect_heads(model, tokenizer, ["induction", "previous token"])  # doctest: +SKIP
    >>> scores.top_heads("induction", 5)                                          # doctest: +SKIP
    """
    flags = {"exclude_bos": exclude_bos, "exclude_current_token": exclude_current_token}
    _check(n_sequences, seq_len, error_measure, rows, progress=bool(progress), **flags)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a whole number >= 1 or None, got {batch_size!r}")
    role_list = as_roles(roles)
    layout = resolve_layout(model, head_layout)
    device = model_device(model)
    if add_bos is not None and not isinstance(add_bos, bool):
        raise ValueError(f"add_bos must be True, False or None, got {add_bos!r}")
    options = {"n_sequences": int(n_sequences), "seq_len": int(seq_len), "seed": int(seed),
               "add_bos": add_bos}  # fmt: skip
    sets = _sequence_sets(model, tokenizer, role_list, sequences, options)
    limit = context_limit(model)
    longest = max(ids.shape[1] for ids in sets.values())
    if isinstance(limit, int) and longest > limit:
        raise ValueError(f"sequences of {longest} tokens exceed the model's context ({limit})")
    sizes = {kind: batch_size or _batch_size(model, layout, ids.shape[1], len(ids), device)
             for kind, ids in sets.items()}  # fmt: skip
    measure = {"error_measure": error_measure, "rows": rows, **flags}
    per_sequence = _measure(model, role_list, sets, layout, sizes, measure, progress)
    values, errors = _summarize(role_list, sets, per_sequence)
    units = "attention share" if error_measure == "mul" else "1 - mean L1 distance per position"
    meta = {
        **model_provenance(model, layout, device),
        "method": "pattern", "units": units, "metric": f"attention pattern ({error_measure})",
        "ablation": None, "error_measure": error_measure, "rows": rows,
        "exclude_bos": {role.name: exclude_bos and not role.keeps_first for role in role_list},
        "exclude_current_token": {
            role.name: exclude_current_token and not role.keeps_current for role in role_list
        },
        "sequences": {role.name: _kind(role, sets) for role in role_list},
        "n_sequences": {kind: len(ids) for kind, ids in sets.items()},
        "seq_len": {kind: int(ids.shape[1]) for kind, ids in sets.items()},
        "seed": None if sequences is not None else int(seed),
        "add_bos": add_bos,
        "threshold": ROLE_THRESHOLD, "standard_error": errors,
    }  # fmt: skip
    return HeadScores(
        values.astype(np.float32),
        [role.name for role in role_list],
        descriptions={role.name: role.description for role in role_list if role.description},
        meta=meta,
        method="pattern",
    )


def head_roles(
    roles: HeadScores, threshold: float | None = None
) -> dict[tuple[int, int], list[str]]:
    """``{(layer, head): [role, ...]}``: the roles each head passes ``threshold`` for (default
    :data:`ROLE_THRESHOLD`), strongest first; heads with no role are left out.

    >>> scores = HeadScores(np.array([[[0.9, 0.1]], [[0.5, 0.0]]]), ["induction", "first token"])
    >>> head_roles(scores)
    {(0, 0): ['induction', 'first token']}
    """
    threshold = ROLE_THRESHOLD if threshold is None else float(threshold)
    found: dict[tuple[int, int], list[tuple[float, str]]] = {}
    for r, name in enumerate(roles.tasks):
        for layer, head in zip(*np.nonzero(roles.values[r] >= threshold), strict=True):
            found.setdefault((int(layer), int(head)), []).append(
                (float(roles.values[r, layer, head]), name)
            )
    return {
        head: [name for _, name in sorted(items, key=lambda item: -item[0])]
        for head, items in sorted(found.items())
    }
