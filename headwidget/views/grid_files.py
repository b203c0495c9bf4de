"""``grid.save(...)``: the grid's view as a page or an image, or its scores as a file.

>>> grid.save("heads.html")        # doctest: +SKIP
>>> grid.save("heads.png", scale=3)   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..scores import HeadScores
from . import files as view_files
from . import uncertainty as unc
from .bundle import CSS_PATH, ESM_PATH, PAGE_PATH, ensure_bundle

__all__ = ["GridFiles"]


class GridFiles:
    """The grid's files (mixed into :class:`~headwidget.HeadImportanceGrid`): it uses the
    grid's traits, ``values_array()``, ``significance_array()`` and the scores shown."""

    #: the traits a saved page and image take from the grid (set by the grid's module)
    _view_traits: tuple[str, ...] = ()

    def save(self, path: str | Path, *, scale: float = 2.0) -> Path:
        """Save to ``path``: a ``.html`` path gets a self-contained interactive page of the grid
        as it is now (bundle, data and options inlined; no server, no CDN); ``.png``, ``.svg``
        or ``.pdf`` a static image of the view as it is now (tab, scale, threshold, colours,
        reliability in the titles, the not-significant marks, the role glyphs), drawn with
        matplotlib
        (:func:`headwidget.views.plotting.plot_scores`; ``scale`` multiplies a PNG's 100 dpi)
        with the provenance line; any other path the scores shown (``.npz``, see
        :meth:`HeadScores.save`).

        >>> grid.save("scores.npz")   # later: HeadImportanceGrid("scores.npz")   # doctest: +SKIP
        >>> grid.save("heads.html")   # open in any browser, or share            # doctest: +SKIP
        >>> grid.save("heads.png", scale=3)   # or heads.svg / heads.pdf          # doctest: +SKIP
        """
        path = Path(path)
        if path.suffix.lower() in (".html", ".htm"):
            return self._save_html(path)
        if path.suffix.lower() in view_files.IMAGE_SUFFIXES:
            return self._save_image(path, scale)
        scores: HeadScores | None = self._scores
        if scores is None:
            raise RuntimeError(
                "nothing to save yet: the model has not been scored; display the grid or call"
                " grid.compute() first"
            )
        return scores.save(path)

    def _save_image(self, path: Path, scale: float) -> Path:
        values = self.values_array()
        if values.size == 0 or np.isnan(values).all():
            raise RuntimeError(
                "nothing to draw yet: no scores; display the grid or call grid.compute()"
            )
        exact: bytes = self.exact
        if self.exact_only and exact:
            approximate = np.frombuffer(exact, np.uint8).reshape(values.shape) == 0
            values[approximate] = np.nan  # as the widget shows them: no value
        tasks: list[dict[str, Any]] = self.tasks
        names = [task["name"] for task in tasks]
        shown = HeadScores(
            values,
            names,
            {task["name"]: task["category"] for task in tasks},
            accuracy={
                task["name"]: task["accuracy"] for task in tasks if task.get("accuracy") is not None
            },
        )
        # how sure each map is, as the browser has it (the scores drawn keep no effects)
        uncertainty = unc.MapUncertainty(
            significance=self.significance_array(),
            reliability={
                task["name"]: task["reliability"]
                for task in tasks
                if task.get("reliability") is not None
            },
        )
        view = {name: getattr(self, name) for name in self._view_traits}
        roles = self.role_marks()  # type: ignore[attr-defined]
        paths = self.path_marks()  # type: ignore[attr-defined]
        return view_files.write_image(
            path, shown, view, uncertainty, scale=scale, roles=roles, paths=paths
        )

    def _save_html(self, path: Path) -> Path:
        ensure_bundle(type(self))
        state = {name: getattr(self, name) for name in self._view_traits}
        state["progress"] = {}
        state["_saved_page"] = True  # no kernel: the drill-down shows only what was precomputed
        head = self.selected_head
        state["selected_head"] = list(head) if head else None
        values = self.values_array()
        defaults = None
        if self._auto_threshold and values.size and not np.isnan(values).all():
            # the page has no Python to recompute an automatic threshold when normalization
            # changes: it switches between these
            defaults = {how: self._default_threshold(values, how) for how in ("share", "raw")}
        binary = {name: getattr(self, name) for name in view_files.BINARY_TRAITS}
        return view_files.write_html(
            path, state, binary, defaults, esm=ESM_PATH, css=CSS_PATH, page=PAGE_PATH
        )
