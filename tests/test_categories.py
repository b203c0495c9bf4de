"""The category rule (headwidget.views.categories) and the fixture it shares with the JS tests."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from headwidget.views import categories as cat

NAN = float("nan")
FIXTURE = Path(__file__).parent / "fixtures" / "categories_cases.json"


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "make_category_fixture", Path(__file__).parent / "make_category_fixture.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fixture_cases() -> dict[str, dict]:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return {case["name"]: case for case in data["cases"]}


def test_committed_fixture_matches_the_python_rule() -> None:
    # If this fails after a deliberate rule change: python tests/make_category_fixture.py
    generator = _load_generator()
    assert FIXTURE.read_text(encoding="utf-8") == generator.render(generator.build_fixture())


def test_fixture_schema(fixture_cases: dict[str, dict]) -> None:
    assert len(fixture_cases) >= 12
    for case in fixture_cases.values():
        n_tasks, n_layers, n_heads = case["shape"]
        assert len(case["values"]) == n_tasks * n_layers * n_heads
        assert len(case["categories"]) == n_tasks
        assert case["threshold_mode"] in ("value", "top_percent", "significant")
        expected = case["expected"]
        assert len(expected["counted"]) == len(expected["task_notes"]) == n_tasks
        assert set(expected["panel_notes"]) == {"All Categories", *expected["category_order"]}
        assert len(expected["labels"]) == n_layers * n_heads
        assert len(expected["passes_per_task"]) == n_tasks
        assert list(expected["membership"]) == expected["category_order"]
        for flags in expected["membership"].values():
            assert len(flags) == n_layers * n_heads and set(flags) <= {0, 1}
    random_case = fixture_cases["random 6 tasks x 8 layers x 8 heads, value threshold"]
    assert random_case["shape"] == [6, 8, 8]
    assert set(random_case["categories"]) == {
        "Algorithmic",
        "Knowledge",
        "Linguistic",
        "Translation",
    }


# -- hand-checked expectations on the small cases ----------------------------------------------


def test_ties_at_value_threshold(fixture_cases: dict[str, dict]) -> None:
    # values [[0.1, 0.2, 0.2], [0.3, 0.2, 0.05]], threshold 0.2: the three 0.2s and 0.3 pass
    expected = fixture_cases["ties at a value threshold"]["expected"]
    assert expected["passes_per_task"] == [4]
    assert expected["labels"] == ["Unclassified"] + ["Knowledge"] * 4 + ["Unclassified"]


def test_ties_at_top_percent_cutoff(fixture_cases: dict[str, dict]) -> None:
    # 50% of 6 heads -> k = 3; the 3rd largest is 0.2, and all three 0.2s pass with 0.3
    expected = fixture_cases["ties at the top_percent cutoff"]["expected"]
    assert expected["passes_per_task"] == [4]
    assert expected["cutoffs"] == [pytest.approx(0.2)]
    assert expected["membership"] == {"Knowledge": [0, 1, 1, 1, 1, 0]}


def test_nan_cells(fixture_cases: dict[str, dict]) -> None:
    value_mode = fixture_cases["NaN cells never pass (value mode)"]["expected"]
    assert value_mode["passes_per_task"] == [4]
    assert value_mode["membership"]["Algorithmic"] == [0, 1, 1, 0, 1, 1]
    # 4 valid values [0.4, 0.1, 0.3, 0.2], 50% -> k = 2 -> cutoff 0.3
    top = fixture_cases["NaN cells are not counted in top_percent"]["expected"]
    assert top["passes_per_task"] == [2]
    assert top["cutoffs"] == [pytest.approx(0.3)]
    assert top["membership"]["Algorithmic"] == [0, 1, 0, 0, 1, 0]


def test_task_without_category_counts_but_never_colours(fixture_cases: dict[str, dict]) -> None:
    expected = fixture_cases["a task with no category never contributes"]["expected"]
    assert expected["passes_per_task"] == [1, 2]
    assert expected["category_order"] == ["Algorithmic"]
    assert expected["labels"] == ["Algorithmic", "Unclassified", "Unclassified", "Unclassified"]


def test_heads_in_several_categories(fixture_cases: dict[str, dict]) -> None:
    expected = fixture_cases["a head in 2, 3 and 4 categories"]["expected"]
    assert expected["labels"] == [
        "4 categories",
        "3 categories",
        "2 categories",
        "Linguistic",
        "Unclassified",
        "Algorithmic",  # passes two tasks, both Algorithmic
    ]
    assert expected["legend"] == [
        "4 categories",
        "3 categories",
        "2 categories",
        "Translation",
        "Linguistic",
        "Knowledge",
        "Algorithmic",
        "Unclassified",
    ]


def test_threshold_above_everything_and_top_percent_100(fixture_cases: dict[str, dict]) -> None:
    above = fixture_cases["threshold above everything"]["expected"]
    assert above["passes_per_task"] == [0]
    assert set(above["labels"]) == {"Unclassified"}
    everything = fixture_cases["top_percent 100 passes every non-NaN head"]["expected"]
    assert everything["passes_per_task"] == [5]
    assert everything["labels"] == ["Translation", "Unclassified"] + ["Translation"] * 4


def test_top_percent_rounding(fixture_cases: dict[str, dict]) -> None:
    exact = fixture_cases["top_percent 10 of 30 heads is exactly 3 (no 0.1*30 rounding)"]
    assert exact["expected"]["passes_per_task"] == [3]
    assert exact["expected"]["labels"][-3:] == ["Knowledge"] * 3
    tiny = fixture_cases["a tiny top_percent still passes the maximum and its ties"]["expected"]
    assert tiny["passes_per_task"] == [2]  # k = 1, and the two 0.7s tie


def test_all_nan_task_and_negative_scores(fixture_cases: dict[str, dict]) -> None:
    all_nan = fixture_cases["an all-NaN task passes nothing"]["expected"]
    assert all_nan["passes_per_task"] == [0, 2]
    assert all_nan["cutoffs"][0] is None
    assert fixture_cases["negative scores: value 0 vs top_percent"]["expected"][
        "passes_per_task"
    ] == [1]
    negative = fixture_cases["negative scores in top_percent mode"]["expected"]
    assert negative["passes_per_task"] == [2]  # 0.0 and -0.1
    assert negative["labels"] == ["Unclassified", "Algorithmic", "Algorithmic", "Unclassified"]


def test_five_plus_and_extra_colours(fixture_cases: dict[str, dict]) -> None:
    expected = fixture_cases["5+ categories and non-standard category colours"]["expected"]
    assert expected["labels"] == ["5+ categories", "5+ categories", "2 categories"]
    assert expected["legend"][:4] == [
        "5+ categories",
        "4 categories",
        "3 categories",
        "2 categories",
    ]
    assert expected["legend"][4:7] == ["Memory", "Arithmetic", "Syntax"]
    assert expected["colors"]["Syntax"] == "#17becf"
    assert expected["colors"]["Arithmetic"] == "#bcbd22"
    assert expected["colors"]["Memory"] == "#7f7f7f"
    assert expected["colors"]["Translation"] == "#d62728"


def test_random_case_against_a_direct_loop(fixture_cases: dict[str, dict]) -> None:
    # An independent, deliberately naive implementation of the rule
    for mode in ("value threshold", "top 5%"):
        case = fixture_cases[f"random 6 tasks x 8 layers x 8 heads, {mode}"]
        n_tasks, n_layers, n_heads = case["shape"]
        values = [NAN if v is None else v for v in case["values"]]
        passing = []
        for t in range(n_tasks):
            row = values[t * n_layers * n_heads : (t + 1) * n_layers * n_heads]
            if case["threshold_mode"] == "value":
                cutoff = case["threshold"]
            else:
                valid = sorted((v for v in row if not math.isnan(v)), reverse=True)
                cutoff = valid[max(1, math.ceil(case["top_percent"] * len(valid) / 100)) - 1]
            passing.append([not math.isnan(v) and v >= cutoff for v in row])
        assert case["expected"]["passes_per_task"] == [sum(p) for p in passing]
        for i, label in enumerate(case["expected"]["labels"]):
            cats = {case["categories"][t] for t in range(n_tasks) if passing[t][i]} - {None}
            want = (
                "Unclassified"
                if not cats
                else cats.pop()
                if len(cats) == 1
                else f"{len(cats)} categories"
            )
            assert label == want


# -- the Python API directly ---------------------------------------------------------------------


def test_passing_heads_and_counts() -> None:
    values = np.array([[[0.1, NAN], [0.3, 0.2]], [[NAN, NAN], [NAN, NAN]]], dtype=np.float32)
    assert cat.passing_heads(values, threshold=0.2).tolist() == [
        [[False, False], [True, True]],
        [[False, False], [False, False]],
    ]
    assert cat.pass_counts(values, top_percent=100).tolist() == [3, 0]
    cutoffs = cat.task_cutoffs(values, top_percent=50)
    assert cutoffs[0] == pytest.approx(0.2) and math.isinf(cutoffs[1])


def test_float32_values_compare_in_float64() -> None:
    # float32(0.1) > 0.1 but float32(0.7) < 0.7 in float64 (as in JS: Float32Array -> double)
    assert cat.passing_heads(np.array([[[0.1]]], np.float32), threshold=0.1).item()
    assert not cat.passing_heads(np.array([[[0.7]]], np.float32), threshold=0.7).item()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"threshold": 0.1, "top_percent": 5}, "exactly one"),
        ({"top_percent": 0}, r"\(0, 100\]"),
        ({"top_percent": 150}, r"\(0, 100\]"),
        ({"threshold": NAN}, "NaN"),
    ],
)
def test_bad_modes_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cat.passing_heads(np.zeros((1, 2, 2)), **kwargs)


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_tasks, n_layers, n_heads"):
        cat.passing_heads(np.zeros((2, 2)), threshold=0)
    with pytest.raises(ValueError, match="one category"):
        cat.category_membership(np.zeros((2, 1, 1)), ["Knowledge"], threshold=0)


def test_labels_membership_and_colours() -> None:
    values = np.array([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]]])
    names, membership = cat.category_membership(
        values, ["Knowledge", "Syntax", None], threshold=0.5
    )
    assert names == ["Knowledge", "Syntax"]
    assert membership.tolist() == [[[True, False]], [[True, True]]]
    labels = cat.head_labels(values, ["Knowledge", "Syntax", None], threshold=0.5)
    assert labels.tolist() == [["2 categories", "Syntax"]]
    assert cat.category_color("Knowledge") == "#ff7f0e"
    assert cat.category_color("Syntax", ["Other", "Syntax"]) == "#bcbd22"
    assert cat.category_color("Unclassified") == "#d9d9d9"
    assert cat.legend_labels(["Knowledge"]) == ["Knowledge", "Unclassified"]
    assert cat.legend_labels([]) == ["Unclassified"]


def test_assign_categories_agrees_with_the_parts() -> None:
    rng = np.random.default_rng(0)
    values = rng.random((5, 4, 6)).astype(np.float32)
    categories = ["Algorithmic", None, "Knowledge", "Algorithmic", "Translation"]
    result = cat.assign_categories(values, categories, top_percent=20)
    names, membership = cat.category_membership(values, categories, top_percent=20)
    assert result.names == names
    assert np.array_equal(result.membership, membership)
    assert np.array_equal(result.labels, cat.head_labels(values, categories, top_percent=20))
    assert result.counts.tolist() == cat.pass_counts(values, top_percent=20).tolist()
    assert result.counts.tolist() == [5] * 5  # ceil(0.2 * 24) = 5, no ties in random floats


# -- how sure each map is: significance and reliable maps (headwidget.views.uncertainty) -------


def test_significant_mode_lets_only_significant_cells_at_the_threshold_pass(
    fixture_cases: dict[str, dict],
) -> None:
    case = fixture_cases[
        "significant mode: significant cells at or above the threshold pass, untested never"
    ]
    # task 0: cells 0, 4, 5 (cell 1 not significant, cell 2 untested, cell 3 below 0.3);
    # task 1: cells 0 and 4 (cell 1 below, cells 2-3 not significant, cell 5 below)
    assert case["expected"]["passes_per_task"] == [3, 2]
    assert case["expected"]["membership"] == {
        "Knowledge": [1, 0, 0, 0, 1, 1],
        "Linguistic": [1, 0, 0, 0, 1, 0],
    }
    nothing = fixture_cases["significant mode without any test passes nothing"]
    assert nothing["expected"]["passes_per_task"] == [0]


def test_categories_from_reliable_maps_leave_out_noisy_and_failing_tasks(
    fixture_cases: dict[str, dict],
) -> None:
    reliable = fixture_cases[
        "categories from reliable maps: noisy and failing tasks left out, unknown kept"
    ]["expected"]
    everything = fixture_cases[
        "categories from all tasks: the same maps still count, titles say noisy"
    ]["expected"]
    # task 1 (Knowledge) is noisy (r 0.55 < 0.7), task 3 (Translation) fails (accuracy 0.1);
    # task 2 (reliability unknown) and task 4 (r 0.72, accuracy unknown) count
    assert reliable["counted"] == [True, False, True, False, True]
    assert everything["counted"] == [True] * 5
    # their heads still pass their own tasks; only the categories leave them out
    assert reliable["passes_per_task"] == everything["passes_per_task"]
    assert everything["labels"][0] == "4 categories" and reliable["labels"][0] == "2 categories"
    assert not any(reliable["membership"]["Knowledge"] + reliable["membership"]["Translation"])
    assert reliable["task_notes"][1] == "noisy: add examples · r = 0.55"
    assert reliable["panel_notes"]["All Categories"] == "r = 0.72–0.90 · 2 of 5 left out"
    assert everything["panel_notes"]["Knowledge"] == "noisy: 1 of 1 map · r = 0.55"


def test_counted_tasks_and_assign_categories_check_their_inputs() -> None:
    from headwidget.views import uncertainty as unc

    assert unc.counted_tasks([0.5, NAN], [NAN, 0.1], categories_from="all") == [True, True]
    assert unc.counted_tasks([0.5, NAN], [NAN, 0.1], categories_from="reliable") == [False, False]
    with pytest.raises(ValueError, match="categories_from must be one of"):
        unc.counted_tasks([], [], categories_from="some")  # type: ignore[arg-type]
    values = np.ones((2, 1, 2))
    with pytest.raises(ValueError, match="counted has 1 entries for 2 tasks"):
        cat.assign_categories(values, ["A", "B"], threshold=0.5, counted=[True])
    with pytest.raises(ValueError, match="significant must have the shape of values"):
        cat.assign_categories(values, ["A", "B"], threshold=0.5, significant=np.ones((2, 2)))
