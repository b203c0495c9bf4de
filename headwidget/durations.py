"""How the views say a duration: "42 s", "3 min 07 s", "2 h 05 min".

>>> format_seconds(187.4)
'3 min 07 s'
"""

from __future__ import annotations

__all__ = ["format_seconds"]


def format_seconds(seconds: float) -> str:
    """A duration rounded to the second, in the largest two units that fit."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
