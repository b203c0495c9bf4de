"""Marks over many cells of a static figure's panel as one matplotlib path: the cells of a mask
merged into runs along each row, so a mark over thousands of heads is one patch.

>>> import numpy as np
>>> len(cells_path(np.array([[True, True, False], [False, False, True]]), "layer_y").vertices)
10
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.path import Path as MplPath

__all__ = ["cells_path"]


def cells_path(mask: np.ndarray, orientation: str) -> MplPath | None:
    """The cells of ``mask`` (bool ``[layers, heads]``) as one closed path in the panel's data
    coordinates (cell centres at whole numbers; ``orientation`` as the panel draws it), or None
    when no cell is set."""
    from matplotlib.path import Path as MplPath

    grid = mask if orientation == "layer_y" else np.swapaxes(mask, 0, 1)
    vertices: list[tuple[float, float]] = []
    for y, row in enumerate(np.asarray(grid, bool)):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            x0, x1, y0, y1 = start - 0.5, stop - 0.5, y - 0.5, y + 0.5
            vertices += [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    if not vertices:
        return None
    codes = [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO, MplPath.CLOSEPOLY]
    return MplPath(vertices, codes * (len(vertices) // 5))
