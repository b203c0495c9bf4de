"""score_heads behaviour around the numbers: callbacks, chunking, padding, bad input, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import HeadScores, Task
from headwidget.modeling.adapters import HeadLayout, UnsupportedModelError, describe_model
from headwidget.modeling.inputs import split_tokens
from headwidget.scoring import NonFiniteMetricError, score_heads

EXAMPLES = list(MIXED_EXAMPLES)
TASK = Task("mixed", EXAMPLES)


def _hooks(model):
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def reference(tiny_llama, word_tok):
    return score_heads(tiny_llama, word_tok, TASK, progress=False)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 10])
def test_chunking_gives_the_same_scores(tiny_llama, word_tok, reference, batch_size):
    # 1: one example per batch (five batches); 3: batches of 3 + 2; 10: two heads per replay.
    scores = score_heads(tiny_llama, word_tok, TASK, batch_size=batch_size, progress=False)
    np.testing.assert_allclose(scores.values, reference.values, atol=1e-5)
    assert scores.baseline["mixed"] == pytest.approx(reference.baseline["mixed"], abs=1e-5)


def test_on_layer_called_once_per_task_and_layer(tiny_llama, word_tok):
    tasks = [TASK, Task("short", EXAMPLES[:2], category="Algorithmic")]
    calls = []
    scores = score_heads(
        tiny_llama,
        word_tok,
        tasks,
        progress=True,
        on_layer=lambda task, layer, row: calls.append((task, layer, row)),
    )
    n_layers = tiny_llama.config.num_hidden_layers
    assert [(t, layer) for t, layer, _ in calls] == [
        (task.name, layer) for task in tasks for layer in range(n_layers)
    ]
    for task, layer, row in calls:
        assert row.dtype == np.float32 and row.shape == (scores.n_heads,)
        np.testing.assert_array_equal(row, scores[task][layer])
    assert scores.tasks == ["mixed", "short"]
    assert scores.categories == {"mixed": None, "short": "Algorithmic"}


def test_clean_accuracy_per_task(tiny_llama, word_tok, reference):
    """HeadScores.accuracy: the share of examples whose answer token is the clean argmax,
    checked on a task whose answers are half the model's own greedy predictions."""
    examples = []
    for i, (prompt, _) in enumerate(MIXED_EXAMPLES):
        ids = torch.tensor([word_tok(prompt)["input_ids"]])
        with torch.no_grad():
            ranked = tiny_llama(ids).logits[0, -1].argsort(descending=True).tolist()
        # the greedy token for even examples, the runner-up for odd ones
        examples.append((prompt, " " + word_tok.convert_ids_to_tokens(ranked[i % 2])))
    task = Task("greedy", examples)
    scores = score_heads(tiny_llama, word_tok, task, progress=False)
    assert scores.accuracy == {"greedy": pytest.approx(3 / 5)}
    by_accuracy = score_heads(tiny_llama, word_tok, task, metric="accuracy", progress=False)
    assert by_accuracy.accuracy == by_accuracy.baseline == {"greedy": pytest.approx(3 / 5)}
    assert set(reference.accuracy) == {"mixed"}


def test_tokenizer_without_pad_token(tiny_llama, reference):
    tok = word_tokenizer(pad=False)
    assert tok.pad_token is None
    scores = score_heads(tiny_llama, tok, TASK, progress=False)
    assert tok.pad_token is None  # not mutated
    np.testing.assert_allclose(scores.values, reference.values, atol=1e-5)


def test_hooks_removed_and_training_flag_restored(word_tok):
    model = tiny_model("gpt2", vocab_size=len(word_tok))
    model.train()
    before = _hooks(model)
    score_heads(model, word_tok, TASK, progress=False)
    assert model.training and _hooks(model) == before


