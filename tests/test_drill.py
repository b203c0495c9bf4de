"""Per-example effects (HeadScores format 3) and the widget's per-example drill-down."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_scores_file import VALUES, header_bytes, load_error, npy_bytes, npy_header_only, write_zip
from tiny_models import WORDS, tiny_model

from headwidget import HeadImportanceGrid, HeadScores, Task
from headwidget.scores import FORMAT_NAME
from headwidget.scoring import score_heads
from headwidget.views.drill import attention_pattern, handle_message, top_examples


@pytest.fixture(scope="module")
def task() -> Task:
    words = list(WORDS)
    return Task("t", [(" ".join(words[i : i + 4]), " " + words[i + 5]) for i in range(7)])


def with_examples() -> HeadScores:
    rng = np.random.default_rng(1)
    effects = {"a": rng.normal(size=(2, 3, 5)).astype(np.float32)}
    return HeadScores(
        effects["a"].mean(-1, keepdims=False)[None].repeat(2, 0),
        ["a", "b"],
        effects=effects,
        clean={"a": rng.normal(size=5)},
        examples={"a": [(f"prompt {i}", f" answer {i}") for i in range(5)]},
        meta={"metric": "logprob"},
    )


@pytest.mark.parametrize(
    ("method", "options"),
    [("ablation", {}), ("attribution", {"screen": 1, "refine": 2}), ("attribution", {"steps": 2})],
)
@pytest.mark.parametrize("ablation", ["mean", "zero"])
def test_per_example_effects_average_to_the_scores(
    tiny_llama, word_tok, task, method, options, ablation
):
    scores = score_heads(
        tiny_llama, word_tok, task, method=method, ablation=ablation, batch_size=3,
        progress=False, **options,
    )  # fmt: skip
    effects = scores.effects["t"]
    assert effects.shape == (2, 4, len(task))
    np.testing.assert_allclose(effects.mean(-1), scores.values[0], atol=1e-6)
    assert scores.clean["t"].shape == (len(task),)
    assert scores.examples["t"][2] == (task.examples[2].prompt, task.examples[2].answer)
    if method == "ablation" and ablation == "zero":  # each example's own clean - ablated
        one = score_heads(
            tiny_llama, word_tok, Task("t", task.examples[2:3]), ablation=ablation, progress=False
        )
        np.testing.assert_allclose(effects[..., 2], one.values[0], atol=1e-5)
    np.testing.assert_array_equal(scores.example_effects("t", 1, 3), effects[1, 3])
    with pytest.raises(IndexError, match="outside the scores' 2 layers x 4 heads"):
        scores.example_effects("t", -1, 0)


def test_keep_examples_false_keeps_none(tiny_llama, word_tok, task):
    scores = score_heads(tiny_llama, word_tok, task, keep_examples=False, progress=False)
    assert (scores.effects, scores.clean, scores.examples) == ({}, {}, {})


def test_by_default_examples_are_kept_within_the_memory_budget(
    tiny_llama, word_tok, task, monkeypatch
):
    import headwidget.methods.options

    # exactly the effects' bytes: 2 layers x 4 heads x 7 examples x 4 bytes
    monkeypatch.setattr(headwidget.methods.options, "KEEP_EXAMPLES_BYTES", 2 * 4 * len(task) * 4)
    assert "t" in score_heads(tiny_llama, word_tok, task, progress=False).effects

    def attribution(**options):
        return score_heads(
            tiny_llama, word_tok, task, method="attribution", screen=0, progress=False, **options
        )

    # attribution with mean ablation also holds per-example gradient sums: over the budget
    assert attribution().effects == {}
    assert "t" in attribution(ablation="zero").effects
    assert "t" in attribution(keep_examples=True).effects


def test_version_3_round_trip_and_older_versions_load(tmp_path):
    scores = with_examples()
    loaded = HeadScores.load(scores.save(tmp_path / "v3.npz"))
    np.testing.assert_array_equal(loaded.effects["a"], scores.effects["a"])
    np.testing.assert_array_equal(loaded.clean["a"], scores.clean["a"])
    assert loaded.examples == scores.examples and "b" not in loaded.effects
    # effects stay in raw metric units whatever the values' normalization
    np.testing.assert_array_equal(loaded.normalized("share").effects["a"], loaded.effects["a"])
    for version in (1, 2):
        header = {"format": FORMAT_NAME, "version": version, "tasks": ["a"]}
        encoded = np.frombuffer(json.dumps(header).encode(), np.uint8)
        path = tmp_path / f"v{version}.npz"
        np.savez(path, values=np.ones((1, 2, 2), np.float32), header=encoded)
        old = HeadScores.load(path)
        assert (old.effects, old.clean, old.examples) == ({}, {}, {})


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"effects_0.npy": npy_bytes(np.zeros((2, 3, 4), np.float32))}, "must be a float array"),
        ({"effects_0.npy": npy_bytes(np.zeros((2, 2, 4), np.int32))}, "must be a float array"),
        ({"effects_1.npy": npy_bytes(np.zeros((2, 2, 4), np.float32))}, "is for task 1"),
        ({"effects_x.npy": npy_bytes(np.zeros((2, 2, 4), np.float32))}, "unexpected array"),
        ({"effects_0.npy": npy_header_only((2, 2, 2**27))}, "over the limit"),
        ({"effects_0.npy": npy_header_only((2, 2, 5))}, "truncated or damaged"),
        (
            {
                "effects_0.npy": npy_bytes(np.zeros((2, 2, 4), np.float32)),
                "clean_0.npy": npy_bytes(np.zeros(3)),
            },
            "'clean_0' must be a float array of shape (4,)",
        ),
    ],
)
def test_hostile_per_example_arrays_are_refused(tmp_path, members, message):
    path = write_zip(
        tmp_path / "x.npz", {"values.npy": VALUES, "header.npy": header_bytes(), **members}
    )
    assert message in str(load_error(path))


def test_per_example_texts_must_agree(tmp_path):
    members = {
        "values.npy": VALUES,
        "header.npy": header_bytes(examples={"a": [["p", "a"]]}),
        "effects_0.npy": npy_bytes(np.zeros((2, 2, 4), np.float32)),
    }
    assert "different numbers of examples" in str(
        load_error(write_zip(tmp_path / "y.npz", members))
    )
    members["header.npy"] = header_bytes(examples={"a": [["p"]]})
    assert "[prompt, answer]" in str(load_error(write_zip(tmp_path / "z.npz", members)))
    with pytest.raises(ValueError, match="n_examples"):
        HeadScores(np.zeros((1, 2, 2)), ["a"], effects={"a": np.zeros((2, 3, 4))})


def test_top_examples_are_the_most_changed_with_clean_and_ablated():
    scores = with_examples()
    effects = scores.effects["a"][1, 2]
    rows = top_examples(scores, "a", 1, 2, k=3)
    assert [r["index"] for r in rows] == np.argsort(-np.abs(effects))[:3].tolist()
    first = rows[0]
    assert first["prompt"] == f"prompt {first['index']}"
    assert first["ablated"] == pytest.approx(first["clean"] - first["effect"])
    assert top_examples(scores, "b", 1, 2) == []


def test_the_examples_message_carries_the_top_rows_and_a_float32_buffer():
    scores = with_examples()
    reply, buffers = handle_message(
        scores, None, {"type": "hw:examples", "task": "a", "layer": 0, "head": 1, "request": 7}
    )
    assert reply["available"] and reply["request"] == 7 and reply["tasks"] == ["a"]
    assert len(reply["rows"]) == 5 and reply["has_model"] is False
    np.testing.assert_array_equal(np.frombuffer(buffers[0], "<f4"), scores.effects["a"][0, 1])
    reply, buffers = handle_message(
        scores, None, {"type": "hw:examples", "task": "b", "layer": 0, "head": 1}
    )
    assert not reply["available"] and "task 'b'" in reply["reason"] and buffers == []
    bad = handle_message(scores, None, {"type": "hw:examples", "task": "a", "layer": 9, "head": 0})
    assert "no head" in bad[0]["error"]
    assert handle_message(scores, None, {"type": "other"}) is None
    projection = HeadScores(np.zeros((1, 2, 2)), ["a"], method="projection")
    reply, _ = handle_message(
        projection, None, {"type": "hw:examples", "task": "a", "layer": 0, "head": 0}
    )
    assert "weights alone" in reply["reason"]


def test_the_examples_reply_is_valid_json_with_null_for_non_finite_numbers():
    effects = np.array([[[np.nan, -np.inf, 0.5, np.inf]]], np.float32)
    scores = HeadScores(
        np.ones((1, 1, 1), np.float32),
        ["a"],
        effects={"a": effects},
        clean={"a": np.array([1.0, 2.0, np.nan, -np.inf])},
        examples={"a": [(f"p{i}", f" a{i}") for i in range(4)]},
    )
    reply, _ = handle_message(
        scores, None, {"type": "hw:examples", "task": "a", "layer": 0, "head": 0}
    )
    text = json.dumps(reply, allow_nan=False)  # what the kernel's message channel demands
    rows = {r["index"]: r for r in json.loads(text)["rows"]}
    assert rows[1] == {**rows[1], "effect": None, "clean": 2.0, "ablated": None}
    assert rows[2] == {**rows[2], "effect": 0.5, "clean": None, "ablated": None}
    assert rows[3]["effect"] is None and rows[3]["clean"] is None and rows[0]["effect"] is None
    assert reply["mean"] == 0.5  # the mean of the finite effects
    assert json.loads(text)["mean"] == 0.5
    every_nan = HeadScores(
        np.ones((1, 1, 1), np.float32),
        ["a"],
        effects={"a": np.full((1, 1, 2), np.nan, np.float32)},
        examples={"a": [("p", " a"), ("q", " b")]},
    )
    reply, _ = handle_message(
        every_nan, None, {"type": "hw:examples", "task": "a", "layer": 0, "head": 0}
    )
    assert json.loads(json.dumps(reply, allow_nan=False))["mean"] is None


def test_attention_pattern_matches_eager_output_attentions_and_restores_the_model(word_tok, task):
    model = tiny_model("llama", vocab_size=len(word_tok))  # sdpa by default
    before = {
        id(m.config): m.config.__dict__.get("_attn_implementation_internal")
        for m in model.modules()
        if hasattr(m, "config")
    }
    ids = torch.tensor([word_tok(task.examples[0].prompt + task.examples[0].answer)["input_ids"]])
    expected_logits = model(ids).logits
    tokens, weights = attention_pattern(model, word_tok, task.examples[0], layer=1, head=3)
    eager = tiny_model("llama", vocab_size=len(word_tok), attn_implementation="eager")
    reference = eager(ids, output_attentions=True).attentions[1][0, 3].detach().numpy()
    np.testing.assert_allclose(weights, reference, atol=1e-6)
    assert len(tokens) == ids.shape[1] and tokens[0] == "<s>"
    np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-5)
    after = {
        id(m.config): m.config.__dict__.get("_attn_implementation_internal")
        for m in model.modules()
        if hasattr(m, "config")
    }
    assert after == before and model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(model(ids).logits, expected_logits, rtol=0, atol=0)


def test_the_grid_answers_drill_down_messages_with_its_model(word_tok, task):
    model = tiny_model("llama", vocab_size=len(word_tok))
    grid = HeadImportanceGrid(model, word_tok, tasks=[task], batch_size=4)
    sent = []
    sent.append(grid.reply({"type": "hw:examples", "task": "t", "layer": 0, "head": 0}))
    assert sent[-1][0]["available"] is False and sent[-1][0]["reason"] == "not scored yet"
    grid.compute()
    sent.append(grid.reply({"type": "hw:examples", "task": "t", "layer": 1, "head": 2}))
    reply, buffers = sent[-1]
    assert reply["available"] and reply["has_model"] and len(reply["rows"]) == len(task)
    index = reply["rows"][0]["index"]
    sent.append(
        grid.reply({"type": "hw:attention", "task": "t", "layer": 1, "head": 2, "example": index})
    )
    reply, buffers = sent[-1]
    n = len(reply["tokens"])
    assert np.frombuffer(buffers[0], "<f4").shape == (n * n,)
    shown = HeadImportanceGrid(grid.scores)
    sent.append(
        shown.reply({"type": "hw:attention", "task": "t", "layer": 1, "head": 2, "example": 0})
    )
    assert "holds no model" in sent[-1][0]["error"]


def test_the_grid_forgets_its_model_when_shown_another_models_scores(word_tok, task):
    model = tiny_model("llama", vocab_size=len(word_tok))
    grid = HeadImportanceGrid(model, word_tok, tasks=[task], batch_size=4)
    sent = []
    grid.send = lambda content, buffers=None: sent.append((content, buffers))
    own = grid.compute()
    ask = {"type": "hw:attention", "task": "t", "layer": 1, "head": 2, "example": 0}
    # the same model's scores again (renormalised, say): it still draws attention
    grid.set_scores(own.normalized("raw"))
    grid._on_message(grid, ask, [])
    assert "tokens" in sent[-1][0]
    # another model's scores on other examples, of the same shape: the model is forgotten
    other = HeadScores(
        own.values,
        own.tasks,
        effects=own.effects,
        clean=own.clean,
        examples={"t": [("entirely other words", " here")] * len(task)},
        meta={**own.meta, "model": "someone/else"},
    )
    grid.set_scores(other)
    grid._on_message(grid, ask, [])
    assert "holds no model" in sent[-1][0]["error"]
    grid._on_message(grid, {"type": "hw:examples", "task": "t", "layer": 1, "head": 2}, [])
    assert sent[-1][0]["has_model"] is False
    with pytest.raises(ValueError, match="pass the model"):
        grid.validate()
    # scores named like the model but of another shape are another model's too
    again = HeadImportanceGrid(model, word_tok, tasks=[task], batch_size=4)
    again.send = grid.send
    scored = again.compute()
    again.set_scores(HeadScores(scored.values[:, :1], scored.tasks, meta=scored.meta))
    again._on_message(again, {**ask, "layer": 0}, [])
    assert "holds no model" in sent[-1][0]["error"]


def test_side_by_side_comparison_keeps_each_sides_examples_and_the_grid_passes_keep_examples(
    word_tok, task
):
    from headwidget.views.compare import compare_scores

    a = with_examples()
    both = compare_scores(a, HeadScores(a.values + 1, a.tasks, meta={"model": "B"}))
    kept = [name for name in both.tasks if name in both.effects]
    assert len(kept) == 1 and kept[0].startswith("a · ")
    np.testing.assert_array_equal(both.effects[kept[0]], a.effects["a"])
    assert both.examples[kept[0]] == a.examples["a"]
    model = tiny_model("llama", vocab_size=len(word_tok))
    grid = HeadImportanceGrid(model, word_tok, tasks=[task], keep_examples=False)
    assert grid.compute().effects == {}
    with pytest.raises(TypeError, match="keep_examples"):
        HeadImportanceGrid(model, word_tok, tasks=[task], keep_examples="yes")
