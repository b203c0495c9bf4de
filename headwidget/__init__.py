"""headwidget: which attention heads of a transformer matter for which task.

>>> from headwidget import score_heads, load_suite, HeadImportanceGrid  # doctest: +SKIP
>>> scores = score_heads(model, tokenizer, load_suite("operations"))   # doctest: +SKIP
>>> HeadImportanceGrid(scores)                                         # doctest: +SKIP
>>> paths = trace_paths(model, tokenizer, tasks, scores=scores, top=10)  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .scores import HeadPaths, HeadScores, ScoresFileError
from .tasks import Example, Task, TaskDataError, load_tasks
from .version import __version__ as __version__

if TYPE_CHECKING:
    from .methods.options import ScoringOptions
    from .methods.roles import detect_heads
    from .modeling.adapters import HeadLayout, UnsupportedModelError
    from .modeling.channels import ChannelLayout
    from .modeling.session import ModelBusyError
    from .scoring import NonFiniteMetricError, score_heads
    from .scoring.paths import trace_paths
    from .tasks import load_suite
    from .views.widget import HeadImportanceGrid

__all__ = [
    "ChannelLayout",
    "Example",
    "HeadImportanceGrid",
    "HeadLayout",
    "HeadPaths",
    "HeadScores",
    "ModelBusyError",
    "NonFiniteMetricError",
    "ScoresFileError",
    "ScoringOptions",
    "Task",
    "TaskDataError",
    "UnsupportedModelError",
    "detect_heads",
    "load_suite",
    "load_tasks",
    "score_heads",
    "trace_paths",
]

# torch, transformers and the widget stack are imported on first use, so that reading saved
# scores or building tasks stays quick.
_LAZY = {
    "score_heads": "scoring",
    "NonFiniteMetricError": "scoring",
    "HeadLayout": "modeling.adapters",
    "ChannelLayout": "modeling.channels",
    "UnsupportedModelError": "modeling.adapters",
    "ModelBusyError": "modeling.session",
    "ScoringOptions": "methods.options",
    "load_suite": "tasks.suites",
    "HeadImportanceGrid": "views.widget",
    "detect_heads": "methods.roles",
    "trace_paths": "scoring.paths",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'headwidget' has no attribute {name!r}")