def test_custom_head_layout_matches_builtin(tiny_llama, word_tok, reference):
    model = tiny_llama
    layout = HeadLayout(
        layers=model.model.layers,
        out_proj="self_attn.o_proj",
        n_heads=model.config.num_attention_heads,
        final=lambda h: model.lm_head(model.model.norm(h)),
    )
    scores = score_heads(model, word_tok, TASK, head_layout=layout, progress=False)
    np.testing.assert_allclose(scores.values, reference.values, atol=1e-6)
    assert describe_model(model).out_proj == "self_attn.o_proj"


def test_unsupported_model_names_class_and_head_layout(word_tok):
    class MyLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)

    with pytest.raises(UnsupportedModelError, match=r"MyLM.*head_layout=HeadLayout"):
        score_heads(MyLM(), word_tok, TASK, progress=False)


def test_head_layout_checks_sizes(tiny_llama):
    with pytest.raises(ValueError, match="not a multiple of n_heads=3"):
        score_heads(
            tiny_llama,
            None,
            TASK,
            head_layout=HeadLayout(tiny_llama.model.layers, "self_attn.o_proj", 3, lambda h: h),
        )
    with pytest.raises(ValueError, match="not a submodule path"):
        score_heads(
            tiny_llama,
            None,
            TASK,
            head_layout=HeadLayout(tiny_llama.model.layers, "attn.nope", 4, lambda h: h),
        )


