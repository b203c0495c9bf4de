"""HeadImportanceGrid: traits, options, data swaps and streaming scores of a model.

These tests need the built front end (``cd js && npm ci && npm run build``), as the
package ships it; they run no browser (tests/browser does).
"""

from __future__ import annotations

import json
import re

import ipywidgets
import numpy as np
import pytest
import traitlets

from headwidget import HeadScores, Task
from headwidget.methods.options import ScoringOptions
from headwidget.views import bundle as bundle_module
from headwidget.views import categories as cat
from headwidget.views.widget import SCORING_OPTIONS, TRAIT_OPTIONS, HeadImportanceGrid

TASKS = ["copying", '<b>capital</b> & "city"', "antonym"]


def make_scores(n_layers: int = 4, n_heads: int = 6, seed: int = 0) -> HeadScores:
    rng = np.random.default_rng(seed)
    values = rng.gamma(0.5, 1.0, size=(3, n_layers, n_heads)).astype(np.float32)
    values[1, 2, 3] = np.nan
    return HeadScores(
        values,
        TASKS,
        categories={"copying": "Algorithmic", TASKS[1]: "Knowledge", "antonym": None},
        baseline={"copying": -1.5, TASKS[1]: float("nan"), "antonym": -0.25},
        meta={"model": "tiny/llama"},
        descriptions={"copying": "repeat the word", TASKS[1]: "<i>country</i> → capital"},
        accuracy={"copying": 0.9, TASKS[1]: 0.05},  # none measured for antonym
    )


def decode(grid: HeadImportanceGrid) -> np.ndarray:
    return np.frombuffer(grid.values, dtype="<f4").reshape(grid.shape)


# -- construction from scores ----------------------------------------------------------------


def test_values_shape_and_tasks_from_scores() -> None:
    scores = make_scores()
    grid = HeadImportanceGrid(scores)
    assert grid.shape == [3, 4, 6]
    assert isinstance(grid.values, bytes) and len(grid.values) == 3 * 4 * 6 * 4
    np.testing.assert_array_equal(decode(grid), scores.values)  # NaN positions included
    assert np.isnan(decode(grid)[1, 2, 3]) and np.isnan(decode(grid)).sum() == 1
    unknown = {"reliability": None, "examples_needed": None}  # no per-example effects
    assert grid.tasks == [
        {"name": "copying", "category": "Algorithmic", "description": "repeat the word",
         "baseline": -1.5, "accuracy": 0.9, **unknown},
        {"name": TASKS[1], "category": "Knowledge", "description": "<i>country</i> → capital",
         "baseline": None, "accuracy": 0.05, **unknown},
        {"name": "antonym", "category": None, "description": "", "baseline": -0.25,
         "accuracy": None, **unknown},
    ]  # fmt: skip
    assert grid.scores is scores
    assert grid.title == "tiny/llama"
    assert grid.progress == {}
    assert grid.exact == b"" and grid.min_accuracy == 0.2
    assert grid.provenance == {"method": "ablation", "model": "tiny/llama"}


def test_approximate_cells_go_to_the_browser_as_one_byte_each() -> None:
    scores = make_scores()
    exact = np.ones(scores.shape, bool)
    exact[0, 1, 2] = exact[2, 3, 5] = False
    meta = {"model": "m", "metric": "logprob", "ablation": "mean", "created": "2026-12-02T06:00:00"}
    approx = HeadScores(
        scores.values, scores.tasks, meta={**meta, "examples": {"copying": 8}},
        method="attribution", exact=exact,
    )  # fmt: skip
    grid = HeadImportanceGrid(approx, exact_only=True)
    mask = np.frombuffer(grid.exact, np.uint8).reshape(grid.shape)
    np.testing.assert_array_equal(mask, exact.astype(np.uint8))
    assert grid.exact_only is True
    assert grid.provenance == {
        "method": "attribution", "model": "m", "metric": "logprob", "ablation": "mean",
        "examples": {"copying": 8}, "date": "2026-12-02",
    }  # fmt: skip
    grid.set_scores(scores)  # all exact again: nothing to send
    assert grid.exact == b"" and grid.provenance["method"] == "ablation"
    with pytest.raises(traitlets.TraitError, match="exact has 3 bytes but shape"):
        grid.exact = b"\x01\x00\x01"
    assert grid.selected_head is None and grid.selected_task == "" and grid.tab == "all"


def test_state_serializes_with_values_as_a_binary_buffer() -> None:
    from ipywidgets.widgets.widget import _remove_buffers

    grid = HeadImportanceGrid(make_scores())
    state, buffer_paths, buffers = _remove_buffers(grid.get_state())
    binary = [["exact"], ["path_data"], ["path_effect"], ["path_sem"], ["role_values"], ["sem"]]
    binary += [["significant"], ["values"]]
    assert sorted(buffer_paths) == binary
    assert bytes(buffers[buffer_paths.index(["values"])]) == grid.values
    json.dumps(state, allow_nan=False)  # NaN baselines went out as null


def test_default_threshold_lets_about_five_percent_pass() -> None:
    scores = make_scores(n_layers=16, n_heads=16)
    grid = HeadImportanceGrid(scores)
    share = scores.normalized("share").values
    assert grid.threshold == cat.default_threshold(share)
    assert grid.threshold == float(f"{np.nanpercentile(share, 95):.2g}")
    passing = cat.passing_heads(share, threshold=grid.threshold).mean()
    assert 0.03 < passing < 0.08


