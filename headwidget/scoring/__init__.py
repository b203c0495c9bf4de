"""The driver: :func:`score_heads` runs a scoring method (:mod:`headwidget.methods`) over tasks
and collects what it emits (:mod:`.collector`) into a :class:`~headwidget.scores.HeadScores`.

>>> from headwidget.scoring import score_heads                            # doctest: +SKIP
>>> scores = score_heads(model, tokenizer, load_suite("operations"))      # doctest: +SKIP
"""

from ..methods.options import KEEP_EXAMPLES_BYTES, ScoringOptions, examples_bytes
from .collector import BlockReport, Collector, NonFiniteMetricError
from .driver import ScoringRun, resolve_device, score_heads

__all__ = [
    "KEEP_EXAMPLES_BYTES",
    "BlockReport",
    "Collector",
    "NonFiniteMetricError",
    "ScoringOptions",
    "ScoringRun",
    "examples_bytes",
    "resolve_device",
    "score_heads",
]
