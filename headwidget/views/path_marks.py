"""Paths between heads drawn on a figure's task panels, as the widget draws them: an arrow from
the sender's cell to the receiver's (to a marker at the panel's edge for the logits: below the
last layer, or right of it with layers along x), its width by ``|effect|``, its colour by sign,
its channel by its dash and head (the same table as ``js/src/paths.ts``).

>>> fig = plot_scores(scores, paths=PathMarks(paths, n_edges=5))   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..scores import HeadPaths

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CHANNEL_STYLES", "NEGATIVE", "POSITIVE", "PathMarks", "mark_paths"]

#: Colour of an edge that helps (positive effect) and one that hurts, each over a dark halo.
POSITIVE = "#ff9f1c"
NEGATIVE = "#2ec4ff"
HALO = "#000000"

#: Per channel: (dash pattern in line widths, None solid; head "filled" or "open").
CHANNEL_STYLES: dict[str, tuple[tuple[float, float] | None, str]] = {
    "q": (None, "filled"),
    "k": ((4.0, 2.0), "filled"),
    "v": ((1.0, 1.5), "filled"),
    "logits": (None, "open"),
}

#: Line widths (points) of the weakest and strongest drawn edge of a panel.
MIN_WIDTH, MAX_WIDTH = 0.8, 3.5


def edge_width(effect: float, largest: float) -> float:
    """An edge's width from its ``|effect|`` over the panel's largest."""
    if not largest > 0 or not np.isfinite(effect):
        return MIN_WIDTH
    return MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * min(1.0, abs(effect) / largest)


class PathMarks:
    """The arrows a figure draws: each task's ``n_edges`` strongest edges of ``paths``."""

    def __init__(self, paths: HeadPaths, n_edges: int = 10) -> None:
        self.paths = paths
        self.n_edges = int(n_edges)

    def edges(self, task: str) -> list[tuple[tuple[int, int], tuple[int, int] | None, str, float]]:
        """``(sender, receiver or None for the logits, channel, effect)``, strongest first."""
        if task not in self.paths.tasks or self.n_edges <= 0:
            return []
        return [(e.sender, e.receiver, e.via, e.effect)
                for e in self.paths.top_edges(task, self.n_edges)]  # fmt: skip

    def draw(self, ax: Axes, task: str, orientation: str) -> int:
        """Draw ``task``'s arrows on ``ax`` (a panel of ``plot_scores``); returns how many."""
        from matplotlib.patches import FancyArrowPatch

        edges = self.edges(task)
        if not edges:
            return 0
        n_layers, n_heads = self.paths.n_layers, self.paths.n_heads
        largest = max(abs(e[3]) for e in edges if np.isfinite(e[3])) if edges else 0.0

        def point(layer: float, head: float) -> tuple[float, float]:
            return (head, layer) if orientation == "layer_y" else (layer, head)

        end = point(n_layers - 0.5, (n_heads - 1) / 2)  # the panel's edge past the last layer
        for sender, receiver, via, effect in reversed(edges):  # the strongest on top
            start = point(*sender)
            stop = end if receiver is None else point(*receiver)
            dash, head = CHANNEL_STYLES[via]
            width = edge_width(effect, largest)
            color = POSITIVE if effect >= 0 else NEGATIVE
            style = f"-|>,head_length={2 + width},head_width={1 + width / 1.5}"
            for lw, c, z, gid in (
                (width + 1.4, HALO, 2.9, "path-halo"),
                (width, color, 3.0, "path-arrow"),
            ):
                arrow = FancyArrowPatch(
                    start, stop, arrowstyle=style, mutation_scale=1, linewidth=lw,
                    color=c, zorder=z, shrinkA=3, shrinkB=3, gid=gid,
                    linestyle=(0, dash) if dash else "solid",
                    fill=head == "filled" or c == HALO,
                )  # fmt: skip
                if head == "open" and c != HALO:
                    arrow.set_facecolor("none")
                ax.add_patch(arrow)
        if any(r is None for _, r, _, _ in edges):
            ax.plot(*end, marker="D", markersize=6, color="white", markeredgecolor=HALO,
                    zorder=3.1, clip_on=False, gid="path-logits")  # fmt: skip
        return len(edges)

    def legend(self) -> list[Any]:
        """The legend's handles: the two signs and the four channels."""
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=POSITIVE, lw=2.5, label="path helps (effect > 0)"),
            Line2D([], [], color=NEGATIVE, lw=2.5, label="path hurts (effect < 0)"),
        ]
        for via, (dash, _) in CHANNEL_STYLES.items():
            name = "→ logits (◆, open head)" if via == "logits" else f"via {via}"
            handles.append(Line2D([], [], color="0.3", lw=1.5, label=name,
                                  linestyle=(0, dash) if dash else "solid"))  # fmt: skip
        return handles

    def mark(self, fig: Figure, orientation: str, names: list[str]) -> int:
        """Draw the arrows on the task panels of ``fig`` (a ``kind="tasks"`` figure of
        ``plot_scores``, its panels the tasks ``names`` in order; each is labelled
        ``task:<name>``) and their legend; returns how many arrows."""
        drawn = 0
        panels = [ax for ax in fig.axes if ax.images and not hasattr(ax, "_colorbar")]
        for ax, name in zip(panels, names, strict=False):
            ax.set_label(f"task:{name}")
            drawn += self.draw(ax, name, orientation)
        if drawn:
            title = f"paths: top {self.n_edges} per task"
            fig.legend(handles=self.legend(), loc="outside lower left", fontsize=8,
                       frameon=False, ncols=3, title=title)  # fmt: skip
        return drawn


def mark_paths(fig: Figure, paths: PathMarks | None, orientation: str, names: list[str]) -> None:
    """``paths.mark(fig, orientation, names)``, nothing for None (``plot_scores``' ``paths=``)."""
    if paths is not None:
        paths.mark(fig, orientation, names)