def test_options_are_set_and_checked() -> None:
    grid = HeadImportanceGrid(
        make_scores(),
        threshold=0.01,
        threshold_mode="top_percent",
        top_percent=2.5,
        colormap="magma",
        color_range="per_task",
        vmax=0.004,
        vmin=0.0,
        orientation="layer_x",
        tab="task:antonym",
        grid_columns=2,
        normalization="raw",
        title="my model",
        selected_head=(1, 2),
    )
    assert (grid.threshold, grid.threshold_mode, grid.top_percent) == (0.01, "top_percent", 2.5)
    assert (grid.colormap, grid.color_range, grid.vmax, grid.vmin) == (
        "magma",
        "per_task",
        0.004,
        0,
    )
    assert (grid.orientation, grid.tab, grid.grid_columns) == ("layer_x", "task:antonym", 2)
    assert (grid.normalization, grid.title, grid.selected_head) == ("raw", "my model", (1, 2))


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(TypeError, match="unknown option.*'colour'") as info:
        HeadImportanceGrid(make_scores(), colour="red")
    for name in (*TRAIT_OPTIONS, *SCORING_OPTIONS):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("orientation", "sideways", "orientation"),
        ("colormap", "jet", "colormap"),
        ("normalization", "zscore", "normalization"),
        ("threshold_mode", "percentile", "threshold_mode"),
        ("top_percent", 0, r"\(0, 100\]"),
        ("top_percent", 101, r"\(0, 100\]"),
        ("threshold", float("nan"), "finite"),
        ("vmax", float("inf"), "finite"),
        ("grid_columns", -1, "grid_columns"),
        ("tab", "task:nope", "task:<name>"),
        ("tab", "heatmap", "task:<name>"),
        ("selected_head", (4, 0), "outside the grid"),
        ("selected_head", (0, 1, 2), "2 elements"),
        ("selected_task", "nope", "selected_task"),
    ],
)
def test_invalid_option_values_are_rejected(option: str, value: object, message: str) -> None:
    with pytest.raises(traitlets.TraitError, match=message):
        HeadImportanceGrid(make_scores(), **{option: value})


def test_scoring_options_need_a_model() -> None:
    with pytest.raises(TypeError, match="only apply when scoring a model"):
        HeadImportanceGrid(make_scores(), metric="prob")
    with pytest.raises(TypeError, match="tokenizer"):
        HeadImportanceGrid(make_scores(), tokenizer=object())
    with pytest.raises(TypeError, match="takes HeadScores"):
        HeadImportanceGrid(np.zeros((1, 2, 3)))


def test_load_from_a_saved_file(tmp_path) -> None:
    scores = make_scores()
    path = HeadImportanceGrid(scores).save(tmp_path / "scores")
    assert path.suffix == ".npz"
    again = HeadImportanceGrid(path)
    np.testing.assert_array_equal(again.scores.values, scores.values)
    assert again.tasks == HeadImportanceGrid(scores).tasks


# -- traits from Python and from the front end --------------------------------------------------


def test_threshold_set_from_python_is_kept_across_data_swaps() -> None:
    grid = HeadImportanceGrid(make_scores())
    auto = grid.threshold
    grid.set_scores(make_scores(seed=1))
    assert grid.threshold != auto  # still automatic: follows the data
    grid.threshold = 0.0123
    grid.set_scores(make_scores(seed=2))
    assert grid.threshold == 0.0123


def test_default_threshold_follows_normalization_until_set() -> None:
    scores = make_scores(n_layers=8, n_heads=8)
    grid = HeadImportanceGrid(scores)
    grid.normalization = "raw"
    assert grid.threshold == cat.default_threshold(scores.values)
    grid.threshold = 0.5
    assert grid._auto_threshold is False


def test_a_chosen_threshold_is_converted_when_the_scale_changes() -> None:
    scores = make_scores(n_layers=8, n_heads=8)
    grid = HeadImportanceGrid(scores, threshold=0.03)  # share units, the default scale
    passing = grid.assignment().counts
    grid.normalization = "raw"
    assert grid.threshold != 0.03
    # the picture stays: as many heads pass over all tasks, now counted in raw units
    assert int(grid.assignment().counts.sum()) == int(passing.sum())
    raw = np.nan_to_num(scores.values, nan=-np.inf)
    assert int((raw >= grid.threshold).sum()) == int(passing.sum())
    grid.normalization = "share"
    assert grid.threshold == pytest.approx(0.03, abs=0.01)
    # given together at construction, a threshold is in the given scale's units
    assert HeadImportanceGrid(scores, threshold=0.5, normalization="raw").threshold == 0.5


def test_jslink_to_a_slider() -> None:
    grid = HeadImportanceGrid(make_scores())
    slider = ipywidgets.FloatSlider(min=0, max=0.1, step=0.001)
    link = ipywidgets.jslink((slider, "value"), (grid, "threshold"))
    assert isinstance(link, ipywidgets.widget_link.Link)
    assert link.source == (slider, "value") and link.target == (grid, "threshold")
    for name in ("threshold_mode", "top_percent", "colormap", "tab", "selected_task", "vmax"):
        assert grid.trait_metadata(name, "sync")
    link.close()


