"""HeadImportanceGrid: the interactive heatmap of head importance (an anywidget).

Show saved scores, or score a model live: the grid appears at once and fills in layer by layer.

>>> from headwidget import HeadImportanceGrid, HeadScores       # doctest: +SKIP
>>> grid = HeadImportanceGrid(HeadScores.load("scores.npz"))    # doctest: +SKIP
>>> grid                                                        # doctest: +SKIP
>>> grid = HeadImportanceGrid(model, tokenizer, tasks=my_tasks)  # doctest: +SKIP
>>> grid                      # displays, then scores in this cell    # doctest: +SKIP
>>> grid.selected_head, grid.scores.top_heads("copying")        # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import anywidget
import numpy as np
import traitlets as t

from ..methods.options import SCORING_OPTIONS
from ..scores import HeadScores
from ..tasks import Task
from . import uncertainty as unc
from .bundle import ensure_bundle
from .compare import compare_scores
from .grid_files import GridFiles
from .grid_paths import PATH_OPTIONS, GridPaths
from .grid_roles import ROLE_OPTIONS, GridRoles
from .grid_state import GridState
from .live import LiveScoring
from .plotting import COLORMAPS
from .profile import HeadProfiles
from .trait_data import (
    encode_exact,
    encode_sem,
    encode_significance,
    encode_values,
    has_categories,
    provenance_of,
    task_dicts,
)

__all__ = ["HeadImportanceGrid", "SCORING_OPTIONS", "TRAIT_OPTIONS"]

#: Synced traits that may be given to the constructor.
TRAIT_OPTIONS = (
    "threshold",
    "threshold_mode",
    "top_percent",
    "colormap",
    "color_range",
    "vmax",
    "vmin",
    "orientation",
    "tab",
    "grid_columns",
    "normalization",
    "title",
    "selected_head",
    "selected_task",
    "min_accuracy",
    "exact_only",
    "fade_below",
    "mark_insignificant",
    "min_reliability",
    "categories_from",
    *ROLE_OPTIONS,
    *PATH_OPTIONS,
)


#: The traits a saved page and image take (besides the binary ones, files.BINARY_TRAITS).
_VIEW_TRAITS = ("shape", "tasks", "provenance", "role_info", "writes", *TRAIT_OPTIONS)


class HeadImportanceGrid(
    GridState, LiveScoring, HeadProfiles, GridFiles, GridRoles, GridPaths, anywidget.AnyWidget
):
    """Interactive grid of head importance: one heatmap per task, a categories view, a threshold.

    ``source`` is a :class:`~headwidget.HeadScores` (shown as is), a path to a saved ``.npz``, or a
    Hugging Face causal LM, which is scored with :func:`headwidget.score_heads` when the grid is
    displayed (or :meth:`compute` is called), the heatmaps filling in as layers finish. Only
    displaying the grid itself (last expression of a cell, ``display(grid)``) starts scoring: a
    grid shown inside a container, ``VBox([grid, grid.head_profile()])``, waits ("waiting to
    score …") until you call ``grid.compute()``.

    ``tokenizer`` defaults to ``AutoTokenizer.from_pretrained(model.name_or_path)`` and ``tasks``
    to the built-in ``"operations"`` suite. ``options`` are any of the synced traits below
    (:data:`TRAIT_OPTIONS`) and, for a model, the scoring options (:data:`SCORING_OPTIONS`:
    ``method``, ``ablation``, ``metric``, ``batch_size``, ``device``, ``head_layout`` and the
    methods' own, passed to ``score_heads``).

    Traits (synced with the browser; read or set them from Python, ``jslink`` them):
    ``values`` (little-endian float32 bytes, C order ``shape``; NaN = not available),
    ``shape`` ``[n_tasks, n_layers, n_heads]``, ``tasks`` (list of
    ``{"name", "category", "description", "baseline", "accuracy", "reliability",
    "examples_needed"}``), ``normalization`` ("share"/"raw"), ``threshold_mode`` ("value",
    "top_percent", or "significant": heads whose cell is significant and at or above
    ``threshold``), ``threshold`` (the threshold itself, in
    normalized units; the slider is square-root scaled up to the colour bar's top and the number
    field beside it takes any value), ``top_percent``, ``colormap``, ``color_range``, ``vmax``,
    ``vmin``, ``orientation`` ("layer_y": layer on y, 0 at the top, as figure A; "layer_x": layer
    on x, head on y with head 0 at the bottom, as figure B), ``tab`` ("all", "categories" or
    "task:<name>"), ``grid_columns``, ``selected_head`` (``(layer, head)`` or None),
    ``selected_task``, ``progress``, ``title``; ``exact`` (one uint8 per cell, 1 where the value
    is exact; empty: all exact) and ``exact_only`` (show only exact cells), for a method that
    approximates (``HeadScores.exact``); ``provenance`` (model, method, metric, ablation, examples
    per task, date); ``min_accuracy`` (tasks whose clean accuracy, ``HeadScores.accuracy``, is
    below it are marked "model fails this task"; default 0.2); ``fade_below`` (fade heads below
    the threshold toward the background; by default every head has its colour map colour and
    heads that pass are outlined).

    How sure each map is, where the scores keep per-example effects
    (:mod:`headwidget.views.uncertainty`): ``sem`` (float32 per cell, the standard error of its
    mean over examples in raw metric units, NaN unknown; empty: no effects), shown in the
    tooltip as ``value ± 1.96 sem`` (converted to the scale shown); ``significant`` (one uint8
    per cell: 1 significant, 0 not, 2 untested; empty: no effects; Wilcoxon signed-rank with
    Benjamini-Hochberg FDR 5 % per task); ``mark_insignificant`` (hatch the cells that are not
    significant; the others keep their colour-bar colour); ``min_reliability`` (maps whose
    split-half reliability, in each task record and panel title, is lower are marked "noisy:
    add examples"; default 0.7); ``categories_from`` ("all", or "reliable": the category
    overlay counts only the tasks not marked noisy or failing).

    ``compare=other`` (HeadScores or a saved path) shows two score sets of the same tasks in one
    grid on one colour scale: ``compare_mode="side_by_side"`` (each task twice, "task · A" and
    "task · B") or ``"difference"`` (A − B, raw values on the diverging colour map); see
    :func:`headwidget.views.compare.compare_scores`.

    ``roles=detect_heads(model, tokenizer)`` (HeadScores of role maps, or a saved path; same
    layers x heads) marks each head whose score for a role is at least ``role_threshold``
    (default 0.4) with the role's glyph on every panel, for the roles of ``roles_shown``
    (default all but "first token"); ``role_filter`` (a role name, "" none) fades every head
    without that role; the "roles" tab shows each role's map; ``role_values`` / ``role_info``
    carry them, ``writes`` what heads write, precomputed for a saved page
    (:mod:`headwidget.views.grid_roles`). ``paths=trace_paths(...)`` (a HeadPaths or its file;
    same layers x heads, tasks among the grid's) draws each task's ``path_edges`` (default 10)
    strongest edges as arrows on its panel (:mod:`headwidget.views.grid_paths`).

    >>> grid = HeadImportanceGrid(scores, threshold_mode="top_percent")  # doctest: +SKIP
    >>> grid.top_percent = 2                                              # doctest: +SKIP
    """

    values = t.Bytes(b"", help="float32 little-endian, C order [n_tasks, n_layers, n_heads]").tag(
        sync=True
    )
    shape = t.List(t.Int(), default_value=[0, 0, 0], minlen=3, maxlen=3).tag(sync=True)
    tasks = t.List(t.Dict()).tag(sync=True)
    normalization = t.Enum(("share", "raw"), default_value="share").tag(sync=True)
    threshold_mode = t.Enum(("value", "top_percent", "significant"), default_value="value").tag(
        sync=True
    )
    threshold = t.Float(0.0).tag(sync=True)
    top_percent = t.Float(5.0).tag(sync=True)
    colormap = t.Enum(tuple(COLORMAPS), default_value="viridis").tag(sync=True)
    color_range = t.Enum(("shared", "per_task"), default_value="shared").tag(sync=True)
    vmax = t.Float(None, allow_none=True).tag(sync=True)
    vmin = t.Float(None, allow_none=True).tag(sync=True)
    orientation = t.Enum(("layer_y", "layer_x"), default_value="layer_y").tag(sync=True)
    tab = t.Unicode("all").tag(sync=True)
    grid_columns = t.Int(0, min=0).tag(sync=True)
    selected_head = t.Tuple(t.Int(), t.Int(), default_value=None, allow_none=True).tag(sync=True)
    selected_task = t.Unicode("").tag(sync=True)
    progress = t.Dict().tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    exact = t.Bytes(b"", help="uint8 per cell, C order like values: 1 exact; b'' all exact").tag(
        sync=True
    )
    exact_only = t.Bool(False).tag(sync=True)
    provenance = t.Dict().tag(sync=True)
    min_accuracy = t.Float(0.2).tag(sync=True)
    fade_below = t.Bool(False).tag(sync=True)
    sem = t.Bytes(b"", help="float32 per cell, C order like values: standard error; b'' none").tag(
        sync=True
    )
    significant = t.Bytes(
        b"", help="uint8 per cell, C order like values: 1 significant, 0 not, 2 untested"
    ).tag(sync=True)
    mark_insignificant = t.Bool(False).tag(sync=True)
    min_reliability = t.Float(unc.MIN_RELIABILITY).tag(sync=True)
    categories_from = t.Enum(unc.CATEGORIES_FROM, default_value="all").tag(sync=True)

    #: Seconds between ``values`` updates while scoring (the last one is always sent).
    sync_interval: float = 0.25
    _view_traits = _VIEW_TRAITS

    def __init__(
        self,
        source: HeadScores | str | Path | Any,
        tokenizer: Any = None,
        tasks: Task | Sequence[Task] | None = None,
        *,
        compare: HeadScores | str | Path | None = None,
        compare_mode: Literal["side_by_side", "difference"] = "side_by_side",
        roles: HeadScores | str | Path | None = None,
        paths: Any = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - set(TRAIT_OPTIONS) - set(SCORING_OPTIONS))
        if unknown:
            raise TypeError(
                f"HeadImportanceGrid got unknown option(s) {unknown}; valid options are"
                f" {sorted(TRAIT_OPTIONS)} and, when scoring a model, {sorted(SCORING_OPTIONS)}"
            )
        ensure_bundle(type(self))
        trait_options = {k: v for k, v in options.items() if k in TRAIT_OPTIONS}
        scoring = {k: v for k, v in options.items() if k in SCORING_OPTIONS}
        super().__init__()
        self._scores: HeadScores | None = None
        self._init_live()
        self._auto_threshold = "threshold" not in trait_options
        self._auto_title = "title" not in trait_options
        self._auto_threshold_value: float | None = None
        self._threshold_held = False  # an automatic threshold held while scores stream in
        # while True, a normalization change leaves a chosen threshold as given (its units)
        self._constructing = True
        self._init_profiles()
        self._init_roles(trait_options)
        self._init_paths(trait_options)
        self.on_msg(self._on_message)

        if isinstance(source, (str, Path)):
            try:
                source = HeadScores.load(source)
            except FileNotFoundError as err:
                if not isinstance(source, str):
                    raise
                raise FileNotFoundError(
                    f"{err}; to score a model, load it"
                    f" (AutoModelForCausalLM.from_pretrained({source!r})) and pass the model"
                    " object"
                ) from None
        if compare is None and compare_mode != "side_by_side":
            raise TypeError("compare_mode= applies with compare=other_scores only")
        if compare is not None:
            if not isinstance(source, HeadScores):
                raise TypeError(
                    "compare= shows two score sets: give HeadScores (or saved .npz paths) for"
                    f" both, not a {type(source).__name__}; score the model first"
                )
            other = HeadScores.load(compare) if isinstance(compare, (str, Path)) else compare
            source = compare_scores(source, other, compare_mode)
            if compare_mode == "difference":
                # signed differences: raw values around 0, on a diverging scale
                trait_options.setdefault("normalization", "raw")
                trait_options.setdefault("colormap", "diverging")
        if isinstance(source, HeadScores):
            if tokenizer is not None or tasks is not None or scoring:
                given = [
                    name
                    for name, value in (("tokenizer", tokenizer), ("tasks", tasks))
                    if value is not None
                ] + sorted(scoring)
                raise TypeError(
                    f"{given} only apply when scoring a model; these HeadScores are already"
                    " scored (pass the model instead to score it)"
                )
            self._show(source)
        else:
            self._prepare_model(source, tokenizer, tasks, scoring)
        if roles is not None:
            self.set_roles(roles)
        if paths is not None:
            self.set_paths(paths)
        # after the data, so that tab / selection options are checked against the tasks; a
        # threshold given here is in the units of the normalization given with it
        with self.hold_trait_notifications():
            for name, value in trait_options.items():
                if name == "threshold":
                    self._set_threshold(value, auto=False)
                else:
                    setattr(self, name, value)
        self._constructing = False

    # -- validation ------------------------------------------------------------------------------

    @t.validate("values")
    def _check_values(self, proposal: t.Bunch) -> bytes:
        data = proposal["value"]
        expected = 4 * math.prod(self.shape)
        if len(data) != expected:
            raise t.TraitError(
                f"values has {len(data)} bytes but shape {list(self.shape)} needs {expected}"
                " (float32); use grid.set_scores(HeadScores(...)) to change the data"
            )
        return data

    @t.validate("exact", "sem", "significant")
    def _check_cells(self, proposal: t.Bunch) -> bytes:
        data = proposal["value"]
        name = proposal["trait"].name
        size = (4 if name == "sem" else 1) * math.prod(self.shape)
        if data and len(data) != size:
            what = "float32" if name == "sem" else "one uint8 per cell"
            raise t.TraitError(
                f"{name} has {len(data)} bytes but shape {list(self.shape)} needs {size}"
                f" ({what}) or none"
            )
        return data

    @t.validate("shape")
    def _check_shape(self, proposal: t.Bunch) -> list[int]:
        shape = list(proposal["value"])
        if any(n < 0 for n in shape):
            raise t.TraitError(f"shape must be 3 non-negative sizes, got {shape}")
        return shape

    @t.validate("threshold", "vmax", "vmin", "min_accuracy", "min_reliability")
    def _check_finite(self, proposal: t.Bunch) -> float | None:
        value = proposal["value"]
        if value is not None and not math.isfinite(value):
            raise t.TraitError(f"{proposal['trait'].name} must be a finite number, got {value}")
        return value

    @t.validate("top_percent")
    def _check_top_percent(self, proposal: t.Bunch) -> float:
        value = proposal["value"]
        if not 0 < value <= 100:
            raise t.TraitError(f"top_percent must be in (0, 100], got {value}")
        return value

    @t.validate("tab")
    def _check_tab(self, proposal: t.Bunch) -> str:
        tab = proposal["value"]
        names = [task["name"] for task in self.tasks]
        if tab == "categories" and names and not has_categories(self.tasks):
            raise t.TraitError(
                "tab='categories' needs tasks with a category, and none of these tasks"
                f" {names} has one; give the tasks categories (Task(..., category=...) or"
                " HeadScores(..., categories={...})) or use tab='all'"
            )
        if tab in ("all", "categories") or (tab == "roles" and self.role_info):
            return tab
        if tab.startswith("task:") and tab[5:] in names:
            return tab
        roles = ", 'roles'" if self.role_info else ""
        raise t.TraitError(
            f"tab must be 'all', 'categories'{roles} or 'task:<name>' with a task name from"
            f" {names}; got {tab!r}" + ("" if roles or tab != "roles" else " (no roles given)")
        )

    @t.validate("selected_head")
    def _check_selected_head(self, proposal: t.Bunch) -> tuple[int, int] | None:
        head = proposal["value"]
        if head is None:
            return None
        _, n_layers, n_heads = self.shape
        layer, index = head
        if not (0 <= layer < n_layers and 0 <= index < n_heads):
            raise t.TraitError(
                f"selected_head {tuple(head)} is outside the grid of {n_layers} layers x"
                f" {n_heads} heads"
            )
        return (int(layer), int(index))

    @t.validate("selected_task")
    def _check_selected_task(self, proposal: t.Bunch) -> str:
        name = proposal["value"]
        names = [task["name"] for task in self.tasks]
        if name and name not in names:
            raise t.TraitError(f"selected_task must be '' or one of {names}, got {name!r}")
        return name

    @t.observe("threshold")
    def _threshold_changed(self, change: t.Bunch) -> None:
        # notifications may be delayed (hold_trait_notifications), so compare values rather
        # than flag the moment: any other value came from the user (Python or the slider)
        if change["new"] != self._auto_threshold_value:
            self._auto_threshold = False

    @t.observe("normalization")
    def _normalization_changed(self, change: t.Bunch) -> None:
        # the threshold is in normalized units: a default one follows the new units, one the
        # user chose is converted so that as many heads pass (the picture stays, not the number)
        if self._auto_threshold:
            self._update_default_threshold()
        elif not self._constructing:
            values = self.values_array()
            if values.size and not np.isnan(values).all():
                self.threshold = self._convert_threshold(
                    values, self.threshold, change["old"], change["new"]
                )

    # -- data --------------------------------------------------------------------------------

    @property
    def scores(self) -> HeadScores | None:
        """The scores shown, or None while a model has not been scored yet."""
        return self._scores

    def set_scores(self, scores: HeadScores) -> None:
        """Show other scores (any shape); the selection and tab are kept where still valid.
        Another model's scores (another ``meta["model"]`` or shape) make the grid forget the
        model it scored: the drill-down then draws no attention pattern.

        >>> grid.set_scores(HeadScores.load("other.npz"))   # doctest: +SKIP
        """
        if not isinstance(scores, HeadScores):
            raise TypeError(
                f"set_scores() takes a HeadScores, got {type(scores).__name__}; wrap an array"
                " as HeadScores(values, task_names)"
            )
        if self._running:
            raise RuntimeError("cannot set_scores() while the grid is scoring a model")
        self._pending = None
        previous = self._scores
        self._hold_only_for(scores)
        self._show(scores)
        self._roles_follow(previous, scores)
        self._paths_follow(scores)

    def _show(self, scores: HeadScores) -> None:
        self._scores = scores
        sure = unc.map_uncertainty(scores)
        tasks = task_dicts(
            scores.tasks,
            scores.categories,
            scores.descriptions,
            scores.baseline,
            scores.accuracy,
            sure.reliability,
            sure.examples_needed,
        )
        self._publish(scores.values, tasks, exact=scores.exact, uncertainty=sure, final=True)
        self.provenance = provenance_of(scores.meta, scores.method)
        if self._auto_title:
            self.title = str(scores.meta.get("model") or "")

    def _publish(
        self,
        values: np.ndarray,
        tasks: list[dict[str, Any]] | None = None,
        *,
        exact: np.ndarray | None = None,
        uncertainty: unc.MapUncertainty | None = None,
        final: bool = False,
    ) -> None:
        """Send values, exact, sem and significant (and the task list / shape when they change)
        in one message; streamed values have no ``uncertainty`` (sem and significant empty).

        An automatic threshold is set from the first values and then held while scores stream
        in, so colours and outlines do not reshuffle; ``final`` scores set it once more.
        """
        with self.hold_sync(), self.hold_trait_notifications():
            if tasks is not None:
                names = [task["name"] for task in tasks]
                self.tasks = tasks
                if (self.tab.startswith("task:") and self.tab[5:] not in names) or (
                    self.tab == "categories" and not has_categories(tasks)
                ):
                    self.tab = "all"
                if self.selected_task not in ("", *names):
                    self.selected_task = ""
                head = self.selected_head
                if head is not None and not (
                    head[0] < values.shape[1] and head[1] < values.shape[2]
                ):
                    self.selected_head = None
            if list(values.shape) != list(self.shape):
                self.exact = self.sem = self.significant = b""
                self.shape = list(values.shape)
            self.values = encode_values(values)
            self.exact = encode_exact(exact)
            sure = uncertainty or unc.MapUncertainty()
            self.sem = encode_sem(sure.sem)
            self.significant = encode_significance(sure.significance)
            if self._auto_threshold and (final or not self._threshold_held):
                self._update_default_threshold(values)
                self._threshold_held = not final and not np.isnan(values).all()

    def reply(self, content: Any) -> tuple[dict[str, Any], list[bytes]] | None:
        """The grid's answer to one front-end message (the drill-down's ``hw:examples`` and
        ``hw:attention`` requests, :mod:`headwidget.views.drill`; ``hw:writes``,
        :mod:`headwidget.views.writes`) as (JSON content, buffers),
        None for any other; errors come back in the content. The browser is answered with it.

        >>> content, buffers = grid.reply({"type": "hw:examples", "task": "t"})  # doctest: +SKIP
        """
        from .drill import handle_message
        from .writes import MESSAGE

        if isinstance(content, dict) and content.get("type") == MESSAGE:
            return self._writes_reply(content)
        return handle_message(self._scores, self._held_model(), content)

    def _on_message(self, _: Any, content: Any, buffers: Any) -> None:
        answer = self.reply(content)
        if answer is not None:
            self.send(*answer)

    def _ipython_display_(self, **kwargs: Any) -> None:
        """Show the view first, then score (if needed) in the cell's own thread.

        Trait updates reach the browser while a cell runs (also in Colab, where updates from
        background threads are not delivered), so the grid fills in as layers finish.
        """
        from IPython.display import display

        bundle = self._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        display(data, metadata=metadata, raw=True)
        if self._pending is not None and not self._running:
            self.compute()
