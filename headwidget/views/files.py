"""A grid's view as files: a self-contained interactive HTML page, and a static image.

The page inlines the front-end bundle, the scores and the options (no server, no CDN). The
image (PNG, SVG or PDF) is drawn with matplotlib by
:func:`headwidget.views.plotting.plot_scores` from the view's options, with the colour bar's
unit and the provenance line; no browser is needed.

>>> grid.save("heads.html")                      # doctest: +SKIP
>>> grid.save("heads.png", scale=2)              # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import read_bundle
from .roles import RoleMarks, role_scale
from .uncertainty import UNTESTED, MapUncertainty

#: Suffixes :func:`write_image` draws.
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
#: The binary traits a page inlines, each as base64 in the element ``headwidget-<name>``
#: (js/src/page.ts reads them by these names).
BINARY_TRAITS = (
    "values", "exact", "sem", "significant", "role_values", "path_data", "path_effect", "path_sem",
)  # fmt: skip
# state key (not a trait) of the automatic thresholds {"share": ..., "raw": ...} of a saved page
# (js/src/page.ts reads it by this name)
_DEFAULT_THRESHOLDS = "_default_thresholds"

# A standalone page: its script (js/src/page.ts, built into headwidget/static/page.js) gives
# the widget a minimal in-page model in place of the Jupyter widget manager, and imports the
# bundle from a blob: URL.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
<meta name="color-scheme" content="light dark">
<style>
body {{ margin: 12px; font-family: system-ui, sans-serif; background: #ffffff; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #1e1e1e; color: #e6e6e6; }} }}
</style>
</head>
<body>
<div id="headwidget-root"></div>
<script type="application/json" id="headwidget-state">{state}</script>
{binary}
<script type="text/plain" id="headwidget-bundle">{bundle}</script>
<script type="module">
{script}</script>
</body>
</html>
"""


