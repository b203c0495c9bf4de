"""Moved: :class:`HeadScores` lives in :mod:`headwidget.scores` (``from headwidget import
HeadScores``). This module stays so that older imports keep working."""

from .scores import FORMAT_NAME, FORMAT_VERSION, HeadScores, ScoresFileError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "HeadScores", "ScoresFileError"]