def test_selected_head_round_trip_from_the_front_end() -> None:
    grid = HeadImportanceGrid(make_scores())
    seen = []
    grid.observe(lambda change: seen.append(change["new"]), names="selected_head")
    # what a click in the browser does: a state update with a JSON list
    grid.set_state({"selected_head": [2, 5], "selected_task": "antonym", "tab": "categories"})
    assert grid.selected_head == (2, 5) and seen == [(2, 5)]
    assert (grid.selected_task, grid.tab) == ("antonym", "categories")
    assert grid.get_state("selected_head") == {"selected_head": (2, 5)}
    grid.selected_head = None
    assert grid.get_state("selected_head") == {"selected_head": None}
    grid.selected_head = [0, 1]
    assert grid.selected_head == (0, 1)


def test_wrong_data_is_rejected() -> None:
    grid = HeadImportanceGrid(make_scores())
    with pytest.raises(TypeError, match="takes a HeadScores"):
        grid.set_scores(np.zeros((3, 4, 6), np.float32))  # type: ignore[arg-type]
    with pytest.raises(traitlets.TraitError, match="needs 288"):
        grid.values = b"\x00" * 12
    with pytest.raises(ValueError, match="n_tasks, n_layers, n_heads"):
        grid.set_scores(HeadScores(np.zeros((4, 6), np.float32), ["a"]))
    np.testing.assert_array_equal(decode(grid), make_scores().values)  # unchanged


def test_set_scores_swaps_data_and_drops_stale_selection() -> None:
    grid = HeadImportanceGrid(make_scores(), tab="task:antonym", selected_head=(3, 5))
    grid.selected_task = "antonym"
    other = HeadScores(np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3), ["x", "antonym"])
    grid.set_scores(other)
    assert grid.shape == [2, 2, 3]
    np.testing.assert_array_equal(decode(grid), other.values)
    assert grid.tab == "task:antonym" and grid.selected_task == "antonym"
    assert grid.selected_head is None  # (3, 5) is outside 2 x 3
    grid.set_scores(HeadScores(np.ones((1, 2, 3), np.float32), ["y"]))
    assert grid.tab == "all" and grid.selected_task == ""


def test_values_setting_with_a_matching_shape_works() -> None:
    grid = HeadImportanceGrid(make_scores())
    zeros = np.zeros(grid.shape, np.float32)
    grid.values = zeros.tobytes()
    np.testing.assert_array_equal(grid.values_array(), zeros)


def test_assignment_matches_the_category_rule() -> None:
    scores = make_scores(n_layers=8, n_heads=8)
    grid = HeadImportanceGrid(scores, threshold=0.02)
    got = grid.assignment()
    want = cat.assign_categories(
        scores.normalized("share").values, ["Algorithmic", "Knowledge", None], threshold=0.02
    )
    assert got.names == ["Algorithmic", "Knowledge"]
    np.testing.assert_array_equal(got.labels, want.labels)
    grid.threshold_mode = "top_percent"
    grid.top_percent = 10
    assert grid.assignment().counts.tolist() == [7, 7, 7]  # ceil(10% of 64; 63 valid) = 7


def test_save_before_scoring_is_an_error_and_missing_bundle_is_explained(monkeypatch) -> None:
    monkeypatch.setattr(bundle_module, "ESM_PATH", bundle_module.BUNDLE_DIR / "missing.js")

    class Unbuilt(HeadImportanceGrid):
        pass

    with pytest.raises(FileNotFoundError, match=r"cd js && npm ci && npm run build"):
        Unbuilt(make_scores())


def test_head_profile_follows_the_selected_head() -> None:
    pytest.importorskip("bqplot")
    scores = make_scores()
    grid = HeadImportanceGrid(scores)
    figure = grid.head_profile()
    bars = figure.marks[0]
    assert list(bars.x) == TASKS and np.all(np.asarray(bars.y) == 0)
    grid.selected_head = (2, 3)
    share = scores.normalized("share").values
    np.testing.assert_allclose(bars.y, np.nan_to_num(share[:, 2, 3]))
    assert figure.title == "Layer 2 · Head 3 (share)"
    grid.normalization = "raw"
    np.testing.assert_allclose(bars.y, np.nan_to_num(scores.values[:, 2, 3]))


# -- scoring a model, streamed ------------------------------------------------------------------

PROGRESS_TEXT = re.compile(r"^task \d+/\d+ · layer \d+/\d+ · ETA \d+ s$")


def assert_done(grid: HeadImportanceGrid) -> None:
    """Scoring has ended and the progress line says how long it took."""
    assert grid.progress["running"] is False and "error" not in grid.progress
    assert re.fullmatch(r"done in \d+ s", grid.progress["text"]), grid.progress


def tiny_llama_and_tokenizer():
    from tiny_models import tiny_model, word_tokenizer

    tokenizer = word_tokenizer()
    return tiny_model("llama", vocab_size=len(tokenizer), n_layers=2), tokenizer


def word_tasks() -> list[Task]:
    return [
        Task("count", [("one two ->", " three"), ("two three ->", " four")],
             category="Algorithmic"),
        Task("capital", [("france capital ->", " paris"), ("japan capital ->", " tokyo")],
             category="Knowledge"),
    ]  # fmt: skip


