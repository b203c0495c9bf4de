"""Moved: validation lives in :mod:`headwidget.methods.validation` (beside the scoring methods
it checks). This module stays so that older imports keep working."""

from .methods.validation import ValidationResult, evaluate_tasks, validate_scores

__all__ = ["ValidationResult", "evaluate_tasks", "validate_scores"]
