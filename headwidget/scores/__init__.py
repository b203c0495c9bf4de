"""The data: :class:`HeadScores` (importance of every task, layer and head, with provenance),
:class:`HeadPaths` (direct paths between important heads) and their file formats. A leaf:
nothing here imports torch, a model, a method or a view.

>>> import numpy as np
>>> scores = HeadScores(np.zeros((1, 2, 3), np.float32), ["copying"])
>>> scores.shape
(1, 2, 3)
"""

from .file import ScoresFileError
from .format import FORMAT_NAME, FORMAT_VERSION
from .paths import HeadPaths
from .paths_format import PathsFileError
from .record import HeadScores

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "HeadPaths",
    "HeadScores",
    "PathsFileError",
    "ScoresFileError",
]