def write_html(
    path: Path,
    state: Mapping[str, Any],
    binary: Mapping[str, bytes],
    defaults: Mapping[str, float] | None,
    *,
    esm: Path,
    css: Path,
    page: Path,
) -> Path:
    """Write the page of a view: ``state`` (JSON traits), ``binary`` (the binary traits of
    :data:`BINARY_TRAITS`: ``values``, ``exact``, ``sem``, ``significant``, ``role_values``; a
    missing one is empty) and, for an automatic threshold, ``defaults`` (its value per
    normalization).
    ``esm`` / ``css`` are the widget's bundle and stylesheet, ``page`` the page's script."""
    unknown = sorted(set(binary) - set(BINARY_TRAITS))
    if unknown:
        raise ValueError(f"unknown binary trait(s) {unknown}; a page inlines {BINARY_TRAITS}")
    script = read_bundle(page)
    # inlined as it is: nothing in it may end the element or start a comment in it
    if re.search(r"</script|<!--", script, re.I):
        raise ValueError(f"{page} holds '</script' or '<!--' and cannot be inlined in a page")
    state = dict(state)
    if defaults:
        state[_DEFAULT_THRESHOLDS] = dict(defaults)
    # No "<" at all in the script element's text (nor ">", "&"): "</script" would end it
    # early and "<!--<script" would put the parser in the double-escaped state; JSON reads
    # the \u escapes back as the same characters.
    state_json = (
        json.dumps(state, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    css_text = css.read_text(encoding="utf-8") if css.is_file() else ""
    text = _PAGE.format(
        # a lone surrogate (valid in a Python str, not in UTF-8) becomes U+FFFD
        title=html.escape(
            str(state.get("title") or "headwidget")
            .encode("utf-16", "surrogatepass")
            .decode("utf-16", "replace")
        ),
        css=css_text.replace("</", "<\\/"),
        state=state_json,
        binary="\n".join(
            f'<script type="text/plain" id="headwidget-{name}">'
            f"{base64.b64encode(binary.get(name, b'')).decode('ascii')}</script>"
            for name in BINARY_TRAITS
        ),
        bundle=base64.b64encode(esm.read_bytes()).decode("ascii"),
        script=script,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# the units of the colour bar, as the front end names them (js/src/units.ts)
_METRIC_UNITS = {
    "logprob": "log-prob drop",
    "prob": "prob drop",
    "accuracy": "accuracy drop",
    "logit_diff": "logit-diff drop",
}


def unit_text(normalization: str, metric: str) -> str:
    """The unit of the values shown: a share of the task's total, or the metric's drop."""
    if normalization == "share":
        return "share of task"
    return _METRIC_UNITS.get(metric) or (f"{metric} drop" if metric else "raw score")


def provenance_line(provenance: Mapping[str, Any]) -> str:
    """ "model · method (mean ablation) · metric logprob · 40 examples per task · date" (as the
    widget shows it); "" when nothing is known."""
    if not provenance:
        return ""
    method = provenance.get("method") or "ablation"
    parts = [provenance["model"]] if provenance.get("model") else []
    ablation = provenance.get("ablation")
    parts.append(f"{method} ({ablation} ablation)" if ablation else method)
    if provenance.get("metric"):
        parts.append(f"metric {provenance['metric']}")
    counts = list((provenance.get("examples") or {}).values())
    if counts:
        low, high = min(counts), max(counts)
        parts.append(f"{low if low == high else f'{low}–{high}'} examples per task")
    if provenance.get("date"):
        parts.append(provenance["date"])
    return " · ".join(parts)


def write_image(
    path: Path,
    scores: Any,
    view: Mapping[str, Any],
    uncertainty: MapUncertainty | None = None,
    *,
    scale: float = 2.0,
    roles: RoleMarks | None = None,
    paths: Any = None,
) -> Path:
    """Draw the view as a PNG, SVG or PDF (by ``path``'s suffix) with matplotlib.

    ``view`` holds the grid's traits (tab, normalization, threshold mode and value, colours,
    orientation, title, provenance, the uncertainty marks). ``uncertainty``
    (:class:`headwidget.views.uncertainty.MapUncertainty`) is how sure the maps are: reliability
    in the titles, significance for ``mark_insignificant`` and the "significant" threshold
    mode. ``scale`` multiplies the resolution of a PNG (100 dpi at 1). Heads that pass the
    threshold are outlined; approximate cells are not marked (the interactive widget and its
    export show them). ``roles`` draws the heads' role glyphs (:mod:`headwidget.views.roles`);
    the "roles" tab draws the role maps themselves, heads at or above the role threshold
    outlined. ``paths`` (:class:`~headwidget.views.path_marks.PathMarks`) draws the arrows.
    """
    from .plotting import plot_scores

    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"an image is saved as {'/'.join(IMAGE_SUFFIXES)}, got {path.name!r}")
    if not (isinstance(scale, (int, float)) and np.isfinite(scale) and 0.25 <= scale <= 8):
        raise ValueError(f"scale must be a number from 0.25 to 8 (2 or 3 for print), got {scale!r}")
    tab = str(view.get("tab", "all"))
    threshold_mode = view.get("threshold_mode", "value")
    mode = (
        {"top_percent": view["top_percent"]}
        if threshold_mode == "top_percent"
        else {"threshold": view["threshold"]}
    )
    uncertainty = uncertainty if uncertainty is not None else MapUncertainty()
    if threshold_mode == "significant" and uncertainty.significance is None:
        # as the widget: without a test no head is significant, so none passes
        untested = np.full(scores.values.shape, UNTESTED, np.uint8)
        uncertainty = MapUncertainty(significance=untested, reliability=uncertainty.reliability)
    normalization = view.get("normalization", "share")
    provenance = view.get("provenance") or {}
    if tab == "roles" and roles is not None:
        fig = _plot_roles(roles, view)
    else:
        fig = plot_scores(
            scores,
            kind="categories" if tab == "categories" else "tasks",
            normalization=normalization,
            tasks=[tab[5:]] if tab.startswith("task:") else None,
            vmax=view.get("vmax"),
            vmin=view.get("vmin"),
            colormap=view.get("colormap", "viridis"),
            color_range=view.get("color_range", "shared"),
            orientation=view.get("orientation"),
            ncols=int(view.get("grid_columns") or 4),
            title=view.get("title") or None,
            min_accuracy=float(view.get("min_accuracy", 0.2)),
            colorbar_label=f"Importance ({unit_text(normalization, provenance.get('metric', ''))})",
            min_reliability=float(view.get("min_reliability", 0.7)),
            # marked where the browser has a test to mark with, as the widget does
            mark_insignificant=bool(view.get("mark_insignificant")) and tested(uncertainty),
            significant_only=threshold_mode == "significant",
            categories_from=view.get("categories_from", "all"),
            uncertainty=uncertainty,
            roles=roles,
            paths=paths,
            **mode,
        )
    line = provenance_line(provenance)
    if line:
        # below everything else (bbox_inches="tight" keeps it in the file)
        fig.text(0.01, -0.01, line, fontsize=8, color="0.35", ha="left", va="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    # text stays text (editable in a vector editor), not outlines
    with matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        fig.savefig(path, dpi=100 * scale, bbox_inches="tight", pad_inches=0.15)
    return path


def _plot_roles(roles: RoleMarks, view: Mapping[str, Any]) -> Any:
    """The "roles" tab as a figure: each role's map on one colour scale (0 to 1; from −1 for
    signed scores), heads at or above the role threshold outlined, the glyphs on top."""
    from .plotting import plot_scores
    from .roles import role_info, unit_label

    low, high = role_scale(roles.roles.values)
    colormap = view.get("colormap", "viridis")
    return plot_scores(
        roles.roles,
        normalization="raw",
        vmin=low,
        vmax=high,
        colormap="viridis" if colormap == "diverging" and low == 0 else colormap,
        orientation=view.get("orientation"),
        ncols=int(view.get("grid_columns") or 4),
        title=view.get("title") or None,
        colorbar_label=unit_label(role_info(roles.roles)),
        threshold=roles.threshold,
        roles=roles,
    )


def tested(uncertainty: MapUncertainty) -> bool:
    """Whether some cell of ``uncertainty`` (a MapUncertainty) was tested for significance."""
    codes = uncertainty.significance
    return codes is not None and bool((codes != UNTESTED).any())
