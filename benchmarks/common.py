"""What more than one benchmark measures the same way (imported by the scripts beside it: run
them as ``python benchmarks/NAME.py``, which puts this folder on the import path)."""

from __future__ import annotations

import time

import torch


def forward_seconds(model, tokenizer, task, repeat: int = 3) -> float:
    """Fastest of ``repeat`` clean forwards over the task's examples (one padded batch): the
    unit of the benchmarks' forward-equivalents."""
    ids = [tokenizer(ex.prompt + ex.answer)["input_ids"] for ex in task.examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    length = max(map(len, ids))
    input_ids = torch.tensor([i + [pad] * (length - len(i)) for i in ids])
    mask = torch.tensor([[1] * len(i) + [0] * (length - len(i)) for i in ids])
    times = []
    with torch.inference_mode():
        for _ in range(repeat):
            start = time.perf_counter()
            model(input_ids=input_ids, attention_mask=mask, use_cache=False)
            times.append(time.perf_counter() - start)
    return min(times)
