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
except ImportError:  # run as a script from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from headwidget.views import categories as cat

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
) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float32)
    assert array.ndim == 3, name
    return {
        "name": name,
        "shape": list(array.shape),
        # float32 values written as the float64 of the float32, so JSON -> Float32Array is exact
        "values": [None if math.isnan(v) else float(v) for v in array.ravel().tolist()],
        "categories": categories,
        "threshold_mode": mode,
        "threshold": threshold,
        "top_percent": top_percent,
    }


def expected_for(case: dict[str, Any]) -> dict[str, Any]:
    """What headwidget.views.categories computes for one fixture case."""
    values = np.array([NAN if v is None else v for v in case["values"]], dtype=np.float32).reshape(
        case["shape"]
    )
    mode = case["threshold_mode"]
    kwargs = (
        {"threshold": case["threshold"]}
        if mode == "value"
        else {"top_percent": case["top_percent"]}
    )
    result = cat.assign_categories(values, case["categories"], **kwargs)
    return {
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
        ),
        "cases": cases,
    }


def render(fixture: dict[str, Any]) -> str:
    return json.dumps(fixture, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(render(build_fixture()), encoding="utf-8")
    print(f"wrote {FIXTURE} ({len(build_cases())} cases)")