class Recorder:
    """Every change of ``values`` (decoded) and ``progress``, in order."""

    def __init__(self, grid: HeadImportanceGrid) -> None:
        self.events: list[tuple[str, object]] = []
        grid.observe(
            lambda c: self.events.append(("values", decode(c["owner"]).copy())), names="values"
        )
        grid.observe(lambda c: self.events.append(("progress", dict(c["new"]))), names="progress")

    def of(self, kind: str) -> list:
        return [value for name, value in self.events if name == kind]


def install_fake_engine(monkeypatch, *, fail_after: int | None = None) -> list[dict]:
    """Replace headwidget.scoring with a fake whose layer rows are ``10 * task + layer``."""
    import types

    calls: list[dict] = []

    class ScoringError(RuntimeError):
        def __init__(self, message: str, partial: HeadScores) -> None:
            super().__init__(message)
            self.partial = partial

    def score_heads(model, tokenizer, tasks, *, on_block=None, **options):
        calls.append(options)
        n_layers = model.config.num_hidden_layers
        n_heads = model.config.num_attention_heads
        values = np.full((len(tasks), n_layers, n_heads), np.nan, np.float32)
        done = 0
        for t, task in enumerate(tasks):
            for layer in range(n_layers):
                if fail_after is not None and done == fail_after:
                    partial = HeadScores(values.copy(), [task.name for task in tasks])
                    raise ScoringError("CUDA out of memory (fake)", partial)
                values[t, layer] = 10 * t + layer
                on_block(task.name, layer, np.arange(n_heads), values[t, layer].copy(), True)
                done += 1
        return HeadScores(values, [task.name for task in tasks], meta={"model": "fake"})

    fake = types.ModuleType("headwidget.scoring")
    fake.score_heads = score_heads
    monkeypatch.setitem(__import__("sys").modules, "headwidget.scoring", fake)
    return calls


def test_a_model_grid_starts_empty_and_streams_every_layer(monkeypatch) -> None:
    calls = install_fake_engine(monkeypatch)
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks(), metric="prob", batch_size=2)
    assert grid.scores is None and grid.shape == [2, 2, 4]
    assert grid.title == "LlamaForCausalLM"  # a model built from a config has no name
    assert np.isnan(decode(grid)).all()
    assert [task["name"] for task in grid.tasks] == ["count", "capital"]
    assert [task["category"] for task in grid.tasks] == ["Algorithmic", "Knowledge"]
    with pytest.raises(RuntimeError, match="nothing to save yet"):
        grid.save("never.npz")
    grid.sync_interval = 0  # every layer, not every 0.25 s
    recorder = Recorder(grid)
    scores = grid.compute()
    # the options travel as one record, checked once when the grid was built
    assert calls == [{"options": ScoringOptions(metric="prob", batch_size=2), "progress": False}]
    snapshots = recorder.of("values")
    assert len(snapshots) == 4  # one per (task, layer); the final data equals the last one
    nan_counts = [int(np.isnan(s).sum()) for s in snapshots]
    assert nan_counts == [12, 8, 4, 0]  # 2 tasks x 2 layers x 4 heads, a layer at a time
    np.testing.assert_array_equal(snapshots[0][0, 0], np.zeros(4))
    texts = [p["text"] for p in recorder.of("progress") if p.get("running") and "ETA" in p["text"]]
    assert len(texts) == 4 and all(PROGRESS_TEXT.match(text) for text in texts)
    assert texts[0].startswith("task 1/2 · layer 1/2") and texts[-1].startswith(
        "task 2/2 · layer 2/2"
    )
    fractions = [p["fraction"] for p in recorder.of("progress") if p.get("running")]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert_done(grid)
    assert grid.scores is scores and grid.title == "fake"  # the fake engine's meta["model"]
    np.testing.assert_array_equal(decode(grid), scores.values)
    assert grid.compute() is scores and len(calls) == 1  # idempotent


def test_values_are_throttled_but_the_end_always_arrives(monkeypatch) -> None:
    install_fake_engine(monkeypatch)
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks())
    grid.sync_interval = 3600
    recorder = Recorder(grid)
    scores = grid.compute()
    snapshots = recorder.of("values")
    assert len(snapshots) == 2  # the first layer, then the final scores
    assert int(np.isnan(snapshots[0]).sum()) == 12
    np.testing.assert_array_equal(snapshots[-1], scores.values)


def test_a_failure_keeps_the_partial_scores_and_reports_it(monkeypatch) -> None:
    install_fake_engine(monkeypatch, fail_after=3)
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks())
    with pytest.raises(RuntimeError, match="out of memory"):
        grid.compute()
    shown = decode(grid)
    np.testing.assert_array_equal(shown[0], [[0] * 4, [1] * 4])
    np.testing.assert_array_equal(shown[1, 0], [10] * 4)
    assert np.isnan(shown[1, 1]).all()
    assert grid.progress["running"] is False and grid.progress["error"] is True
    assert "3/4 layers" in grid.progress["text"] and "out of memory" in grid.progress["text"]
    assert grid.scores is not None and np.isnan(grid.scores.values).sum() == 4


def test_display_shows_the_view_before_scoring(monkeypatch) -> None:
    import IPython.display

    install_fake_engine(monkeypatch)
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks())
    recorder = Recorder(grid)
    monkeypatch.setattr(
        IPython.display,
        "display",
        lambda data, **kw: recorder.events.append(("display", (data, kw.get("raw")))),
    )
    grid._ipython_display_()
    kind, (data, raw) = recorder.events[0]
    assert kind == "display" and raw is True
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == grid.model_id
    assert recorder.of("values") and grid.scores is not None
    grid._ipython_display_()  # a second display shows the same scores, no rescoring
    assert [name for name, _ in recorder.events].count("display") == 2


