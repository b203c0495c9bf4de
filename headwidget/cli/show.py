"""``headwidget show``: a score file's top heads, how sure each map is, its roles; the page
or a figure."""

from __future__ import annotations

import argparse
from typing import Any

from .common import UsageError, log, shown
from .paths import show_paths
from .roles import load_roles, show_roles

__all__ = ["show"]


def show(args: argparse.Namespace) -> int:
    from ..scores import HeadScores

    if args.top < 0:
        raise UsageError(f"--top must be >= 0, got {args.top}")
    if args.html and not args.html.lower().endswith((".html", ".htm")):
        raise UsageError(f"--html {args.html!r}: the page is HTML, name it *.html")
    scores = HeadScores.load(args.scores)
    roles = load_roles(scores, args) if args.roles else None
    # the page and the figure mark the heads' roles (glyphs) at --role-threshold
    threshold = {} if args.role_threshold is None else {"role_threshold": args.role_threshold}
    meta = scores.meta
    print(
        f"{shown(args.scores)}: {shown(scores.method)} scores of"
        f" {shown(meta.get('model', '?'))},"
        f" {len(scores.tasks)} task{'s' if len(scores.tasks) != 1 else ''} x"
        f" {scores.n_layers} layers x {scores.n_heads} heads"
        + (f", metric {shown(meta['metric'])}" if meta.get("metric") else "")
    )
    reliability, needed = scores.reliability(), scores.examples_needed(0.9)
    estimated = (scores.sem_source == "estimate").sum(axis=(1, 2))
    for t, name in enumerate(scores.tasks):
        extra = []
        if name in scores.accuracy:
            extra.append(f"clean accuracy {scores.accuracy[name]:.2f}")
        if name in scores.baseline:
            extra.append(f"clean metric {scores.baseline[name]:.4g}")
        print(f"\n{shown(name)}" + (f"  ({', '.join(extra)})" if extra else ""))
        print(f"  {_reliability(scores, name, reliability[name], needed[name], estimated[t])}")
        top = scores.top_heads(name, k=args.top)
        for rank, (layer, head, value) in enumerate(top, 1):
            print(f"  {rank:3d}. L{layer}H{head}  {value:+.5g}")
        if args.top and not top:
            print("  (no head scored)")
    if roles is not None:
        show_roles(scores, args, roles)
    # the page and the figure draw each task's --edges strongest paths as arrows
    paths = show_paths(scores, args) if args.paths else None
    if args.html:
        from ..views.widget import HeadImportanceGrid

        drawn = {} if paths is None else {"paths": paths, "path_edges": args.edges}
        path = HeadImportanceGrid(scores, roles=roles, **threshold, **drawn).save(args.html)
        log(f"wrote {path}")
    if args.png:
        from ..views.plotting import plot_scores
        from ..views.roles import ROLE_THRESHOLD, RoleMarks

        cut = threshold.get("role_threshold", ROLE_THRESHOLD)
        marks = None if roles is None else RoleMarks(roles, cut)
        from ..views.path_marks import PathMarks

        arrows = None if paths is None else PathMarks(paths, args.edges)
        figure = plot_scores(scores, roles=marks, paths=arrows)
        figure.savefig(args.png, dpi=150, bbox_inches="tight")
        log(f"wrote {args.png}")
    return 0


def _reliability(
    scores: Any, name: str, reliability: float, needed: int | None, estimated: int
) -> str:
    """``show``'s line on how sure a task's map is: its split-half reliability, the examples a
    reliability of 0.9 needs (Spearman-Brown) and how many cells are attribution estimates."""
    if name not in scores.effects:
        return "reliability: no per-example effects"
    n = scores.effects[name].shape[2]
    if reliability != reliability:  # NaN
        return f"reliability: not measurable ({n} examples; it needs 4 and a non-constant map)"
    line = f"reliability {reliability:.2f} over {n} examples"
    if needed is None:
        line += " (noise: no number of examples projects to 0.9)"
    else:
        line += f"; 0.9 needs ~{needed} examples"
    if estimated:
        line += f" ({estimated} cells from per-example first-order estimates)"
    return line
