"""Ticks of the static figures (:mod:`headwidget.views.plotting`): axis positions and colour-bar
labels, as the widget's front end places them (``js/src/scale.ts``).

>>> axis_ticks(32)
[0, 6, 12, 18, 24, 30]
"""

from __future__ import annotations

import math

__all__ = ["axis_ticks", "colorbar_ticks", "decimals_for"]


def axis_ticks(n: int) -> list[int]:
    """Tick positions for an axis of ``n`` cells: about 6 ticks at a round step.

    >>> axis_ticks(32), axis_ticks(80)[:3], axis_ticks(64)[:3]
    ([0, 6, 12, 18, 24, 30], [0, 16, 32], [0, 12, 24])
    """
    steps = (1, 2, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128)
    step = next((s for s in steps if s >= n / 6), max(1, math.ceil(n / 6)))
    return list(range(0, n, step))


def decimals_for(vmin: float, vmax: float) -> int:
    """Decimals that show a value between ``vmin`` and ``vmax`` to about 2 significant digits.

    >>> decimals_for(0.0, 0.004), decimals_for(0.0, 12.0)
    (4, 1)
    """
    span = max(abs(vmin), abs(vmax))
    if not span > 0:
        return 1
    return int(min(6, max(1, -math.floor(math.log10(span)) + 1)))


def colorbar_ticks(
    vmin: float, vmax: float, clipped: bool, n_bins: int = 8
) -> tuple[list[float], list[str]]:
    """Colour-bar ticks: round steps from ``vmin``, ending exactly at ``vmax``; the top label gets
    a "+" when values above ``vmax`` were clipped.

    >>> colorbar_ticks(0.0, 0.004, True)[1][::4]
    ['0.0000', '0.0020', '0.0040+']
    """
    from matplotlib.ticker import MaxNLocator

    ticks = [
        float(t)
        for t in MaxNLocator(nbins=n_bins, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
        if vmin - 1e-12 <= t <= vmax + 1e-12
    ]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else vmax - vmin
    # drop a tick crowding the top one, then make vmax itself the top tick
    ticks = [t for t in ticks if t < vmax - 0.4 * step] + [vmax]
    decimals = decimals_for(vmin, vmax)
    labels = [f"{t:.{decimals}f}" for t in ticks]
    if clipped:
        labels[-1] += "+"
    return ticks, labels