def test_a_model_without_a_findable_tokenizer_asks_for_one() -> None:
    model, _ = tiny_llama_and_tokenizer()
    with pytest.raises(ValueError, match="tokenizer=tokenizer"):
        HeadImportanceGrid(model, tasks=word_tasks())


def test_real_engine_streams_per_layer_and_ends_with_its_scores() -> None:
    from headwidget.scoring import score_heads

    model, tokenizer = tiny_llama_and_tokenizer()
    tasks = word_tasks()
    grid = HeadImportanceGrid(model, tokenizer, tasks=tasks)
    grid.sync_interval = 0
    recorder = Recorder(grid)
    scores = grid.compute()
    snapshots = recorder.of("values")
    nan_counts = [int(np.isnan(s).sum()) for s in snapshots]
    assert nan_counts == sorted(nan_counts, reverse=True)
    # one update per finished layer (a last one may repeat the final counts)
    assert sorted(set(nan_counts), reverse=True) == [12, 8, 4, 0]
    texts = [p["text"] for p in recorder.of("progress") if "ETA" in p.get("text", "")]
    assert len(texts) == 4 and all(PROGRESS_TEXT.match(text) for text in texts)
    assert_done(grid)
    expected = score_heads(model, tokenizer, tasks)
    np.testing.assert_allclose(scores.values, expected.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(decode(grid), expected.values, rtol=1e-5, atol=1e-6)
    assert scores.meta["examples"] == {"count": 2, "capital": 2}
    assert grid.title == scores.meta["model"] == "LlamaForCausalLM"


def test_tokenizer_is_loaded_from_the_model_directory(tmp_path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM

    install_fake_engine(monkeypatch)
    model, tokenizer = tiny_llama_and_tokenizer()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    grid = HeadImportanceGrid(reloaded, tasks=word_tasks()[0])
    assert grid._pending[1].get_vocab() == tokenizer.get_vocab()
    assert grid.title == str(tmp_path) and grid.shape == [1, 2, 4]


def test_tasks_default_to_the_operations_suite() -> None:
    from headwidget.tasks.suites import load_suite

    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer)
    names = [task.name for task in load_suite("operations")]
    assert [task["name"] for task in grid.tasks] == names
    assert grid.shape == [len(names), 2, 4]
    assert {task["category"] for task in grid.tasks} == {
        "Algorithmic", "Knowledge", "Linguistic", "Translation",
    }  # fmt: skip
    assert grid.progress["running"] is False and "waiting" in grid.progress["text"]


def test_save_html_inlines_bundle_data_and_options(tmp_path) -> None:
    import base64

    scores = make_scores()
    grid = HeadImportanceGrid(scores, tab="categories", selected_head=(1, 2), title="a</script>")
    page = grid.save(tmp_path / "grid.html").read_text(encoding="utf-8")

    def element(element_id: str) -> str:
        match = re.search(rf'<script [^>]*id="{element_id}">(.*?)</script>', page, re.S)
        assert match, element_id
        return match.group(1)

    state = json.loads(element("headwidget-state"))
    assert state["tasks"] == grid.tasks and state["shape"] == [3, 4, 6]
    assert (state["tab"], state["selected_head"], state["title"]) == (
        "categories",
        [1, 2],
        "a</script>",
    )
    assert state["threshold"] == grid.threshold and state["progress"] == {}
    assert "</script>" not in element("headwidget-state")  # escaped, cannot end the element
    assert base64.b64decode(element("headwidget-values")) == grid.values
    bundle = bundle_module.ESM_PATH.read_bytes()
    assert base64.b64decode(element("headwidget-bundle")) == bundle
    assert "<title>a&lt;/script&gt;</title>" in page


def test_bad_scoring_options_fail_at_construction() -> None:
    model, tokenizer = tiny_llama_and_tokenizer()
    with pytest.raises(ValueError, match="bogus"):
        HeadImportanceGrid(model, tokenizer, tasks=word_tasks(), metric="bogus")
    with pytest.raises(ValueError, match="unknown ablation .noise."):
        HeadImportanceGrid(model, tokenizer, tasks=word_tasks(), ablation="noise")


# -- review fixes: HTML export, head_profile, tab, messages, shared names -------------------------


def html_script_texts(page: str) -> dict[str, str]:
    """The text of each <script id=...> element, as an HTML parser reads the page."""
    from html.parser import HTMLParser

    texts: dict[str, str] = {}

    class Scripts(HTMLParser):
        current: str | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "script":
                self.current = dict(attrs).get("id") or f"script{len(texts)}"
                texts[self.current] = ""

        def handle_endtag(self, tag):
            if tag == "script":
                self.current = None

        def handle_data(self, data):
            if self.current is not None:
                texts[self.current] += data

    Scripts().feed(page)
    return texts


def test_save_html_escapes_every_angle_bracket_in_the_state(tmp_path) -> None:
    tricky = "<!--<script>x</script>"
    values = np.random.default_rng(0).gamma(0.5, 1.0, size=(2, 3, 4)).astype(np.float32)
    scores = HeadScores(
        values,
        [tricky, "a & b > c"],
        categories={tricky: "Knowledge"},
        descriptions={tricky: tricky},
    )
    grid = HeadImportanceGrid(scores, title=tricky)
    page = grid.save(tmp_path / "grid.html").read_text(encoding="utf-8")
    texts = html_script_texts(page)
    # the state element ends where it should: the values and the bundle still follow it
    assert list(texts)[:10] == [
        "headwidget-state", "headwidget-values", "headwidget-exact", "headwidget-sem",
        "headwidget-significant", "headwidget-role_values", "headwidget-path_data",
        "headwidget-path_effect", "headwidget-path_sem", "headwidget-bundle",
    ]  # fmt: skip
    text = texts["headwidget-state"]
    assert not set("<>&") & set(text)
    state = json.loads(text)
    assert [task["name"] for task in state["tasks"]] == [tricky, "a & b > c"]
    assert state["tasks"][0]["description"] == tricky and state["title"] == tricky
    assert state["tasks"] == grid.tasks


def test_save_html_inlines_the_automatic_threshold_of_each_normalization(tmp_path) -> None:
    scores = make_scores(n_layers=8, n_heads=8)
    defaults = {
        "share": cat.default_threshold(scores.normalized("share").values),
        "raw": cat.default_threshold(scores.values),
    }
    assert defaults["share"] != defaults["raw"]

    def saved_state(grid: HeadImportanceGrid) -> dict:
        page = grid.save(tmp_path / "grid.html").read_text(encoding="utf-8")
        return json.loads(html_script_texts(page)["headwidget-state"])

    for normalization in ("share", "raw"):
        grid = HeadImportanceGrid(scores, normalization=normalization)
        state = saved_state(grid)
        assert state["_default_thresholds"] == defaults
        assert state["threshold"] == grid.threshold == defaults[normalization]
    # the page's model reads them out of the state and switches on a change of normalization
    page = grid.save(tmp_path / "grid.html").read_text(encoding="utf-8")
    assert "delete state._default_thresholds" in page
    assert "new Model(state, defaults)" in page
    # a threshold the user chose is kept as it is: nothing to switch to
    grid.threshold = 0.5
    assert "_default_thresholds" not in saved_state(grid)
    assert "_default_thresholds" not in saved_state(HeadImportanceGrid(scores, threshold=0.01))


def test_save_html_runs_the_built_page_script_and_refuses_one_that_would_end_early(tmp_path):
    from headwidget.views import files as view_files

    page = HeadImportanceGrid(make_scores()).save(tmp_path / "grid.html").read_text("utf-8")
    texts = html_script_texts(page)
    module = [text.strip() for name, text in texts.items() if name.startswith("script")]
    assert module == [bundle_module.PAGE_PATH.read_text(encoding="utf-8").strip()]
    for bad in ("x = '</SCRIPT>';", "// <!-- x"):
        script = tmp_path / "page.js"
        script.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match="cannot be inlined"):
            view_files.write_html(
                tmp_path / "bad.html",
                {},
                {},
                None,
                esm=bundle_module.ESM_PATH,
                css=bundle_module.CSS_PATH,
                page=script,
            )


