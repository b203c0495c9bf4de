"""HeadScores: shape checks, normalization, tidy export and the pickle-free file format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from headwidget import HeadScores
from headwidget.scores import FORMAT_NAME, FORMAT_VERSION


def make_scores() -> HeadScores:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 4, 5)).astype(np.float32)
    values[1, 2, 3] = np.nan
    return HeadScores(
        values,
        ["copying", "country → capital", "<b>odd</b>"],
        categories={"copying": "Algorithmic", "country → capital": "Knowledge"},
        baseline={"copying": -0.5, "country → capital": float("nan"), "<b>odd</b>": -2.0},
        meta={"model": "tiny", "examples": {"copying": 8}, "seconds": np.float32(1.5)},
        descriptions={"copying": "repeat the word"},
    )


def test_shape_and_lookup():
    scores = make_scores()
    assert scores.shape == (3, 4, 5)
    assert (scores.n_layers, scores.n_heads) == (4, 5)
    assert scores.values.dtype == np.float32
    assert scores.categories == {
        "copying": "Algorithmic",
        "country → capital": "Knowledge",
        "<b>odd</b>": None,
    }
    np.testing.assert_array_equal(scores["copying"], scores.values[0])
    with pytest.raises(KeyError, match="no task 'missing'"):
        scores["missing"]


@pytest.mark.parametrize(
    ("values", "tasks", "message"),
    [
        (np.zeros((2, 3)), ["a", "b"], r"shape \[n_tasks, n_layers, n_heads\]"),
        (np.zeros((2, 3, 4)), ["a"], "2 task rows in values but 1 task names"),
        (np.zeros((2, 3, 4)), ["a", "a"], "repeated: \\['a'\\]"),
    ],
)
def test_rejects_inconsistent_input(values, tasks, message):
    with pytest.raises(ValueError, match=message):
        HeadScores(values, tasks)


def test_rejects_categories_for_unknown_tasks():
    with pytest.raises(ValueError, match="unknown task"):
        HeadScores(np.zeros((1, 2, 2)), ["a"], categories={"b": "Knowledge"})


def test_share_normalization_divides_by_absolute_total():
    values = np.array([[[1.0, -3.0], [0.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    share = HeadScores(values, ["signed", "flat"]).normalized("share")
    np.testing.assert_allclose(share.values[0], [[0.125, -0.375], [0.0, 0.5]])
    np.testing.assert_array_equal(share.values[1], 0.0)
    assert share.meta["normalization"] == "share"
    with pytest.raises(ValueError, match="'share' or 'raw'"):
        share.normalized("zscore")


def test_share_normalization_ignores_nan_cells():
    scores = make_scores().normalized("share")
    task = scores["country → capital"]
    assert math.isnan(task[2, 3])
    assert np.nansum(np.abs(task)) == pytest.approx(1.0, rel=1e-5)


def test_share_normalization_rounds_to_float32_once_like_the_front_end():
    # js/src/data.ts sums |v| in float64 (in order, skipping NaN) and rounds each quotient to
    # float32 once; a float32 total would be off by up to an ulp in many cells
    rng = np.random.default_rng(3)
    values = rng.gamma(0.5, 1.0, size=(2, 24, 32)).astype(np.float32)
    values[1, 5, 7] = np.nan
    share = HeadScores(values, ["a", "b"]).normalized("share").values
    assert share.dtype == np.float32
    expected = np.empty_like(values)
    for task in range(values.shape[0]):
        total = 0.0
        for v in values[task].ravel().tolist():
            if v == v:
                total += abs(v)
        expected[task] = [[v / total for v in row] for row in values[task].tolist()]
    np.testing.assert_array_equal(share, expected)
    # the float32 route this replaces does differ in the last bit
    float32_total = np.nansum(np.abs(values), axis=(1, 2), keepdims=True)
    assert (values / float32_total != expected).any()


def test_top_heads_orders_by_importance_and_skips_nan():
    values = np.zeros((1, 2, 3), np.float32)
    values[0, 1, 2] = 5
    values[0, 0, 1] = 3
    values[0, 1, 0] = np.nan
    scores = HeadScores(values, ["t"])
    assert scores.top_heads("t", k=2) == [(1, 2, 5.0), (0, 1, 3.0)]
    assert (1, 0) not in [(layer, head) for layer, head, _ in scores.top_heads("t", k=5)]


def test_top_heads_never_ranks_never_scored_cells():
    values = np.full((2, 2, 3), np.nan, np.float32)
    values[0, 1, 2] = -np.inf  # a scored value, however low, still ranks
    values[0, 0, 0] = 0.5
    scores = HeadScores(values, ["shard", "unscored"])
    assert scores.top_heads("shard", k=6) == [(0, 0, 0.5), (1, 2, -np.inf)]
    assert scores.top_heads("unscored", k=6) == []


def test_to_pandas_is_tidy_and_matches_values():
    scores = make_scores()
    frame = scores.to_pandas()
    assert list(frame.columns) == ["task", "category", "layer", "head", "importance"]
    assert len(frame) == 3 * 4 * 5
    row = frame[(frame["task"] == "copying") & (frame["layer"] == 3) & (frame["head"] == 1)]
    assert row.importance.item() == pytest.approx(float(scores.values[0, 3, 1]))
    assert row.category.item() == "Algorithmic"
    assert frame[frame.task == "<b>odd</b>"].category.isna().all()


def test_save_load_round_trip(tmp_path):
    scores = make_scores()
    path = scores.save(tmp_path / "scores")
    assert path.name == "scores.npz"
    loaded = HeadScores.load(path)
    np.testing.assert_array_equal(loaded.values, scores.values)  # NaN-aware
    assert loaded.tasks == scores.tasks
    assert loaded.categories == scores.categories
    assert loaded.descriptions == scores.descriptions
    assert loaded.baseline["copying"] == -0.5
    assert math.isnan(loaded.baseline["country → capital"])
    assert loaded.meta["seconds"] == 1.5
    assert HeadScores.load(tmp_path / "scores").tasks == scores.tasks


def test_version_2_round_trips_method_accuracy_and_the_exact_mask(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    exact = np.zeros(values.shape, bool)
    exact[0, 1, 2] = exact[1, 0, 0] = True
    scores = HeadScores(values, ["a", "b"], accuracy={"a": 0.75}, method="attribution", exact=exact)
    loaded = HeadScores.load(scores.save(tmp_path / "v2.npz"))
    assert loaded.method == "attribution"
    assert loaded.accuracy == {"a": 0.75}
    np.testing.assert_array_equal(loaded.exact, exact)
    assert loaded.normalized("share").exact is not loaded.exact
    np.testing.assert_array_equal(loaded.normalized("share").exact, exact)
    # An all-exact mask is stored as no mask at all.
    assert HeadScores(values, ["a", "b"], exact=np.ones_like(exact)).exact is None
    with pytest.raises(ValueError, match="shape of values"):
        HeadScores(values, ["a", "b"], exact=exact[:1])
    with pytest.raises(ValueError, match="accuracy given for unknown task"):
        HeadScores(values, ["a", "b"], accuracy={"c": 1.0})


def test_version_1_files_load_as_exact_ablation(tmp_path):
    header = {
        "format": FORMAT_NAME,
        "version": 1,
        "tasks": ["a"],
        "categories": {"a": None},
        "baseline": {"a": -1.5},
        "descriptions": {},
        "meta": {"model": "old"},
        "meta_nonfinite": [],
    }
    path = tmp_path / "v1.npz"
    encoded = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez(path, values=np.ones((1, 2, 2), np.float32), header=encoded)
    loaded = HeadScores.load(path)
    assert (loaded.method, loaded.exact, loaded.accuracy) == ("ablation", None, {})
    assert loaded.baseline == {"a": -1.5} and loaded.meta == {"model": "old"}


def test_meta_round_trip_keeps_non_finite_floats_and_gives_json_values(tmp_path):
    meta = {
        "model": "tiny",
        "loss": float("nan"),
        "limits": (float("-inf"), 1.5, float("inf")),
        "nested": {"scale": np.float32("nan"), "runs": [1, {"best": float("inf")}]},
        "labels": ("nan", "inf", "-inf"),  # strings stay strings
        "note": "nan",
    }
    scores = HeadScores(np.zeros((1, 2, 2), np.float32), ["t"], meta=meta)
    loaded = HeadScores.load(scores.save(tmp_path / "meta.npz")).meta
    assert math.isnan(loaded["loss"]) and isinstance(loaded["loss"], float)
    assert loaded["limits"] == [float("-inf"), 1.5, float("inf")]  # tuples come back as lists
    assert math.isnan(loaded["nested"]["scale"])
    assert loaded["nested"]["runs"] == [1, {"best": float("inf")}]
    assert loaded["labels"] == ["nan", "inf", "-inf"]
    assert loaded["note"] == "nan" and loaded["model"] == "tiny"
    assert set(loaded) == set(meta)
    # Saving what was loaded changes nothing more.
    again = HeadScores.load(HeadScores(scores.values, ["t"], meta=loaded).save(tmp_path / "b"))
    assert json.dumps(again.meta) == json.dumps(loaded)
    # The header itself stays standard JSON: non-finite floats are strings there.
    with np.load(tmp_path / "meta.npz", allow_pickle=False) as archive:
        text = archive["header"].tobytes().decode("utf-8")
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))


def test_saved_file_is_documented_npz_without_pickles(tmp_path):
    path = make_scores().save(tmp_path / "scores.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["header", "values"]
        header = json.loads(archive["header"].tobytes().decode("utf-8"))
        assert archive["values"].dtype == np.float32
    assert header["format"] == FORMAT_NAME
    assert header["version"] == FORMAT_VERSION
    assert header["tasks"][2] == "<b>odd</b>"


def test_load_rejects_foreign_and_future_files(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(ValueError, match="expected arrays 'values' and 'header'"):
        HeadScores.load(other)

    future = tmp_path / "future.npz"
    header = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION + 1, "tasks": ["a"]})
    np.savez(
        future,
        values=np.zeros((1, 1, 1), np.float32),
        header=np.frombuffer(header.encode(), np.uint8),
    )
    with pytest.raises(ValueError, match="newer headwidget"):
        HeadScores.load(future)

    with pytest.raises(FileNotFoundError, match="no HeadScores file"):
        HeadScores.load(tmp_path / "absent.npz")


def test_load_rejects_a_plain_npy_array(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError) as info:
        HeadScores.load(path)
    message = str(info.value)
    assert message.startswith(f"{str(path)!r} is not a HeadScores file")
    assert "save with HeadScores.save" in message


def test_load_refuses_pickled_payloads(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, values=np.array([{"evil": 1}], dtype=object), header=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match="not a HeadScores"):
        HeadScores.load(path)


def test_top_heads_takes_a_non_negative_k():
    scores = HeadScores(np.arange(6, dtype=np.float32).reshape(1, 2, 3), ["t"])
    assert scores.top_heads("t", k=0) == []
    assert len(scores.top_heads("t", k=100)) == 6
    for k in (-1, 1.5, True):
        with pytest.raises(ValueError, match="k >= 0"):
            scores.top_heads("t", k=k)
