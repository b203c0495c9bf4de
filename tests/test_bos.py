"""A tokenizer that drops the BOS token its model was trained with (issue #23, item 4).

Gemma-3 loaded from GGUF in transformers 5 gets ``add_bos_token=False``: without its BOS the
model reads text it never saw, and every map is of a broken model. headwidget warns once per
model, naming the fix; ``add_bos=True`` puts the BOS first, ``add_bos=False`` says nothing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import Task, score_heads
from headwidget.cli.parser import build_parser
from headwidget.methods.options import SCORING_OPTIONS, ScoringOptions
from headwidget.methods.roles import detect_heads
from headwidget.methods.validation import evaluate_tasks, validate_scores
from headwidget.modeling.inputs import MissingBosWarning, encode_task, needs_bos
from headwidget.views.drill import handle_message

TASK = Task("mixed", list(MIXED_EXAMPLES))


@pytest.fixture(scope="module")
def dropping():
    """A tokenizer whose BOS token is ``<s>`` (id 1) but which does not add it."""
    return word_tokenizer(adds_bos=False)


@pytest.fixture(scope="module")
def adding():
    return word_tokenizer()


def _bos_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, MissingBosWarning)]


def _score(model, tokenizer, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = score_heads(model, tokenizer, TASK, progress=False, **options)
    return scores, _bos_warnings(caught)


def test_dropped_bos_warns_once_per_model_naming_the_fix(dropping):
    model = tiny_model("llama", vocab_size=len(dropping))
    _, said = _score(model, dropping)
    assert len(said) == 1
    assert "add_bos=True" in said[0] and "--add-bos" in said[0] and "'<s>'" in said[0]
    assert "add_bos=False" in said[0]
    _, again = _score(model, dropping, method="attribution")  # the same model: said already
    assert again == []
    other = tiny_model("gemma", vocab_size=len(dropping))  # every Gemma needs its BOS
    assert len(_score(other, dropping)[1]) == 1


def test_add_bos_true_gives_the_maps_with_the_bos(dropping, adding):
    model = tiny_model("llama", vocab_size=len(dropping), seed=3)
    fixed, said = _score(model, dropping, add_bos=True)
    assert said == []
    assert fixed.meta["add_bos"] is True
    reference, _ = _score(model, adding)  # a tokenizer that adds <s> itself
    np.testing.assert_array_equal(fixed.values, reference.values)
    np.testing.assert_array_equal(fixed.baseline, reference.baseline)
    # not doubled where the tokenizer adds it already
    doubled, _ = _score(model, adding, add_bos=True)
    np.testing.assert_array_equal(doubled.values, reference.values)
    items = encode_task(TASK, dropping, "logprob", None, add_bos=True)
    assert all(item.prompt[0] == dropping.bos_token_id for item in items)
    assert all(item.prompt[1] != dropping.bos_token_id for item in items)


def test_add_bos_false_silences_and_leaves_it_out(dropping, adding):
    model = tiny_model("llama", vocab_size=len(dropping), seed=4)
    quiet, said = _score(model, dropping, add_bos=False)
    assert said == []
    assert quiet.meta["add_bos"] is False
    # the tokenizer's own BOS is taken off too: the same maps as without one
    stripped, _ = _score(model, adding, add_bos=False)
    np.testing.assert_array_equal(stripped.values, quiet.values)
    with_bos, _ = _score(model, adding)
    assert not np.allclose(with_bos.values, quiet.values)


def test_the_drill_down_attention_pattern_reads_the_text_as_it_was_scored(dropping, adding):
    model = tiny_model("llama", vocab_size=len(dropping))

    def first_token(tokenizer, **options) -> str:
        scores, _ = _score(model, tokenizer, keep_examples=True, **options)
        message = {"type": "hw:attention", "task": "mixed", "layer": 1, "head": 0, "example": 0}
        reply, buffers = handle_message(scores, (model, tokenizer, None), message)
        n = len(reply["tokens"])
        assert np.frombuffer(buffers[0], "<f4").shape == (n * n,)
        return reply["tokens"][0]

    assert first_token(dropping, add_bos=True) == "<s>"
    assert first_token(adding, add_bos=False) != "<s>"
    assert first_token(dropping, add_bos=False) != "<s>"
    assert first_token(adding) == "<s>"  # None: the tokenizer's own tokens


def test_who_needs_a_bos(dropping, adding):
    llama = tiny_model("llama", vocab_size=len(dropping))
    assert "llama" in needs_bos(llama, dropping)
    assert needs_bos(llama, adding) is None  # the tokenizer adds it
    assert needs_bos(llama, word_tokenizer(bos=False)) is None  # no BOS token at all
    # gpt2 names a bos_token_id in its config, like SmolLM2, and is trained without one
    gpt2 = tiny_model("gpt2", vocab_size=len(dropping))
    assert needs_bos(gpt2, dropping) is None
    templated = word_tokenizer(adds_bos=False)
    templated.chat_template = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"
    assert "chat template" in needs_bos(gpt2, templated)


def test_the_demo_model_is_not_warned_about():
    from headwidget.demo import load_demo_model

    try:
        model, tokenizer = load_demo_model()
    except Exception as err:  # the demo model is not available here
        pytest.skip(str(err))
    # SmolLM2: a Llama whose BOS token <|im_start|> is a chat token, never added
    assert needs_bos(model, tokenizer) is None


def test_add_bos_is_an_option_of_the_record_the_sweep_and_the_command():
    assert "add_bos" not in ScoringOptions().fingerprint()  # old sweeps' fingerprints stay
    assert ScoringOptions(add_bos=True).fingerprint()["add_bos"] is True
    assert ScoringOptions(add_bos=False).fingerprint()["add_bos"] is False
    assert ScoringOptions.from_keywords(add_bos=True).keywords()["add_bos"] is True
    assert "add_bos" in SCORING_OPTIONS  # the widget takes it among its scoring options
    with pytest.raises(TypeError, match="add_bos must be True, False or None"):
        ScoringOptions(add_bos="yes")
    parse = build_parser().parse_args
    base = ["score", "demo", "--tasks", "operations", "-o", "x.npz"]
    assert parse(base).add_bos is None
    assert parse([*base, "--add-bos"]).add_bos is True
    assert parse([*base, "--no-add-bos"]).add_bos is False


def test_validate_and_evaluate_take_add_bos(dropping, adding):
    model = tiny_model("llama", vocab_size=len(dropping), seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingBosWarning)  # no warning on any of these
        fixed = evaluate_tasks(model, dropping, TASK, metric="logprob", add_bos=True)
        assert fixed == evaluate_tasks(model, adding, TASK, metric="logprob")
        scores = score_heads(model, dropping, TASK, progress=False, add_bos=True)
        # by default as the scores were made (meta["add_bos"])
        check = validate_scores(scores, model, dropping, TASK, k=1, n_random=1, progress=False)
        assert check.clean["mixed"] == pytest.approx(evaluate_tasks(model, adding, TASK)["mixed"])
        assert validate_scores(
            scores, model, dropping, TASK, k=1, n_random=1, progress=False, add_bos=False
        ).clean["mixed"] == pytest.approx(
            evaluate_tasks(model, dropping, TASK, add_bos=False)["mixed"]
        )


def test_detect_heads_puts_a_bos_first_unless_told_not_to(dropping):
    model = tiny_model("llama", vocab_size=len(dropping))
    kwargs = dict(roles=["previous token"], n_sequences=2, seq_len=8, progress=False)
    default = detect_heads(model, dropping, **kwargs)
    assert default.meta["seq_len"]["random"] == 9  # the tokenizer's BOS, then 8 tokens
    assert detect_heads(model, dropping, add_bos=True, **kwargs).meta["seq_len"]["random"] == 9
    none = detect_heads(model, dropping, add_bos=False, **kwargs)
    assert none.meta["seq_len"]["random"] == 8 and none.meta["add_bos"] is False