def test_head_profile_adds_one_observer_however_many_profiles() -> None:
    pytest.importorskip("bqplot")

    def n_observers() -> int:
        return sum(
            len(handlers)
            for by_type in grid._trait_notifiers.values()
            for handlers in by_type.values()
        )

    scores = make_scores()
    grid = HeadImportanceGrid(scores)
    before = n_observers()
    first = grid.head_profile()
    once = n_observers()
    assert once == before + 4  # selected_head, values, normalization, tasks
    others = [grid.head_profile() for _ in range(2)]
    assert n_observers() == once
    grid.selected_head = (1, 4)
    share = scores.normalized("share").values
    for figure in (first, *others):
        np.testing.assert_allclose(figure.marks[0].y, np.nan_to_num(share[:, 1, 4]))
        assert figure.title == "Layer 1 · Head 4 (share)"
    first.close()
    grid.selected_head = (0, 0)  # a closed profile is no longer updated, and let go
    assert first not in grid._profiles and len(grid._profiles) == 2
    assert first.title == "Layer 1 · Head 4 (share)"
    assert others[0].title == "Layer 0 · Head 0 (share)"


def test_categories_tab_needs_tasks_with_a_category() -> None:
    plain = HeadScores(np.ones((2, 2, 3), np.float32), ["x", "y"])
    with pytest.raises(traitlets.TraitError, match=r"tab='categories' needs tasks with a category"):
        HeadImportanceGrid(plain, tab="categories")
    grid = HeadImportanceGrid(plain)
    with pytest.raises(traitlets.TraitError, match="none of these tasks"):
        grid.tab = "categories"
    assert grid.tab == "all"
    # new scores without categories take the grid off the Categories tab, as off a task: tab
    grid = HeadImportanceGrid(make_scores(), tab="categories")
    grid.set_scores(plain)
    assert grid.tab == "all"
    grid.set_scores(make_scores())
    grid.tab = "categories"
    assert grid.tab == "categories"