@pytest.mark.parametrize(
    ("tasks", "kwargs", "error", "pattern"),
    [
        ([], {}, ValueError, "no tasks given"),
        (Task("empty", []), {}, ValueError, "'empty' has no examples"),
        ([TASK, Task("mixed", EXAMPLES[:1])], {}, ValueError, r"unique.*'mixed'"),
        (TASK, {"ablation": "resample"}, ValueError, "unknown ablation 'resample'"),
        (TASK, {"metric": "kl"}, ValueError, "unknown metric 'kl'"),
        (TASK, {"metric": "logit_diff"}, ValueError, r"distractor.*example\(s\) 0, 1, 2, 3, 4"),
        (TASK, {"batch_size": 0}, ValueError, "batch_size must be a positive int"),
        (TASK, {"device": "meta"}, ValueError, "does not move your model"),
        ("mixed", {}, TypeError, "Task or a list of Task"),
    ],
)
def test_bad_input(tiny_llama, word_tok, tasks, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        score_heads(tiny_llama, word_tok, tasks, progress=False, **kwargs)


def test_answer_that_tokenizes_to_nothing(tiny_llama, word_tok):
    task = Task("blank", [("the cat is", " red"), ("the dog is", "   ")])
    with pytest.raises(ValueError, match=r"task 'blank', example 1: the answer '   '"):
        score_heads(tiny_llama, word_tok, task, progress=False)


@pytest.mark.parametrize("distractor", [" up down", " up"])
def test_logit_diff_needs_a_distractor_that_parts_from_the_answer(tiny_llama, word_tok, distractor):
    task = Task("same", [("the cat is", " red", " blue"), ("big dog", " up down", distractor)])
    with pytest.raises(ValueError, match=r"task 'same', example 1: .* no token where their"):
        score_heads(tiny_llama, word_tok, task, metric="logit_diff", progress=False)


def test_too_long_for_the_context(tiny_llama, word_tok):
    long_prompt = " ".join(["the"] * 70)  # + <s> + answer = 72 tokens; the context is 64
    task = Task("long", [("a cat", " red"), (long_prompt, " cat")])
    with pytest.raises(ValueError, match=r"task 'long', example 1: .*72 tokens.*context of 64"):
        score_heads(tiny_llama, word_tok, task, progress=False)


def _nan_when_head_zeroed(layer_module, head, head_dim):
    """Make an o_proj return NaN whenever head ``head`` of its input is all zero."""

    def hook(module, args, output):
        zeroed = (args[0][..., head * head_dim : (head + 1) * head_dim] == 0).all(-1)
        return torch.where(zeroed[..., None], torch.full_like(output, float("nan")), output)

    return layer_module.register_forward_hook(hook)


def test_non_finite_metric_keeps_partial_scores(word_tok):
    model = tiny_model("llama", vocab_size=len(word_tok), n_layers=3)
    handle = _nan_when_head_zeroed(model.model.layers[1].self_attn.o_proj, head=2, head_dim=8)
    try:
        with pytest.raises(
            NonFiniteMetricError, match=r"layer 1, head\(s\) \[2\].*partial"
        ) as info:
            score_heads(model, word_tok, [TASK], ablation="zero", progress=False)
    finally:
        handle.remove()
    err = info.value
    assert (err.task, err.layer, err.heads) == ("mixed", 1, [2])
    partial = err.partial
    assert isinstance(partial, HeadScores) and partial.meta["partial"] is True
    values = partial["mixed"]
    assert np.isfinite(values[0]).all()  # layer 0 done
    assert np.isnan(values[1, 2]) and np.isfinite(np.delete(values[1], 2)).all()  # rest kept
    assert np.isnan(values[2]).all()  # never computed
    assert partial.baseline["mixed"] == pytest.approx(
        score_heads(model, word_tok, TASK, progress=False).baseline["mixed"]
    )
    assert _hooks(model) == 0


def test_non_finite_clean_metric(word_tok):
    model = tiny_model("llama", vocab_size=len(word_tok))
    tokyo = word_tok.convert_tokens_to_ids("tokyo")

    def poison(module, args, output):  # NaN embedding for one word: only its example breaks
        return torch.where((args[0] == tokyo)[..., None], float("nan"), output)

    handle = model.model.embed_tokens.register_forward_hook(poison)
    try:
        with pytest.raises(NonFiniteMetricError, match=r"clean .* example\(s\) \[4\]") as info:
            score_heads(model, word_tok, [Task("ok", EXAMPLES[:1]), TASK], progress=False)
    finally:
        handle.remove()
    assert info.value.layer is None
    assert info.value.partial.tasks == ["ok", "mixed"]
    assert np.isfinite(info.value.partial["ok"]).all()
    assert np.isnan(info.value.partial["mixed"]).all()


class _MergingTokenizer:
    """Joins "ab" into one token when the prompt ends with "a" and the answer starts with "b"."""

    vocab = {"a": 1, "b": 2, "ab": 3, "x": 4}

    def __call__(self, text, add_special_tokens=True):
        ids = [3] if text == "ab" else [self.vocab[c] for c in text]
        return {"input_ids": ([0] if add_special_tokens else []) + ids}


def test_split_falls_back_when_the_joint_tokenization_merges():
    tok = _MergingTokenizer()
    assert split_tokens(tok, "x", "b") == ([0, 4], [2])  # prefix matches: take the rest
    assert split_tokens(tok, "a", "b") == ([0, 1], [2])  # "ab" merged: tokenize the parts


def test_layout_and_errors_are_importable_from_the_package():
    import headwidget
    from headwidget import scoring
    from headwidget.modeling import adapters

    assert headwidget.HeadLayout is adapters.HeadLayout
    assert headwidget.UnsupportedModelError is adapters.UnsupportedModelError
    assert headwidget.NonFiniteMetricError is scoring.NonFiniteMetricError
    assert {"HeadLayout", "UnsupportedModelError", "NonFiniteMetricError"} <= set(
        headwidget.__all__
    )


def test_compute_metric_names_every_metric_score_heads_takes():
    from headwidget.methods.options import METRICS
    from headwidget.modeling.metrics import compute_metric

    logits, targets, rows = torch.zeros(1, 1, 3), torch.tensor([0]), torch.tensor([0])
    for metric in ("logprob", "prob", "accuracy"):
        assert compute_metric(metric, logits, targets, rows, 1).shape == (1, 1)
    with pytest.raises(ValueError, match="unknown metric 'kl'") as err:
        compute_metric("kl", logits, targets, rows, 1)
    assert all(name in str(err.value) for name in METRICS)
