"""torch.distributed under torchrun: which rank this is, and gathering results on rank 0.

``torchrun --nproc_per_node N`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` for each
process. With ``WORLD_SIZE > 1`` :func:`start` joins the process group (NCCL when the rank
scores on a CUDA device, else gloo) and pins the rank to ``cuda:LOCAL_RANK`` when CUDA is
there. Outside torchrun everything here is a no-op for one rank.

Joining is bounded: when a peer has not joined within ``HEADWIDGET_JOIN_TIMEOUT`` seconds
(default :data:`DEFAULT_JOIN_TIMEOUT`, 5 minutes), :func:`start` raises :class:`RanksJoinError`
instead of waiting; once all have joined, a rank waits up to 24 hours at the final gather (its
peers may still be scoring their shares).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_JOIN_TIMEOUT",
    "JOIN_TIMEOUT_VARIABLE",
    "Ranks",
    "RanksJoinError",
    "broadcast_from_zero",
    "finish",
    "gather_to_zero",
    "join_timeout",
    "rank_device",
    "ranks_from_env",
    "start",
]

# Ranks finish their shares at about the same time (the units are balanced by cost), but a
# share of a big model can take hours: wait long at the final gather rather than time out.
_TIMEOUT = _dt.timedelta(hours=24)

JOIN_TIMEOUT_VARIABLE = "HEADWIDGET_JOIN_TIMEOUT"
"""The environment variable that bounds how long a rank waits for its peers to join (seconds)."""
DEFAULT_JOIN_TIMEOUT = 300.0
"""Seconds a rank waits for every peer to join when :data:`JOIN_TIMEOUT_VARIABLE` is unset."""


class RanksJoinError(RuntimeError):
    """Under ``WORLD_SIZE > 1`` not every rank joined within the join limit."""


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _whole(env: Mapping[str, str], name: str) -> int:
    if name not in env:
        raise ValueError(f"{name} is not set")
    try:
        return int(env[name].strip())
    except ValueError:
        raise ValueError(f"{name}={env[name][:40]!r} is not a whole number") from None


def ranks_from_env(environ: Mapping[str, str] | None = None) -> Ranks:
    """This process's rank from torchrun's ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (one
    rank where ``WORLD_SIZE`` is unset or 1); ValueError naming the variable that is malformed
    or missing.

    >>> ranks_from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    Ranks(rank=1, world=2, local_rank=1)
    """
    env = os.environ if environ is None else environ
    if not env.get("WORLD_SIZE", "").strip():
        return Ranks()
    try:
        world = _whole(env, "WORLD_SIZE")
        if world < 1:
            raise ValueError(f"WORLD_SIZE={world} must be at least 1")
        if world == 1:
            return Ranks()
        rank, local = _whole(env, "RANK"), _whole(env, "LOCAL_RANK")
        if not 0 <= rank < world:
            raise ValueError(f"RANK={rank} must be in 0..{world - 1} (WORLD_SIZE={world})")
        if local < 0:
            raise ValueError(f"LOCAL_RANK={local} must be at least 0")
    except ValueError as err:
        raise ValueError(
            f"torchrun's environment: {err}; launch with torchrun, which sets WORLD_SIZE, RANK"
            " and LOCAL_RANK, or unset WORLD_SIZE for one process"
        ) from None
    return Ranks(rank, world, local)


def join_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds to wait for every rank to join: ``HEADWIDGET_JOIN_TIMEOUT``, default 300."""
    env = os.environ if environ is None else environ
    text = env.get(JOIN_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_JOIN_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < 10**7:
        raise ValueError(
            f"{JOIN_TIMEOUT_VARIABLE}={text[:40]!r} must be a number of seconds above 0"
            f" (default {DEFAULT_JOIN_TIMEOUT:.0f})"
        )
    return seconds


def rank_device(device: str | None, ranks: Ranks, cuda: bool) -> str | None:
    """The device a rank scores on: under torchrun ``None`` or a bare ``"cuda"`` becomes
    ``cuda:LOCAL_RANK`` (``cpu`` without CUDA); a device with an index is kept as given.

    >>> rank_device("cuda", Ranks(rank=3, world=4, local_rank=1), cuda=True)
    'cuda:1'
    """
    if not ranks.distributed:
        return device
    if device is None:
        return f"cuda:{ranks.local_rank}" if cuda else "cpu"
    if str(device) == "cuda":
        return f"cuda:{ranks.local_rank}"
    return device


def start(ranks: Ranks, device: str | None, join: float | None = None) -> str | None:
    """Join the process group of a torchrun launch; return the device this rank scores on
    (see :func:`rank_device`). Every rank must join within ``join`` seconds (default
    :func:`join_timeout`), else :class:`RanksJoinError`.

    >>> start(Ranks(rank=0, world=2, local_rank=0), "cpu", join=60)  # doctest: +SKIP
    'cpu'
    """
    import torch
    import torch.distributed as dist

    device = rank_device(device, ranks, torch.cuda.is_available())
    if not ranks.distributed or dist.is_initialized():
        return device
    join = join_timeout() if join is None else join
    on_cuda = device is not None and str(device).startswith("cuda")
    if on_cuda:
        torch.cuda.set_device(torch.device(device))
    store = _join(ranks, join)
    store.set_timeout(_TIMEOUT)  # everyone is here: from now on, wait as long as a share takes
    dist.init_process_group(
        backend="nccl" if on_cuda else "gloo",
        store=store,
        rank=ranks.rank,
        world_size=ranks.world,
        timeout=_TIMEOUT,
    )
    return device


def _join(ranks: Ranks, seconds: float) -> Any:
    """The rendezvous store, once every rank has checked in on it (within ``seconds``)."""
    import torch.distributed as dist

    limit = _dt.timedelta(seconds=seconds)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    try:
        store, _, _ = next(dist.rendezvous("env://", ranks.rank, ranks.world, timeout=limit))
        store.set_timeout(limit)
        if store.add(f"headwidget/joined/{attempt}", 1) == ranks.world:
            store.set(f"headwidget/all/{attempt}", "1")
        store.wait([f"headwidget/all/{attempt}"], limit)
    except (RuntimeError, ValueError, TimeoutError, OSError) as err:  # the store's errors
        cause = " ".join(str(err).split())[:200]
        raise RanksJoinError(
            f"rank {ranks.rank} of {ranks.world}: not every rank joined within {seconds:g} s"
            f" ({cause}); start all WORLD_SIZE={ranks.world} ranks (torchrun --nproc_per_node"
            f" {ranks.world} ...) or unset WORLD_SIZE; {JOIN_TIMEOUT_VARIABLE} sets the limit"
        ) from None
    return store


def broadcast_from_zero(obj: Any, ranks: Ranks) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself outside torchrun)."""
    if not ranks.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if ranks.rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_zero(obj: Any, ranks: Ranks) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (in rank order); None on the other ranks."""
    if not ranks.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] | None = [None] * ranks.world if ranks.rank == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def finish(ranks: Ranks) -> None:
    """Wait for every rank, then leave the process group."""
    if not ranks.distributed:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
