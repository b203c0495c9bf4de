"""Scoring a model inside the grid: the grid shows at once and fills in as blocks stream in.

:class:`LiveScoring` is the part of :class:`~headwidget.HeadImportanceGrid` that holds a model:
it prepares the empty grid, runs :func:`headwidget.score_heads` in the cell's thread
(``compute``), applies each streamed block, keeps what was scored when scoring stops early,
and validates the result (``validate``). An interrupt ends as one line
(:class:`ScoringInterrupted`), not a traceback.

>>> grid = HeadImportanceGrid(model, tokenizer, tasks=tasks)   # doctest: +SKIP
>>> scores = grid.compute()                                    # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..durations import format_seconds
from ..methods.options import ScoringOptions
from ..scores import HeadScores
from ..tasks import Task, as_task_list
from .trait_data import provenance_of, task_dicts

if TYPE_CHECKING:
    from ..methods.validation import ValidationResult

__all__ = ["LiveScoring", "ScoringInterrupted"]


def _task_list(tasks: Any) -> list[Task]:
    """The ``tasks`` argument as a checked list (``None``: the built-in "operations" suite)."""
    if tasks is None:
        from ..tasks import load_suite

        return load_suite("operations")
    return as_task_list(tasks)


def _model_dims(model: Any, head_layout: Any = None) -> tuple[int, int]:
    """(n_layers, n_heads) of a model, as the engine will see them."""
    if getattr(model, "config", None) is None and head_layout is None:
        raise TypeError(
            "HeadImportanceGrid takes HeadScores, a path to saved scores, or a Hugging Face"
            f" causal LM; got {type(model).__name__}"
        )
    from ..modeling.adapters import resolve_layout

    layout = resolve_layout(model, head_layout)
    return layout.n_layers, layout.n_heads


class ScoringInterrupted(KeyboardInterrupt):
    """A :meth:`HeadImportanceGrid.compute` interrupted (Ctrl-C, the notebook's ■): still a
    KeyboardInterrupt, shown by IPython as its one-line message instead of a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self}"]


@dataclass
class _Stream:
    """The scores of a :meth:`HeadImportanceGrid.compute` in progress, as blocks arrive."""

    values: np.ndarray
    exact: np.ndarray
    start: float
    index: dict[str, int]  # task name -> its index
    last_sync: float = -math.inf
    seen: set[tuple[int, int]] = field(default_factory=set)  # (task, layer) with any block

    @property
    def total(self) -> int:
        return self.values.shape[0] * self.values.shape[1]


