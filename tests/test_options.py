"""The scoring options as one record: checked once, defaults filled in, carried unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import HeadScores, Task, score_heads
from headwidget.methods.options import ScoringOptions, examples_bytes


def test_the_record_is_checked_once_with_the_methods_defaults_filled_in() -> None:
    options = ScoringOptions.from_keywords(method="attribution", refine=20, batch_size=np.int64(4))
    assert options.method_options["refine_random"] == 10  # refine // 2
    assert options.method_options["refine_sensitive"] == 2  # refine // 10
    assert options.batch_size == 4 and type(options.batch_size) is int
    with pytest.raises(TypeError):
        options.method_options["refine"] = 3  # read-only: it travels unchanged
    assert options.replace(metric="prob").method_options == options.method_options
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        options.replace(metric="nope")  # a changed copy is checked again
    with pytest.raises(TypeError, match="does not take \\['k'\\]"):
        ScoringOptions.from_keywords(method="attribution", k=3)
    with pytest.raises(ValueError, match="refine must be a whole number"):
        ScoringOptions(method="attribution", method_options={"refine": -1})
    with pytest.raises(TypeError, match="keep_examples must be True, False or None"):
        ScoringOptions(keep_examples="yes")
    # switching method forgets the other method's options
    assert options.replace(method="ablation").method_options == {"heads": None, "replay": "float32"}


def test_the_fingerprint_holds_what_decides_the_numbers() -> None:
    plain = ScoringOptions(method="attribution")
    assert plain.fingerprint()["options"] == {}  # all defaults: as sweeps always wrote it
    assert ScoringOptions(method="attribution", method_options={"refine": 0}).fingerprint() == (
        plain.fingerprint()
    )
    assert plain.replace(batch_size=8, device="cpu").fingerprint() == plain.fingerprint()
    refined = plain.replace(method_options={"refine": 20}).fingerprint()
    assert refined["options"]["refine_random"] == 10 and refined["method"] == "attribution"


def test_one_keep_examples_policy() -> None:
    small = ScoringOptions()
    assert small.keeps_examples(2, 4, 8, [10]) is True
    assert ScoringOptions(keep_examples=False).keeps_examples(2, 4, 8, [10]) is False
    assert (
        ScoringOptions(method="projection", keep_examples=True).keeps_examples(2, 4, 8, [10])
        is False
    )
    # 80 x 64 heads x 128 dims: attribution with mean ablation holds gradient sums per example
    big = [100_000]
    assert small.keeps_examples(80, 64, 128, big) is False
    assert examples_bytes(80, 64, 128, [100], method="attribution") > examples_bytes(
        80, 64, 128, [100], method="attribution", ablation="zero"
    )


def test_score_heads_takes_the_record_or_keywords_not_both() -> None:
    tok = word_tokenizer()
    model = tiny_model("llama", vocab_size=len(tok))
    task = Task("words", list(MIXED_EXAMPLES))
    by_record = score_heads(
        model, tok, task, options=ScoringOptions(ablation="zero"), progress=False
    )
    by_keywords = score_heads(model, tok, task, ablation="zero", progress=False)
    np.testing.assert_array_equal(by_record.values, by_keywords.values)
    with pytest.raises(TypeError, match="not both"):
        score_heads(model, tok, task, options=ScoringOptions(), ablation="zero", progress=False)
    with pytest.raises(TypeError, match="not both"):
        score_heads(model, tok, task, options=ScoringOptions(), heads={0: [1]}, progress=False)


def test_every_error_while_scoring_carries_what_was_finished() -> None:
    """An interrupt (or any error) raised mid-run, e.g. from a listener, carries ``partial``:
    the blocks finished before it, the rest NaN; the model comes back as it was."""
    tok = word_tokenizer()
    model = tiny_model("llama", vocab_size=len(tok), n_layers=3)
    task = Task("words", list(MIXED_EXAMPLES))
    full = score_heads(model, tok, task, progress=False)
    seen = []

    def interrupt_at_second_layer(report) -> None:
        seen.append(report.layer)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as raised:
        score_heads(model, tok, task, listeners=[interrupt_at_second_layer], progress=False)
    partial = raised.value.partial
    assert isinstance(partial, HeadScores) and partial.meta["partial"] is True
    done = seen[:2]
    np.testing.assert_array_equal(partial.values[0, done], full.values[0, done])
    assert np.isnan(np.delete(partial.values[0], done, axis=0)).all()
    np.testing.assert_array_equal(partial.effects["words"][done], full.effects["words"][done])
    assert model.training is False and not model._forward_pre_hooks
    again = score_heads(model, tok, task, progress=False)  # nothing left behind
    np.testing.assert_array_equal(again.values, full.values)
