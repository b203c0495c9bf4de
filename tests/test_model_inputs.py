"""What the model reads: no stray EOS after a prompt, and token ids the model has."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import MIXED_EXAMPLES, tiny_model, word_tokenizer

from headwidget import Task
from headwidget.methods.validation import evaluate_tasks
from headwidget.modeling.inputs import split_tokens
from headwidget.scoring import score_heads

TASK = Task("mixed", list(MIXED_EXAMPLES))


def test_a_tokenizer_that_appends_eos_scores_like_one_that_does_not(word_tok):
    eos_tok = word_tokenizer(eos=True)
    assert eos_tok("the cat")["input_ids"][-1] == eos_tok.eos_token_id
    prompt, answer = split_tokens(eos_tok, "the cat is", " red")
    assert (prompt, answer) == split_tokens(word_tok, "the cat is", " red")
    assert eos_tok.eos_token_id not in prompt + answer
    # a prompt that itself ends with the EOS text keeps that token
    assert split_tokens(eos_tok, "the cat </s>", " red")[0][-1] == eos_tok.eos_token_id
    model = tiny_model("llama", vocab_size=len(word_tok), n_layers=2)
    plain = score_heads(model, word_tok, TASK, progress=False)
    with_eos = score_heads(model, eos_tok, TASK, progress=False)
    np.testing.assert_array_equal(with_eos.values, plain.values)
    assert with_eos.baseline == plain.baseline


def test_token_ids_beyond_the_models_embedding_are_named(word_tok):
    small = tiny_model("llama", vocab_size=20, n_layers=1)
    for call in (
        lambda: score_heads(small, word_tok, TASK, progress=False),
        lambda: evaluate_tasks(small, word_tok, TASK),
    ):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "task 'mixed', example 0" in message
        assert f"vocabulary of 20 embeddings (the tokenizer has {len(word_tok)} tokens)" in message