class LiveScoring:
    """The grid's model half (mixed into :class:`~headwidget.HeadImportanceGrid`): it uses the
    grid's traits and ``_publish`` / ``_show``."""

    def _init_live(self) -> None:
        self._pending: tuple[Any, Any, Any, dict[str, Any]] | None = None  # scoring to do
        self._running = False
        self._stream: _Stream | None = None  # buffers of the scoring in progress
        # what the grid scores, for the drill-down and validate(): the model by weak reference
        # (the grid never keeps it in memory), tokenizer, tasks, head layout
        self._held: tuple[weakref.ref[Any], Any, list[Task], Any] | None = None
        # whose scores the held model gives: meta["model"] and (layers, heads)
        self._held_as: tuple[str, int, int] | None = None

    def _hold_only_for(self, scores: HeadScores) -> None:
        """Forget the held model when ``scores`` are another model's (another meta["model"],
        or another number of layers or heads): the drill-down must not run it on their
        examples, nor validate() test them on it."""
        key = (str(scores.meta.get("model") or ""), scores.n_layers, scores.n_heads)
        if self._held is not None and key != self._held_as:
            self._held = self._held_as = None

    def _held_model(self) -> tuple[Any, Any, Any] | None:
        """(model, tokenizer, head layout) for the drill-down's attention pattern, while the
        model is still alive elsewhere; None otherwise."""
        if self._held is None:
            return None
        ref, tokenizer, _, head_layout = self._held
        model = ref()
        return None if model is None else (model, tokenizer, head_layout)

    def _prepare_model(
        self, model: Any, tokenizer: Any, tasks: Any, scoring: dict[str, Any]
    ) -> None:
        n_layers, n_heads = _model_dims(model, scoring.get("head_layout"))
        task_list = _task_list(tasks)  # before the possibly slow tokenizer download
        # checked once, at construction, not later when the grid is displayed
        options = ScoringOptions.from_keywords(**scoring)
        if tokenizer is None:
            name = getattr(model, "name_or_path", None) or getattr(
                getattr(model, "config", None), "name_or_path", None
            )
            try:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(name)
            except Exception as err:
                raise ValueError(
                    f"could not load a tokenizer for model {name!r} ({type(err).__name__}: {err});"
                    " pass it: HeadImportanceGrid(model, tokenizer=tokenizer)"
                ) from err
        names = [task.name for task in task_list]
        self._pending = (model, tokenizer, task_list, options)
        self._held = (weakref.ref(model), tokenizer, task_list, options.head_layout)
        records = task_dicts(
            names,
            {task.name: task.category for task in task_list},
            {task.name: task.description for task in task_list},
            {},
        )
        self._publish(np.full((len(task_list), n_layers, n_heads), np.nan, np.float32), records)
        # what the engine records as meta["model"], so the title does not change at the end
        config = getattr(model, "config", None)
        model_name = str(getattr(config, "name_or_path", "") or type(model).__name__)
        self._held_as = (model_name, n_layers, n_heads)
        if self._auto_title:
            self.title = model_name
        self.provenance = provenance_of(
            {
                "model": model_name,
                "metric": options.metric,
                "ablation": options.ablation,
                "examples": {task.name: len(task) for task in task_list},
            },
            options.method,
        )
        # displaying the grid itself scores it; shown inside a container it waits for compute()
        self.progress = {
            "text": (
                f"waiting to score {len(task_list)} tasks · {n_layers} layers: call"
                " grid.compute() (displaying the grid by itself also starts it)"
            ),
            "fraction": 0.0,
            "running": False,
        }

    def compute(self, *, progress_bar: bool = False) -> HeadScores:
        """Score the model now, in this thread, streaming partial results to any open view.

        Displaying the grid by itself calls this. Call it yourself in scripts, and when the grid
        is shown inside a container: ``VBox([grid, grid.head_profile()])`` does not start
        scoring, so run ``grid.compute()`` after displaying it. Once scored it just returns the
        scores. If scoring fails, the layers already scored stay shown, the error text goes
        to ``progress`` and the error is raised again; when it ends, ``progress`` says how long
        it took ("done in …"). ``progress_bar=True`` also prints the
        engine's tqdm bar (handy in scripts; the grid has its own progress line).

        >>> scores = HeadImportanceGrid(model, tokenizer, tasks=tasks).compute()   # doctest: +SKIP
        """
        if self._pending is None:
            assert self._scores is not None
            return self._scores
        if self._running:
            raise RuntimeError("this grid is already scoring its model")
        from ..scoring import score_heads

        model, tokenizer, task_list, options = self._pending
        n_tasks, n_layers, n_heads = self.shape
        stream = self._stream = _Stream(
            np.full((n_tasks, n_layers, n_heads), np.nan, np.float32),
            np.ones((n_tasks, n_layers, n_heads), bool),
            time.monotonic(),
            {task.name: i for i, task in enumerate(task_list)},
        )
        self._running = True
        self.progress = {"text": f"scoring {n_tasks} tasks…", "fraction": 0.0, "running": True}
        try:
            # an approximate map (attribution) shows at once; exact blocks then replace cells
            scores = score_heads(
                model, tokenizer, task_list, options=options, on_block=self.take_block,
                progress=progress_bar,
            )  # fmt: skip
        except BaseException as err:
            # score_heads' errors carry every finished score (err.partial) once scoring began
            partial = getattr(err, "partial", None)
            if isinstance(partial, HeadScores) and partial.shape == stream.values.shape:
                self._publish(partial.values, exact=partial.exact)
                self._scores = partial
            else:  # failed before any scoring: what is shown stays
                self._publish(stream.values, exact=stream.exact)
            reason = "interrupted" if isinstance(err, KeyboardInterrupt) else "error"
            done = len(stream.seen)
            self.progress = {
                "text": f"{reason} after {done}/{stream.total} layers: {err}".rstrip(": "),
                "fraction": done / stream.total,
                "running": False,
                "error": True,
            }
            if isinstance(err, KeyboardInterrupt) and not isinstance(err, ScoringInterrupted):
                # a one-line message, not a long traceback: in Notebook 7 a long one turns the
                # cell's output into a short scrolled box that squeezes the grid
                raise ScoringInterrupted(
                    f"scoring interrupted after {done}/{stream.total} layers; the grid keeps"
                    " them (grid.scores); grid.compute() scores again"
                ) from None
            raise
        finally:
            self._running = False
            self._stream = None
        self._pending = None
        self._show(scores)
        seconds = scores.meta.get("seconds", time.monotonic() - stream.start)
        self.progress = {
            "text": f"done in {format_seconds(seconds)}",
            "fraction": 1.0,
            "running": False,
        }
        return scores

    def validate(
        self, model: Any = None, tokenizer: Any = None, tasks: Any = None, **kwargs: Any
    ) -> ValidationResult:
        """``scores.validate(...)`` with its progress on the grid's progress line as well as a
        tqdm bar; the line then says "validation done in …".

        A grid that scored its model itself knows the model, tokenizer and tasks; otherwise pass
        them. Keyword arguments go to :func:`headwidget.methods.validation.validate_scores`.

        >>> check = grid.validate(k=(5, 10), n_random=5)                  # doctest: +SKIP
        >>> check = grid.validate(model, tokenizer, tasks)               # doctest: +SKIP
        """
        scores = self.compute() if self._pending is not None else self._scores
        if scores is None:
            raise ValueError("this grid has no scores to validate")
        # scored here (compute() above succeeded), the grid knows what it scored
        known = self._held or (lambda: None, None, None, None)
        model = known[0]() if model is None else model
        tokenizer = known[1] if tokenizer is None else tokenizer
        tasks = known[2] if tasks is None else tasks
        if model is None or tokenizer is None or tasks is None:
            raise ValueError(
                "pass the model, tokenizer and tasks the scores were computed with:"
                " grid.validate(model, tokenizer, tasks)"
            )
        if known[3] is not None:
            kwargs.setdefault("head_layout", known[3])
        kwargs["progress"] = self
        return scores.validate(model, tokenizer, tasks, **kwargs)

    def take_block(
        self,
        task: str,
        layer: int,
        heads: slice | Sequence[int] | np.ndarray,
        values: np.ndarray,
        exact: bool | np.ndarray = True,
    ) -> None:
        """Take one streamed block of scores while :meth:`compute` runs (``score_heads``'
        ``on_block`` protocol): ``values`` of ``heads`` (indices or a slice) of ``layer`` of
        ``task``, exact or approximate (a bool, or one per head). An exact value later replaces
        an approximate one. The grid is sent to the browser at most every
        :attr:`sync_interval` seconds (values, exact mask, progress in one message).

        >>> grid.take_block("copying", 3, [1, 4], np.array([0.2, 0.5]), False)  # doctest: +SKIP
        """
        stream = self._stream
        if stream is None:
            raise RuntimeError(
                "take_block() takes the scores compute() streams, and compute() is not running"
            )
        n_tasks, n_layers, _ = stream.values.shape
        task_index = stream.index[task]
        stream.values[task_index, layer, heads] = np.asarray(values, np.float32).reshape(-1)
        stream.exact[task_index, layer, heads] = exact
        stream.seen.add((task_index, layer))
        now = time.monotonic()
        fraction = len(stream.seen) / stream.total
        eta = (now - stream.start) * (1 - fraction) / fraction
        text = (
            f"task {task_index + 1}/{n_tasks} · layer {layer + 1}/{n_layers} · ETA"
            f" {format_seconds(eta)}"
        )
        approximate = int(stream.exact.size - np.count_nonzero(stream.exact))
        if approximate:
            text = f"{text} · {approximate} cells approximate"
        if now - stream.last_sync >= self.sync_interval:
            stream.last_sync = now
            with self.hold_sync():  # one message: values, exact, threshold and progress
                self._publish(stream.values, exact=stream.exact)
                self.progress = {"text": text, "fraction": fraction, "running": True}
