"""The selected head across tasks as a bqplot bar chart, linked to a grid.

>>> from ipywidgets import VBox                    # doctest: +SKIP
>>> VBox([grid, grid.head_profile()])              # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["HeadProfiles"]


class HeadProfiles:
    """The grid's linked charts (mixed into :class:`~headwidget.HeadImportanceGrid`): it uses
    the grid's ``tasks``, ``selected_head``, ``normalization`` and values."""

    def _init_profiles(self) -> None:
        self._profiles: weakref.WeakSet[Any] = weakref.WeakSet()  # head_profile() figures
        self._profiles_observed = False

    def head_profile(self, *, height: int = 220) -> Any:
        """A small bqplot bar chart of the selected head's importance in every task, kept in
        sync with ``selected_head`` (normalized like the grid) until ``figure.close()``. Needs
        ``pip install bqplot``. A grid of a model shown this way, inside a container, is scored
        only when you call ``grid.compute()``.

        >>> from ipywidgets import VBox                    # doctest: +SKIP
        >>> VBox([grid, grid.head_profile()])              # doctest: +SKIP
        >>> grid.compute()     # a model's grid: score it now  # doctest: +SKIP
        """
        try:
            import bqplot as bq
        except ImportError as err:
            raise ImportError("head_profile() needs bqplot: pip install bqplot") from err

        x_scale, y_scale = bq.OrdinalScale(), bq.LinearScale()
        bars = bq.Bars(
            x=[task["name"] for task in self.tasks],
            y=np.zeros(len(self.tasks)),
            scales={"x": x_scale, "y": y_scale},
            colors=["#3b528b"],
        )
        figure = bq.Figure(
            marks=[bars],
            axes=[
                bq.Axis(scale=x_scale, tick_rotate=-30, tick_style={"font-size": "9px"}),
                bq.Axis(scale=y_scale, side="left", tick_format=".2g"),
            ],
            title="select a head",
            fig_margin={"top": 30, "bottom": 70, "left": 50, "right": 10},
            layout={"height": f"{height}px", "width": "100%"},
        )
        # One observer on the grid for all its profiles, which it holds weakly: a profile that
        # is closed (figure.close()) or no longer referenced stops being updated and is dropped.
        if not self._profiles_observed:
            self.observe(
                self._update_profiles, names=["selected_head", "values", "normalization", "tasks"]
            )
            self._profiles_observed = True
        self._profiles.add(figure)
        self._update_profiles(figures=[figure])
        return figure

    def _update_profiles(self, change: Any = None, *, figures: Sequence[Any] | None = None) -> None:
        for figure in [figure for figure in self._profiles if figure.comm is None]:
            self._profiles.discard(figure)  # closed
        figures = [
            figure
            for figure in (self._profiles if figures is None else figures)
            if figure.comm is not None
        ]
        if not figures:
            return
        names = [task["name"] for task in self.tasks]
        head = self.selected_head
        if head is None or not names:
            heights = np.zeros(len(names))
            title = "select a head"
        else:
            heights = self._normalized(self.values_array())[:, head[0], head[1]]
            heights = np.nan_to_num(heights, nan=0.0)
            title = f"Layer {head[0]} · Head {head[1]} ({self.normalization})"
        for figure in figures:
            bars = figure.marks[0]
            figure.title = title
            with bars.hold_sync():
                bars.x = names
                bars.y = heights
