"""scores.validate(): top-k vs random-k ablation, checked against models with heads cut out."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_models import MIXED_EXAMPLES, tiny_model

from headwidget import HeadScores, Task, score_heads
from headwidget.methods.validation import ValidationResult, evaluate_tasks, validate_scores

EXAMPLES = [*MIXED_EXAMPLES, ("red blue green", " yes")]
TASKS = [Task("mixed", EXAMPLES), Task("short", EXAMPLES[:3])]


@pytest.fixture(scope="module")
def model(word_tok):
    return tiny_model("llama", vocab_size=len(word_tok), n_layers=3)


@pytest.fixture(scope="module")
def scores(model, word_tok):
    return score_heads(model, word_tok, TASKS, ablation="zero", progress=False)


def _without_heads(model, heads):
    """A copy of ``model`` whose listed (layer, head) outputs are cut from o_proj's weight: what
    zero ablation of those heads means, done without any hooks."""
    cut = copy.deepcopy(model)
    head_dim = cut.config.hidden_size // cut.config.num_attention_heads
    with torch.no_grad():
        for layer, head in heads:
            weight = cut.model.layers[layer].self_attn.o_proj.weight
            weight[:, head * head_dim : (head + 1) * head_dim] = 0
    return cut


def test_top_k_ablation_matches_a_model_with_those_heads_removed(model, word_tok, scores):
    check = scores.validate(
        model, word_tok, TASKS, k=(1, 3, 5), metric="logprob", ablation="zero", n_random=2
    )
    for task in TASKS:
        clean = evaluate_tasks(model, word_tok, task, metric="logprob")[task.name]
        assert check.clean[task.name] == pytest.approx(clean, abs=1e-5)
        for k in (1, 3, 5):
            heads = check.heads[task.name][k]
            assert heads == [(la, h) for la, h, _ in scores.top_heads(task.name, k)]
            cut = _without_heads(model, heads)
            expected = evaluate_tasks(cut, word_tok, task, metric="logprob")[task.name]
            assert check.top[task.name][k] == pytest.approx(expected, abs=1e-4)


def _with_heads_fixed_at_their_mean(model, tokenizer, task, heads):
    """A copy of ``model`` in which each listed head's output is its mean over the task's
    positions, built into o_proj's weights: the head's columns are cut and their product with
    the mean becomes a bias. The means come from one unpadded forward per example."""
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    sums, counts = {}, {}

    def recorder(layer):
        def hook(module, args):
            x = args[0].reshape(-1, args[0].shape[-1])
            sums[layer] = sums.get(layer, 0) + x.sum(0)
            counts[layer] = counts.get(layer, 0) + x.shape[0]

        return hook

    handles = [
        layer.self_attn.o_proj.register_forward_pre_hook(recorder(i))
        for i, layer in enumerate(model.model.layers)
    ]
    try:
        with torch.no_grad():
            for example in task.examples:
                ids = tokenizer(example.prompt + example.answer)["input_ids"][:-1]
                model(input_ids=torch.tensor([ids]))
    finally:
        for handle in handles:
            handle.remove()
    fixed = copy.deepcopy(model)
    with torch.no_grad():
        for layer, head in heads:
            old = fixed.model.layers[layer].self_attn.o_proj
            part = slice(head * head_dim, (head + 1) * head_dim)
            mean = (sums[layer] / counts[layer])[part]
            new = torch.nn.Linear(old.in_features, old.out_features, bias=True)
            new.weight.copy_(old.weight)
            new.bias.copy_(old.bias if old.bias is not None else torch.zeros(old.out_features))
            new.bias += old.weight[:, part] @ mean
            new.weight[:, part] = 0
            fixed.model.layers[layer].self_attn.o_proj = new
    return fixed


def test_top_k_mean_ablation_matches_a_model_with_those_heads_fixed(model, word_tok):
    scores = score_heads(model, word_tok, TASKS[:1], ablation="mean", progress=False)
    check = scores.validate(model, word_tok, TASKS[:1], k=(2, 6), metric="logprob", n_random=1)
    for k in (2, 6):
        heads = check.heads["mixed"][k]
        fixed = _with_heads_fixed_at_their_mean(model, word_tok, TASKS[0], heads)
        expected = evaluate_tasks(fixed, word_tok, TASKS[0], metric="logprob")["mixed"]
        assert check.top["mixed"][k] == pytest.approx(expected, abs=1e-4)


def test_single_head_ablation_agrees_with_the_head_scores(model, word_tok):
    # k=1 ablates the top head alone: its drop is that head's importance (mean ablation too).
    scores = score_heads(model, word_tok, TASKS, metric="logprob", progress=False)
    check = scores.validate(model, word_tok, TASKS, k=1, metric="logprob", n_random=1)
    assert check.ablation == "mean"
    for task in TASKS:
        layer, head, importance = scores.top_heads(task.name, 1)[0]
        drop = check.clean[task.name] - check.top[task.name][1]
        assert drop == pytest.approx(importance, abs=1e-4)
        assert check.clean[task.name] == pytest.approx(scores.baseline[task.name], abs=1e-5)


def test_random_draws_are_seeded_and_summarised(model, word_tok, scores):
    kwargs = {"k": (2, 4), "metric": "logprob", "n_random": 4}
    first = scores.validate(model, word_tok, TASKS, seed=1, **kwargs)
    again = scores.validate(model, word_tok, TASKS, seed=1, **kwargs)
    other = scores.validate(model, word_tok, TASKS, seed=2, **kwargs)
    assert first.random == again.random
    assert first.random != other.random
    assert all(len(first.random[t][k]) == 4 for t in first.tasks for k in (2, 4))

    summary = first.summary()
    for k in (2, 4):
        top = [first.top[t][k] for t in first.tasks]
        rand = [np.mean(first.random[t][k]) for t in first.tasks]
        assert summary[k]["top_k"] == pytest.approx(np.mean(top))
        assert summary[k]["random_k"] == pytest.approx(np.mean(rand))
        hurt = np.mean([a < b for a, b in zip(top, rand, strict=True)])
        assert summary[k]["tasks_hurt_more"] == pytest.approx(hurt)

    rows = first.rows()
    assert [(r["task"], r["k"]) for r in rows] == [
        ("mixed", 2),
        ("mixed", 4),
        ("short", 2),
        ("short", 4),
    ]
    table = first.to_markdown().splitlines()
    assert table[0] == "| task | clean logprob | top-2 | random-2 | top-4 | random-4 |"
    assert table[2].startswith("| mixed | ") and table[-1].startswith("| **mean** |")
    assert "random" in repr(first) and "2 tasks" in repr(first)
    frame = first.to_pandas()
    assert list(frame.columns) == ["task", "k", "clean", "top_k", "random_k", "random_k_std"]


def test_summary_and_table_of_known_numbers():
    result = ValidationResult(
        "accuracy",
        "mean",
        (5,),
        2,
        clean={"a": 1.0, "b": 0.5},
        top={"a": {5: 0.2}, "b": {5: 0.5}},
        random={"a": {5: [0.8, 0.6]}, "b": {5: [0.3, 0.5]}},
        heads={"a": {5: []}, "b": {5: []}},
    )
    summary = result.summary()[5]
    assert summary["clean"] == pytest.approx(0.75)
    assert summary["top_k"] == pytest.approx(0.35)
    assert summary["random_k"] == pytest.approx(0.55)  # (0.7 + 0.4) / 2
    assert summary["tasks_hurt_more"] == pytest.approx(0.5)  # a: 0.2 < 0.7; b: 0.5 > 0.4
    assert result.rows()[1] == {
        "task": "b",
        "k": 5,
        "clean": 0.5,
        "top_k": 0.5,
        "random_k": pytest.approx(0.4),
        "random_k_std": pytest.approx(0.1),
    }
    assert result.to_markdown().splitlines()[2:] == [
        "| a | 1.00 | 0.20 | 0.70 |",
        "| b | 0.50 | 0.50 | 0.40 |",
        "| **mean** | **0.75** | **0.35** | **0.55** |",
    ]


def test_an_error_part_way_leaves_no_hooks(model, word_tok, scores):
    # the first task is measured, then the second fails: it has no distractor for logit_diff
    with_distractor = Task("mixed", [(p, a, " no") for p, a in EXAMPLES])
    broken = [with_distractor, Task("short", EXAMPLES[:3])]
    with pytest.raises(ValueError, match="needs a distractor on every example"):
        scores.validate(model, word_tok, broken, k=3, n_random=1, metric="logit_diff")
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())


def test_accuracy_is_the_default_metric(model, word_tok, scores):
    check = validate_scores(scores, model, word_tok, TASKS, k=2, n_random=1)
    assert isinstance(check, ValidationResult) and check.metric == "accuracy"
    values = [check.clean[t] for t in check.tasks] + [check.top[t][2] for t in check.tasks]
    assert all(0.0 <= v <= 1.0 for v in values)


def test_validate_leaves_the_model_as_it_was(model, word_tok, scores):
    before = {name: p.clone() for name, p in model.state_dict().items()}
    model.train()
    try:
        scores.validate(model, word_tok, TASKS, k=3, n_random=1)
        assert model.training
    finally:
        model.eval()
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
    for name, p in model.state_dict().items():
        assert torch.equal(p, before[name])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a whole number"),
        ({"k": 13}, "from 1 to the 12 heads"),
        ({"k": (5, True)}, "k must be a whole number"),
        ({"k": ()}, "k must be a whole number"),
        ({"n_random": 0}, "n_random must be a positive whole number"),
        ({"batch_size": 0}, "batch_size must be a positive whole number"),
        ({"metric": "bleu"}, "unknown metric 'bleu'"),
        ({"ablation": "noise"}, "unknown ablation 'noise'"),
    ],
)
def test_bad_arguments_are_named(model, word_tok, scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        scores.validate(model, word_tok, TASKS, **{"k": 3, **kwargs})


def test_tasks_and_model_must_match_the_scores(model, word_tok, scores):
    with pytest.raises(
        ValueError, match=r"no task\(s\) \['other'\]; they have \['mixed', 'short'\]"
    ):
        scores.validate(model, word_tok, [Task("other", EXAMPLES)], k=3)
    bigger = tiny_model("llama", vocab_size=len(word_tok), n_layers=4)
    with pytest.raises(ValueError, match="3 layers × 4 heads but the model has 4 × 4"):
        scores.validate(bigger, word_tok, TASKS, k=3)
    nan_scores = HeadScores(
        np.full((1, 3, 4), np.nan, dtype=np.float32), ["mixed"], {}, {}, {"ablation": "zero"}, {}
    )
    with pytest.raises(ValueError, match="'mixed' has 0 finite scores, fewer than k=5"):
        nan_scores.validate(model, word_tok, TASKS[:1], k=5)


class _RecordingBar:
    """Stands in for tqdm: records total, disable, updates and close."""

    made: list[_RecordingBar] = []

    def __init__(self, *, total, disable, **kwargs):
        self.total, self.disable, self.n, self.closed = total, disable, 0, False
        _RecordingBar.made.append(self)

    def update(self, n):
        self.n += n

    def set_postfix_str(self, *args, **kwargs):
        pass

    def close(self):
        self.closed = True


def test_progress_bar_counts_every_ablation(model, word_tok, scores, monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _RecordingBar)
    _RecordingBar.made.clear()
    scores.validate(model, word_tok, TASKS, k=(1, 2), n_random=3)
    scores.validate(model, word_tok, TASKS, k=1, n_random=1, progress=False)
    shown, hidden = _RecordingBar.made
    assert shown.total == shown.n == 2 * (1 + 2 * (1 + 3)) and not shown.disable
    assert shown.closed and hidden.disable and hidden.closed


def test_a_grid_shows_validation_progress_then_done_in(model, word_tok, scores):
    import re

    from headwidget import HeadImportanceGrid

    grid = HeadImportanceGrid(scores)
    grid.sync_interval = 0.0
    seen = []
    grid.observe(lambda change: seen.append(dict(change["new"])), names="progress")
    with pytest.raises(ValueError, match="pass the model, tokenizer and tasks"):
        grid.validate()
    check = grid.validate(model, word_tok, TASKS, k=(1, 2), n_random=2)
    assert isinstance(check, ValidationResult)
    running = [p for p in seen if p["running"]]
    assert running[0]["text"] == "validating…" and running[0]["fraction"] == 0
    steps = [p for p in running if "ETA" in p["text"]]
    assert len(steps) == 2 * (1 + 2 * 3)
    assert [p["fraction"] for p in steps] == sorted(p["fraction"] for p in steps)
    assert "task 2/2 short" in steps[-1]["text"] and "14/14 ablations" in steps[-1]["text"]
    assert re.fullmatch(r"validation done in \d+ s", seen[-1]["text"])
    assert seen[-1]["running"] is False and seen[-1]["fraction"] == 1 and "error" not in seen[-1]

    broken = [Task("mixed", [(p, a, " no") for p, a in EXAMPLES]), Task("short", EXAMPLES[:3])]
    with pytest.raises(ValueError, match="distractor"):
        grid.validate(model, word_tok, broken, k=1, n_random=1, metric="logit_diff")
    assert grid.progress["error"] is True and grid.progress["running"] is False
    assert grid.progress["text"].startswith("validation error after 3/6 ablations")


def test_a_grid_that_scored_its_model_validates_without_arguments(model, word_tok):
    from headwidget import HeadImportanceGrid

    grid = HeadImportanceGrid(model, word_tok, tasks=TASKS, ablation="zero")
    grid.compute()
    check = grid.validate(k=2, n_random=1, metric="logprob")
    expected = grid.scores.validate(
        model, word_tok, TASKS, k=2, n_random=1, metric="logprob", progress=False
    )
    assert check.top == expected.top and check.ablation == "zero"
    assert grid.progress["text"].startswith("validation done in")