def test_tasks_given_as_a_suite_name_point_to_load_suite(monkeypatch) -> None:
    import transformers

    def no_download(*args, **kwargs):
        raise AssertionError("the tokenizer was loaded before the tasks were checked")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_download)
    model, _ = tiny_llama_and_tokenizer()
    with pytest.raises(TypeError, match=r"got str 'operations'.*load_suite\('operations'\)"):
        HeadImportanceGrid(model, tasks="operations")
    with pytest.raises(TypeError, match="got a list holding str"):
        HeadImportanceGrid(model, tasks=["copying"])
    with pytest.raises(ValueError, match="no tasks given"):
        HeadImportanceGrid(model, tasks=[])
    with pytest.raises(TypeError, match="got int"):
        HeadImportanceGrid(model, tasks=3)


def test_a_model_name_as_source_says_how_to_score_a_model(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        HeadImportanceGrid("gpt2")
    message = str(info.value)
    assert "no HeadScores file at 'gpt2'" in message
    assert "AutoModelForCausalLM.from_pretrained('gpt2')) and pass the model object" in message


def test_colormap_names_are_plottings_and_the_import_stays_light() -> None:
    import subprocess
    import sys

    from headwidget.views.plotting import COLORMAPS

    assert HeadImportanceGrid.class_traits()["colormap"].values == tuple(COLORMAPS)
    code = "import sys, headwidget.views.widget; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_unscored_model_grid_says_to_call_compute(monkeypatch) -> None:
    install_fake_engine(monkeypatch)
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks())
    assert grid.progress["running"] is False
    text = grid.progress["text"]
    assert text.startswith("waiting to score 2 tasks · 2 layers") and "grid.compute()" in text
    assert "grid.compute()" in HeadImportanceGrid.__doc__
    assert "VBox" in HeadImportanceGrid.__doc__ and "VBox" in HeadImportanceGrid.compute.__doc__
    grid.compute()
    assert_done(grid)


def test_blocks_show_the_approximate_map_first_then_exact_values_replace_it(monkeypatch) -> None:
    """A method that approximates (attribution) sends the whole map first, marked approximate;
    exact blocks of some heads then replace it. The exact mask travels with every update."""
    import types

    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks())
    grid.sync_interval = 0

    def score_heads(model, tokenizer, tasks, *, on_block=None, **options):
        # as score_heads(method="attribution", refine=...) streams: the whole map, then exact
        approx = np.arange(2 * 2 * 4, dtype=np.float32).reshape(2, 2, 4) / 10
        for t in range(2):
            for layer in range(2):
                on_block(tasks[t].name, layer, np.arange(4), approx[t, layer], False)
        on_block(tasks[1].name, 0, np.array([1, 3]), np.array([5.0, 6.0], np.float32), True)
        final = approx.copy()
        final[1, 0, [1, 3]] = [5.0, 6.0]
        exact = np.zeros(final.shape, bool)
        exact[1, 0, [1, 3]] = True
        names = [task.name for task in tasks]
        return HeadScores(final, names, method="attribution", exact=exact, meta={"model": "m"})

    fake = types.ModuleType("headwidget.scoring")
    fake.score_heads = score_heads
    monkeypatch.setitem(__import__("sys").modules, "headwidget.scoring", fake)
    masks: list[np.ndarray] = []
    grid.observe(lambda c: masks.append(np.frombuffer(c["new"], np.uint8).copy()), names="exact")
    grid.compute()
    assert masks[3].sum() == 0 and masks[3].size == 16  # the first map: all approximate
    final = np.frombuffer(grid.exact, np.uint8).reshape(grid.shape)
    assert final.sum() == 2 and final[1, 0, 1] == final[1, 0, 3] == 1
    assert decode(grid)[1, 0, 3] == 6.0
    assert grid.provenance["method"] == "attribution"
    with pytest.raises(RuntimeError, match="compute\\(\\) is not running"):
        grid.take_block(grid.tasks[0]["name"], 0, slice(None), np.zeros(4))


def test_the_automatic_threshold_is_held_while_scores_stream_in(monkeypatch) -> None:
    import types

    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 1.0, size=(2, 2, 4)).astype(np.float32)

    def score_heads(model, tokenizer, tasks, *, on_block=None, **options):
        for t, task in enumerate(tasks):
            for layer in range(2):
                on_block(task.name, layer, np.arange(4), values[t, layer], True)
        return HeadScores(values, [task.name for task in tasks])

    fake = types.ModuleType("headwidget.scoring")
    fake.score_heads = score_heads
    monkeypatch.setitem(__import__("sys").modules, "headwidget.scoring", fake)
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks(), normalization="raw")
    grid.sync_interval = 0
    changes: list[tuple[float, bool]] = []
    grid.observe(lambda c: changes.append((c["new"], grid._running)), names="threshold")
    grid.compute()
    # set once from the first layer and held while streaming; then once from the final scores
    assert [running for _, running in changes] == [True, False]
    assert changes[0][0] == cat.default_threshold(values[0, :1])
    assert grid.threshold == cat.default_threshold(values)


