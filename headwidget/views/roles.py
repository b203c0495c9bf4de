"""Head roles on the map, as the widget and its figures show them (the Python twin of
``js/src/roles.ts``).

A grid given role maps (:func:`headwidget.detect_heads`: one map per role, "attention share")
marks every head whose score for a role is at least ``role_threshold`` with that role's glyph, on
every panel: one shape per role (:data:`BUILTIN_SHAPES`; other roles take the shapes left, in
order), white with a dark rim so that it shows on any colour, side by side when a head has
several. ``roles_shown`` picks the roles marked (by default all but "first token": most heads of
a model park attention on position 0, so its glyph would cover half the map), ``role_filter``
fades every head without that role.

>>> glyph_shapes(["induction", "two back", "previous token"])
['diamond', 'triangle_up', 'triangle']
>>> default_shown(["first token", "induction"])
['induction']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..scores import HeadScores
from .cell_runs import cells_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BUILTIN_SHAPES",
    "GLYPH_SHAPES",
    "HIDDEN_BY_DEFAULT",
    "ROLE_THRESHOLD",
    "RoleMarks",
    "as_role_scores",
    "default_shown",
    "encode_roles",
    "glyph_cells",
    "glyph_polygon",
    "glyph_shapes",
    "glyph_slots",
    "mark_figure",
    "role_info",
    "role_lines",
    "role_scale",
    "unit_label",
]

#: A head "has" a role when its score is at least this (``methods.roles.ROLE_THRESHOLD``, here
#: without importing torch).
ROLE_THRESHOLD = 0.4
#: The glyph shapes, in the order roles without a shape of their own take them.
GLYPH_SHAPES = ("triangle", "diamond", "square", "circle", "cross", "triangle_up", "plus", "star")
#: The built-in roles' glyphs: previous token ◀ (it looks one back), induction ◆, duplicate
#: token ■, first token ● (the sink), current token ✕.
BUILTIN_SHAPES = {
    "previous token": "triangle",
    "induction": "diamond",
    "duplicate token": "square",
    "first token": "circle",
    "current token": "cross",
}
#: Roles not marked unless ``roles_shown`` names them (attention sinks: most heads are one).
HIDDEN_BY_DEFAULT = ("first token",)
#: The faded share of a filtered-out head's colour (the widget's DIM_ALPHA, js/src/draw.ts).
DIM_ALPHA = 0.28
#: matplotlib markers of the shapes, for a figure's legend.
_MARKERS = {
    "triangle": "<",
    "diamond": "D",
    "square": "s",
    "circle": "o",
    "cross": "X",
    "triangle_up": "^",
    "plus": "P",
    "star": "*",
}


def glyph_shapes(names: Sequence[str]) -> list[str]:
    """The glyph shape of each role: a built-in role's own; the others, in order, the shapes of
    no built-in role, then those of the built-in roles not in ``names`` (cycling past eight)."""
    builtin = set(BUILTIN_SHAPES.values())
    taken = {BUILTIN_SHAPES[name] for name in names if name in BUILTIN_SHAPES}
    free = [shape for shape in GLYPH_SHAPES if shape not in builtin]
    free += [shape for shape in GLYPH_SHAPES if shape in builtin and shape not in taken]
    out, k = [], 0
    for name in names:
        if name in BUILTIN_SHAPES:
            out.append(BUILTIN_SHAPES[name])
        else:
            out.append(free[k % len(free)])
            k += 1
    return out


def glyph_polygon(shape: str) -> list[tuple[float, float]]:
    """The outline of a glyph in a unit box (x right, y up, within ±1): the same points
    js/src/roles.ts draws."""
    if shape == "triangle":
        return [(-1.0, 0.0), (0.85, 0.95), (0.85, -0.95)]
    if shape == "triangle_up":
        return [(0.0, 1.0), (0.95, -0.85), (-0.95, -0.85)]
    if shape == "diamond":
        return [(0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0)]
    if shape == "square":
        return [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    if shape == "circle":
        return [(0.9 * math.cos(a), 0.9 * math.sin(a)) for a in _angles(16, 0.0)]
    if shape == "star":
        radii = [1.0 if i % 2 == 0 else 0.45 for i in range(10)]
        return [
            (r * math.cos(a), r * math.sin(a))
            for r, a in zip(radii, _angles(10, math.pi / 2), strict=True)
        ]
    a = 0.32  # arm half-width of the plus and the cross
    plus = [
        (-a, 1),
        (a, 1),
        (a, a),
        (1, a),
        (1, -a),
        (a, -a),
        (a, -1),
        (-a, -1),
        (-a, -a),
        (-1, -a),
        (-1, a),
        (-a, a),
    ]
    if shape == "plus":
        return [(float(x), float(y)) for x, y in plus]
    if shape == "cross":
        s = 0.75  # the plus turned by 45°, its arms reaching about as far as the others
        return [((x - y) * s, (x + y) * s) for x, y in plus]
    raise ValueError(f"no glyph shape {shape!r}; the shapes are {list(GLYPH_SHAPES)}")


def _angles(n: int, start: float) -> list[float]:
    return [start + 2 * math.pi * i / n for i in range(n)]


def glyph_slots(k: int) -> tuple[list[float], float]:
    """Where ``k`` glyphs sit in a cell: their centres' x offsets from the cell's centre and
    their radius, in cells (side by side, the cell's width shared)."""
    radius = min(0.4, 0.46 / k)
    return [(j - (k - 1) / 2) / k for j in range(k)], radius


def default_shown(names: Sequence[str]) -> list[str]:
    """The roles marked by default: all but :data:`HIDDEN_BY_DEFAULT`."""
    return [name for name in names if name not in HIDDEN_BY_DEFAULT]


def as_role_scores(roles: HeadScores | str | Path, n_layers: int, n_heads: int) -> HeadScores:
    """``roles`` (role maps, or a saved ``.npz`` of them) checked against a grid of ``n_layers``
    x ``n_heads`` heads."""
    if isinstance(roles, (str, Path)):
        roles = HeadScores.load(roles)
    if not isinstance(roles, HeadScores):
        raise TypeError(
            "roles= takes the HeadScores of detect_heads(model, tokenizer) (or a path to them"
            f" saved), got {type(roles).__name__}"
        )
    if (roles.n_layers, roles.n_heads) != (n_layers, n_heads):
        raise ValueError(
            f"the role maps have {roles.n_layers} layers x {roles.n_heads} heads but these"
            f" scores {n_layers} x {n_heads}: detect them on the same model"
        )
    if not roles.tasks:
        raise ValueError("the role maps hold no role")
    return roles


def role_info(roles: HeadScores | None) -> dict[str, Any]:
    """The ``role_info`` trait: the roles' names, glyph shapes, descriptions and units ({} for
    none)."""
    if roles is None:
        return {}
    names = list(roles.tasks)
    return {
        "names": names,
        "shapes": glyph_shapes(names),
        "descriptions": [roles.descriptions.get(name, "") for name in names],
        "units": str(roles.meta.get("units") or "role score"),
        "model": str(roles.meta.get("model") or ""),
    }


def encode_roles(roles: HeadScores | None) -> bytes:
    """The ``role_values`` trait: float32 little-endian, C order ``[roles, layers, heads]``."""
    if roles is None:
        return b""
    return np.ascontiguousarray(roles.values, dtype="<f4").tobytes()


def glyph_cells(
    values: np.ndarray, threshold: float, shown: Sequence[int]
) -> list[tuple[int, int, list[int]]]:
    """Where the glyphs go: ``(layer, head, roles)`` for each head with a score of at least
    ``threshold`` for some role of ``shown`` (indices into ``values``, ``[roles, layers,
    heads]``), its roles in role order (the order of their glyphs, left to right).

    >>> glyph_cells(np.array([[[0.9, 0.1]], [[0.5, 0.0]]]), 0.4, [0, 1])
    [(0, 0, [0, 1])]
    """
    chosen = sorted(set(int(r) for r in shown))
    if not chosen:
        return []
    with np.errstate(invalid="ignore"):
        passing = np.asarray(values)[chosen] >= threshold
    cells = []
    for layer, head in zip(*np.nonzero(passing.any(axis=0)), strict=True):
        roles = [chosen[j] for j in np.flatnonzero(passing[:, layer, head])]
        cells.append((int(layer), int(head), roles))
    return cells


@dataclass(frozen=True)
class RoleMarks:
    """What a figure marks of the heads' roles: glyphs on the heads whose score passes
    ``threshold`` for a role of ``shown`` (None: :func:`default_shown`), and, with ``filter``
    (a role name), every head without that role faded.

    >>> marks = RoleMarks(roles, threshold=0.5, filter="induction")   # doctest: +SKIP
    >>> plot_scores(scores, roles=marks)                               # doctest: +SKIP
    """

    roles: HeadScores
    threshold: float = ROLE_THRESHOLD
    shown: Sequence[str] | None = None
    filter: str = ""

    def __post_init__(self) -> None:
        names = list(self.roles.tasks)
        unknown = [name for name in (self.shown or []) if name not in names]
        if self.filter and self.filter not in names:
            unknown.append(self.filter)
        if unknown:
            raise ValueError(f"no role(s) {unknown} in these role maps; the roles are {names}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"the role threshold must be a finite number, got {self.threshold}")

    @property
    def shown_names(self) -> list[str]:
        names = list(self.roles.tasks)
        return default_shown(names) if self.shown is None else [n for n in names if n in self.shown]

    def cells(self) -> list[tuple[int, int, list[int]]]:
        """:func:`glyph_cells` of the roles shown (with a filter, of the heads it keeps)."""
        shown = [self.roles.tasks.index(name) for name in self.shown_names]
        cells = glyph_cells(self.roles.values, self.threshold, shown)
        faded = self.faded()
        return cells if faded is None else [c for c in cells if not faded[c[0], c[1]]]

    def faded(self) -> np.ndarray | None:
        """Bool ``[layers, heads]``: the heads ``filter`` fades (without the role); None
        without a filter."""
        if not self.filter:
            return None
        with np.errstate(invalid="ignore"):
            return ~(self.roles.values[self.roles.tasks.index(self.filter)] >= self.threshold)

    def draw(self, ax: Axes, orientation: str) -> None:
        """Fade the filtered-out heads and draw the glyphs over a panel drawn by
        ``plotting._draw_matrix`` (one collection of polygons, in cells)."""
        from matplotlib.collections import PolyCollection

        faded = self.faded()
        if faded is not None:
            _fade_cells(ax, faded, orientation)
        shapes = glyph_shapes(self.roles.tasks)
        flip = -1.0 if orientation == "layer_y" else 1.0  # rows grow downwards there
        polygons = []
        for layer, head, roles in self.cells():
            x, y = (head, layer) if orientation == "layer_y" else (layer, head)
            offsets, radius = glyph_slots(len(roles))
            for dx, role in zip(offsets, roles, strict=True):
                polygons.append(
                    [
                        (x + dx + radius * px, y + flip * radius * py)
                        for px, py in glyph_polygon(shapes[role])
                    ]
                )
        if polygons:
            ax.add_collection(
                PolyCollection(
                    polygons,
                    facecolors="white",
                    edgecolors=(0, 0, 0, 0.85),
                    linewidths=0.5,
                    zorder=3,
                    gid="role-glyphs",
                )
            )

    def legend(self, fig: Figure) -> None:
        """The glyphs' legend, at the upper right outside the panels (below them it would meet
        the provenance line, above them the title)."""
        from matplotlib.lines import Line2D

        shapes = dict(zip(self.roles.tasks, glyph_shapes(self.roles.tasks), strict=True))
        handles = [
            Line2D(
                [],
                [],
                marker=_MARKERS[shapes[name]],
                linestyle="none",
                markersize=7,
                markerfacecolor="white",
                markeredgecolor="black",
                markeredgewidth=0.7,
                label=name if len(name) <= 40 else name[:39] + "…",
            )
            for name in self.shown_names
        ]
        if not handles and not self.filter:
            return
        units = str(self.roles.meta.get("units") or "role score")
        title = f"roles: {units}\n≥ {self.threshold:g}"
        if self.filter:
            name = self.filter if len(self.filter) <= 40 else self.filter[:39] + "…"
            title += f"\nfaded: heads without\n{name}"
        legend = fig.legend(
            handles=handles,
            loc="outside right upper",
            fontsize=8,
            title=title,
            title_fontsize=8,
            frameon=False,
            handletextpad=0.3,
            alignment="left",
        )
        for text in [*legend.get_texts(), legend.get_title()]:
            text.set(parse_math=False, usetex=False)

    def mark(self, fig: Figure, orientation: str) -> None:
        """Draw the marks on every heatmap panel of ``fig`` (a figure of ``plot_scores``) and
        the legend."""
        for ax in fig.axes:
            if ax.images and ax.get_visible() and not hasattr(ax, "_colorbar"):
                self.draw(ax, orientation)
        self.legend(fig)


def mark_figure(fig: Figure, roles: RoleMarks | None, orientation: str) -> None:
    """``roles.mark(fig, orientation)``, nothing for None (``plot_scores``' ``roles=``)."""
    if roles is not None:
        roles.mark(fig, orientation)


def _fade_cells(ax: Axes, mask: np.ndarray, orientation: str) -> None:
    """Fade the cells of ``mask`` (bool ``[layers, heads]``) toward white, keeping
    :data:`DIM_ALPHA` of their colour: one patch, the cells merged into runs along each row."""
    from matplotlib.patches import PathPatch

    path = cells_path(mask, orientation)
    if path is None:
        return
    fade = (1.0, 1.0, 1.0, 1 - DIM_ALPHA)
    ax.add_patch(PathPatch(path, facecolor=fade, linewidth=0, zorder=1.6, gid="role-faded"))


def role_lines(roles: HeadScores, layer: int, head: int, threshold: float) -> list[dict[str, Any]]:
    """A head's score for every role, strongest first: ``{"role", "score", "passes"}`` (None
    for a score that is not finite)."""
    out = []
    for r, name in enumerate(roles.tasks):
        score = float(roles.values[r, layer, head])
        finite = math.isfinite(score)
        passes = finite and score >= threshold
        out.append({"role": name, "score": score if finite else None, "passes": passes})
    return sorted(out, key=lambda row: -(row["score"] if row["score"] is not None else -math.inf))


def role_scale(values: np.ndarray) -> tuple[float, float]:
    """The colour limits of the Roles tab: 0 to 1, from −1 where some score is negative
    (``error_measure="abs"``)."""
    finite = values[np.isfinite(values)]
    return (-1.0 if finite.size and finite.min() < 0 else 0.0), 1.0


def unit_label(info: Mapping[str, Any]) -> str:
    """The Roles tab's colour bar title."""
    return f"Role score ({info.get('units') or 'role score'})"
