"""The grid's head roles and what a head writes: the traits, ``set_roles``, ``detect_roles`` and
``precompute_writes`` of :class:`~headwidget.HeadImportanceGrid` (:mod:`.roles`,
:mod:`.writes`).

>>> grid = HeadImportanceGrid(scores, roles=detect_heads(model, tokenizer))   # doctest: +SKIP
>>> grid.role_filter = "induction"        # fade every head without the role   # doctest: +SKIP
>>> grid.precompute_writes()              # for a saved page                    # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import traitlets as t

from ..scores import HeadScores
from . import roles as rl
from . import writes as wr

__all__ = ["ROLE_OPTIONS", "GridRoles"]

#: The role traits that may be given to the constructor.
ROLE_OPTIONS = ("roles_shown", "role_threshold", "role_filter")


class GridRoles(t.HasTraits):
    """The roles half of the grid (mixed into :class:`~headwidget.HeadImportanceGrid`): it uses
    the grid's ``shape``, ``tab``, scores and held model."""

    role_values = t.Bytes(
        b"", help="float32 little-endian, C order [n_roles, n_layers, n_heads]; b'' no roles"
    ).tag(sync=True)
    role_info = t.Dict(help="names, shapes, descriptions, units of the role maps").tag(sync=True)
    roles_shown = t.List(t.Unicode()).tag(sync=True)
    role_threshold = t.Float(rl.ROLE_THRESHOLD).tag(sync=True)
    role_filter = t.Unicode("").tag(sync=True)
    writes = t.Dict(help='precomputed "what a head writes": {"layer,head": {task: record}}').tag(
        sync=True
    )

    def _init_roles(self, options: Mapping[str, Any]) -> None:
        self._roles: HeadScores | None = None
        self._auto_roles_shown = "roles_shown" not in options

    # -- validation ------------------------------------------------------------------------------

    def _role_names(self) -> list[str]:
        return list(self.role_info.get("names", []))

    @t.validate("role_values")
    def _check_role_values(self, proposal: t.Bunch) -> bytes:
        data = proposal["value"]
        size = 4 * len(self._role_names()) * self.shape[1] * self.shape[2]
        if data and len(data) != size:
            raise t.TraitError(
                f"role_values has {len(data)} bytes but {len(self._role_names())} roles x"
                f" {self.shape[1]} x {self.shape[2]} heads need {size} (float32); use"
                " grid.set_roles(...)"
            )
        return data

    @t.validate("roles_shown")
    def _check_roles_shown(self, proposal: t.Bunch) -> list[str]:
        shown = list(proposal["value"])
        names = self._role_names()
        unknown = [name for name in shown if name not in names]
        if unknown:
            raise t.TraitError(
                f"roles_shown names {unknown}, which are not among the roles {names}"
                + ("" if names else " (the grid has no roles: give it roles=detect_heads(...))")
            )
        return shown

    @t.validate("role_filter")
    def _check_role_filter(self, proposal: t.Bunch) -> str:
        name = proposal["value"]
        names = self._role_names()
        if name and name not in names:
            raise t.TraitError(
                f"role_filter must be '' (no filter) or one of the roles {names}, got {name!r}"
            )
        return name

    @t.validate("role_threshold")
    def _check_role_threshold(self, proposal: t.Bunch) -> float:
        value = proposal["value"]
        if not math.isfinite(value):
            raise t.TraitError(f"role_threshold must be a finite number, got {value}")
        return value

    @t.observe("roles_shown")
    def _roles_shown_changed(self, change: t.Bunch) -> None:
        if change["new"] != rl.default_shown(self._role_names()):
            self._auto_roles_shown = False

    # -- data ------------------------------------------------------------------------------------

    @property
    def roles(self) -> HeadScores | None:
        """The role maps shown (``detect_heads``' HeadScores), or None."""
        return self._roles

    def set_roles(self, roles: HeadScores | str | Path | None) -> None:
        """Show ``roles`` (the HeadScores of :func:`headwidget.detect_heads`, or a saved path;
        its layers x heads must be the grid's), or none: glyphs on the heads that have a role,
        the Roles tab, the role filter and the roles in the tooltip and drill-down.

        >>> grid.set_roles("roles.npz")          # doctest: +SKIP
        """
        _, n_layers, n_heads = self.shape
        if roles is not None:
            roles = rl.as_role_scores(roles, n_layers, n_heads)
        self._roles = roles
        names = [] if roles is None else list(roles.tasks)
        with self.hold_sync(), self.hold_trait_notifications():
            self.role_values = b""
            self.role_info = rl.role_info(roles)
            self.role_values = rl.encode_roles(roles)
            if self._auto_roles_shown:
                self.roles_shown = rl.default_shown(names)
                self._auto_roles_shown = True
            else:
                self.roles_shown = [name for name in self.roles_shown if name in names]
            if self.role_filter not in ("", *names):
                self.role_filter = ""
            if self.tab == "roles" and roles is None:
                self.tab = "all"

    def _roles_follow(self, previous: HeadScores | None, scores: HeadScores) -> None:
        """After the grid shows ``scores`` instead of ``previous``: role maps of another shape,
        and what heads write when ``scores`` are another model's, are dropped."""
        if self._roles is not None and self._roles.shape[1:] != scores.shape[1:]:
            self.set_roles(None)

        def model(s: HeadScores | None) -> tuple[Any, ...]:
            return (None,) if s is None else (s.meta.get("model"), *s.shape[1:])

        if model(previous) != model(scores):
            self.writes = {}

    def role_marks(self) -> rl.RoleMarks | None:
        """The marks a figure of the view draws (:class:`~headwidget.views.roles.RoleMarks`)."""
        if self._roles is None:
            return None
        shown = list(self.roles_shown)
        return rl.RoleMarks(self._roles, self.role_threshold, shown, self.role_filter)

    def detect_roles(self, model: Any = None, tokenizer: Any = None, **options: Any) -> HeadScores:
        """Detect the heads' roles with :func:`headwidget.detect_heads` and show them. A grid
        that scored its model needs no model or tokenizer (it holds a weak reference to the
        model); ``options`` go to ``detect_heads`` (``roles``, ``n_sequences``, ...; its
        progress bar is off unless ``progress=True``).

        >>> roles = grid.detect_roles(n_sequences=16)       # doctest: +SKIP
        """
        from ..methods.roles import detect_heads

        held = self._held_model()  # type: ignore[attr-defined]
        model = model if model is not None else (held[0] if held else None)
        tokenizer = tokenizer if tokenizer is not None else (held[1] if held else None)
        if model is None or tokenizer is None:
            raise ValueError(
                "this grid holds no model (it was given scores, or the model was deleted):"
                " grid.detect_roles(model, tokenizer)"
            )
        if held is not None and model is held[0] and held[2] is not None:
            options.setdefault("head_layout", held[2])
        options.setdefault("progress", False)
        roles = detect_heads(model, tokenizer, **options)
        self.set_roles(roles)
        return roles

    def precompute_writes(
        self,
        heads: Sequence[tuple[int, int]] | None = None,
        *,
        tasks: Sequence[str] | None = None,
        top: int = 3,
        model: Any = None,
        tokenizer: Any = None,
        task_list: Any = None,
    ) -> dict[str, dict[str, Any]]:
        """Compute what heads write now and keep it in the ``writes`` trait, so that a page
        saved afterwards (``grid.save("x.html")``, which has no kernel) shows it in its
        drill-down. ``heads``: these heads for every task (or ``tasks``); default: each task's
        ``top`` heads for that task. A grid that scored its model needs no model; otherwise pass
        ``model``, ``tokenizer`` and ``task_list`` (the Task objects, with source words).

        >>> grid.precompute_writes()                         # doctest: +SKIP
        >>> grid.precompute_writes([(23, 4)], tasks=["country → capital"])  # doctest: +SKIP
        """
        scores = self._scores  # type: ignore[attr-defined]
        known = self._held or (lambda: None, None, None, None)  # type: ignore[attr-defined]
        model = known[0]() if model is None else model
        tokenizer = known[1] if tokenizer is None else tokenizer
        task_list = known[2] if task_list is None else task_list
        if scores is None or model is None or tokenizer is None or not task_list:
            raise ValueError(
                "precompute_writes needs scores and the model, tokenizer and tasks they came"
                " from: grid.precompute_writes(model=..., tokenizer=..., task_list=...)"
            )
        names = [task.name for task in task_list if task.name in scores.tasks]
        if tasks is not None:
            missing = [name for name in tasks if name not in names]
            if missing:
                raise ValueError(f"no task(s) {missing}; the grid's tasks are {names}")
            names = list(tasks)
        if heads is not None:
            chosen = {name: [(int(a), int(b)) for a, b in heads] for name in names}
        else:
            chosen = {name: [(a, b) for a, b, _ in scores.top_heads(name, k=top)] for name in names}
        found = wr.precompute(model, tokenizer, task_list, chosen)
        merged = {key: dict(value) for key, value in self.writes.items()}
        for key, records in found.items():
            merged.setdefault(key, {}).update(records)
        self.writes = merged
        return found

    def _writes_reply(self, content: Mapping[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        known = self._held  # type: ignore[attr-defined]
        tasks = known[2] if known is not None else None
        return wr.writes_reply(self._held_model(), tasks, content, self.shape)  # type: ignore[attr-defined]

    def role_array(self) -> np.ndarray | None:
        """The ``role_values`` trait decoded: float32 ``[roles, layers, heads]``, or None."""
        if not self.role_values:
            return None
        shape = (len(self._role_names()), self.shape[1], self.shape[2])
        return np.frombuffer(self.role_values, "<f4").reshape(shape).copy()