def test_save_draws_the_view_as_svg_png_or_pdf(tmp_path) -> None:
    import xml.etree.ElementTree as ET

    scores = make_scores()
    meta = {"model": "tiny/llama", "metric": "logprob", "ablation": "mean"}
    scores = HeadScores(
        scores.values, scores.tasks, scores.categories, meta=meta, accuracy={"antonym": 0.1}
    )
    grid = HeadImportanceGrid(scores, normalization="raw")
    svg = ET.parse(grid.save(tmp_path / "view.svg")).getroot()
    text = " ".join(svg.itertext())
    assert "model fails this task" in text  # antonym, below min_accuracy
    for name in ("copying", "antonym", "tiny/llama", "Importance (log-prob drop)"):
        assert name in text, name
    assert "ablation (mean ablation) · metric logprob" in text  # the provenance line
    sizes = {}
    for scale in (1, 2):
        data = grid.save(tmp_path / f"view{scale}.png", scale=scale).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[scale] = int.from_bytes(data[16:20], "big")
    assert sizes[2] == pytest.approx(2 * sizes[1], abs=4)
    assert grid.save(tmp_path / "view.pdf").read_bytes()[:5] == b"%PDF-"
    grid.tab = "task:antonym"  # the view as it is: one task
    one = " ".join(ET.parse(grid.save(tmp_path / "one.svg")).getroot().itertext())
    assert "antonym" in one and "copying" not in one
    with pytest.raises(ValueError, match="scale must be a number from 0.25 to 8"):
        grid.save(tmp_path / "x.png", scale=0)


def test_save_an_image_before_scoring_says_there_is_nothing_to_draw(monkeypatch, tmp_path) -> None:
    install_fake_engine(monkeypatch)
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks())
    with pytest.raises(RuntimeError, match="nothing to draw yet"):
        grid.save(tmp_path / "x.png")


def test_compare_shows_two_score_sets_side_by_side_or_their_difference(tmp_path) -> None:
    base = make_scores()
    tuned = HeadScores(
        base.values[::-1] * 2, base.tasks[::-1], base.categories, meta={"model": "tuned"},
        accuracy={"copying": 0.5},
    )  # fmt: skip
    grid = HeadImportanceGrid(base, compare=tuned)
    names = [task["name"] for task in grid.tasks]
    assert names[:2] == ["copying · tiny/llama", "copying · tuned"]
    assert len(names) == 6 and grid.color_range == "shared"  # one colour scale
    shown = decode(grid)
    np.testing.assert_array_equal(shown[0], base["copying"])
    np.testing.assert_array_equal(shown[1], tuned["copying"])
    assert grid.tasks[1]["accuracy"] == 0.5 and grid.title == "tiny/llama vs tuned"
    path = tuned.save(tmp_path / "tuned.npz")
    diff = HeadImportanceGrid(base, compare=path, compare_mode="difference")
    assert [task["name"] for task in diff.tasks][0] == "copying: tiny/llama − tuned"
    np.testing.assert_allclose(decode(diff)[0], base["copying"] - tuned["copying"])
    assert diff.normalization == "raw" and diff.colormap == "diverging"
    with pytest.raises(ValueError, match="share no task"):
        HeadImportanceGrid(base, compare=HeadScores(base.values, ["x", "y", "z"]))
    with pytest.raises(ValueError, match="different grids"):
        HeadImportanceGrid(base, compare=HeadScores(np.zeros((1, 2, 2)), ["copying"]))
    with pytest.raises(ValueError, match="compare mode must be one of"):
        HeadImportanceGrid(base, compare=tuned, compare_mode="overlay")


# -- hostile values and interrupted scoring --------------------------------------------------


def test_infinite_scores_save_as_html_and_switch_scale(tmp_path) -> None:
    scores = make_scores()
    scores.values[0, 0, 0] = np.inf
    scores.values[2, 1, 1] = -np.inf
    grid = HeadImportanceGrid(scores)
    page = grid.save(tmp_path / "inf.html").read_text(encoding="utf-8")
    assert "headwidget-state" in page
    grid.normalization = "raw"
    assert grid.normalization == "raw" and np.isfinite(grid.threshold)
    assert grid.threshold == cat.default_threshold(scores.values)
    allinf = HeadScores(np.full((1, 2, 2), np.inf, np.float32), ["t"])
    assert cat.default_threshold(allinf.values) == 0.0


def test_a_lone_surrogate_in_the_title_still_saves_a_page(tmp_path) -> None:
    grid = HeadImportanceGrid(make_scores(), title="model \ud800 x")
    page = grid.save(tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<title>model \ufffd x</title>" in page


def test_an_interrupted_compute_keeps_what_is_on_screen_as_its_scores(tmp_path):
    # the real engine, interrupted (as Ctrl-C would) once the first layer is on screen
    model, tokenizer = tiny_llama_and_tokenizer()
    grid = HeadImportanceGrid(model, tokenizer, tasks=word_tasks())
    take_block = grid.take_block

    def interrupt_after(*block):
        take_block(*block)
        raise KeyboardInterrupt

    grid.take_block = interrupt_after
    with pytest.raises(KeyboardInterrupt) as raised:
        grid.compute()
    # still a KeyboardInterrupt, shown by IPython as one line (no traceback to squeeze the grid)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert raised.value._render_traceback_() == [
        "KeyboardInterrupt: scoring interrupted after 1/4 layers; the grid keeps them"
        " (grid.scores); grid.compute() scores again"
    ]
    assert grid.progress["text"].startswith("interrupted after 1/4 layers")
    assert grid.scores is not None and grid.scores.meta["partial"] is True
    np.testing.assert_array_equal(grid.scores.values, decode(grid))
    assert np.isfinite(grid.scores.values[0, 0]).all()  # the first layer, scored
    assert grid.scores.categories == {"count": "Algorithmic", "capital": "Knowledge"}
    saved = HeadScores.load(grid.save(tmp_path / "partial.npz"))
    assert np.isnan(saved.values).sum() == 12
