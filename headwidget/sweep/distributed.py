"""torch.distributed under torchrun: which rank this is, and gathering results on rank 0.

``torchrun --nproc_per_node N`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` for each
process. With ``WORLD_SIZE > 1`` :func:`start` joins the process group (NCCL when the rank
scores on a CUDA device, else gloo) and pins the rank to ``cuda:LOCAL_RANK`` when CUDA is
there. Outside torchrun everything here is a no-op for one rank.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Ranks", "finish", "gather_to_zero", "rank_device", "ranks_from_env", "start"]

# Ranks finish their shares at about the same time (the units are balanced by cost), but a
# share of a big model can take hours: wait long at the final gather rather than time out.
_TIMEOUT = _dt.timedelta(hours=24)


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def ranks_from_env(environ: Mapping[str, str] | None = None) -> Ranks:
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Ranks()
    return Ranks(int(env.get("RANK", "0")), world, int(env.get("LOCAL_RANK", "0")))


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


def start(ranks: Ranks, device: str | None) -> str | None:
    """Join the process group of a torchrun launch; return the device this rank scores on
    (see :func:`rank_device`)."""
    import torch
    import torch.distributed as dist

    device = rank_device(device, ranks, torch.cuda.is_available())
    if not ranks.distributed or dist.is_initialized():
        return device
    on_cuda = device is not None and str(device).startswith("cuda")
    if on_cuda:
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend="nccl" if on_cuda else "gloo", timeout=_TIMEOUT)
    return device


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
