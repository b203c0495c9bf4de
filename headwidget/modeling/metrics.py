"""Per-example answer metrics computed from logits at the answer positions.

Every metric is "higher = the model does the task better", so importance
(clean - ablated) is positive for heads that help. The names and their checks live in
:mod:`headwidget.methods.options` (``METRICS``, ``check_metric``), which needs no torch.

>>> import torch
>>> logits = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])   # 1 copy, 2 scored positions, vocab 2
>>> targets, example = torch.tensor([0, 1]), torch.tensor([0, 0])  # both belong to example 0
>>> compute_metric("accuracy", logits, targets, example, n_examples=1)
tensor([[1.]])
"""

from __future__ import annotations

import torch

__all__ = ["compute_metric"]


def compute_metric(
    metric: str,
    logits: torch.Tensor,
    targets: torch.Tensor,
    example_index: torch.Tensor,
    n_examples: int,
    distractors: torch.Tensor | None = None,
) -> torch.Tensor:
    """Metric per (copy, example) as float32 ``[n_copies, n_examples]``.

    Args:
        logits: ``[n_copies, P, vocab]`` logits at ``P`` scored positions (for ``"logit_diff"``
            only the first answer position of each example).
        targets: ``[P]`` the answer token each position should predict.
        example_index: ``[P]`` which example (``0 .. n_examples-1``) each position belongs to.
        distractors: ``[P]`` the distractor token per position (``"logit_diff"`` only).
    """
    n_copies = logits.shape[0]
    logits = logits.float()
    index = targets.view(1, -1, 1).expand(n_copies, -1, 1)
    picked = logits.gather(-1, index).squeeze(-1)  # [n_copies, P]
    out = torch.zeros(n_copies, n_examples, dtype=torch.float32, device=logits.device)
    if metric in ("logprob", "prob"):
        # logit - logsumexp avoids materialising a second [n, P, vocab] log_softmax tensor.
        token_logprob = picked - torch.logsumexp(logits, dim=-1)
        out.index_add_(1, example_index, token_logprob)
        return out.exp() if metric == "prob" else out
    if metric == "accuracy":
        wrong = (logits.argmax(dim=-1) != targets.view(1, -1)).float()
        out.index_add_(1, example_index, wrong)
        return (out == 0).float()
    if metric == "logit_diff":
        if distractors is None:
            raise ValueError("metric 'logit_diff' needs distractor tokens")
        index = distractors.view(1, -1, 1).expand(n_copies, -1, 1)
        diff = picked - logits.gather(-1, index).squeeze(-1)
        out.index_add_(1, example_index, diff)
        return out
    # score_heads checked the name (headwidget.methods.options); this is for direct callers
    raise ValueError(
        f"unknown metric {metric!r}; choose one of logprob, prob, accuracy, logit_diff"
    )
