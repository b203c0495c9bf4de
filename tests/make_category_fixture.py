"""Write tests/fixtures/categories_cases.json: category-rule cases shared with the JS tests.

The expectations are computed by headwidget.views.categories (the Python twin of the front
end's rule); tests/test_categories.py checks that the committed file still matches, and
hand-checks the small cases. Regenerate after a deliberate change to the rule:

    python tests/make_category_fixture.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

try:
    from headwidget.views import categories as cat
    from headwidget.views import uncertainty as unc
except ImportError:  # run as a script from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from headwidget.views import categories as cat
    from headwidget.views import uncertainty as unc

FIXTURE = Path(__file__).parent / "fixtures" / "categories_cases.json"
NAN = float("nan")
FOUR = ["Algorithmic", "Knowledge", "Linguistic", "Translation"]


def _case(
    name: str,
    values: Any,
    categories: list[str | None],
    *,
    threshold: float = 0.001,
    top_percent: float = 5.0,
    mode: str = "value",
    **uncertainty: Any,
) -> dict[str, Any]:
    """One case; ``uncertainty`` may give ``significant`` (codes, flat), ``reliability`` and
    ``accuracy`` (one per task, None unknown), ``min_reliability``, ``min_accuracy`` and
    ``categories_from``."""
    array = np.asarray(values, dtype=np.float32)
    assert array.ndim == 3, name
    unknown = set(uncertainty) - {
        "significant", "reliability", "accuracy", "min_reliability", "min_accuracy",
        "categories_from",
    }  # fmt: skip
    assert not unknown, unknown
    return {
        "name": name,
        "shape": list(array.shape),
        # float32 values written as the float64 of the float32, so JSON -> Float32Array is exact
        "values": [None if math.isnan(v) else float(v) for v in array.ravel().tolist()],
        "categories": categories,
        "threshold_mode": mode,
        "threshold": threshold,
        "top_percent": top_percent,
        **uncertainty,
    }


def expected_for(case: dict[str, Any]) -> dict[str, Any]:
    """What headwidget.views.categories computes for one fixture case."""
    values = np.array([NAN if v is None else v for v in case["values"]], dtype=np.float32).reshape(
        case["shape"]
    )
    mode = case["threshold_mode"]
    kwargs = (
        {"top_percent": case["top_percent"]}
        if mode == "top_percent"
        else {"threshold": case["threshold"]}
    )
    n_tasks = values.shape[0]
    significant = None
    if mode == "significant":  # only significant cells pass; none without codes
        codes = case.get("significant")
        significant = (
            np.zeros(values.shape, bool)
            if codes is None
            else np.asarray(codes).reshape(values.shape) == unc.SIGNIFICANT
        )
    reliability = case.get("reliability", [None] * n_tasks)
    min_reliability = case.get("min_reliability", unc.MIN_RELIABILITY)
    categories_from = case.get("categories_from", "all")
    counted = unc.counted_tasks(
        reliability,
        case.get("accuracy", [None] * n_tasks),
        categories_from=categories_from,
        min_reliability=min_reliability,
        min_accuracy=case.get("min_accuracy", 0.2),
    )
    result = cat.assign_categories(
        values, case["categories"], significant=significant, counted=counted, **kwargs
    )
    panels = {"All Categories": [t for t, c in enumerate(case["categories"]) if c is not None]}
    for name in result.names:
        panels[name] = [t for t, c in enumerate(case["categories"]) if c == name]
    return {
        "counted": counted,
        # the reliability lines of the titles: each task's, each category panel's
        "task_notes": [unc.reliability_note(r, min_reliability)[0] for r in reliability],
        "panel_notes": {
            name: unc.group_reliability_note(
                [reliability[t] for t in tasks],
                [counted[t] for t in tasks],
                min_reliability,
                categories_from,
            )[0]
            for name, tasks in panels.items()
        },
        "cutoffs": [float(c) if math.isfinite(c) else None for c in result.cutoffs.tolist()],
        "passes_per_task": [int(c) for c in result.counts],
        "labels": [str(label) for label in result.labels.ravel()],
        "membership": {
            name: result.membership[i].ravel().astype(int).tolist()
            for i, name in enumerate(result.names)
        },
        "category_order": result.names,
        "legend": result.legend,
        "colors": result.colors,
    }


def build_cases() -> list[dict[str, Any]]:
    """The input half of every case (no expectations)."""
    ties = [[[0.1, 0.2, 0.2], [0.3, 0.2, 0.05]]]
    # 4 categories + a second Algorithmic task; 1 layer x 6 heads. Head 0 passes every task,
    # head 1 three categories, head 2 two, head 3 only Linguistic, head 4 nothing, head 5 both
    # Algorithmic tasks (still one category).
    multi = [
        [[1, 1, 1, 0, 0, 1]],
        [[1, 1, 0, 0, 0, 0]],
        [[1, 0, 1, 1, 0, 0]],
        [[1, 1, 0, 0, 0, 0]],
        [[0, 0, 0, 0, 0, 1]],
    ]
    rng = np.random.default_rng(20250101)
    # share-like values: sparse hot spots on a near-zero floor, each task summing to ~1
    raw = rng.gamma(0.3, 1.0, size=(6, 8, 8)) * (rng.random((6, 8, 8)) < 0.6)
    shares = raw / raw.sum(axis=(1, 2), keepdims=True)
    shares[2, 7, 7] = NAN
    shares[4, 0, 3] = NAN
    random_categories = [
        "Knowledge",
        "Algorithmic",
        "Linguistic",
        "Knowledge",
        "Translation",
        "Algorithmic",
    ]
    return [
        _case("ties at a value threshold", ties, ["Knowledge"], threshold=0.2),
        _case(
            "ties at the top_percent cutoff",
            ties,
            ["Knowledge"],
            top_percent=50,
            mode="top_percent",
        ),
        _case(
            "NaN cells never pass (value mode)",
            [[[NAN, 0.4, 0.1], [NAN, 0.3, 0.2]]],
            ["Algorithmic"],
            threshold=-1.0,
        ),
        _case(
            "NaN cells are not counted in top_percent",
            [[[NAN, 0.4, 0.1], [NAN, 0.3, 0.2]]],
            ["Algorithmic"],
            top_percent=50,
            mode="top_percent",
        ),
        _case(
            "a task with no category never contributes",
            [[[0.5, 0.0], [0.0, 0.0]], [[0.0, 0.5], [0.5, 0.0]]],
            ["Algorithmic", None],
            threshold=0.25,
        ),
        _case("a head in 2, 3 and 4 categories", multi, [*FOUR, "Algorithmic"], threshold=0.5),
        _case("threshold above everything", ties, ["Linguistic"], threshold=10.0),
        _case(
            "top_percent 100 passes every non-NaN head",
            [[[0.1, NAN, -0.2], [0.0, 0.3, 0.1]]],
            ["Translation"],
            top_percent=100,
            mode="top_percent",
        ),
        _case(
            "top_percent 10 of 30 heads is exactly 3 (no 0.1*30 rounding)",
            np.arange(30, dtype=np.float32).reshape(1, 5, 6) / 100,
            ["Knowledge"],
            top_percent=10,
            mode="top_percent",
        ),
        _case(
            "a tiny top_percent still passes the maximum and its ties",
            [[[0.2, 0.7, 0.7], [0.1, 0.0, 0.3]]],
            ["Knowledge"],
            top_percent=0.01,
            mode="top_percent",
        ),
        _case(
            "an all-NaN task passes nothing",
            [[[NAN, NAN], [NAN, NAN]], [[0.1, 0.4], [0.3, 0.2]]],
            ["Knowledge", "Linguistic"],
            top_percent=50,
            mode="top_percent",
        ),
        _case(
            "negative scores: value 0 vs top_percent",
            [[[-0.3, -0.1], [0.0, -0.2]]],
            ["Algorithmic"],
            threshold=0.0,
        ),
        _case(
            "negative scores in top_percent mode",
            [[[-0.3, -0.1], [0.0, -0.2]]],
            ["Algorithmic"],
            top_percent=50,
            mode="top_percent",
        ),
        _case(
            "5+ categories and non-standard category colours",
            [
                [[1, 1, 0]],
                [[1, 1, 0]],
                [[1, 1, 0]],
                [[1, 1, 1]],
                [[1, 1, 0]],
                [[1, 0, 0]],
                [[0, 0, 1]],
            ],
            [*FOUR, "Syntax", "Arithmetic", "Memory"],
            threshold=1.0,
        ),
        _case(
            "random 6 tasks x 8 layers x 8 heads, value threshold",
            shares,
            random_categories,
            threshold=0.03,
        ),
        _case(
            "random 6 tasks x 8 layers x 8 heads, top 5%",
            shares,
            random_categories,
            top_percent=5,
            mode="top_percent",
        ),
        # how sure each map is: significance gates passing, unreliable / failing maps left out
        _case(
            "significant mode: significant cells at or above the threshold pass, untested never",
            [[[0.5, 0.5, 0.5], [0.1, 0.5, 0.5]], [[0.5, 0.2, 0.5], [0.5, 0.5, 0.0]]],
            ["Knowledge", "Linguistic"],
            threshold=0.3,
            mode="significant",
            significant=[1, 0, 2, 1, 1, 1, 1, 1, 0, 0, 1, 1],
        ),
        _case(
            "significant mode without any test passes nothing",
            ties,
            ["Knowledge"],
            threshold=0.0,
            mode="significant",
        ),
        _case(
            "categories from reliable maps: noisy and failing tasks left out, unknown kept",
            multi,
            [*FOUR, "Algorithmic"],
            threshold=0.5,
            reliability=[0.9, 0.55, None, 0.8, 0.72],
            accuracy=[0.9, 0.9, 0.95, 0.1, None],
            categories_from="reliable",
        ),
        _case(
            "categories from all tasks: the same maps still count, titles say noisy",
            multi,
            [*FOUR, "Algorithmic"],
            threshold=0.5,
            reliability=[0.9, 0.55, None, 0.8, 0.72],
            accuracy=[0.9, 0.9, 0.95, 0.1, None],
            categories_from="all",
        ),
        _case(
            "a category whose maps are all left out, min_reliability 0.95",
            [[[0.5, 0.1]], [[0.1, 0.5]], [[0.5, 0.5]]],
            ["Knowledge", "Knowledge", "Translation"],
            threshold=0.3,
            reliability=[0.9, 0.93, 0.99],
            accuracy=[None, None, None],
            min_reliability=0.95,
            categories_from="reliable",
        ),
        _case(
            "significant mode with reliable maps only and top ties",
            shares,
            random_categories,
            threshold=0.03,
            mode="significant",
            significant=[int(v) for v in (np.arange(shares.size) % 3 != 0)],
            reliability=[0.91, 0.4, 0.88, None, 0.75, 0.69],
            accuracy=[0.8, 0.8, 0.15, 0.9, 0.9, 0.9],
            categories_from="reliable",
        ),
    ]


def build_fixture() -> dict[str, Any]:
    cases = build_cases()
    for case in cases:
        case["expected"] = expected_for(case)
    return {
        "about": (
            "Category-rule cases shared by tests/test_categories.py and js/test; generated by"
            " tests/make_category_fixture.py from headwidget/views/categories.py. Values are"
            " already normalized, flat C order [n_tasks, n_layers, n_heads], null = NaN."
            " top_percent mode: k = max(1, ceil(top_percent * n_valid / 100)), cutoff = k-th"
            " largest non-NaN value; cutoffs are null for a task with no valid value. legend"
            " lists every label that can occur with these categories (not only those present)."
            " significant mode: the value threshold's cutoff, and only cells whose code in"
            " 'significant' is 1 (0 not significant, 2 untested; absent: none) pass. counted:"
            " the tasks the categories count (headwidget.views.uncertainty.counted_tasks from"
            " reliability, accuracy, min_reliability (0.7), min_accuracy (0.2) and"
            " categories_from ('all')); task_notes / panel_notes: the titles' reliability lines."
        ),
        "cases": cases,
    }


def render(fixture: dict[str, Any]) -> str:
    return json.dumps(fixture, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(render(build_fixture()), encoding="utf-8")
    print(f"wrote {FIXTURE} ({len(build_cases())} cases)")
