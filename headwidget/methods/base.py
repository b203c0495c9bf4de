"""What a scoring method is: the context it gets, the events it emits, the protocol it keeps.

A method scores one task at a time and emits events: first :class:`Clean` (the un-ablated
metric per example), then :class:`Block`\\ s of scores for some heads of one layer, exact or
approximate. The driver (:func:`headwidget.score_heads`) stores the blocks, checks them, and
streams them to ``on_layer`` / ``on_block``. A new method is one module defining a class that
follows :class:`ScoringMethod`, plus one entry in :data:`headwidget.methods.METHODS`.

>>> block = Block(task=0, layer=3, heads=np.array([1, 4]), values=np.array([0.5, -0.1]),
...               exact=True)
>>> dict(zip(block.heads.tolist(), block.values.tolist()))
{1: 0.5, 4: -0.1}
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..modeling.adapters import ResolvedLayout
    from ..modeling.inputs import Encoded
    from ..tasks import Task

__all__ = ["Block", "Clean", "ScoringContext", "ScoringMethod", "is_whole"]


def is_whole(value: Any) -> bool:
    """Whether ``value`` is a whole number for an option: a Python or NumPy integer, not a bool.

    >>> is_whole(3), is_whole(np.int64(3)), is_whole(True), is_whole(3.0)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass
class ScoringContext:
    """Everything about the run that is not the method's own: model, layout and options."""

    model: nn.Module
    layout: ResolvedLayout
    metric: str
    ablation: str
    device: torch.device
    batch_size: int | None
    pad_id: int
    tasks: list[str]  # the task names, in the order of the task indices
    tokenizer: Any = None  # read-only; weight-only methods tokenise sources with it
    task_list: list[Task] = field(default_factory=list)  # the tasks, in task-index order
    per_example: bool = True  # whether Blocks should carry each example's drop


@dataclass
class Clean:
    """The un-ablated metric of each example of task ``task``, in the task's order."""

    task: int
    per_example: np.ndarray  # float64 [n_examples]


@dataclass
class Block:
    """Scores of heads ``heads`` of layer ``layer`` of task ``task``; ``exact`` or not."""

    task: int
    layer: int
    heads: np.ndarray  # int [n]
    values: np.ndarray  # float [n]
    exact: bool
    # the drop of each example, float [n, n_examples] in the task's order (values is its mean
    # over examples); None where a method has no per-example effects (projection)
    per_example: np.ndarray | None = None


class ScoringMethod(Protocol):
    """The protocol every scoring method keeps (see :mod:`headwidget.methods.ablation`)."""

    name: ClassVar[str]
    # What the driver and a sweep need to know of a method (its unit of work, whether it runs
    # the model) is in its registry entry, headwidget.methods.MethodEntry.

    @classmethod
    def check_options(cls, **options: Any) -> dict[str, Any]:
        """The method's own options checked, defaults filled in; clear errors otherwise."""
        ...

    def __init__(self, context: ScoringContext, **options: Any) -> None: ...

    def blocks_per_task(self) -> int:
        """How many blocks :meth:`score_task` emits per task (for progress)."""
        ...

    def open(self) -> None:
        """Install what the method needs on the model (hooks)."""
        ...

    def close(self) -> None:
        """Remove everything :meth:`open` installed; the model is as it was."""
        ...

    def score_task(self, task: int, items: list[Encoded]) -> Iterator[Clean | Block]:
        """Score task number ``task`` (its examples ``items``): a Clean, then Blocks."""
        ...

    def meta(self) -> dict[str, Any]:
        """The method's provenance for ``HeadScores.meta`` (options, measured agreement)."""
        ...
